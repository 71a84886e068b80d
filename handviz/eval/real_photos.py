"""Score the cascade against MediaPipe's own 3D on real photos with 3D truth (`handviz eval --real`).

Every labelled hand takes its MediaPipe detection (handviz.eval.matching), MediaPipe runs again
on changed copies of the photo as `handviz predict` does (handviz.pipeline.augment), the cascade
runs on exactly those detections, and both are scored on the same hands, so the ratio is like
for like. Labels may leave joints out: errors are taken over the labelled joints only, and a
hand with fewer than MIN_VISIBLE_JOINTS is counted as unlabelled, not scored. Besides the 3D
errors the report carries what a user would check without truth: how well the joints and the
mesh reproject onto MediaPipe's keypoints (handviz.eval.no_truth), and whether the cloud's
balls rank and cover the error (handviz.eval.calibration). Photos in subfolders (one per
camera, say) are also summarised per subfolder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handviz.data.real_sample import Sample
from handviz.eval import metrics as M
from handviz.eval.calibration import calibration_summary, hand_calibration
from handviz.eval.depth_modes import depth_fit_errors
from handviz.eval.matching import match_detections
from handviz.eval.no_truth import reprojection_error
from handviz.geometry import project
from handviz.limits import (
    HYPOTHESES_DEFAULT,
    HYPOTHESES_MAX,
    HYPOTHESES_MIN,
    check_in_range,
)
from handviz.pipeline.intrinsics import still_image_intrinsics
from handviz.pipeline.photo_reader import PhotoReader
from handviz.types import Detection

#: Detection threshold of the fallback detector (see default_detectors).
FALLBACK_CONFIDENCE = 0.2


def _finite_or_none(value: float) -> float | None:
    """A measure for the JSON report: NaN/inf (a broken prediction) becomes None, not invalid JSON."""
    value = float(value)
    return value if math.isfinite(value) else None


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.median(values)) if values else None


_MEAN_KEYS = ("keypoint_error_px", "mediapipe_pa_mpjpe_mm", "mediapipe_mpjpe_mm", "cascade_pa_mpjpe_mm",
              "cascade_mpjpe_mm", "cascade_best_of_n_pa_mpjpe_mm", "cascade_root_error_mm",
              "cascade_interval_coverage_90", "cascade_mean_spread_mm",
              "cascade_pa_mpjpe_finger_depth_fit_mm", "cascade_pa_mpjpe_depth_fit_mm")
_MEDIAN_KEYS = ("cascade_reprojection_frac", "cascade_reprojection_px", "mesh_reprojection_frac",
                "mesh_reprojection_px")


def _per_joint_mean(rows: list[dict[str, Any]], key: str) -> list[float | None] | None:
    """Per joint, the mean over the hands that label it (None for a joint no hand labels)."""
    per_joint = np.array([[np.nan if v is None else v for v in r[key]] for r in rows if r.get(key)], np.float64)
    if per_joint.size == 0:
        return None
    counts = np.isfinite(per_joint).sum(axis=0)
    sums = np.nansum(per_joint, axis=0)
    return [round(float(t / c), 2) if c else None for t, c in zip(sums, counts)]


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, and means over the detected hands; the ratios use only hands both methods were scored on."""
    labelled = [r for r in rows if r["labelled"]]
    detected = [r for r in labelled if r["detected"]]
    out: dict[str, Any] = {
        "num_hands": len(labelled),
        "num_unlabelled": len(rows) - len(labelled),
        "num_detected": len(detected),
        "num_missed": len(labelled) - len(detected),
        "detection_rate": len(detected) / len(labelled) if labelled else None,
        "num_handedness_wrong": sum(1 for r in detected if not r["handedness_agrees"]),
        "num_fallback_detections": sum(1 for r in detected if r.get("fallback_detector")),
    }
    for key in _MEAN_KEYS:
        out[key] = _mean(detected, key)
    for key in _MEDIAN_KEYS:
        out[f"median_{key}"] = _median(detected, key)
    both = [r for r in detected if r.get("cascade_pa_mpjpe_mm") is not None
            and r.get("mediapipe_pa_mpjpe_mm") is not None]
    out["num_scored_by_both"] = len(both)
    ratio = best_ratio = None
    if both:
        mp = float(np.mean([r["mediapipe_pa_mpjpe_mm"] for r in both]))
        if mp > 0:
            ratio = float(np.mean([r["cascade_pa_mpjpe_mm"] for r in both])) / mp
            best_ratio = float(np.mean([r["cascade_best_of_n_pa_mpjpe_mm"] for r in both])) / mp
    out["ratio_cascade_to_mediapipe"] = ratio
    out["ratio_best_of_n_to_mediapipe"] = best_ratio
    scored = [r for r in detected if r.get("cascade_mean_spread_mm") is not None]
    out["spread_error_spearman"] = _finite_or_none(M.spearman(
        np.array([r["cascade_mean_spread_mm"] for r in scored]),
        np.array([r["cascade_pa_mpjpe_mm"] for r in scored]))) if len(scored) > 2 else None
    for who in ("cascade", "mediapipe"):
        out[f"{who}_per_joint_pa_mm"] = _per_joint_mean(detected, f"{who}_per_joint_pa_mm")
    out["calibration"] = calibration_summary(detected)
    return out


