"""Differentiable forward kinematics and linear blend skinning for the hand (torch, batched).

Written after smplx's lbs.py: plain tensor functions with the shapes in the docstrings, plus
`HandLayer`, an nn.Module that keeps the asset as buffers. Millimetres, canonical hand frame
(wrist at the origin, fingers along -y, palm facing -z, thumb toward +x; see assets/hand/README.md).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from handviz.hand.articulation import angles_to_rotmats, joint_frames
from handviz.hand.asset import HandAsset, load_hand_asset
from handviz.hand.rotations import axis_angle_to_rotmat, batch_rodrigues

__all__ = [
    "HandLayer",
    "HandOutput",
    "axis_angle_to_rotmat",
    "batch_rodrigues",
    "forward_kinematics",
    "lbs",
    "pose_hand",
]


def forward_kinematics(
    rotmats: torch.Tensor, rest_joints: torch.Tensor, parents: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose a skeleton.

    rotmats: (B, J, 3, 3) local rotations, each about its joint and expressed in the parent's
    (rest-aligned) frame; rest_joints: (B, J, 3); parents: (J,) with parents[0] == -1 and every
    parent listed before its children.
    Returns joints (B, J, 3), the posed joint positions, and transforms (B, J, 4, 4), the
    skinning transforms A_j = G_j [I | -J_j] that carry rest-space points to posed space, where
    G_j = G_parent [R_j | J_j - J_parent].
    """
    B, J = rest_joints.shape[:2]
    offsets = rest_joints.clone()
    parent_idx = torch.as_tensor(list(parents)[1:], device=rest_joints.device)
    offsets[:, 1:] = rest_joints[:, 1:] - rest_joints[:, parent_idx]
    local = _homogeneous(rotmats, offsets)  # (B, J, 4, 4)
    chain = [local[:, 0]]
    for j in range(1, J):
        chain.append(chain[parents[j]] @ local[:, j])
    world = torch.stack(chain, dim=1)  # (B, J, 4, 4)
    joints = world[:, :, :3, 3]
    # A_j = G_j [I | -J_j]: subtract the rotated rest joint from the translation.
    shift = (world[:, :, :3, :3] @ rest_joints[..., None])[..., 0]
    transforms = torch.cat(
        [torch.cat([world[:, :, :3, :3], (joints - shift)[..., None]], dim=-1), world[:, :, 3:]], dim=-2
    )
    return joints, transforms


def _homogeneous(rot: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
    """rot: (..., 3, 3), trans: (..., 3) -> (..., 4, 4)."""
    top = torch.cat([rot, trans[..., None]], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def lbs(rest_verts: torch.Tensor, skin_weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning.

    rest_verts: (B, V, 3); skin_weights: (V, J), rows sum to 1; transforms: (B, J, 4, 4) from
    forward_kinematics. Returns posed vertices (B, V, 3).
    """
    T = torch.einsum("vj,bjmn->bvmn", skin_weights, transforms)  # (B, V, 4, 4)
    return (T[..., :3, :3] @ rest_verts[..., None])[..., 0] + T[..., :3, 3]


class HandOutput(NamedTuple):
    """vertices: (B, V, 3) mm; joints: (B, 21, 3) mm, MediaPipe order; both in the hand frame
    rotated by global_rot about the wrist (no translation)."""

    vertices: torch.Tensor
    joints: torch.Tensor


class HandLayer(nn.Module):
    """The rigged hand as a module: anatomical angles (+ shape, + wrist rotation) -> mesh, joints.

    The asset is loaded once and kept as (non-persistent) buffers, so `.to(device)` moves it.
    """

    def __init__(self, asset: HandAsset | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        asset = asset if asset is not None else load_hand_asset()
        self.parents: tuple[int, ...] = tuple(int(p) for p in asset.parents)
        self.shape_names: tuple[str, ...] = tuple(asset.shape_names)

        def buf(name: str, array: np.ndarray) -> None:
            self.register_buffer(name, torch.as_tensor(np.asarray(array), dtype=dtype), persistent=False)

        buf("rest_verts", asset.vertices)  # (V, 3)
        buf("rest_joints", asset.rest_joints)  # (21, 3)
        buf("skin_weights", asset.skin_weights)  # (V, 21)
        buf("shape_basis_verts", asset.shape_basis_verts)  # (S, V, 3)
        buf("shape_basis_joints", asset.shape_basis_joints)  # (S, 21, 3)
        buf("frames", joint_frames(asset.rest_joints, asset.joint_flex_axes))  # (21, 3, 3)
        self.register_buffer("faces", torch.as_tensor(asset.faces, dtype=torch.long), persistent=False)

    @property
    def num_shapes(self) -> int:
        return int(self.shape_basis_verts.shape[0])

    def shaped_rest(self, shape: torch.Tensor | None, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """shape: (B, S) or None -> rest vertices (B, V, 3) and rest joints (B, 21, 3)."""
        if shape is None:
            return (
                self.rest_verts.expand(batch, -1, -1),
                self.rest_joints.expand(batch, -1, -1),
            )
        verts = self.rest_verts + torch.einsum("bs,svc->bvc", shape, self.shape_basis_verts)
        joints = self.rest_joints + torch.einsum("bs,sjc->bjc", shape, self.shape_basis_joints)
        return verts, joints

    def forward(
        self,
        angles: torch.Tensor,
        shape: torch.Tensor | None = None,
        global_rot: torch.Tensor | None = None,
    ) -> HandOutput:
        """angles: (B, 21, 3) anatomical (flex, abd, twist) radians per joint (articulation.py);
        shape: (B, S) coefficients, about [-1, 1]; global_rot: (B, 3, 3) wrist orientation.
        Returns HandOutput(vertices (B, V, 3), joints (B, 21, 3)) in mm."""
        B = angles.shape[0]
        rotmats = angles_to_rotmats(angles, self.frames)  # (B, 21, 3, 3)
        if global_rot is not None:
            rotmats = torch.cat([global_rot[:, None] @ rotmats[:, :1], rotmats[:, 1:]], dim=1)
        rest_verts, rest_joints = self.shaped_rest(shape, B)
        joints, transforms = forward_kinematics(rotmats, rest_joints, self.parents)
        vertices = lbs(rest_verts, self.skin_weights, transforms)
        return HandOutput(vertices=vertices, joints=joints)


@lru_cache(maxsize=1)
def _default_layer() -> HandLayer:
    return HandLayer(dtype=torch.float64)


def pose_hand(
    angles: np.ndarray, shape: np.ndarray | None = None, global_rot: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Numpy door to HandLayer with the shipped asset.

    angles: (21, 3) or (B, 21, 3); shape: (S,) or (B, S); global_rot: (3, 3) or (B, 3, 3).
    Returns (verts (…, V, 3), joints (…, 21, 3)) float32 mm, batched like `angles`.
    """
    angles = np.asarray(angles, dtype=np.float64)
    single = angles.ndim == 2
    a = torch.as_tensor(angles.reshape(-1, *angles.shape[-2:]))
    B = a.shape[0]

    def batched(x: np.ndarray | None, item_ndim: int) -> torch.Tensor | None:
        if x is None:
            return None
        t = torch.as_tensor(np.asarray(x, dtype=np.float64))
        return t.expand(B, *t.shape[-item_ndim:]) if t.ndim == item_ndim else t

    with torch.no_grad():
        out = _default_layer()(a, batched(shape, 1), batched(global_rot, 2))
    verts = out.vertices.numpy().astype(np.float32)
    joints = out.joints.numpy().astype(np.float32)
    return (verts[0], joints[0]) if single else (verts, joints)
