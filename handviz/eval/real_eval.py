"""Score any hand predictor on labelled real photos (FreiHAND, HO3D train) with FreiHAND's metrics.

The predictor is a plain function, so this module needs no torch and no model:

    predict_fn(image_rgb (H, W, 3) uint8, K (3, 3)) ->
        (joints_mm (21, 3) or None, verts_mm (V, 3) or None)
        or (joints_mm, verts_mm, hypotheses_mm (N, 21, 3))

joints_mm are root-relative (wrist at the origin) or absolute, MediaPipe order, OpenCV axes;
vertices, if any, share the joints' frame. None for joints means "no hand found".
Hypotheses, when given, add best-of-N and spread calibration to the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from handviz.data.real_sample import Sample
from handviz.eval import metrics as M

PredictFn = Callable[[np.ndarray, np.ndarray], Sequence[Any]]
F_THRESHOLDS_MM = (5.0, 15.0)


def _nan_to_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _vertex_f_scores(
    pred_joints: np.ndarray,
    gt_joints: np.ndarray,
    pred_verts: np.ndarray,
    gt_verts: np.ndarray,
    thresholds: Sequence[float],
) -> tuple[list[float], float | None]:
    """F-scores and PA-MPVPE for one sample, FreiHAND style.

    Same topology: Procrustes on the vertices. Another topology (handviz's mesh is not MANO):
    move the vertices with the similarity fitted on the joints, and skip PA-MPVPE.
    """
    if pred_verts.shape == gt_verts.shape:
        aligned = M.procrustes_align(pred_verts, gt_verts)[0]
        mpvpe = float(M.joint_errors(aligned, gt_verts, align="none").mean())
    else:
        s, rot, t = M.similarity_transform(pred_joints, gt_joints)
        aligned = M.apply_similarity(pred_verts, s, rot, t)[0]
        mpvpe = None
    scores = [float(M.f_score(aligned, gt_verts, th, align=False)[0]) for th in thresholds]
    return scores, mpvpe


def _parse_prediction(
    out: Sequence[Any], sample_id: str
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    if not isinstance(out, (tuple, list)) or len(out) not in (2, 3):
        raise TypeError(f"{sample_id}: predict_fn must return (joints, verts) or (joints, verts, hypotheses)")
    joints = None if out[0] is None else np.asarray(out[0], dtype=np.float64)
    verts = None if out[1] is None else np.asarray(out[1], dtype=np.float64)
    hyps = None if len(out) < 3 or out[2] is None else np.asarray(out[2], dtype=np.float64)
    if joints is not None and joints.shape != (21, 3):
        raise ValueError(f"{sample_id}: predicted joints must be (21, 3); got {joints.shape}")
    if verts is not None and (verts.ndim != 2 or verts.shape[1] != 3):
        raise ValueError(f"{sample_id}: predicted vertices must be (V, 3); got {verts.shape}")
    if hyps is not None and (hyps.ndim != 3 or hyps.shape[1:] != (21, 3)):
        raise ValueError(f"{sample_id}: hypotheses must be (N, 21, 3); got {hyps.shape}")
    return joints, verts, hyps


def _hypothesis_stats(hyps: np.ndarray, joints: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
    """Best-of-N and the per-joint spread/error of one sample, root-relative.

    The wrist is 0 in every root-relative hypothesis, so it is left out of spread and error.
    Samples may carry different hypothesis counts, hence one sample at a time.
    """
    h = (hyps - hyps[:, :1])[None]  # (1, N, 21, 3)
    g = (gt - gt[:1])[None]
    e = (joints - joints[:1])[None]
    return {
        "best_of_n": float(M.best_of_n(h, g, "pa_mpjpe")[0]),
        "spread": M.spread(h[:, :, 1:])[0],  # (20,)
        "error": M.joint_errors(e[:, 1:], g[:, 1:], align="none")[0],  # (20,)
        "interval_coverage_90": M.interval_coverage(h[:, :, 1:], g[:, 1:], 0.9),
    }


def _calibration(stats: list[dict[str, Any]]) -> dict[str, float | None]:
    """metrics.calibration's measures, pooled over samples (see _hypothesis_stats)."""
    spreads = np.stack([s["spread"] for s in stats])
    errors = np.stack([s["error"] for s in stats])
    return {
        "spearman": _nan_to_none(M.spearman(spreads.mean(axis=1), errors.mean(axis=1))),
        "coverage_1x": M.coverage(errors, spreads, 1.0),
        "coverage_2x": M.coverage(errors, spreads, 2.0),
        "interval_coverage_90": float(np.mean([s["interval_coverage_90"] for s in stats])),
    }


def evaluate_on_samples(
    predict_fn: PredictFn,
    samples: Iterable[Sample],
    f_thresholds_mm: Sequence[float] = F_THRESHOLDS_MM,
    limit: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run predict_fn on each labelled sample and summarise, in mm.

    Samples without 3D joints (HO3D's evaluation split) are counted, not predicted.
    Returns a JSON-ready dict: counts (num_samples, num_evaluated, num_no_detection,
    num_no_ground_truth, num_with_verts, detection_rate), mpjpe_mm (root-relative),
    pa_mpjpe_mm, auc_pa_0_50 and auc_rr_0_50 (PCK area, 0-50 mm), pa_mpvpe_mm (same
    topology only), f_at_<t>mm per threshold (on vertices), best_of_n_pa_mpjpe_mm and
    calibration (when hypotheses are given), and per_sample rows. Missing measures are None.
    """
    items: Iterable[Sample] = samples
    if progress:
        from tqdm import tqdm

        total = limit if limit is not None else (len(samples) if isinstance(samples, Sequence) else None)
        items = tqdm(samples, total=total, unit="img")
    thresholds = tuple(float(t) for t in f_thresholds_mm)
    num_samples = num_no_gt = num_no_det = 0
    preds, gts, rows = [], [], []
    f_rows: list[list[float]] = []
    mpvpes: list[float] = []
    spread_rows: list[dict[str, Any]] = []
    best_of_n: list[float] = []
    for sample in items:
        if limit is not None and num_samples >= limit:
            break
        num_samples += 1
        if sample.joints_mm is None:
            num_no_gt += 1
            continue
        joints, verts, hyps = _parse_prediction(predict_fn(sample.load_rgb(), sample.K), sample.sample_id)
        if joints is None:
            num_no_det += 1
            rows.append({"sample_id": sample.sample_id, "detected": False})
            continue
        gt = np.asarray(sample.joints_mm, dtype=np.float64)
        preds.append(joints)
        gts.append(gt)
        row: dict[str, Any] = {
            "sample_id": sample.sample_id,
            "detected": True,
            "mpjpe_mm": float(M.mpjpe(joints, gt)[0]),
            "pa_mpjpe_mm": float(M.pa_mpjpe(joints, gt)[0]),
        }
        if verts is not None and sample.verts_mm is not None:
            scores, mpvpe = _vertex_f_scores(joints, gt, verts, np.asarray(sample.verts_mm, np.float64), thresholds)
            f_rows.append(scores)
            row.update({f"f_at_{t:g}mm": s for t, s in zip(thresholds, scores)})
            if mpvpe is not None:
                mpvpes.append(mpvpe)
                row["pa_mpvpe_mm"] = mpvpe
        if hyps is not None:
            spread_row = _hypothesis_stats(hyps, joints, gt)
            row["best_of_n_pa_mpjpe_mm"] = spread_row.pop("best_of_n")
            best_of_n.append(row["best_of_n_pa_mpjpe_mm"])
            spread_rows.append(spread_row)
        rows.append(row)

    labelled = num_samples - num_no_gt
    report: dict[str, Any] = {
        "num_samples": num_samples,
        "num_evaluated": len(preds),
        "num_no_detection": num_no_det,
        "num_no_ground_truth": num_no_gt,
        "num_with_verts": len(f_rows),
        "detection_rate": len(preds) / labelled if labelled else None,
        "mpjpe_mm": None,
        "pa_mpjpe_mm": None,
        "auc_pa_0_50": None,
        "auc_rr_0_50": None,
        "pa_mpvpe_mm": float(np.mean(mpvpes)) if mpvpes else None,
        **{f"f_at_{t:g}mm": None for t in thresholds},
        "best_of_n_pa_mpjpe_mm": None,
        "calibration": None,
        "per_sample": rows,
    }
    if preds:
        p, g = np.stack(preds), np.stack(gts)
        report["mpjpe_mm"] = float(M.mpjpe(p, g).mean())
        report["pa_mpjpe_mm"] = float(M.pa_mpjpe(p, g).mean())
        report["auc_pa_0_50"] = M.auc_pck(p, g, align="procrustes")
        report["auc_rr_0_50"] = M.auc_pck(p, g, align="root")
    if f_rows:
        for t, mean in zip(thresholds, np.mean(np.asarray(f_rows), axis=0)):
            report[f"f_at_{t:g}mm"] = float(mean)
    if spread_rows:
        report["best_of_n_pa_mpjpe_mm"] = float(np.mean(best_of_n))
        report["calibration"] = _calibration(spread_rows)
    return report