def _mesh_joints(vertices: np.ndarray) -> np.ndarray | None:
    """The mesh's 21 joints by the shipped joint regressor, or None when the asset has none."""
    from handviz.hand.asset import load_hand_asset

    regressor = load_hand_asset().joint_regressor
    if regressor is None or vertices.shape[0] != regressor.shape[1]:
        return None
    return regressor.astype(np.float64) @ np.asarray(vertices, np.float64)


def _pa_per_joint(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(21,) mm: each labelled joint's error after the similarity fitted on the labelled joints; NaN elsewhere."""
    errors = np.full(len(visible), np.nan)
    errors[visible] = M.joint_errors(pred[visible][None], gt[visible][None], align="procrustes")[0]
    return errors


def _rounded(errors: np.ndarray) -> list[float | None]:
    return [round(float(e), 2) if np.isfinite(e) else None for e in errors]


def _score_cascade(row: dict[str, Any], est: Any, gt: np.ndarray, vis: np.ndarray, K: np.ndarray,
                   blends: int) -> None:
    """The cascade's measures for one hand, on its labelled joints vis (21,) (the wrist's own and
    the wrist-relative ones need the wrist). A prediction with non-finite joints is not scored."""
    joints = np.asarray(est.joints_3d, np.float64)
    hyps = np.asarray(est.joint_hypotheses, np.float64)
    if not (np.all(np.isfinite(joints)) and np.all(np.isfinite(hyps))):
        row["cascade_pa_mpjpe_mm"] = None  # a broken prediction: detected, not scored
        return
    per_joint = _pa_per_joint(joints, gt, vis)
    row["cascade_pa_mpjpe_mm"] = _finite_or_none(np.nanmean(per_joint))
    row["cascade_per_joint_pa_mm"] = _rounded(per_joint)
    per_hypothesis = M.per_hypothesis_error(hyps[None][:, :, vis], gt[vis][None])[0]  # (N,)
    row["cascade_best_of_n_pa_mpjpe_mm"] = _finite_or_none(per_hypothesis.min())
    row.update(hand_calibration(joints, hyps, gt, vis, per_hypothesis, blends))
    row["cascade_mean_spread_mm"] = _finite_or_none(np.mean(np.asarray(est.joint_spread, np.float64)[1:]))
    if vis[0]:  # wrist-relative measures
        row["cascade_mpjpe_mm"] = _finite_or_none(M.mpjpe(joints[vis], gt[vis])[0])
        row["cascade_root_error_mm"] = _finite_or_none(np.linalg.norm(joints[0] - gt[0]))
        rel_h = (hyps - hyps[:, :1])[None, :, 1:][:, :, vis[1:]]
        rel_gt = (gt - gt[:1])[1:][vis[1:]]
        row["cascade_interval_coverage_90"] = float(M.interval_coverage(rel_h, rel_gt[None], 0.9))
    if np.all(vis) and np.all(joints[:, 2] > 0):  # where the error is (depth_modes)
        fits = depth_fit_errors(joints, gt)
        row["cascade_pa_mpjpe_finger_depth_fit_mm"] = _finite_or_none(fits["finger_modes"])
        row["cascade_pa_mpjpe_depth_fit_mm"] = _finite_or_none(fits["every_depth"])
    kp = np.asarray(est.keypoints_2d, np.float64)
    rep = reprojection_error(joints, kp, K)
    row["cascade_reprojection_px"], row["cascade_reprojection_frac"] = rep["median_px"], rep["median_frac"]
    mesh_joints = _mesh_joints(np.asarray(est.vertices, np.float64))
    if mesh_joints is not None:
        rep = reprojection_error(mesh_joints, kp, K)
        row["mesh_reprojection_px"], row["mesh_reprojection_frac"] = rep["median_px"], rep["median_frac"]


def _row(sample: Sample) -> dict[str, Any]:
    return {"dataset": sample.dataset, "group": sample.group, "sample_id": sample.sample_id,
            "handedness": sample.handedness, "labelled": sample.labelled,
            "num_labelled_joints": int(sample.visible.sum()), "detected": False}


def _score_hand(sample: Sample, gt_uv: np.ndarray, det: Detection | None, est: Any,
                K_used: np.ndarray, blends: int) -> dict[str, Any]:
    """One labelled hand's row: what MediaPipe and (when given) the cascade got, in mm, on the
    joints the label gives.

    K_used: the intrinsics the cascade was given (reprojection is judged with them); blends: how
    many of the hypotheses come first as source blends (`blend_count`)."""
    row = _row(sample)
    row["detected"] = det is not None
    if det is None:
        return row
    vis = sample.visible
    gt = np.asarray(sample.joints_mm, np.float64)
    world = np.asarray(det.world_3d, np.float64)
    row["handedness_agrees"] = det.handedness == sample.handedness
    row["keypoint_error_px"] = _finite_or_none(
        np.linalg.norm(np.asarray(det.keypoints_2d, np.float64)[vis] - gt_uv[vis], axis=1).mean())
    if np.all(np.isfinite(world)):
        per_joint = _pa_per_joint(world, gt, vis)
        row["mediapipe_pa_mpjpe_mm"] = _finite_or_none(np.nanmean(per_joint))
        row["mediapipe_per_joint_pa_mm"] = _rounded(per_joint)
        if vis[0]:
            row["mediapipe_mpjpe_mm"] = _finite_or_none(M.mpjpe(world[vis], gt[vis])[0])
    if est is not None:
        _score_cascade(row, est, gt, vis, np.asarray(K_used, np.float64), blends)
    return row


def default_detectors() -> list[Any]:
    """MediaPipe as the app runs it, then a lighter, more permissive pass for hands the first misses.

    On InterHand's dim studio photos the full model finds few hands; the light model at a low
    threshold finds some more. Both the cascade and MediaPipe's landmarks are scored on whichever
    detection is used, so the comparison stays like for like.
    """
    from handviz.pipeline.detector import HandDetector

    return [HandDetector(max_hands=2, static=True),
            HandDetector(max_hands=2, static=True, model_complexity=0, min_confidence=FALLBACK_CONFIDENCE)]


def _detect_and_match(detectors: Sequence[Any], rgb: np.ndarray, gt_uv: list[np.ndarray],
                      hands: list[str]) -> tuple[list[Detection], list[int | None], int]:
    """The first detector that matches every labelled hand, else the one that matches most.

    One detector's output per image: mixing two could give one physical hand twice.
    Returns (detections, matched index per hand, index of the detector used).
    """
    best: tuple[list[Detection], list[int | None], int] = ([], [None] * len(gt_uv), 0)
    best_count = -1
    for k, detector in enumerate(detectors):
        detections = detector.detect(rgb)
        matched = match_detections(detections, gt_uv, hands)
        count = sum(j is not None for j in matched)
        if count > best_count:
            best, best_count = (detections, matched, k), count
        if count == len(gt_uv):
            break
    return best


def evaluate_real_samples(cascade: Any, samples: Sequence[Sample], root: str = "",
                          n_hypotheses: int = HYPOTHESES_DEFAULT, seed: int = 0, ddim_steps: int = 1,
                          detectors: Sequence[Any] | None = None, guess_intrinsics: bool = False,
                          augment: bool = True, doubt_signals: bool = False) -> dict[str, Any]:
    """Score the cascade and MediaPipe's world landmarks on every labelled hand (mm).

    guess_intrinsics: give the cascade `predict`'s guess for a photo (60 degrees, lengthened so
    the hand is at least 40 cm away) instead of the true K, as `handviz predict` without --focal
    does (the truth stays in its own camera frame; PA-MPJPE does not care which, the root error does).
    augment: run MediaPipe on the changed copies of each photo first, with the detector that
    found its hands (handviz.pipeline.augment), as `handviz predict` does for photos.
    doubt_signals: each scored hand's row also holds the doubt's inputs per joint
    ("doubt_signals", for handviz.eval.doubt_fit).

    cascade: a handviz.cascade.Cascade, or None to score MediaPipe alone. detectors: objects with
    detect(rgb) -> list[Detection], tried in turn per image (default_detectors() when None; those
    are closed at the end). The cascade runs on the matched detections with `seed`, so reruns
    give the same numbers. PA-MPJPE aligns each prediction to the truth with a similarity fitted
    on the labelled joints, so MediaPipe's world frame (origin near the hand's centre) is no
    handicap. A sample with fewer than MIN_VISIBLE_JOINTS labelled joints is counted, not scored.

    Returns a JSON-ready dict: settings, "overall", "per_dataset" and "per_group" (the images'
    subfolders, when they have any) summaries (see _summary: counts, detection rate, mean errors,
    best-of-N, their ratios to MediaPipe, per-joint errors, spread/error Spearman, 90 % interval
    coverage, median reprojection of joints and mesh, and "calibration", see
    handviz.eval.calibration) and "per_sample" rows. Measures that were not taken are None.
    """
    check_in_range("n_hypotheses", n_hypotheses, HYPOTHESES_MIN, HYPOTHESES_MAX)
    by_image: dict[Path, list[Sample]] = {}
    for sample in samples:
        by_image.setdefault(Path(sample.image_path), []).append(sample)
    own_detectors = detectors is None
    chain = default_detectors() if detectors is None else list(detectors)
    if not chain:
        raise ValueError("detectors is empty; pass None for MediaPipe's default pair")
    # MediaPipe's own pass reads each photo as predict does. The fallback reads it once, as it is:
    # on bordered photos its low threshold finds what is not there (dev set's full photos: 13 more
    # "hands", 4 of them with the right handedness, at 18.7 mm).
    readers = [PhotoReader(chain[0])] + [PhotoReader(detector, border_share=0.0) for detector in chain[1:]]
    rows: list[dict[str, Any]] = []
    try:
        for group in by_image.values():
            rows.extend(_evaluate_image(cascade, group, readers, n_hypotheses, seed, ddim_steps, guess_intrinsics,
                                        augment, doubt_signals))
    finally:
        if own_detectors:
            for detector in chain:
                detector.close()
    datasets = sorted({r["dataset"] for r in rows})
    groups = sorted({r["group"] for r in rows}) if any(r["group"] for r in rows) else []
    return {
        "root": root,
        "seed": seed,
        "n_hypotheses": n_hypotheses,
        "ddim_steps": ddim_steps,
        "cascade": cascade is not None,
        "intrinsics": "still-photo guess" if guess_intrinsics else "true",
        "test_time_augmentation": augment,
        "overall": _summary(rows),
        "per_dataset": {name: _summary([r for r in rows if r["dataset"] == name]) for name in datasets},
        "per_group": {name or ".": _summary([r for r in rows if r["group"] == name]) for name in groups},
        "per_sample": rows,
    }


def blend_count(cascade: Any, n_hypotheses: int) -> int:
    """How many of the hypotheses come first as blends of the depth sources (handviz.posterior),
    the rest leaning one digit each; half where the cascade has no posterior to say."""
    fraction = getattr(getattr(cascade, "posterior", None), "blend_fraction", 0.5)
    return round(fraction * n_hypotheses)


def _evaluate_image(cascade: Any, group: list[Sample], chain: Sequence[PhotoReader], n_hypotheses: int, seed: int,
                    ddim_steps: int, guess_intrinsics: bool, augment: bool,
                    doubt_signals: bool = False) -> list[dict[str, Any]]:
    """The rows of one image's hands, in label order; its unlabelled hands get a row and no detection."""
    labelled = [s for s in group if s.labelled]
    rows = {id(s): _row(s) for s in group}
    if labelled:
        K = labelled[0].K
        rgb = labelled[0].load_rgb()
        gt_uv = [project(s.joints_mm, K) for s in labelled]
        detections, matched, used = _detect_and_match(chain, rgb, gt_uv, [s.handedness for s in labelled])
        picked = [detections[j] for j in matched if j is not None]
        if augment and picked:
            chain[used].augment(rgb, picked)
        K_used = K
        if guess_intrinsics:
            height, width = rgb.shape[:2]
            K_used = still_image_intrinsics(width, height, picked)
        estimates: list[Any] = []
        signals: list[dict] = []
        if cascade is not None and picked:
            estimates = list(cascade.predict(picked, np.asarray(K_used, np.float32), n_hypotheses=n_hypotheses,
                                             ddim_steps=ddim_steps, seed=seed,
                                             **({"doubt_signals": signals} if doubt_signals else {})))
        next_estimate = iter(zip(estimates, signals if doubt_signals else [None] * len(estimates)))
        for sample, uv, j in zip(labelled, gt_uv, matched):
            det = None if j is None else detections[j]
            est, signal = next(next_estimate, (None, None)) if det is not None else (None, None)
            rows[id(sample)] = _score_hand(sample, uv, det, est, K_used, blend_count(cascade, n_hypotheses))
            if det is not None:
                rows[id(sample)]["fallback_detector"] = used > 0
            if signal:
                rows[id(sample)]["doubt_signals"] = {  # shares of ~0.01: six decimals, not two
                    name: None if value is None else [round(float(v), 6) if np.isfinite(v) else None for v in value]
                    for name, value in signal.items()}
    return [rows[id(s)] for s in group]
