"""The hands3d sanity set: loaders, detection matching, and the cascade-vs-MediaPipe report.

The images (InterHand2.6M, RHD) carry research licences and live only in ../shared; every test
that reads them skips when that folder is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from handviz.eval import hands3d as H
from handviz.eval.matching import match_detections
from handviz.types import BONES, Detection, HandEstimate, HandJoint

HANDS3D = Path(__file__).resolve().parents[2] / "shared" / "data" / "hands3d"
needs_data = pytest.mark.skipif(not HANDS3D.is_dir(), reason="needs ../shared/data/hands3d (not shipped)")

INTERHAND_IDS = {"image69148/Right", "image69148/Left", "image44669/Right", "image44669/Left",
                 "image29590/Left", "image2017/Right"}
RHD_IDS = {"00111/Left", "01111/Left", "11111/Right"}
MCPS = (HandJoint.INDEX_MCP, HandJoint.MIDDLE_MCP, HandJoint.RING_MCP, HandJoint.PINKY_MCP)


@pytest.fixture(scope="module")
def samples():
    return H.load_hands3d(HANDS3D)


def _image_size(sample) -> tuple[int, int]:
    h, w = sample.load_rgb().shape[:2]
    return w, h


@needs_data
def test_loaders_give_one_sample_per_valid_hand(samples):
    ih = [s for s in samples if s.dataset == "interhand"]
    rhd = [s for s in samples if s.dataset == "rhd"]
    assert {s.sample_id for s in ih} == INTERHAND_IDS  # 2017 is right-only, 29590 left-only
    assert {s.sample_id for s in rhd} == RHD_IDS
    for s in samples:
        assert s.joints_mm.shape == (21, 3) and s.K.shape == (3, 3)
        assert s.handedness == s.sample_id.split("/")[1]
        assert np.all((s.joints_mm[:, 2] > 200) & (s.joints_mm[:, 2] < 3000)), s.sample_id


@needs_data
def test_joints_are_hands_in_mediapipe_order(samples):
    """Palm bones are the long ones, phalanges short, neighbouring knuckles close: a wrong order breaks these."""
    for s in samples:
        j = s.joints_mm
        lengths = {(p, c): np.linalg.norm(j[c] - j[p]) for p, c in BONES}
        for (p, c), length in lengths.items():
            if p == HandJoint.WRIST and c != HandJoint.THUMB_CMC:
                assert 60 < length < 110, (s.sample_id, p, c, length)
            else:
                assert 12 < length < 55, (s.sample_id, p, c, length)
        gaps = [np.linalg.norm(j[a] - j[b]) for a, b in zip(MCPS, MCPS[1:])]
        assert all(10 < g < 35 for g in gaps), (s.sample_id, gaps)


@needs_data
def test_projections_land_inside_the_labelled_boxes(samples):
    """K and the camera transform agree with each dataset's own 2D labels."""
    ih_data = json.loads((HANDS3D / "interhand2.6m" / "test_interhand2.6m_data.json").read_text())
    ih_boxes = {Path(im["file_name"]).stem: a["bbox"] for im, a in zip(ih_data["images"], ih_data["annotations"])}
    rhd = json.loads((HANDS3D / "rhd" / "test_rhd.json").read_text())
    rhd_kp = {Path(im["file_name"]).stem: np.asarray(a["keypoints"]).reshape(21, 3)[:, :2]
              for im, a in zip(rhd["images"], rhd["annotations"])}
    for s in samples:
        uv = H.project(s.joints_mm, s.K)
        w, h = _image_size(s)
        assert np.all((uv >= 0) & (uv < [w, h])), s.sample_id
        stem = s.sample_id.split("/")[0]
        if s.dataset == "interhand":
            x, y, bw, bh = ih_boxes[stem]
            assert np.all((uv >= [x - 10, y - 10]) & (uv <= [x + bw + 10, y + bh + 10])), s.sample_id
        else:
            from handviz.data.joint_orders import to_mediapipe

            np.testing.assert_allclose(uv, to_mediapipe(rhd_kp[stem], "rhd"), atol=0.5)


