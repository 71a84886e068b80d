"""Rotation primitives shared by the kinematics and the articulation (torch and numpy twins)."""

from __future__ import annotations

import numpy as np
import torch


def axis_angle_to_rotmat(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotation about unit axes (Rodrigues' formula; smooth at angle 0).

    axis: (..., 3) unit vectors; angle: (...) radians. Returns (..., 3, 3).
    """
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*x.shape, 3, 3)
    s = torch.sin(angle)[..., None, None]
    c = torch.cos(angle)[..., None, None]
    eye = torch.eye(3, dtype=K.dtype, device=K.device)
    return eye + s * K + (1.0 - c) * (K @ K)


def batch_rodrigues(rot_vecs: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Axis-angle vectors -> rotation matrices.

    rot_vecs: (..., 3), direction = axis, norm = angle (radians). Returns (..., 3, 3).
    The eps keeps the zero rotation differentiable (as in smplx).
    """
    angle = torch.sqrt((rot_vecs * rot_vecs).sum(-1) + eps)  # (...)
    return axis_angle_to_rotmat(rot_vecs / angle[..., None], angle)


def axis_angle_to_rotmat_np(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Numpy twin of axis_angle_to_rotmat. axis: (..., 3) unit; angle: (...). Returns (..., 3, 3)."""
    axis = np.asarray(axis, dtype=np.float64)
    angle = np.asarray(angle, dtype=np.float64)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    K = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*x.shape, 3, 3)
    s = np.sin(angle)[..., None, None]
    c = np.cos(angle)[..., None, None]
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)
