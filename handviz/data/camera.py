"""Pinhole camera helpers (OpenCV convention: x right, y down, z forward)."""

from __future__ import annotations

import numpy as np


def intrinsics_from_fov(width: int, height: int, fov_y_deg: float) -> np.ndarray:
    """(3, 3) K with square pixels and the principal point at the image centre."""
    f = 0.5 * height / np.tan(np.deg2rad(fov_y_deg) / 2)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float32)

