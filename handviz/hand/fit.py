"""Fit the open hand model to 3D joints: another dataset's labels -> our mesh, for stage-2 training.

Public datasets label hands with MANO, which we may not ship. Their 21 joints are free to use,
so we pose *our* hand to match them and train the mesh stage on the fitted mesh instead.
The fit is batched Adam over:
- anatomical angles, kept inside JOINT_LIMITS by a sigmoid map (no clamping, so gradients flow),
- shape coefficients, projected back into [-1, 1] after each step,
- the wrist rotation as a 6D vector (continuous, unlike axis-angle or quaternions),
- a translation.
The rotation starts from Kabsch on the rigid palm (wrist and the four finger MCPs) and the fingers
half-curled, which puts the fit in the right basin; only joints are evaluated while iterating
(LBS once at the end).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from handviz.hand.articulation import JOINT_LIMITS, angles_to_rotmats
from handviz.hand.kinematics import HandLayer, forward_kinematics
from handviz.hand.pose_prior import GESTURES

#: Wrist and the index/middle/ring/pinky MCPs: rigid in our skeleton whatever the finger angles.
PALM_JOINTS: tuple[int, ...] = (0, 5, 9, 13, 17)


@dataclass
class FitConfig:
    iterations: int = 150
    lr: float = 0.1
    lr_translation_mm: float = 2.0
    #: Per-sample loss = mean squared joint error (mm^2) + these weights times mean squares.
    angle_reg: float = 2.0  # on angles (rad), breaks ties for weakly observed DOFs
    shape_reg: float = 1.0  # on shape coefficients
    #: One shape for every row (the frames of one person's hand, for a rig with fixed bones).
    shared_shape: bool = False


@dataclass
class FitResult:
    """Numpy float32 arrays, camera frame, mm.

    verts (B, V, 3); joints (B, 21, 3); error_mm (B,) mean joint distance to the targets;
    angles (B, 21, 3) within JOINT_LIMITS; shape (B, S) in [-1, 1]; global_rot (B, 3, 3);
    translation (B, 3): the fitted wrist position.
    """

    verts: np.ndarray
    joints: np.ndarray
    error_mm: np.ndarray
    angles: np.ndarray
    shape: np.ndarray
    global_rot: np.ndarray
    translation: np.ndarray


def rot6d_to_rotmat(r6: torch.Tensor) -> torch.Tensor:
    """r6: (..., 6), two 3-vectors -> (..., 3, 3) rotations whose first two columns are the
    Gram-Schmidt orthonormalised vectors (Zhou et al. 2019)."""
    a1, a2 = r6[..., :3], r6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def kabsch_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotations R (B, 3, 3) minimising |R (source - mean) - (target - mean)| per sample.

    source: (P, 3) or (B, P, 3); target: (B, P, 3). Proper rotations (det +1).
    """
    target = np.asarray(target, np.float64)
    source = np.broadcast_to(np.asarray(source, np.float64), target.shape)
    s = source - source.mean(axis=-2, keepdims=True)
    t = target - target.mean(axis=-2, keepdims=True)
    U, _, Vt = np.linalg.svd(np.swapaxes(s, -1, -2) @ t)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    D = np.zeros_like(U)
    D[:, 0, 0] = D[:, 1, 1] = 1.0
    D[:, 2, 2] = np.where(d == 0, 1.0, d)
    return np.swapaxes(Vt, -1, -2) @ D @ np.swapaxes(U, -1, -2)


class _AngleMap:
    """Unconstrained parameters <-> angles inside JOINT_LIMITS (sigmoid per free DOF; fixed DOFs
    stay at their single allowed value)."""

    def __init__(self, dtype: torch.dtype, device: torch.device) -> None:
        lo = torch.tensor(JOINT_LIMITS[..., 0], dtype=dtype, device=device)
        hi = torch.tensor(JOINT_LIMITS[..., 1], dtype=dtype, device=device)
        self.lo, self.span = lo, hi - lo
        self.free = self.span > 0

    def angles(self, raw: torch.Tensor) -> torch.Tensor:
        """raw: (B, 21, 3) -> angles (B, 21, 3)."""
        return torch.where(self.free, self.lo + self.span * torch.sigmoid(raw), self.lo)

    def raw_for(self, angles: torch.Tensor) -> torch.Tensor:
        """Inverse map; angles on or past a limit come back 3% inside it (sigmoid is flat at 0 and 1)."""
        frac = ((angles - self.lo) / torch.where(self.free, self.span, torch.ones_like(self.span))).clamp(0.03, 0.97)
        return torch.where(self.free, torch.logit(frac), torch.zeros_like(frac))


