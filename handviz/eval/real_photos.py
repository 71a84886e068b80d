"""Score the cascade against MediaPipe's own 3D on real photos with 3D truth (`handviz eval --real`).

Every labelled hand takes its MediaPipe detection (handviz.eval.hands3d.match_detections), the
cascade runs on exactly those detections, and both are scored on the same hands, so the ratio
is like for like. Besides the 3D errors the report carries what a user would check without
truth: how well the joints and the mesh reproject onto MediaPipe's keypoints, and whether the
hypotheses' spread ranks and covers the error (see handviz.eval.no_truth).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handviz.data.real_sample import Sample
from handviz.eval import metrics as M
from handviz.eval.depth_modes import depth_fit_errors
from handviz.eval.hands3d import match_detections
from handviz.eval.no_truth import reprojection_error
from handviz.geometry import project
from handviz.limits import (
    HYPOTHESES_DEFAULT,
    HYPOTHESES_MAX,
    HYPOTHESES_MIN,
    check_in_range,
)
from handviz.pipeline.intrinsics import still_image_intrinsics
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
              "cascade_interval_coverage_90", "cascade_radius_coverage_90", "cascade_mean_spread_mm",
              "cascade_pa_mpjpe_finger_depth_fit_mm", "cascade_pa_mpjpe_depth_fit_mm")
_MEDIAN_KEYS = ("cascade_reprojection_frac", "cascade_reprojection_px", "mesh_reprojection_frac",
                "mesh_reprojection_px")


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, and means over the detected hands; the ratio uses only hands both methods were scored on."""
    detected = [r for r in rows if r["detected"]]
    out: dict[str, Any] = {
        "num_hands": len(rows),
        "num_detected": len(detected),
        "num_missed": len(rows) - len(detected),
        "detection_rate": len(detected) / len(rows) if rows else None,
        "num_handedness_wrong": sum(1 for r in detected if not r["handedness_agrees"]),
        "num_fallback_detections": sum(1 for r in detected if r.get("fallback_detector")),
    }
    for key in _MEAN_KEYS:
        out[key] = _mean(detected, key)
    for key in _MEDIAN_KEYS:
        out[f"median_{key}"] = _median(detected, key)
    both = [r for r in detected if r.get("cascade_pa_mpjpe_mm") is not None
            and r.get("mediapipe_pa_mpjpe_mm") is not None]
    ratio = best_ratio = None
    if both:
        mp = float(np.mean([r["mediapipe_pa_mpjpe_mm"] for r in both]))
        if mp > 0:
            ratio = float(np.mean([r["cascade_pa_mpjpe_mm"] for r in both])) / mp
            best = [r["cascade_best_of_n_pa_mpjpe_mm"] for r in both]
            best_ratio = float(np.mean(best)) / mp
    out["ratio_cascade_to_mediapipe"] = ratio
    out["ratio_best_of_n_to_mediapipe"] = best_ratio
    scored = [r for r in detected if r.get("cascade_mean_spread_mm") is not None]
    out["spread_error_spearman"] = _finite_or_none(M.spearman(
        np.array([r["cascade_mean_spread_mm"] for r in scored]),
        np.array([r["cascade_pa_mpjpe_mm"] for r in scored]))) if len(scored) > 2 else None
    for who in ("cascade", "mediapipe"):
        per_joint = [r[f"{who}_per_joint_pa_mm"] for r in detected if r.get(f"{who}_per_joint_pa_mm")]
        out[f"{who}_per_joint_pa_mm"] = np.round(np.mean(per_joint, axis=0), 2).tolist() if per_joint else None
    return out


def _mesh_joints(vertices: np.ndarray) -> np.ndarray | None:
    """The mesh's 21 joints by the shipped joint regressor, or None when the asset has none."""
    from handviz.hand.asset import load_hand_asset

    regressor = load_hand_asset().joint_regressor
    if regressor is None or vertices.shape[0] != regressor.shape[1]:
        return None
    return regressor.astype(np.float64) @ np.asarray(vertices, np.float64)


def _score_cascade(row: dict[str, Any], est: Any, gt: np.ndarray, K: np.ndarray) -> None:
    joints = np.asarray(est.joints_3d, np.float64)
    hyps = np.asarray(est.joint_hypotheses, np.float64)
    row["cascade_pa_mpjpe_mm"] = _finite_or_none(M.pa_mpjpe(joints, gt)[0])
    row["cascade_mpjpe_mm"] = _finite_or_none(M.mpjpe(joints, gt)[0])
    row["cascade_best_of_n_pa_mpjpe_mm"] = _finite_or_none(M.best_of_n(hyps[None], gt[None])[0])
    row["cascade_root_error_mm"] = _finite_or_none(np.linalg.norm(joints[0] - gt[0]))
    if np.all(np.isfinite(joints)) and np.all(joints[:, 2] > 0):  # where the error is (depth_modes)
        fits = depth_fit_errors(joints, gt)
        row["cascade_pa_mpjpe_finger_depth_fit_mm"] = _finite_or_none(fits["finger_modes"])
        row["cascade_pa_mpjpe_depth_fit_mm"] = _finite_or_none(fits["every_depth"])
    row["cascade_per_joint_pa_mm"] = np.round(M.joint_errors(joints[None], gt[None], align="procrustes")[0],
                                              2).tolist()
    row["cascade_mean_spread_mm"] = _finite_or_none(np.mean(np.asarray(est.joint_spread, np.float64)[1:]))
    rel_h = (hyps - hyps[:, :1])[None, :, 1:]
    rel_gt = (gt - gt[:1])[1:]
    row["cascade_interval_coverage_90"] = float(M.interval_coverage(rel_h, rel_gt[None], 0.9))
    # The app's 90 % ball per joint: does the true joint lie within it (root-relative)?
    radius = np.quantile(np.linalg.norm(rel_h[0] - rel_h[0].mean(0), axis=-1), 0.9, axis=0)
    error = np.linalg.norm((joints - joints[:1])[1:] - rel_gt, axis=-1)
    row["cascade_radius_coverage_90"] = float(np.mean(error <= radius))
    kp = np.asarray(est.keypoints_2d, np.float64)
    rep = reprojection_error(joints, kp, K)
    row["cascade_reprojection_px"], row["cascade_reprojection_frac"] = rep["median_px"], rep["median_frac"]
    mesh_joints = _mesh_joints(np.asarray(est.vertices, np.float64))
    if mesh_joints is not None:
        rep = reprojection_error(mesh_joints, kp, K)
        row["mesh_reprojection_px"], row["mesh_reprojection_frac"] = rep["median_px"], rep["median_frac"]


