"""Anatomical joint axes, joint limits, and angles -> local rotations.

Every joint j has an orthonormal frame F_j = [flex | abd | twist] (columns, in the rest hand
frame): twist is the direction of the bone j owns (j -> its child), flex is the flexion axis
(the MakeHuman rig's bone-roll axis stored in the asset, made perpendicular to the bone) and
abd = twist x flex. Angles (flex, abd, twist) in radians give the local rotation

    R_j = Rot(abd, a) @ Rot(flex, f) @ Rot(twist, t)

(abduct in the parent's frame, then flex about the abducted hinge, then roll about the bone).
Signs: positive flexion curls a finger toward the palm (-z side of the rest hand, for the thumb
across the palm toward the little finger); positive abduction swings a finger toward the thumb
side (radial; for the thumb, away from the palm); positive twist is right-handed about the bone,
pointing to the tip. Zero angles = the rest template (flat fingers, relaxed thumb).
The wrist row (joint 0) is limited to zero: wrist orientation is `global_rot`'s job. Tip rows
(4, 8, 12, 16, 20) own no bone, have no effect, and are limited to zero.
"""

from __future__ import annotations

import numpy as np
import torch

from handviz.hand.rotations import axis_angle_to_rotmat, axis_angle_to_rotmat_np
from handviz.types import NUM_JOINTS, HandJoint

DOF_NAMES: tuple[str, str, str] = ("flex", "abd", "twist")

#: The joint whose position fixes each joint's bone direction (its child; the wrist looks at the
#: middle MCP). Tips have none and reuse their parent's frame.
BONE_CHILD: tuple[int | None, ...] = (
    9, 2, 3, 4, None, 6, 7, 8, None, 10, 11, 12, None, 14, 15, 16, None, 18, 19, 20, None
)

_J = HandJoint
# (flex, abd, twist) ranges in degrees about the rest template; unlisted joints stay at zero.
_FINGER_MCP_TWIST = (-10.0, 10.0)
_HINGE = (0.0, 0.0)
_LIMITS_DEG: dict[HandJoint, tuple[tuple[float, float], ...]] = {
    # Thumb: the CMC saddle has real ranges on all three axes (opposition needs twist).
    _J.THUMB_CMC: ((-20.0, 45.0), (-25.0, 30.0), (-15.0, 35.0)),
    _J.THUMB_MCP: ((-10.0, 60.0), (-10.0, 10.0), (-10.0, 15.0)),
    _J.THUMB_IP: ((-15.0, 80.0), _HINGE, _HINGE),
    _J.INDEX_MCP: ((-25.0, 90.0), (-20.0, 20.0), _FINGER_MCP_TWIST),
    _J.INDEX_PIP: ((0.0, 110.0), _HINGE, _HINGE),
    _J.INDEX_DIP: ((0.0, 80.0), _HINGE, _HINGE),
    _J.MIDDLE_MCP: ((-25.0, 90.0), (-15.0, 15.0), _FINGER_MCP_TWIST),
    _J.MIDDLE_PIP: ((0.0, 110.0), _HINGE, _HINGE),
    _J.MIDDLE_DIP: ((0.0, 80.0), _HINGE, _HINGE),
    _J.RING_MCP: ((-25.0, 90.0), (-20.0, 20.0), _FINGER_MCP_TWIST),
    _J.RING_PIP: ((0.0, 110.0), _HINGE, _HINGE),
    _J.RING_DIP: ((0.0, 80.0), _HINGE, _HINGE),
    _J.PINKY_MCP: ((-25.0, 90.0), (-30.0, 20.0), _FINGER_MCP_TWIST),
    _J.PINKY_PIP: ((0.0, 110.0), _HINGE, _HINGE),
    _J.PINKY_DIP: ((0.0, 80.0), _HINGE, _HINGE),
}


