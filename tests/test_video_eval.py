"""`eval --real DIR --videos` on a tiny synthetic sequence, and its measures on hand-made ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from handviz.eval.video_eval import evaluate_videos, load_videos
from handviz.eval.video_measures import MEASURED_BONES, acceleration_error, bone_length_variation, pa_errors
from handviz.geometry import project
from handviz.hand.asset import load_hand_asset
from handviz.pipeline.hand_tracks import HandednessTracker
from handviz.types import Detection, HandEstimate

K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])


def hand_at(t: int) -> np.ndarray:
    """A hand (21, 3) mm moving right and turning slowly: the truth of frame t."""
    joints = load_hand_asset().rest_joints.astype(np.float64)
    joints -= joints[0]
    a = 0.05 * t
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    return joints @ rot.T + [5.0 * t - 40, 0.0, 450.0]


def test_a_rigid_moving_hand_keeps_its_bones_and_a_stretched_one_does_not():
    rigid = np.stack([hand_at(t) for t in range(10)])
    assert bone_length_variation(rigid) < 1e-9
    tip = rigid.copy()
    tip[::2, 8] += (tip[::2, 8] - tip[::2, 7]) * 0.2  # the index tip's bone 20 % longer every other frame
    assert bone_length_variation(tip) < 1e-9  # one bone of 19 varies: the median bone does not
    scaled = rigid * np.where(np.arange(10) % 2, 1.0, 1.1)[:, None, None]  # a whole hand's size: no change
    assert bone_length_variation(scaled) < 1e-9
    fingers = rigid.copy()
    for chain in ((5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20), (1, 2, 3, 4)):
        base = fingers[::2, chain[0]].copy()
        fingers[::2, list(chain)] = base[:, None] + (fingers[::2, list(chain)] - base[:, None]) * 1.1
    assert bone_length_variation(fingers) == pytest.approx(0.05 / 1.05, rel=0.05)  # 10 % every other frame


def test_acceleration_error_counts_only_shaking_beyond_the_truths():
    truth = np.stack([hand_at(t) for t in range(8)])
    assert acceleration_error(truth + [1.0, 2.0, 3.0], truth)[0] < 1e-6  # a steady offset: none
    shaky = truth.copy()
    shaky[3, 8] += [0, 0, 10.0]  # one joint jumps 10 mm for one frame
    error, triplets = acceleration_error(shaky, truth)
    assert triplets == 6 and error > 0
    gaps = truth.copy()
    gaps[4] = np.nan  # no triplet may span a missing frame
    assert acceleration_error(gaps, truth)[1] == 3
    assert np.isnan(pa_errors(gaps, truth)[4]) and pa_errors(gaps, truth)[3] < 1e-6


def frame_image(path: Path) -> np.ndarray:
    """A tiny image that says its frame number (red) and whether it is as taken (a green ramp)."""
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = int(path.stem)
    rgb[..., 1] = np.arange(8) * 30
    return rgb


class FakeDetector:
    """MediaPipe stand-in: the truth's keypoints, 'world landmarks' with a depth error, tracked;
    nothing on a changed copy (rotated, shrunk, mirrored) of a photo."""

    def __init__(self, truths: dict[int, np.ndarray], static: bool) -> None:
        self.truths, self.static, self.k = truths, static, 0
        self.tracker = None if static else HandednessTracker()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        if not np.array_equal(rgb[0, :, 1], np.arange(8) * 30):
            return []
        k = int(rgb[0, 0, 0]) if self.static else self.k
        self.k += 1
        truth = self.truths[k]
        world = truth - truth.mean(axis=0)
        world[:, 2] *= 0.5  # MediaPipe's 3D flattened
        det = Detection(project(truth, K), world.astype(np.float32), "Right", 0.98)
        return self.tracker.update([det]) if self.tracker else [det]

    def close(self) -> None:
        pass


class FakeCascade:
    """The truth on its rays, the index fingertip's depth off by a frame-dependent error."""

    mesh_pull = None

    def predict(self, detections, K, n_hypotheses=32, ddim_steps=1, seed=0, **kw) -> list[HandEstimate]:
        out = []
        for det in detections:
            truth = TRUTHS[_frame_of(det)]
            joints = truth.copy()
            joints[8] *= 1.0 + 0.05 * np.sin(_frame_of(det))  # along its ray: a depth error
            hyps = joints[None] + np.random.default_rng(0).normal(0, 2, (n_hypotheses, 21, 3))
            hyps += joints - hyps.mean(axis=0)
            out.append(HandEstimate("Right", det.score, det.keypoints_2d, joints.astype(np.float32),
                                    hyps.astype(np.float32), np.full(21, 2.0, np.float32),
                                    np.zeros((0, 3), np.float32), det.world_3d, track=det.track))
        return out