def _joints(layer: HandLayer, angles: torch.Tensor, shape: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Posed joints (B, 21, 3) about the wrist, without skinning the mesh (cheap inner loop)."""
    rotmats = angles_to_rotmats(angles, layer.frames)
    rotmats = torch.cat([rot[:, None] @ rotmats[:, :1], rotmats[:, 1:]], dim=1)
    rest = layer.rest_joints + torch.einsum("bs,sjc->bjc", shape, layer.shape_basis_joints)
    return forward_kinematics(rotmats, rest, layer.parents)[0]


@contextmanager
def _single_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """The fit's tensors are tiny ((B, 21, 4, 4)): on CPU, thread hand-offs cost more than they
    save, and on a busy machine they cost 10-20x. One thread while fitting, then as before."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def initial_wrist_pose(rest_joints: np.ndarray, target_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (B, 3, 3) and translation (B, 3) carrying the rest palm onto each target palm.

    rest_joints: (21, 3) mm, wrist at the origin; target_joints: (B, 21, 3) mm.
    """
    palm = list(PALM_JOINTS)
    rot = kabsch_rotation(rest_joints[palm], target_joints[:, palm])
    trans = target_joints[:, palm].mean(axis=1) - rot @ rest_joints[palm].mean(axis=0)
    return rot, trans


def fit_hand_to_joints(
    target_joints: np.ndarray,
    layer: HandLayer | None = None,
    cfg: FitConfig | None = None,
    device: str | torch.device = "cpu",
) -> FitResult:
    """Pose, shape and place our hand so its 21 joints match target_joints.

    target_joints: (B, 21, 3) mm, camera frame, MediaPipe order (right hands). Rows must be
    finite. Returns a FitResult; error_mm says how well each row could be matched.
    """
    cfg = cfg or FitConfig()
    device = torch.device(device)
    target_np = np.asarray(target_joints, np.float64)
    if target_np.ndim != 3 or target_np.shape[1:] != (21, 3):
        raise ValueError(f"target_joints must be (B, 21, 3) mm; got {target_np.shape}")
    if not np.isfinite(target_np).all():
        raise ValueError("target_joints holds NaN or inf; drop those rows before fitting")
    layer = (layer or HandLayer()).to(device)
    dtype, B = layer.rest_joints.dtype, target_np.shape[0]

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype, device=device)

    rot0, trans0 = initial_wrist_pose(layer.rest_joints.detach().cpu().numpy().astype(np.float64), target_np)
    amap = _AngleMap(dtype, device)
    # Start half-curled: from flat fingers, a fist's fingers fall into a hyperextended minimum.
    raw = amap.raw_for(tensor(GESTURES["relaxed"]).expand(B, 21, 3)).clone().requires_grad_(True)
    shape = torch.zeros(1 if cfg.shared_shape else B, layer.num_shapes, dtype=dtype, device=device,
                        requires_grad=True)
    r6 = tensor(rot0[:, :, :2].transpose(0, 2, 1).reshape(B, 6)).requires_grad_(True)
    trans = tensor(trans0).requires_grad_(True)
    target = tensor(target_np)
    opt = torch.optim.Adam([{"params": [raw, shape, r6], "lr": cfg.lr},
                            {"params": [trans], "lr": cfg.lr_translation_mm}])
    with _single_thread_on_cpu(device):
        for _ in range(cfg.iterations):
            opt.zero_grad(set_to_none=True)
            angles, rows_shape = amap.angles(raw), shape.expand(B, -1)
            joints = _joints(layer, angles, rows_shape, rot6d_to_rotmat(r6)) + trans[:, None]
            per_sample = ((joints - target) ** 2).sum(-1).mean(-1)
            per_sample = (per_sample + cfg.angle_reg * (angles**2).mean((1, 2))
                          + cfg.shape_reg * (rows_shape**2).mean(1))
            per_sample.sum().backward()  # rows are independent: each gets its own gradient
            opt.step()
            with torch.no_grad():
                shape.clamp_(-1.0, 1.0)
        with torch.no_grad():
            angles, rot, shape = amap.angles(raw), rot6d_to_rotmat(r6), shape.expand(B, -1)
            out = layer(angles, shape, rot)
            verts, joints = out.vertices + trans[:, None], out.joints + trans[:, None]
            error = (joints - target).norm(dim=-1).mean(-1)

    def np32(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float32)

    return FitResult(verts=np32(verts), joints=np32(joints), error_mm=np32(error), angles=np32(angles),
                     shape=np32(shape), global_rot=np32(rot), translation=np32(trans))
