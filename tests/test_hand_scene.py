"""The pyvista-only hand scene (handviz.scene): the same code draws the app's viewport and the soak.

Runs on an off-screen pyvista plotter; under xvfb-run it renders through the X server's GL.
"""

from __future__ import annotations

import numpy as np
import pytest

pv = pytest.importorskip("pyvista")

from handviz.hand.asset import load_hand_asset  # noqa: E402
from handviz.scene.hand_scene import BACKGROUND, HandScene  # noqa: E402
from handviz.types import HandEstimate  # noqa: E402


def hand_at(depth_mm: float, scale: float = 1.0, handedness: str = "Right") -> HandEstimate:
    asset = load_hand_asset()
    rest = (asset.vertices - asset.vertices.mean(axis=0)) * scale
    verts = (rest + [0.0, 0.0, depth_mm]).astype(np.float32)
    joints = ((asset.rest_joints - asset.vertices.mean(axis=0)) * scale + [0.0, 0.0, depth_mm]).astype(np.float32)
    hyps = joints[None] + np.random.default_rng(0).normal(0, 3, (8, 21, 3)).astype(np.float32)
    return HandEstimate(handedness, 0.9, np.zeros((21, 2), np.float32), joints, hyps,
                        np.full(21, 3.0, np.float32), verts, joints)


@pytest.fixture()
def scene():
    plotter = pv.Plotter(off_screen=True, window_size=[320, 240])
    s = HandScene(plotter, load_hand_asset().faces)
    yield s
    plotter.close()


def _depth_range(plotter: pv.Plotter, points: np.ndarray) -> tuple[float, float]:
    cam = plotter.camera
    direction = np.asarray(cam.direction, np.float64)
    depth = (np.asarray(points, np.float64) - np.asarray(cam.position)) @ direction
    return float(depth.min()), float(depth.max())


def test_clipping_range_follows_the_hand_at_every_depth_with_follow_off(scene):
    """Defect 1: with Follow hand off, a hand zooming from full size to a third and back was cut
    by the clipping planes set once. Every update must keep every vertex between near and far."""
    assert not scene.follow
    for depth in [450, 600, 900, 1350, 900, 450, 300, 1350]:
        hand = hand_at(depth)
        assert scene.show_hands([hand]) == 1
        near, far = scene.plotter.camera.clipping_range
        lo, hi = _depth_range(scene.plotter, hand.vertices)
        assert near <= lo and far >= hi, (depth, near, far, lo, hi)


def _hand_pixels(plotter: pv.Plotter) -> int:
    """Pixels off the background and coloured (the white status line is neither)."""
    plotter.render()
    image = plotter.screenshot(return_img=True)[..., :3].astype(int)
    background = np.array(pv.Color(BACKGROUND).int_rgb)
    coloured = image.max(axis=-1) - image.min(axis=-1) > 25
    return int(np.count_nonzero((np.abs(image - background).sum(axis=-1) > 30) & coloured))


def test_rendered_mesh_stays_whole_when_it_moves_away(scene):
    """The far hand covers about a ninth of the near hand's pixels (a third of its size), not a sliver."""
    scene.set_cloud_visible(False)
    scene.set_skeleton_visible(False)
    scene.show_hands([hand_at(450)])
    near_px = _hand_pixels(scene.plotter)
    scene.show_hands([hand_at(1350)])
    far_px = _hand_pixels(scene.plotter)
    scene.show_hands([hand_at(450)])
    back_px = _hand_pixels(scene.plotter)
    assert near_px > 500
    assert 0.5 * near_px / 9 < far_px < 2.0 * near_px / 9, (near_px, far_px)
    assert abs(back_px - near_px) < 0.1 * near_px


def _on_screen(plotter: pv.Plotter, points: np.ndarray) -> np.ndarray:
    """(P, 3) world points -> (P, 2) display pixels of the plotter's current view."""
    renderer = plotter.renderer
    out = []
    for p in np.asarray(points, np.float64):
        renderer.SetWorldPoint(*p, 1.0)
        renderer.WorldToDisplay()
        out.append(renderer.GetDisplayPoint()[:2])
    return np.asarray(out)


def test_default_view_shows_the_clouds_depth(scene):
    """Every hypothesis lies on its keypoint's ray, so from the camera's own position a joint's
    hypotheses are one dot and the doubt cannot be seen. The default view turns about the hand:
    each joint's hypotheses, spread +-20 mm in depth only, must spread across the screen by at
    least a third of what a view from the side would show."""
    hand = hand_at(450.0)
    depth = np.linspace(-20.0, 20.0, 8)[:, None, None]
    rays = hand.joints_3d / np.linalg.norm(hand.joints_3d, axis=1, keepdims=True)
    hand.joint_hypotheses = (hand.joints_3d[None] + depth * rays[None]).astype(np.float32)
    scene.show_hands([hand])
    scene.reset_view()
    cam = scene.plotter.camera
    focal_px = scene.plotter.window_size[1] / 2 / np.tan(np.radians(cam.view_angle / 2))
    side_view_px = 40.0 * focal_px / 450.0
    spans = [np.ptp(_on_screen(scene.plotter, hand.joint_hypotheses[:, j]), axis=0).max() for j in range(21)]
    assert np.median(spans) > side_view_px / 3, (np.median(spans), side_view_px)