TRUTHS = {t: hand_at(t) for t in range(6)}


def _frame_of(det: Detection) -> int:
    return min(TRUTHS, key=lambda t: np.abs(project(TRUTHS[t], K) - det.keypoints_2d).sum())


def write_folder(root: Path) -> None:
    (root / "images" / "cam0").mkdir(parents=True)
    lines, names = [], []
    for t, truth in TRUTHS.items():
        name = f"images/cam0/{t:06d}.jpg"
        joints = truth.tolist() if t < 4 else [None] * 21  # the last frames are not labelled
        lines.append(json.dumps({"image": name, "K": K.tolist(), "hands": [{"joints_3d": joints,
                                                                            "handedness": "Right"}]}))
        names.append(name)
    (root / "labels.jsonl").write_text("\n".join(lines) + "\n")
    (root / "videos.txt").write_text(" ".join(names) + "\n")


def test_videos_are_scored_frame_by_frame_against_photos_and_mediapipe(tmp_path: Path):
    write_folder(tmp_path)
    assert [len(v) for v in load_videos(tmp_path)] == [6]
    report = evaluate_videos(FakeCascade(), tmp_path, fps=30.0, read=frame_image, bvh=False,
                             detector_factory=lambda: FakeDetector(TRUTHS, static=False),
                             photo_detector_factory=lambda: FakeDetector(TRUTHS, static=True))
    overall = report["overall"]
    assert overall["scored_frames"] == 4 and report["per_video"][0]["labelled_frames"] == 4
    assert overall["mediapipe"]["pa_mpjpe_mm"] > 1.0  # flattened: wrong shape
    # single frame and photos are the same fake cascade: the same per-frame error
    assert overall["single_frame"]["pa_mpjpe_mm"] == pytest.approx(overall["photos"]["pa_mpjpe_mm"])
    assert overall["ratios"]["single_frame_to_photos_pa"] == pytest.approx(1.0)
    assert overall["acceleration_triplets"] == 2  # frames 0-3 labelled: two triplets
    for run in ("temporal", "single_frame", "mediapipe"):
        assert overall[run]["bone_length_cv"] is not None
        assert overall[run]["acceleration_error_mm"] is not None
    assert overall["photos"]["bone_length_cv"] is None  # photos are no sequence
    assert 0.0 <= overall["temporal"]["ball_coverage_90"] <= 1.0


def test_videos_txt_must_name_labelled_frames(tmp_path: Path):
    write_folder(tmp_path)
    (tmp_path / "videos.txt").write_text("images/cam0/000000.jpg images/cam0/missing.jpg\n")
    with pytest.raises(ValueError, match="missing.jpg has no line"):
        load_videos(tmp_path)
    (tmp_path / "videos.txt").unlink()
    with pytest.raises(FileNotFoundError, match="videos.txt"):
        load_videos(tmp_path)


def test_the_clouds_ranking_of_the_error_is_reported_per_joint_and_per_frame():
    """`_ball` pairs each joint's 90 % radius with its error; `_ranking` says how well the radii
    rank the errors: a cloud wide where the estimate is wrong ranks them, a reversed one does not."""
    from handviz.eval.video_eval import _ball, _ranking

    rng = np.random.default_rng(0)
    frames = 8
    truth = np.stack([hand_at(t) for t in range(frames)])
    doubt = np.linspace(1.0, 12.0, 21)  # joint j is wrong by about doubt[j] mm
    joints = truth.copy()
    joints[:, :, 2] += doubt * rng.choice([-1.0, 1.0], (frames, 21)) * (1 + np.arange(frames))[:, None] / frames
    scored = np.ones(frames, bool)
    results = {}
    for name, width in (("honest", doubt), ("reversed", doubt[::-1])):
        hyps = []
        for t in range(frames):
            h = joints[t][None] + rng.normal(0, 1, (32, 21, 3)) * width[None, :, None] * (1 + t) / frames
            hyps.append(h - h.mean(axis=0) + joints[t])
        inside, radius, pairs = _ball(hyps, joints, truth, scored)
        assert len(inside) == len(radius) == len(pairs) == frames and all(p.shape == (20, 2) for p in pairs)
        results[name] = _ranking(pairs)
    assert results["honest"][0] > 0.5 and results["honest"][1] > 0.9  # later frames: wider and more wrong
    assert results["reversed"][0] < results["honest"][0] - 0.4  # the frames still rank alike
    assert _ranking(pairs[:2]) == (None, None)