def _limits_table() -> np.ndarray:
    table = np.zeros((NUM_JOINTS, 3, 2))
    for joint, ranges in _LIMITS_DEG.items():
        table[int(joint)] = np.deg2rad(np.asarray(ranges))
    table.setflags(write=False)
    return table


#: (21, 3, 2) radians: [joint, (flex, abd, twist), (min, max)].
JOINT_LIMITS: np.ndarray = _limits_table()


def joint_frames(rest_joints: np.ndarray, flex_hints: np.ndarray) -> np.ndarray:
    """Anatomical frames from the rest skeleton.

    rest_joints: (21, 3) mm; flex_hints: (21, 3) approximate flexion axes (the asset's
    joint_flex_axes). Returns (21, 3, 3) float64 rotation matrices with columns (flex, abd, twist).
    """
    rest_joints = np.asarray(rest_joints, dtype=np.float64)
    flex_hints = np.asarray(flex_hints, dtype=np.float64)
    frames = np.zeros((NUM_JOINTS, 3, 3))
    for j, child in enumerate(BONE_CHILD):
        if child is None:
            frames[j] = frames[j - 1]  # a tip: its parent comes just before it
            continue
        twist = rest_joints[child] - rest_joints[j]
        twist /= np.linalg.norm(twist)
        flex = flex_hints[j] - flex_hints[j].dot(twist) * twist
        flex /= np.linalg.norm(flex)
        frames[j] = np.stack([flex, np.cross(twist, flex), twist], axis=1)
    return frames


def angles_to_rotmats(angles: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """angles: (..., 21, 3) (flex, abd, twist) radians; frames: (21, 3, 3) from joint_frames.
    Returns local rotations (..., 21, 3, 3) for forward_kinematics. Differentiable."""
    frames = frames.to(angles)
    flex, abd, twist = frames.unbind(-1)  # each (21, 3)
    shape = angles.shape[:-1]
    R_abd = axis_angle_to_rotmat(abd.expand(*shape, 3), angles[..., 1])
    R_flex = axis_angle_to_rotmat(flex.expand(*shape, 3), angles[..., 0])
    R_twist = axis_angle_to_rotmat(twist.expand(*shape, 3), angles[..., 2])
    return R_abd @ R_flex @ R_twist


def angles_to_rotmats_np(angles: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Numpy twin of angles_to_rotmats: (..., 21, 3), (21, 3, 3) -> (..., 21, 3, 3) float64."""
    angles = np.asarray(angles, dtype=np.float64)
    shape = angles.shape[:-1]
    axes = [np.broadcast_to(frames[..., k], (*shape, 3)) for k in range(3)]
    R_abd = axis_angle_to_rotmat_np(axes[1], angles[..., 1])
    R_flex = axis_angle_to_rotmat_np(axes[0], angles[..., 0])
    R_twist = axis_angle_to_rotmat_np(axes[2], angles[..., 2])
    return R_abd @ R_flex @ R_twist


def clamp_to_limits(angles: np.ndarray | torch.Tensor, limits: np.ndarray = JOINT_LIMITS):
    """Clip angles (..., 21, 3) into limits (21, 3, 2); returns the same array type."""
    if isinstance(angles, torch.Tensor):
        lo = torch.tensor(limits[..., 0], dtype=angles.dtype, device=angles.device)
        hi = torch.tensor(limits[..., 1], dtype=angles.dtype, device=angles.device)
        return torch.clamp(angles, lo, hi)
    return np.clip(angles, limits[..., 0], limits[..., 1])


def within_limits(angles: np.ndarray, limits: np.ndarray = JOINT_LIMITS, tol: float = 1e-6) -> np.ndarray:
    """angles: (..., 21, 3) -> (...) bool, True where every angle is inside its range (+- tol)."""
    angles = np.asarray(angles)
    ok = (angles >= limits[..., 0] - tol) & (angles <= limits[..., 1] + tol)
    return ok.all(axis=(-2, -1))
