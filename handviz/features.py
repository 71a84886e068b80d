"""Model inputs made from a MediaPipe detection, shared by training data and the live path.

Keeping one definition here is what makes train and test inputs match: the synthetic engine
and the cascade both call these functions.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Root-relative joints are divided by this (mm) before the networks see them.
JOINT_SCALE_MM = 100.0
#: Side of the square hand crop fed to the image encoder (pixels).
CROP_SIZE = 64
#: Crop side = this x the keypoints' bounding-box side.
CROP_PAD = 1.5
#: Length of the keypoint condition vector (see keypoint_condition).
COND_DIM = 21 * 2 + 21 + 21 * 3
#: ...plus one input: the expected error of MediaPipe's 3D (stage 1 trained with simulated
#: observations, handviz.train.observations).
OBSERVATION_COND_DIM = COND_DIM + 1
#: observation_error_mm is divided by this before the net sees it.
OBSERVATION_ERROR_SCALE_MM = 10.0


def normalize_keypoints(kp2d: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel keypoints -> hand-size and position invariant 2D shape.

    kp2d: (B, 21, 2) px; K: (B, 3, 3). Returns (norm (B, 21, 2), scale (B,)) where the rays
    (u - c) / f are centred on the wrist and divided by their RMS spread about the centroid.
    """
    kp2d = np.asarray(kp2d, dtype=np.float32)
    K = np.asarray(K, dtype=np.float32)
    f = K[:, [0, 1], [0, 1]][:, None, :]
    c = K[:, :2, 2][:, None, :]
    rays = (kp2d - c) / f
    n = rays.shape[1]  # means as sum / n: np.mean's values, without its wrapper's cost
    centred = rays - rays.sum(axis=1, keepdims=True) / n
    scale = np.sqrt((centred**2).sum(-1).sum(-1) / n) + 1e-8
    norm = (rays - rays[:, :1]) / scale[:, None, None]
    return norm.astype(np.float32), scale.astype(np.float32)


def keypoint_condition(
    kp2d: np.ndarray, K: np.ndarray, kp_z: np.ndarray | None = None, world: np.ndarray | None = None,
    observation_error_mm: np.ndarray | None = None,
) -> np.ndarray:
    """The stage-1 condition vector (B, COND_DIM) from MediaPipe's outputs.

    kp2d: (B, 21, 2) px; K: (B, 3, 3); kp_z: (B, 21) MediaPipe relative depth in the same pixel
    units as x (or None -> zeros); world: (B, 21, 3) mm MediaPipe world landmarks (or None -> zeros).
    observation_error_mm: (B,) the expected RMS error of world/kp_z; given, the vector is
    (B, OBSERVATION_COND_DIM), for a stage 1 trained with simulated observations.
    """
    norm, scale = normalize_keypoints(kp2d, K)
    B = norm.shape[0]
    if kp_z is None or not np.isfinite(kp_z).all():
        z = np.zeros((B, 21), np.float32)
    else:
        fx = np.asarray(K, np.float32)[:, 0, 0]
        z = np.asarray(kp_z, np.float32) / fx[:, None]
        z = (z - z[:, :1]) / scale[:, None]
    if world is None or not np.isfinite(world).all():
        w = np.zeros((B, 21, 3), np.float32)
    else:
        w = np.asarray(world, np.float32)
        w = (w - w[:, :1]) / JOINT_SCALE_MM
    parts = [norm.reshape(B, -1), z, w.reshape(B, -1)]
    if observation_error_mm is not None:
        parts.append(np.asarray(observation_error_mm, np.float32).reshape(B, 1) / OBSERVATION_ERROR_SCALE_MM)
    return np.concatenate(parts, axis=1).astype(np.float32)


def mirror_keypoints(kp2d: np.ndarray, width: int) -> np.ndarray:
    """Mirror pixel keypoints about the image's vertical centre line (left hand -> right hand)."""
    out = np.array(kp2d, dtype=np.float32, copy=True)
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def crop_box(kp2d: np.ndarray, pad: float = CROP_PAD) -> tuple[float, float, float]:
    """Square box (centre u, centre v, side) around one hand's (21, 2) keypoints."""
    lo, hi = kp2d.min(axis=0), kp2d.max(axis=0)
    centre = (lo + hi) / 2
    side = float(max(hi - lo) * pad) + 8.0
    return float(centre[0]), float(centre[1]), side


def crop_hand(image: np.ndarray, kp2d: np.ndarray, size: int = CROP_SIZE, pad: float = CROP_PAD) -> np.ndarray:
    """(size, size, 3) uint8 crop of the hand, border-replicated where it leaves the image.

    image: (H, W, 3) uint8 RGB; kp2d: (21, 2) px.
    """
    cu, cv, side = crop_box(kp2d, pad)
    s = size / side
    M = np.array([[s, 0, size / 2 - s * cu], [0, s, size / 2 - s * cv]], dtype=np.float32)
    return cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def solve_root_translation(joints_rel: np.ndarray, kp2d: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Translation t so that joints_rel + t projects onto kp2d (linear least squares, DLT-style).

    joints_rel: (21, 3) mm root-relative; kp2d: (21, 2) px; K: (3, 3). Returns t: (3,) mm.
    Each joint gives two equations linear in t: (u - cx)/fx * (Z + tz) = X + tx, same for v.
    """
    X = np.asarray(joints_rel, np.float64)
    x = (kp2d[:, 0] - K[0, 2]) / K[0, 0]
    y = (kp2d[:, 1] - K[1, 2]) / K[1, 1]
    n = X.shape[0]
    # The normal equations solved for tz first (their Schur complement), then tx and ty: the
    # least-squares answer at half lstsq's cost; lstsq where the rays do not spread.
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mx, my = x64.sum() / n, y64.sum() / n
    dx, dy = x64 - mx, y64 - my
    spread = dx @ dx + dy @ dy
    if spread > 1e-12:
        bx, by = x64 * X[:, 2] - X[:, 0], y64 * X[:, 2] - X[:, 1]
        tz = -(dx @ bx + dy @ by) / spread
        return np.array([bx.sum() / n + mx * tz, by.sum() / n + my * tz, tz], np.float32)
    A = np.zeros((2 * n, 3))
    b = np.zeros(2 * n)
    A[:n, 0] = 1.0
    A[:n, 2] = -x
    b[:n] = x * X[:, 2] - X[:, 0]
    A[n:, 1] = 1.0
    A[n:, 2] = -y
    b[n:] = y * X[:, 2] - X[:, 1]
    t, *_ = np.linalg.lstsq(A, b, rcond=None)
    return t.astype(np.float32)