def _score_hand(sample: Sample, gt_uv: np.ndarray, det: Detection | None, est: Any,
                K_used: np.ndarray) -> dict[str, Any]:
    """One labelled hand's row: what MediaPipe and (when given) the cascade got, in mm.

    K_used: the intrinsics the cascade was given (reprojection is judged with them)."""
    row: dict[str, Any] = {"dataset": sample.dataset, "sample_id": sample.sample_id,
                           "handedness": sample.handedness, "detected": det is not None}
    if det is None:
        return row
    gt = np.asarray(sample.joints_mm, np.float64)
    world = np.asarray(det.world_3d, np.float64)
    row["handedness_agrees"] = det.handedness == sample.handedness
    row["keypoint_error_px"] = _finite_or_none(
        np.linalg.norm(np.asarray(det.keypoints_2d, np.float64) - gt_uv, axis=1).mean())
    if np.all(np.isfinite(world)):
        row["mediapipe_pa_mpjpe_mm"] = _finite_or_none(M.pa_mpjpe(world, gt)[0])
        row["mediapipe_mpjpe_mm"] = _finite_or_none(M.mpjpe(world, gt)[0])
        row["mediapipe_per_joint_pa_mm"] = np.round(
            M.joint_errors(world[None], gt[None], align="procrustes")[0], 2).tolist()
    if est is not None:
        _score_cascade(row, est, gt, np.asarray(K_used, np.float64))
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
                          detectors: Sequence[Any] | None = None, guess_intrinsics: bool = False) -> dict[str, Any]:
    """Score the cascade and MediaPipe's world landmarks on every labelled hand (mm).

    guess_intrinsics: give the cascade `predict`'s guess for a photo (60 degrees, lengthened so
    the hand is at least 40 cm away) instead of the true K, as `handviz predict` without --focal
    does (the truth stays in its own camera frame; PA-MPJPE does not care which, the root error does).

    cascade: a handviz.cascade.Cascade, or None to score MediaPipe alone. detectors: objects with
    detect(rgb) -> list[Detection], tried in turn per image (default_detectors() when None; those
    are closed at the end). The cascade runs on the matched detections with `seed`, so reruns
    give the same numbers. PA-MPJPE aligns each prediction to the truth with a similarity, so
    MediaPipe's world frame (origin near the hand's centre) is no handicap.

    Returns a JSON-ready dict: settings, "overall" and "per_dataset" summaries (see _summary:
    counts, detection rate, mean errors, best-of-N, their ratios to MediaPipe, per-joint errors,
    spread/error Spearman, 90 % interval coverage, median reprojection of joints and mesh) and
    "per_sample" rows. Measures that were not taken are None.
    """
    check_in_range("n_hypotheses", n_hypotheses, HYPOTHESES_MIN, HYPOTHESES_MAX)
    by_image: dict[Path, list[Sample]] = {}
    for sample in samples:
        by_image.setdefault(Path(sample.image_path), []).append(sample)
    own_detectors = detectors is None
    chain = default_detectors() if detectors is None else list(detectors)
    if not chain:
        raise ValueError("detectors is empty; pass None for MediaPipe's default pair")
    rows: list[dict[str, Any]] = []
    try:
        for group in by_image.values():
            K = group[0].K
            gt_uv = [project(s.joints_mm, K) for s in group]
            detections, matched, used = _detect_and_match(chain, group[0].load_rgb(), gt_uv,
                                                          [s.handedness for s in group])
            picked = [detections[j] for j in matched if j is not None]
            estimates: list[Any] = []
            K_used = K
            if guess_intrinsics:
                height, width = group[0].load_rgb().shape[:2]
                K_used = still_image_intrinsics(width, height, picked)
            if cascade is not None and picked:
                estimates = list(cascade.predict(picked, np.asarray(K_used, np.float32), n_hypotheses=n_hypotheses,
                                                 ddim_steps=ddim_steps, seed=seed))
            next_estimate = iter(estimates)
            for sample, uv, j in zip(group, gt_uv, matched):
                det = None if j is None else detections[j]
                est = next(next_estimate, None) if det is not None else None
                row = _score_hand(sample, uv, det, est, K_used)
                if det is not None:
                    row["fallback_detector"] = used > 0
                rows.append(row)
    finally:
        if own_detectors:
            for detector in chain:
                detector.close()
    datasets = sorted({r["dataset"] for r in rows})
    return {
        "root": root,
        "seed": seed,
        "n_hypotheses": n_hypotheses,
        "ddim_steps": ddim_steps,
        "cascade": cascade is not None,
        "intrinsics": "still-photo guess" if guess_intrinsics else "true",
        "overall": _summary(rows),
        "per_dataset": {name: _summary([r for r in rows if r["dataset"] == name]) for name in datasets},
        "per_sample": rows,
    }
