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


def test_frames_are_scaled_to_the_widget_off_the_gui_thread_with_their_aspect():
    from handviz.app.video_view import fit_image

    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 320:] = 200  # right half bright: a scaled frame keeps it on the right
    small = fit_image(frame, (417, 604))
    assert small.shape == (313, 417, 3) and small[:, 220:].min() == 200 and small[:, :200].max() == 0
    assert fit_image(frame, (1280, 480)).shape == (480, 640, 3)  # height-bound: already fits
    assert fit_image(frame, (1280, 960)).shape == (960, 1280, 3)
    assert fit_image(frame, None) is frame


def test_a_frame_shrunk_below_half_averages_its_pixels_instead_of_skipping_them():
    """`scale_to` is bilinear down to half size (cheap) and area-averaging below (no aliasing)."""
    from handviz.io.video import scale_to

    stripes = np.zeros((480, 640, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: any sampling that skips pixels shows them
    third = scale_to(stripes, (213, 160))
    assert 60 < third.min() and third.max() < 200  # bilinear here: 1 to 253
    grey = scale_to(np.full((480, 640, 3), 90, np.uint8), (417, 313))
    assert grey.shape == (313, 417, 3) and np.all(grey == 90)


def test_the_overlay_painted_into_the_scaled_frame_lies_where_the_full_size_one_does():
    """prepare() scales the frame first and paints the mesh into the small image (with K scaled
    alike): its coloured pixels must be those of the full-size painting, scaled."""
    from handviz.app.video_view import fit_image, paint_mesh_overlay
    from handviz.pipeline.intrinsics import rescale_intrinsics
    from handviz.types import HandEstimate

    asset = load_hand_asset()
    K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])
    verts = asset.vertices - asset.vertices.mean(axis=0) + [40.0, -20.0, 400.0]
    zeros = np.zeros((21, 3), np.float32)
    hand = HandEstimate("Right", 1.0, zeros[:, :2], zeros, zeros[None], zeros[:, 0], verts.astype(np.float32), zeros)
    frame = np.full((480, 640, 3), 30, np.uint8)
    full = fit_image(paint_mesh_overlay(frame, [hand], asset.faces, K), (417, 604))
    small = fit_image(frame, (417, 604))
    Ks = rescale_intrinsics(K, (640, 480), (small.shape[1], small.shape[0]))
    got = paint_mesh_overlay(small, [hand], asset.faces, Ks)
    assert got.shape == full.shape == (313, 417, 3)
    painted_full, painted_small = full.max(-1) > 60, got.max(-1) > 60
    iou = np.count_nonzero(painted_full & painted_small) / np.count_nonzero(painted_full | painted_small)
    assert np.count_nonzero(painted_small) > 2000 and iou > 0.93, iou
