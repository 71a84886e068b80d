"""Real-photo evaluation: the labels.jsonl folder format, the report, the no-truth checks, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from handviz.data.real_folder import RealFolderError, load_real_folder, write_real_folder
from handviz.data.real_sample import Sample
from handviz.eval import metrics as M
from handviz.eval import no_truth as NT
from handviz.geometry import project
from handviz.types import Detection, HandEstimate

K = np.array([[500.0, 0, 320], [0, 500.0, 260], [0, 0, 1]])


@pytest.fixture(scope="module")
def detection(demo_photo):
    """MediaPipe on the shipped thumbs-up photo (a real hand)."""
    import cv2

    from handviz.pipeline.detector import HandDetector

    rgb = cv2.cvtColor(cv2.imread(str(demo_photo)), cv2.COLOR_BGR2RGB)
    with HandDetector(max_hands=1, static=True) as detector:
        dets = detector.detect(rgb)
    assert dets, "MediaPipe must find the demo hand"
    return dets[0]


def _truth_on_rays(det: Detection, depth_mm: float = 500.0) -> np.ndarray:
    """A 3D hand that projects exactly onto the detection's keypoints: MediaPipe's depths, pushed back."""
    kp = np.asarray(det.keypoints_2d, np.float64)
    z = depth_mm + np.asarray(det.world_3d, np.float64)[:, 2]
    return np.stack([(kp[:, 0] - K[0, 2]) / K[0, 0] * z, (kp[:, 1] - K[1, 2]) / K[1, 1] * z, z], axis=-1)


@pytest.fixture()
def real_folder(tmp_path, demo_photo, detection) -> Path:
    sample = Sample(dataset="demo", split="real", sample_id="thumb", image_path=demo_photo, K=K,
                    joints_mm=_truth_on_rays(detection), handedness=detection.handedness)
    return write_real_folder([sample], tmp_path / "real", "test fixture made from the Apache-2.0 demo photo")


def test_folder_round_trip(real_folder, detection):
    (sample,) = load_real_folder(real_folder)
    assert sample.image_path.is_file() and np.allclose(sample.K, K)
    assert np.allclose(sample.joints_mm, _truth_on_rays(detection), atol=1e-2)
    assert (real_folder / "SOURCE.md").read_text().startswith("test fixture")


@pytest.mark.parametrize("line, message", [
    ("not json", "not a label line"),
    ('{"image": "a.jpg", "K": [[1, 0, 0], [0, 1, 0]], "hands": []}', "3x3"),
    ('{"image": "a.jpg", "K": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "hands": [{"joints_3d": [[0, 0, 1]]}]}', "21x3"),
    ('{"image": "a.jpg", "K": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "hands": [{"joints_3d": %s, "handedness": "up"}]}'
     % json.dumps([[0, 0, 1]] * 21), "handedness"),
    ('{"image": "a.jpg", "K": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "hands": [{"joints_3d": %s}]}'
     % json.dumps([[0, 0, 1]] * 3 + [[0, 1]] + [None] * 17), "joint 3 must be"),
])
def test_bad_label_lines_name_the_line(tmp_path, line, message):
    (tmp_path / "labels.jsonl").write_text(line + "\n")
    with pytest.raises(RealFolderError, match=message) as err:
        load_real_folder(tmp_path)
    assert "labels.jsonl:1" in str(err.value)


def test_unlabelled_joints_are_null_in_the_file_and_nan_in_the_sample(tmp_path, demo_photo, detection):
    joints = _truth_on_rays(detection)
    joints[[4, 8]] = np.nan
    sample = Sample(dataset="demo", split="real", sample_id="thumb", image_path=demo_photo, K=K,
                    joints_mm=joints, handedness="Right")
    folder = write_real_folder([sample], tmp_path / "real", "test fixture")
    line = json.loads((folder / "labels.jsonl").read_text())
    assert line["hands"][0]["joints_3d"][4] is None and line["hands"][0]["joints_3d"][5] is not None
    (back,) = load_real_folder(folder)
    assert back.visible.sum() == 19 and back.labelled and not back.visible[8]
    assert back.group == "" and np.allclose(back.joints_mm[back.visible], joints[back.visible], atol=1e-2)


def test_missing_labels_say_what_the_folder_needs(tmp_path):
    with pytest.raises(RealFolderError, match="labels.jsonl: missing"):
        load_real_folder(tmp_path)
    five = [[0, 0, 1]] * 5 + [None] * 16  # fewer than 6 labelled joints: counted, never scored
    (tmp_path / "labels.jsonl").write_text(json.dumps({"image": "a.jpg", "K": K.tolist(),
                                                      "hands": [{"joints_3d": five}, {"joints_3d": None}]}))
    with pytest.raises(RealFolderError, match="no scorable hand"):
        load_real_folder(tmp_path)


class _EchoCascade:
    """MediaPipe's world landmarks, placed on the truth's depth: scores like MediaPipe."""

    def predict(self, detections, K, n_hypotheses=32, ddim_steps=1, seed=None, bone_prior=True):
        out = []
        for d in detections:
            w = np.asarray(d.world_3d, np.float32)
            hyps = np.repeat(w[None], n_hypotheses, 0) + np.linspace(-1, 1, n_hypotheses)[:, None, None]
            out.append(HandEstimate(handedness=d.handedness, score=d.score, keypoints_2d=d.keypoints_2d,
                                    joints_3d=w, joint_hypotheses=hyps.astype(np.float32),
                                    joint_spread=np.ones(21, np.float32), vertices=np.zeros((5, 3), np.float32),
                                    mediapipe_world_3d=w))
        return out


def test_report_scores_cascade_and_mediapipe_on_the_same_detections(real_folder):
    from handviz.eval.real_photos import evaluate_real_samples

    report = evaluate_real_samples(_EchoCascade(), load_real_folder(real_folder), n_hypotheses=4)
    json.dumps(report, allow_nan=False)
    o = report["overall"]
    assert o["num_detected"] == 1 and o["detection_rate"] == 1.0
    assert o["ratio_cascade_to_mediapipe"] == pytest.approx(1.0)
    assert len(o["cascade_per_joint_pa_mm"]) == 21 and len(o["mediapipe_per_joint_pa_mm"]) == 21
    assert 0.0 <= o["cascade_interval_coverage_90"] <= 1.0
    assert o["median_cascade_reprojection_frac"] > 0.05  # MediaPipe's world hand sits at the origin, not on the photo


def test_shipped_cascade_on_a_real_photo_lands_on_the_keypoints(real_folder):
    """The shipped posterior puts joints and mesh near MediaPipe's keypoints (issue 10: within 2 %;
    3 % since their bones are drawn toward an adult's proportions, which moves them off the
    keypoints where those make a bone too long or short)."""
    from handviz.cascade import Cascade
    from handviz.eval.real_photos import evaluate_real_samples

    report = evaluate_real_samples(Cascade.from_weights(device="cpu"), load_real_folder(real_folder))
    o = report["overall"]
    assert o["median_cascade_reprojection_frac"] < 0.03
    assert o["median_mesh_reprojection_frac"] < 0.03
    assert o["cascade_pa_mpjpe_mm"] is not None and o["cascade_mean_spread_mm"] > 0


def test_a_mirrored_photo_is_the_other_hand_with_its_truth_image_and_camera_flipped(real_folder):
    """eval --real --mirror: the flipped image, the truth's x negated and the principal point moved
    must agree, so MediaPipe finds the hand where the mirrored truth projects, as the other hand."""
    from handviz.data.real_sample import mirror_sample
    from handviz.eval.real_photos import evaluate_real_samples

    (sample,) = load_real_folder(real_folder)
    mirrored = mirror_sample(sample)
    rgb = sample.load_rgb()
    width = rgb.shape[1]
    np.testing.assert_array_equal(mirrored.load_rgb(), rgb[:, ::-1])
    uv, uv_mirrored = project(sample.joints_mm, sample.K), project(mirrored.joints_mm, mirrored.K)
    np.testing.assert_allclose(uv_mirrored[:, 0], width - 1 - uv[:, 0], atol=1e-6)
    np.testing.assert_allclose(uv_mirrored[:, 1], uv[:, 1], atol=1e-6)
    assert {sample.handedness, mirrored.handedness} == {"Left", "Right"}
    back = mirror_sample(mirrored)
    assert not back.mirrored and back.handedness == sample.handedness
    np.testing.assert_allclose(back.K, sample.K)
    np.testing.assert_allclose(back.joints_mm, sample.joints_mm)
    o = evaluate_real_samples(_EchoCascade(), [mirrored], n_hypotheses=4)["overall"]
    assert o["num_detected"] == 1 and o["num_handedness_wrong"] == 0
    assert o["keypoint_error_px"] < 0.02 * width  # the truth was built on the unmirrored keypoints


def test_the_doubts_signals_are_kept_for_fitting_it(real_folder):
    """With doubt_signals, each scored hand's row holds the doubt's inputs per joint
    (handviz.eval.doubt_fit fits the radius's line to them); without, the rows stay lean."""
    from handviz.cascade import Cascade
    from handviz.eval.real_photos import evaluate_real_samples

    cascade = Cascade.from_weights(device="cpu")
    report = evaluate_real_samples(cascade, load_real_folder(real_folder), doubt_signals=True)
    (row,) = [r for r in report["per_sample"] if r["detected"]]
    signals = row["doubt_signals"]
    assert set(signals) == {"image_z", "tta_keypoints", "sideways_bend", "overlap", "shortfall", "tta_lost"}
    assert all(v is not None and len(v) == 21 for v in signals.values())  # a photo: augmented
    assert any(v != round(v, 2) for v in signals["tta_keypoints"])  # shares of ~0.01 keep their digits
    line = cascade.posterior.doubt.expected_error(*(np.asarray(signals[k], float)
                                                    for k in ("image_z", "tta_keypoints", "sideways_bend", "overlap",
                                                              "shortfall")), float(signals["tta_lost"][0]))
    assert np.all(np.isfinite(line)) and np.all(line > 0)
    plain = evaluate_real_samples(cascade, load_real_folder(real_folder))
    assert all("doubt_signals" not in r for r in plain["per_sample"])


def test_no_truth_measures():
    rng = np.random.default_rng(0)
    hand = rng.normal(0, 30, (21, 3)) + [0, 0, 500]
    assert NT.reprojection_error(hand, project(hand, K), K)["median_frac"] < 1e-6
    still = np.repeat(hand[None], 5, 0)
    steady = still + np.arange(5)[:, None, None] * [1.0, 0, 0] * np.r_[0, np.ones(20)][None, :, None]
    assert NT.jitter_mm(still) == 0.0 and NT.jitter_mm(steady) == pytest.approx(0.0, abs=1e-9)
    assert NT.jitter_mm(still + rng.normal(0, 1, still.shape)) > 0.5
    assert NT.mirror_gap_mm(hand, hand * [-1, 1, 1]) == pytest.approx(0.0, abs=1e-6)


def test_published_proportions_score_zero():
    """A hand built with the published finger lengths has z = 0 on every finger."""
    joints = np.zeros((21, 3))
    for k, (name, chain) in enumerate(NT.FINGER_CHAINS.items()):
        step = NT.PUBLISHED_FINGER_MM[name] / (len(chain) - 1)
        for i, j in enumerate(chain):
            joints[j] = [20.0 * k, -step * i, 0.0]
    z = NT.proportion_z_scores(joints)
    assert set(z) == {"thumb", "index", "ring", "pinky"} and max(abs(v) for v in z.values()) < 1e-9
    joints[8, 1] -= 30.0  # a 30 mm longer index finger is anatomically far off
    assert NT.proportion_z_scores(joints)["index"] > 2.0


def test_plots_need_real(tmp_path, capsys):
    from handviz.cli import main

    assert main(["eval", "--synthetic", "4", "--plots", str(tmp_path)]) == 2
    assert "--plots DIR: works with --real only" in capsys.readouterr().err


def test_plots_are_drawn(example, tmp_path):
    from handviz.eval.plots import write_calibration_plots
    from handviz.eval.real_photos import evaluate_real_samples

    folder, detector, cascade = example
    report = evaluate_real_samples(cascade, load_real_folder(folder), n_hypotheses=6, detectors=[detector])
    written = write_calibration_plots(report, tmp_path / "plots")
    assert [p.name for p in written] == ["reliability.png", "sparsification.png"]
    assert all(p.stat().st_size > 5000 for p in written)


def _handviz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handviz", *args], capture_output=True, text=True, timeout=300)


def test_cli_eval_real_and_checks(real_folder, demo_photo, tmp_path):
    done = _handviz("eval", "--real", str(real_folder), "--hypotheses", "8", "--json", "--plots",
                    str(tmp_path / "plots"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    overall = report["overall"]
    assert overall["num_detected"] == 1 and overall["ratio_cascade_to_mediapipe"] is not None
    assert set(overall["calibration"]["ball_coverage"]) == {"50", "75", "90", "95"}
    assert report["test_time_augmentation"] and report["per_group"] == {}
    for name in ("reliability.png", "sparsification.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    done = _handviz("eval", "--checks", str(demo_photo), "--hypotheses", "8", "--json")
    assert done.returncode == 0, done.stderr
    checks = json.loads(done.stdout)["overall"]
    assert checks["num_hands"] >= 1
    assert checks["median_reprojection_frac"] < 0.03
    assert checks["median_cascade_mirror_gap_mm"] is not None and checks["median_cascade_jitter_mm"] is not None


def test_radius_90_holds_ninety_percent_of_the_aligned_hypotheses():
    """The app's ball: per joint, 90 % of the hypotheses lie within it once each is similarity-aligned
    to the estimate; the report's calibration measures the same distances."""
    from handviz.eval.calibration import aligned_distances
    from handviz.geometry import similarity_aligned

    rng = np.random.default_rng(5)
    joints = rng.normal(0, 30, (21, 3)) + [0, 0, 400]
    hyps = joints[None] + rng.normal(0, 5, (200, 21, 3))
    est = HandEstimate(handedness="Right", score=1.0, keypoints_2d=np.zeros((21, 2), np.float32),
                       joints_3d=joints.astype(np.float32), joint_hypotheses=hyps.astype(np.float32),
                       joint_spread=np.zeros(21, np.float32), vertices=np.zeros((5, 3), np.float32),
                       mediapipe_world_3d=np.zeros((21, 3), np.float32))
    r = est.joint_radius_90
    aligned = similarity_aligned(hyps, joints)
    inside = np.linalg.norm(aligned - joints[None], axis=-1) <= r[None] + 1e-4
    assert np.allclose(inside.mean(axis=0), 0.9, atol=0.01)
    np.testing.assert_allclose(np.quantile(aligned_distances(hyps, joints), 0.9, axis=0), r, rtol=1e-4, atol=1e-3)
    assert len(est.to_json()["joint_radius_90"]) == 21


# ---------------------------------------------------------------- the report against a hand-computed example
#
# Every hand below is BASE (five pairs of joints at +-v about the centre, the other joints at the
# centre) plus "offset pairs": two centre joints moved by +v and -v. A similarity fitted from one
# such shape onto another that adds offset pairs only where the first has centre joints is the
# identity (the cross-covariance stays BASE's, symmetric, and the scale 1), so the PA error of
# each joint is exactly its offset. Truth = BASE + a-pair (joints 11, 12, along x) + b-pair
# (13, 14, along y); the cascade's estimate = BASE + a-pair (PA error b at 13 and 14: 2b/n mm
# over n labelled joints); MediaPipe's world landmarks = BASE ((2a + 2b)/n). Both are placed
# by other similarities (the estimate at half size), which PA removes.

_BASE = np.zeros((21, 3))
for (_i, _j), _v in {(1, 2): (100, 0, 0), (3, 4): (0, 100, 0), (5, 6): (0, 0, 100), (7, 8): (50, 50, 0),
                     (9, 10): (0, 50, 50)}.items():
    _BASE[_i], _BASE[_j] = _v, np.negative(_v)
_EX, _EY, _EZ = np.eye(3)
_K6 = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
_TURN = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])  # 90 degrees about z


def _with_pair(shape: np.ndarray, pair: tuple[int, int], v: np.ndarray) -> np.ndarray:
    out = shape.copy()
    out[pair[0]] += v
    out[pair[1]] -= v
    return out


def _example_hand(a: float, b: float, palm_scale: float) -> dict:
    """Truth (camera frame), the cascade's estimate and six hypotheses, MediaPipe's world landmarks.

    Hypotheses (made from shapes, then placed like the estimate): the estimate (PA 2b/n); BASE + b-pair
    (2a/n: the best when a < b); the estimate with 13, 14 moved by 0.5 b along z; the estimate scaled
    by palm_scale (2b/n; its palm is palm_scale times the others'); the same with 1.5 b; BASE
    ((2a + 2b)/n). Aligned to the estimate, per hypothesis joints 13 and 14 lie about
    (0, b, 0.5 b, 0, 1.5 b, 0) from it, so their 50/75/90/95 % radii are about 0.25/0.87/1.24/1.37 b
    and the truth (b away) is inside the 90 and 95 % balls only; every other joint's truth is on the
    estimate, inside every ball.
    """
    estimate = _with_pair(_BASE, (11, 12), a * _EX)
    truth = _with_pair(estimate, (13, 14), b * _EY)
    hyps = np.stack([estimate, _with_pair(_BASE, (13, 14), b * _EY), _with_pair(estimate, (13, 14), 0.5 * b * _EZ),
                     palm_scale * estimate, _with_pair(estimate, (13, 14), 1.5 * b * _EZ), _BASE])

    def place(x):
        return 0.5 * x @ _TURN.T + [20.0, -10.0, 450.0]

    return {"truth": truth + [0.0, 0.0, 600.0], "estimate": place(estimate), "hypotheses": place(hyps),
            "world": 0.9 * _BASE @ _TURN}


#: (image, a, b, labelled joints or None for all, palm scale, what happens). PA-MPJPE by hand:
#: cascade 2b/n, MediaPipe (2a + 2b)/n, best of the six 2 min(a, b)/n.
_EXAMPLE = [
    ("cam0/1.png", 2.1, 10.5, None, 1.2, "scored"),  # cascade 1.0, MediaPipe 1.2, best 0.2
    ("cam0/2.png", 5.5, 11.0, [0, 1, 2, 3, 4, 5, 6, 11, 12, 13, 14], 1.1, "scored"),  # n = 11: 2.0, 3.0, 1.0
    ("cam1/3.png", 21.0, 15.75, None, 1.3, "no world"),  # cascade 1.5; MediaPipe's landmarks are NaN
    ("cam1/4.png", 2.1, 10.5, None, 1.0, "missed"),  # the only detection is far from the hand
    ("cam1/5.png", 21.0, 10.5, None, 1.0, "broken cascade"),  # MediaPipe 3.0; the cascade returns NaN
    ("cam1/6.png", 3.15, 5.25, None, 1.0, "scored"),  # 0.5, 0.8, 0.3
]


class _ExampleDetector:
    """Detections at the projected truth (garbage at unlabelled joints), only on the original photos."""

    def __init__(self) -> None:
        self.by_image: dict[bytes, list[Detection]] = {}

    def add(self, rgb: np.ndarray, detections: list[Detection]) -> None:
        self.by_image[rgb.tobytes()] = detections

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return list(self.by_image.get(np.ascontiguousarray(rgb).tobytes(), []))


class _ExampleCascade:
    """Returns each hand's prepared estimate (the detection's score is the hand's number)."""

    def __init__(self, hands: dict[int, dict]) -> None:
        self.hands = hands
        self.saw_tta: list[bool] = []

    def predict(self, detections, K, n_hypotheses=32, ddim_steps=1, seed=None, bone_prior=True):
        out = []
        for d in detections:
            self.saw_tta.append(d.tta_keypoints_2d is not None)
            hand = self.hands[round(d.score * 100)]
            joints, hyps = hand["estimate"], hand["hypotheses"]
            if hand["what"] == "broken cascade":
                joints, hyps = np.full_like(joints, np.nan), np.full_like(hyps, np.nan)
            out.append(HandEstimate(handedness=d.handedness, score=d.score, keypoints_2d=d.keypoints_2d,
                                    joints_3d=joints.astype(np.float32), joint_hypotheses=hyps.astype(np.float32),
                                    joint_spread=np.ones(21, np.float32), vertices=np.zeros((5, 3), np.float32),
                                    mediapipe_world_3d=np.asarray(d.world_3d, np.float32)))
        return out


def _joint_list(joints: np.ndarray, labelled) -> list:
    return [xyz.tolist() if labelled is None or k in labelled else None for k, xyz in enumerate(joints)]


@pytest.fixture()
def example(tmp_path):
    """The labels.jsonl folder of _EXAMPLE (nulls included), its detector and cascade."""
    import cv2

    rng = np.random.default_rng(0)
    detector, hands, lines = _ExampleDetector(), {}, []
    for number, (image, a, b, labelled, palm_scale, what) in enumerate(_EXAMPLE, start=1):
        hand = _example_hand(a, b, palm_scale) | {"what": what}
        hands[number] = hand
        rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        (tmp_path / "images" / image).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "images" / image), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        uv = project(hand["truth"], _K6)
        if labelled is not None:
            uv[[k for k in range(21) if k not in labelled]] = 5000.0  # unlabelled joints: far off
        if what == "missed":
            uv = uv + 400.0
        world = np.full((21, 3), np.nan) if what == "no world" else hand["world"]
        dets = [Detection(keypoints_2d=uv.astype(np.float32), world_3d=world.astype(np.float32),
                          handedness="Right", score=number / 100)]
        label = [{"joints_3d": _joint_list(hand["truth"], labelled), "handedness": "Right"}]
        if number == 2:  # a left hand with 5 labelled joints: counted, not scored, not matched
            left = hand["truth"] + [300.0, 0.0, 0.0]
            dets.append(Detection(keypoints_2d=project(left, _K6).astype(np.float32),
                                  world_3d=hand["world"].astype(np.float32), handedness="Left", score=0.99))
            label.append({"joints_3d": _joint_list(left, [0, 1, 2, 3, 4]), "handedness": "Left"})
        if number == 5:  # a hand the label leaves out entirely
            label.append({"joints_3d": None, "handedness": None})
        detector.add(rgb, dets)
        lines.append(json.dumps({"image": f"images/{image}", "K": _K6.tolist(), "hands": label}))
    (tmp_path / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path, detector, _ExampleCascade(hands)


def test_report_against_a_hand_computed_example(example):
    from handviz.eval.real_photos import evaluate_real_samples

    folder, detector, cascade = example
    samples = load_real_folder(folder)
    assert [int(s.visible.sum()) for s in samples] == [21, 11, 5, 21, 21, 21, 0, 21]
    labelled = [s for s in samples if s.labelled]  # hand n is labelled[n - 1]
    report = evaluate_real_samples(cascade, samples, n_hypotheses=6, detectors=[detector])
    json.dumps(report, allow_nan=False)
    rows = {r["sample_id"]: r for r in report["per_sample"]}
    row = {n: rows[f"images/{image[:-4]}/0"] for n, (image, *_rest) in enumerate(_EXAMPLE, start=1)}

    # Per hand, on the labelled joints only.
    expected = {1: (1.0, 1.2, 0.2), 2: (2.0, 3.0, 1.0), 3: (1.5, None, 1.5), 6: (0.5, 0.8, 0.3)}
    for n, (cascade_pa, mediapipe_pa, best) in expected.items():
        assert row[n]["cascade_pa_mpjpe_mm"] == pytest.approx(cascade_pa, abs=1e-4), n
        assert row[n]["cascade_best_of_n_pa_mpjpe_mm"] == pytest.approx(best, abs=1e-4), n
        if mediapipe_pa is None:
            assert row[n].get("mediapipe_pa_mpjpe_mm") is None
        else:
            assert row[n]["mediapipe_pa_mpjpe_mm"] == pytest.approx(mediapipe_pa, abs=1e-4), n
    assert row[2]["cascade_per_joint_pa_mm"][13] == pytest.approx(11.0, abs=0.01)
    assert row[2]["cascade_per_joint_pa_mm"][7] is None  # not labelled
    assert not row[4]["detected"]
    assert row[5]["cascade_pa_mpjpe_mm"] is None and row[5]["mediapipe_pa_mpjpe_mm"] == pytest.approx(3.0, abs=1e-4)
    assert all(cascade.saw_tta)  # MediaPipe ran on the changed copies before the cascade

    o = report["overall"]
    assert (o["num_hands"], o["num_unlabelled"], o["num_detected"], o["num_missed"]) == (6, 2, 5, 1)
    # Only hands 1, 2 and 6 were scored by both: cascade (1 + 2 + 0.5) over MediaPipe (1.2 + 3 + 0.8).
    # (All scored hands would give 1.25 / 2.0; MediaPipe over the cascade 1 / 0.7.)
    assert o["num_scored_by_both"] == 3
    assert o["ratio_cascade_to_mediapipe"] == pytest.approx(3.5 / 5.0, abs=1e-4)
    assert o["ratio_best_of_n_to_mediapipe"] == pytest.approx(1.5 / 5.0, abs=1e-4)

    c = o["calibration"]
    # 70 scored joints (20 + 10 + 20 + 20, wrists out); joints 13 and 14 of each of the 4 hands lie
    # outside the 50 and 75 % balls, inside the 90 and 95 % ones (see _example_hand).
    assert c["num_hands"] == 4
    assert c["ball_coverage"] == pytest.approx({"50": 62 / 70, "75": 62 / 70, "90": 1.0, "95": 1.0})
    # Mean 90 % radius ~ (2a + 2.5 b) / 20 + a little: hands 6 < 1 < 2 < 3; errors 6 < 1 < 3 < 2.
    assert c["hand_radius_error_spearman"] == pytest.approx(0.8)
    # Dropping the widest hand (3) first leaves 1.1667 mm where the oracle (dropping 2) leaves 1.0,
    # for the fractions 0.15-0.35 of 4 hands: AUSE = 0.05 x 5 x (1/6) - 2 half steps = 1/24 mm.
    assert c["sparsification"]["by_radius_mm"][0] == pytest.approx(1.25, abs=1e-3)
    assert c["ause_mm"] == pytest.approx(1 / 24, abs=1e-3)
    assert c["median_palm_length_max_over_min"] == pytest.approx(1.15)  # 1.2, 1.1, 1.3, 1.0
    for n in (1, 2, 3, 6):  # the report's radius is the app's (HandEstimate.joint_radius_90)
        est = cascade.predict([Detection(np.zeros((21, 2), np.float32), np.zeros((21, 3), np.float32), "Right",
                                         n / 100)], _K6)[0]
        np.testing.assert_allclose(row[n]["cascade_radius_90_mm"], est.joint_radius_90, atol=2e-3)
        sample = labelled[n - 1]
        errors = M.per_hypothesis_error(est.joint_hypotheses[None][:, :, sample.visible],
                                        sample.joints_mm[None][:, sample.visible])[0]
        # a cascade without a posterior to say: half are counted as blends
        assert row[n]["cascade_hypothesis_pa_mpjpe_blends_mm"] == pytest.approx(errors[:3].mean(), abs=1e-3)
        assert row[n]["cascade_hypothesis_pa_mpjpe_leaning_mm"] == pytest.approx(errors[3:].mean(), abs=1e-3)
    pooled = [(r["cascade_radius_90_mm"][j], r["cascade_per_joint_pa_mm"][j]) for r in report["per_sample"]
              if r.get("cascade_pa_mpjpe_mm") is not None for j in range(1, 21)
              if r["cascade_per_joint_pa_mm"][j] is not None]
    assert len(pooled) == 70
    radius, error = np.array(pooled).T
    assert c["joint_radius_error_pearson"] == pytest.approx(np.corrcoef(radius, error)[0, 1], abs=1e-6)

    groups = report["per_group"]
    assert set(groups) == {"cam0", "cam1"}
    assert (groups["cam0"]["num_hands"], groups["cam0"]["num_unlabelled"]) == (2, 1)
    assert (groups["cam1"]["num_hands"], groups["cam1"]["num_missed"], groups["cam1"]["num_unlabelled"]) == (4, 1, 1)
    assert groups["cam0"]["ratio_cascade_to_mediapipe"] == pytest.approx(3.0 / 4.2, abs=1e-4)
    assert groups["cam1"]["ratio_cascade_to_mediapipe"] == pytest.approx(0.5 / 0.8, abs=1e-4)


def test_checks_follow_each_tracked_hand_even_when_two_share_a_label(monkeypatch, tmp_path):
    """Two still hands both labelled "Right" (a HaMeR example photo): each is its own sequence, so
    the clip's jitter is each hand's shake, not the jump between them (it read 205 mm)."""
    import cv2

    import handviz.pipeline.detector as detector_module
    from handviz.eval.run_checks import run_checks
    from handviz.types import Detection, HandEstimate

    class TwoRights:
        def __init__(self, **_):
            pass

        def detect(self, rgb):
            hands = []
            for track, x in enumerate((0.25, 0.75)):
                kp = np.stack([np.linspace(x - 0.05, x + 0.05, 21) * rgb.shape[1],
                               np.linspace(0.7, 0.3, 21) * rgb.shape[0]], axis=1).astype(np.float32)
                world = np.stack([np.linspace(-30, 30, 21), np.linspace(40, -60, 21), np.zeros(21)], axis=1)
                hands.append(Detection(kp, world.astype(np.float32), "Right", 0.9, track=track))
            return hands

        def close(self):
            pass

    class StillCascade:  # each hand where its keypoints say, at 40 cm
        mesh_pull = None

        def predict(self, detections, K, **_):
            out = []
            for d in detections:
                rays = np.c_[(d.keypoints_2d - K[:2, 2]) / np.diag(K)[:2], np.ones(21)]
                joints = (rays * 400.0).astype(np.float32)
                out.append(HandEstimate(d.handedness, d.score, d.keypoints_2d, joints, joints[None].repeat(4, 0),
                                        np.zeros(21, np.float32), np.zeros((0, 3), np.float32), d.world_3d,
                                        track=d.track))
            return out

    monkeypatch.setattr(detector_module, "HandDetector", TwoRights)
    photo = tmp_path / "two.png"
    cv2.imwrite(str(photo), np.full((240, 320, 3), 128, np.uint8))
    report = run_checks(StillCascade(), [photo], n_hypotheses=4, clip_frames=10)
    jitter = report["inputs"][0]["cascade_jitter_mm"]
    # each still hand moves only while its skeleton learns its (straight-line) bones from an
    # adult's proportions; the two hands mixed up would jump by the 230 mm between them
    assert sorted(jitter) == ["Right 0", "Right 1"] and max(jitter.values()) < 5.0


def test_hypothesis_kinds_are_counted_as_the_posterior_makes_them():
    from handviz.eval.real_photos import blend_count
    from handviz.posterior import PosteriorConfig

    class WithPosterior:
        posterior = PosteriorConfig(blend_fraction=0.375)

    assert blend_count(WithPosterior(), 32) == 12  # the shipped cloud: 12 blends, 20 leaning
    assert blend_count(object(), 32) == 16