def test_world_to_camera_follows_interhand():
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    out = H.world_to_camera(np.array([[1.0, 0.0, 10.0]]), campos=np.array([0.0, 0.0, 5.0]), camrot=rot)
    np.testing.assert_allclose(out, [[0.0, 1.0, 5.0]])
    np.testing.assert_allclose(H.project(np.array([0.0, 10.0, 100.0]), H.intrinsics((200, 100), (5, 6))), [5, 16])


def test_missing_folder_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="test_interhand2.6m_joint_3d.json"):
        H.load_interhand(tmp_path)
    with pytest.raises(FileNotFoundError, match="test_rhd.json"):
        H.load_rhd(tmp_path)


# ---------------------------------------------------------------- matching


def _hand_uv(offset: float) -> np.ndarray:
    grid = np.stack(np.meshgrid(np.arange(7.0), np.arange(3.0)), -1).reshape(21, 2)
    return grid * 10 + offset


def _det(uv: np.ndarray, hand: str, world: np.ndarray | None = None) -> Detection:
    w = np.zeros((21, 3), np.float32) if world is None else world.astype(np.float32)
    return Detection(keypoints_2d=uv.astype(np.float32), world_3d=w, handedness=hand, score=1.0)


def test_match_prefers_place_then_handedness():
    gt = [_hand_uv(0.0), _hand_uv(300.0)]
    # Right's detection labelled Left and vice versa: place wins, each hand keeps its own detection.
    dets = [_det(_hand_uv(302.0), "Right"), _det(_hand_uv(1.0), "Left")]
    assert match_detections(dets, gt, ["Right", "Left"]) == [1, 0]
    # Two detections on one hand: the one with the right label wins; the far hand stays unmatched.
    dets = [_det(_hand_uv(2.0), "Left"), _det(_hand_uv(4.0), "Right")]
    assert match_detections(dets, gt, ["Right", "Left"]) == [1, None]
    # A detection far from every labelled hand is never taken.
    assert match_detections([_det(_hand_uv(150.0), "Right")], gt, ["Right", "Left"]) == [None, None]
    assert match_detections([], gt, ["Right", "Left"]) == [None, None]


def test_match_uses_the_labelled_joints_only():
    """A label that leaves joints out (NaN) is matched on the rest; whatever MediaPipe put at the
    missing joints does not count, and a hand with no labelled joint is never matched."""
    gt = _hand_uv(0.0)
    gt[10:] = np.nan
    det_uv = _hand_uv(1.0)
    det_uv[10:] = 900.0  # far off where the label is silent
    assert match_detections([_det(det_uv, "Right")], [gt], ["Right"]) == [0]
    assert match_detections([_det(det_uv, "Right")], [np.full((21, 2), np.nan)], ["Right"]) == [None]


# ---------------------------------------------------------------- evaluation


class _PerfectDetector:
    """Detections at the projected truth, world = truth: every error must come out zero."""

    def __init__(self, samples) -> None:
        self.by_image: dict[bytes, list] = {}
        for s in samples:
            self.by_image.setdefault(s.load_rgb().tobytes(), []).append(s)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        group = self.by_image.get(np.ascontiguousarray(rgb).tobytes(), [])
        return [_det(H.project(s.joints_mm, s.K), s.handedness, s.joints_mm) for s in group]


