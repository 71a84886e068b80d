"""Area-weighted vertex normals in numpy: cheap enough to recompute for every frame."""

from __future__ import annotations

import numpy as np


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """verts: (V, 3), faces: (F, 3) -> (V, 3) unit normals (counter-clockwise faces point outward)."""
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    fn = np.cross(v1 - v0, v2 - v0)
    n = np.zeros_like(verts, dtype=np.float64)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    return n.astype(np.float32)
