"""The mesh silhouette painted over the video (app/video_view.py), against a plain reference."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
cv2 = pytest.importorskip("cv2")

from handviz.app.video_view import _silhouette_mask  # noqa: E402
from handviz.geometry import project  # noqa: E402
from handviz.hand.asset import load_hand_asset  # noqa: E402


def reference_mask(uv: np.ndarray, faces: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Every camera-facing triangle filled on its own, with sub-pixel corners (slow, plainly right)."""
    a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
    front = faces[(b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]) > 0]
    mask = np.zeros(shape, np.uint8)
    for tri in np.round(uv[front] * 16).astype(np.int32):
        cv2.fillConvexPoly(mask, tri, 255, lineType=cv2.LINE_8, shift=4)
    return mask


@pytest.mark.parametrize("depth_mm", [350.0, 900.0])
def test_silhouette_matches_filling_every_triangle(depth_mm):
    asset = load_hand_asset()
    verts = asset.vertices - asset.vertices.mean(axis=0) + [0.0, 0.0, depth_mm]
    K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])
    uv = project(verts, K, min_depth_mm=1.0)
    uv -= uv.min(axis=0) - 2
    shape = (int(uv[:, 1].max()) + 3, int(uv[:, 0].max()) + 3)
    got, want = _silhouette_mask(uv, asset.faces, shape) > 0, reference_mask(uv, asset.faces, shape) > 0
    iou = np.count_nonzero(got & want) / np.count_nonzero(got | want)
    assert iou > 0.97, iou  # the same silhouette, up to the edge pixels' rounding