def test_a_hand_that_leaves_the_view_brings_it_back_and_a_small_move_does_not(scene):
    """Seen from beside the camera, a hand that moves across the image can leave the view. With
    Follow hand off the view stays put while the hand's joints stay in SIGHT_BOX, and looks at
    the hand again, from the same direction, once they leave it."""
    import dataclasses

    from handviz.scene.hand_scene import SIGHT_BOX

    def shifted(hand: HandEstimate, dx: float) -> HandEstimate:
        move = np.float32([dx, 0.0, 0.0])
        return dataclasses.replace(hand, joints_3d=hand.joints_3d + move, joint_hypotheses=hand.joint_hypotheses + move,
                                   vertices=hand.vertices + move)

    def ndc_x(points: np.ndarray) -> np.ndarray:
        xy = _on_screen(scene.plotter, points)
        return 2.0 * xy[:, 0] / scene.plotter.window_size[0] - 1.0

    hand = hand_at(450.0, scale=0.5)
    scene.show_hands([hand])
    direction = np.asarray(scene.plotter.camera.direction)
    focus = np.asarray(scene.plotter.camera.focal_point)
    scene.show_hands([shifted(hand, 15.0)])
    np.testing.assert_allclose(scene.plotter.camera.focal_point, focus)  # a small move: the view stays
    far = shifted(hand, 250.0)
    scene.show_hands([far])
    x = ndc_x(far.joints_3d)
    assert SIGHT_BOX[0][0] <= x.min() and x.max() <= SIGHT_BOX[0][1], x
    np.testing.assert_allclose(scene.plotter.camera.direction, direction, atol=1e-9)  # from the same direction


def test_two_hands_fill_both_slots_and_hidden_when_gone(scene):
    right, left = hand_at(450), hand_at(500, handedness="Left")
    assert scene.show_hands([right, left]) == 2
    assert scene.actors("Left")["mesh"].GetVisibility() and scene.actors("Right")["mesh"].GetVisibility()
    assert scene.status_text == "2 hand(s)"
    assert scene.show_hands([]) == 0
    assert not scene.actors("Left")["mesh"].GetVisibility()
    assert scene.status_text == "no hand"


def test_distance_cue_draws_the_wrists_ray_and_names_the_interval(scene):
    """distance_mm (where the hand may be) is its own cue: a segment on the wrist's ray from the
    near to the far end, and the interval in the status line; not part of the cloud's colours."""
    import dataclasses

    hand = dataclasses.replace(hand_at(400.0), distance_mm=(360.0, 470.0))
    scene.show_hands([hand])
    points = np.asarray(scene._slots["Right"].distance.points, np.float64)
    wrist = np.asarray(hand.joints_3d[0], np.float64)
    assert np.allclose(np.linalg.norm(points, axis=1), [360.0, 470.0], atol=1e-3)
    assert np.allclose(points / np.linalg.norm(points, axis=1, keepdims=True), wrist / np.linalg.norm(wrist), atol=1e-5)
    assert scene.actors("Right")["distance"].GetVisibility()
    assert scene.status_text.endswith("right 36-47 cm away")
    scene.show_hands([dataclasses.replace(hand, distance_mm=None)])
    assert not scene.actors("Right")["distance"].GetVisibility() and "cm away" not in scene.status_text


def test_status_line_is_drawn_without_matplotlib(scene, monkeypatch):
    """VTK sends a string with a '|' to matplotlib's MathText (Python, on the GUI thread: a third
    of its time at 1920x1080); the scene's status line has one, and FreeType must draw it."""
    import dataclasses

    mathtext = pytest.importorskip("matplotlib.mathtext")
    parsed: list[str] = []
    original = mathtext.MathTextParser.parse
    monkeypatch.setattr(mathtext.MathTextParser, "parse",
                        lambda self, s, *a, **k: parsed.append(s) or original(self, s, *a, **k))
    scene.show_hands([dataclasses.replace(hand_at(400.0), distance_mm=(360.0, 470.0))])
    assert " | " in scene.status_text
    assert _hand_pixels(scene.plotter) > 500  # rendered (the status line with it)
    assert parsed == []


def test_cloud_points_are_round_dots(scene):
    """The cloud is drawn as flat round dots (cheaper than shaded sphere imposters on software GL):
    an isolated hypothesis is one colour to its rim and leaves the corners of its square empty."""
    import dataclasses

    pytest.importorskip("pyvista", minversion="0.48")
    scene.set_skeleton_visible(False)
    hand = hand_at(450.0)
    scene.show_hands([dataclasses.replace(hand, joint_hypotheses=np.stack([hand.joints_3d] * 2))])
    scene.actors("Right")["mesh"].SetVisibility(False)
    cloud = scene.actors("Right")["cloud"]
    cloud.prop.point_size = 15
    cloud.prop.opacity = 1.0
    assert cloud.GetVisibility()
    renderer = scene.plotter.renderer
    wrist = np.asarray(hand.joints_3d[0], np.float64)
    renderer.SetWorldPoint(*wrist, 1.0)
    renderer.WorldToDisplay()
    x, y, _ = renderer.GetDisplayPoint()
    scene.plotter.render()
    image = scene.plotter.screenshot(return_img=True)[..., :3].astype(int)
    row, col = image.shape[0] - 1 - round(y), round(x)  # display y runs up, image rows down
    background = np.array(pv.Color(BACKGROUND).int_rgb)

    def lit(r: int, c: int) -> bool:
        return bool(np.abs(image[r, c] - background).sum() > 30)

    assert lit(row, col) and lit(row, col + 5) and lit(row + 5, col)  # the dot, radius 7.5 px
    assert np.abs(image[row, col] - image[row + 5, col]).sum() < 15  # flat, not a shaded sphere
    assert not lit(row + 6, col + 6) and not lit(row - 6, col - 6)  # a square's corners, 8.5 px out