class _EchoCascade:
    """Returns MediaPipe's world landmarks as its estimate; records how it was called."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def predict(self, detections, K, n_hypotheses=32, ddim_steps=1, seed=None, bone_prior=True):
        self.calls.append({"n": len(detections), "n_hypotheses": n_hypotheses, "seed": seed, "K": K})
        out = []
        for d in detections:
            w = np.asarray(d.world_3d, np.float32)
            out.append(HandEstimate(handedness=d.handedness, score=d.score, keypoints_2d=d.keypoints_2d,
                                    joints_3d=w, joint_hypotheses=np.repeat(w[None], n_hypotheses, 0),
                                    joint_spread=np.zeros(21, np.float32), vertices=np.zeros((5, 3), np.float32),
                                    mediapipe_world_3d=w))
        return out


@needs_data
def test_report_plumbing_with_perfect_detections(samples):
    report = H.evaluate_hands3d(None, HANDS3D, detectors=[_PerfectDetector(samples)])
    json.dumps(report, allow_nan=False)  # strict JSON
    overall = report["overall"]
    assert overall["num_hands"] == len(samples) == overall["num_detected"]
    assert overall["num_missed"] == overall["num_handedness_wrong"] == overall["num_fallback_detections"] == 0
    assert overall["mediapipe_pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)  # float32 world
    assert overall["keypoint_error_px"] == pytest.approx(0.0, abs=1e-3)
    assert overall["cascade_pa_mpjpe_mm"] is None and overall["ratio_cascade_to_mediapipe"] is None
    assert set(report["per_dataset"]) == {"interhand", "rhd"}


@needs_data
def test_mediapipe_world_landmarks_against_ground_truth():
    cascade = _EchoCascade()
    report = H.evaluate_hands3d(cascade, HANDS3D, n_hypotheses=4, seed=3)
    json.dumps(report, allow_nan=False)
    for name, summary in report["per_dataset"].items():
        assert summary["num_detected"] >= 1, name
        assert 5.0 < summary["mediapipe_pa_mpjpe_mm"] < 40.0, (name, summary)
        assert summary["num_detected"] + summary["num_missed"] == summary["num_hands"]
    overall = report["overall"]
    assert overall["num_hands"] == 9 and overall["num_detected"] >= 4
    # The echo cascade is MediaPipe, so the two must score the same.
    assert overall["ratio_cascade_to_mediapipe"] == pytest.approx(1.0)
    assert overall["cascade_best_of_n_pa_mpjpe_mm"] == pytest.approx(overall["mediapipe_pa_mpjpe_mm"])
    assert sum(c["n"] for c in cascade.calls) == overall["num_detected"]
    assert all(c["seed"] == 3 and c["n_hypotheses"] == 4 for c in cascade.calls)
    for row in report["per_sample"]:
        if row["detected"]:
            assert row["keypoint_error_px"] < 40.0, row  # matched to the right hand, not a neighbour


@needs_data
def test_overlay_picture(samples):
    img = H.draw_ground_truth(samples, tile=64)
    assert img.shape == (64, 64 * 7, 3) and img.dtype == np.uint8
    thumb = np.all(img == (255, 80, 80), axis=-1).reshape(64, 7, 64).sum(axis=(0, 2))
    assert np.all(thumb > 3), thumb  # every image has its thumb drawn


@needs_data
def test_untrained_cascade_runs_end_to_end(samples):
    """The shipped Cascade through the report: the interfaces fit and reruns agree."""
    from handviz.cascade import Cascade

    cascade = Cascade.from_weights(device="cpu")
    detector = _PerfectDetector(samples)
    first = H.evaluate_hands3d(cascade, HANDS3D, n_hypotheses=4, seed=1, detectors=[detector])
    again = H.evaluate_hands3d(cascade, HANDS3D, n_hypotheses=4, seed=1, detectors=[detector])
    assert first["per_sample"] == again["per_sample"]
    overall = first["overall"]
    assert overall["num_detected"] == len(samples)
    for key in ("cascade_pa_mpjpe_mm", "cascade_mpjpe_mm", "cascade_best_of_n_pa_mpjpe_mm", "cascade_root_error_mm"):
        assert overall[key] is not None and np.isfinite(overall[key]), key
