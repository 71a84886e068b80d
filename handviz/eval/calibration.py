"""Does the cascade's cloud say how wrong its estimate is? Calibration on real photos (`eval --real`).

The cloud is doubt about the hand's shape: every hypothesis sits at the estimate's size and
place, and the app draws per joint the ball around the estimate that holds 90 % of them after a
similarity alignment (HandEstimate.joint_radius_90). Against the truth that asks:

- coverage: the truth, brought into the estimate's frame (the inverse of the similarity that
  maps the estimate onto the truth, fitted on the labelled joints), lies within the ball of
  level q about q of the time (q = 50, 75, 90, 95 %); the wrist, every hypothesis' anchor, is left out;
- ranking: a joint's radius against its PA error (Pearson, Spearman over all hands' joints), a
  hand's mean radius against its PA-MPJPE (Spearman), and the sparsification curve: the mean
  PA-MPJPE of the hands left after dropping the most doubtful ones, beside the oracle that drops
  the worst ones, with the area between them (AUSE, mm);
- the hypotheses themselves: their PA-MPJPE against the estimate's, the source blends (the
  first ones, handviz.posterior) apart from the leaning ones, and how much the palm's length
  (wrist to middle knuckle) varies across one hand's hypotheses (it should not: no hypothesis is
  rescaled).

`hand_calibration` gives one hand's row fields; `calibration_summary` pools rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from handviz.eval import metrics as M
from handviz.geometry import similarity_aligned
from handviz.types import HandJoint

#: Ball levels reported (the app draws the 90 % one).
LEVELS = (0.5, 0.75, 0.9, 0.95)
#: Fractions of the hands dropped along the sparsification curve: 0, 0.05, ..., 0.9.
SPARSIFICATION_FRACTIONS = np.round(np.arange(0.0, 0.9001, 0.05), 2)
#: A truth this close to the ball's edge (mm) counts as inside: at a joint no hypothesis moves,
#: both the radius and the truth's distance are rounding noise around zero.
COVERAGE_TOLERANCE_MM = 1e-6


def _level_key(level: float) -> str:
    return f"{round(100 * level):d}"


def aligned_distances(hypotheses: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """(N, 21) mm: each hypothesis' joints from the estimate's after the similarity that best maps
    it onto the estimate (all 21 joints), as HandEstimate.joint_radius_90 measures them.
    hypotheses: (N, 21, 3), estimate: (21, 3)."""
    est = np.asarray(estimate, np.float64)
    return np.linalg.norm(similarity_aligned(np.asarray(hypotheses, np.float64), est) - est, axis=-1)


def truth_in_estimate_frame(estimate: np.ndarray, truth: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(21, 3): the truth moved by the inverse of the similarity that maps the estimate onto it,
    fitted on the visible joints; NaN rows where the truth is not labelled."""
    est, gt = np.asarray(estimate, np.float64), np.asarray(truth, np.float64)
    s, rot, t = M.similarity_transform(est[visible][None], gt[visible][None])
    out = np.full_like(gt, np.nan)
    out[visible] = ((gt[visible] - t[0]) @ rot[0]) / s[0]  # R^T (x - t) / s, row vectors
    return out


def palm_length_ratio(hypotheses: np.ndarray) -> float:
    """Longest over shortest wrist-to-middle-knuckle length across one hand's hypotheses (N, 21, 3)."""
    h = np.asarray(hypotheses, np.float64)
    palm = np.linalg.norm(h[:, HandJoint.MIDDLE_MCP] - h[:, HandJoint.WRIST], axis=-1)
    return float(palm.max() / max(palm.min(), 1e-12))


def hand_calibration(estimate: np.ndarray, hypotheses: np.ndarray, truth: np.ndarray, visible: np.ndarray,
                     per_hypothesis_pa_mm: np.ndarray, blends: int) -> dict[str, Any]:
    """One scored hand's calibration fields for the report's row.

    estimate (21, 3) and hypotheses (N, 21, 3): the cascade's, camera frame; truth (21, 3) with
    visible (21,) bool saying which joints are labelled; per_hypothesis_pa_mm (N,): each
    hypothesis' PA-MPJPE on the visible joints, the first `blends` of them the source blends, the
    rest leaning. Radii are per joint, all 21 (None never occurs);
    the ball counts cover the visible joints but the wrist.
    """
    vis = np.asarray(visible, bool)
    dist = aligned_distances(hypotheses, estimate)  # (N, 21)
    radii = {q: np.quantile(dist, q, axis=0) for q in LEVELS}
    truth_gap = np.linalg.norm(truth_in_estimate_frame(estimate, truth, vis) - np.asarray(estimate, np.float64),
                               axis=-1)
    scored = vis.copy()
    scored[HandJoint.WRIST] = False
    return {
        "cascade_radius_90_mm": np.round(radii[0.9], 3).tolist(),
        "cascade_mean_radius_90_mm": float(radii[0.9][1:].mean()),
        "cascade_ball_joints": int(scored.sum()),
        "cascade_ball_covered": {_level_key(q): int(np.sum(truth_gap[scored] <= radii[q][scored]
                                                           + COVERAGE_TOLERANCE_MM)) for q in LEVELS},
        "cascade_hypothesis_pa_mpjpe_blends_mm": float(np.mean(per_hypothesis_pa_mm[:blends])) if blends else None,
        "cascade_hypothesis_pa_mpjpe_leaning_mm": (float(np.mean(per_hypothesis_pa_mm[blends:]))
                                                   if blends < len(per_hypothesis_pa_mm) else None),
        "cascade_palm_length_max_over_min": palm_length_ratio(hypotheses),
    }


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _ratio(num: list[float], den: list[float]) -> float | None:
    if not num or not den or np.mean(den) <= 0:
        return None
    return float(np.mean(num) / np.mean(den))


def calibration_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pool the hands' calibration fields (rows with a cascade PA-MPJPE); None where too few."""
    scored = [r for r in rows if r.get("cascade_pa_mpjpe_mm") is not None and r.get("cascade_radius_90_mm")]
    out: dict[str, Any] = {"num_hands": len(scored)}
    if not scored:
        return out
    radius, error = [], []
    for r in scored:
        for j in range(1, 21):
            if r["cascade_per_joint_pa_mm"][j] is not None:
                radius.append(r["cascade_radius_90_mm"][j])
                error.append(r["cascade_per_joint_pa_mm"][j])
    out["joint_radius_error_pearson"] = _finite_or_none(M.pearson(np.array(radius), np.array(error)))
    out["joint_radius_error_spearman"] = _finite_or_none(M.spearman(np.array(radius), np.array(error)))
    hand_radius = np.array([r["cascade_mean_radius_90_mm"] for r in scored])
    hand_error = np.array([r["cascade_pa_mpjpe_mm"] for r in scored])
    out["hand_radius_error_spearman"] = _finite_or_none(M.spearman(hand_radius, hand_error))
    joints = sum(r["cascade_ball_joints"] for r in scored)
    out["ball_coverage"] = {_level_key(q): (sum(r["cascade_ball_covered"][_level_key(q)] for r in scored) / joints
                                            if joints else None) for q in LEVELS}
    out["mean_radius_90_mm"] = float(hand_radius.mean())
    curve, oracle = M.sparsification(hand_radius, hand_error, SPARSIFICATION_FRACTIONS)
    out["sparsification"] = {"fractions": SPARSIFICATION_FRACTIONS.tolist(),
                             "by_radius_mm": np.round(curve, 4).tolist(), "oracle_mm": np.round(oracle, 4).tolist()}
    out["ause_mm"] = M.ause(SPARSIFICATION_FRACTIONS, curve, oracle)
    for kind in ("blends", "leaning"):
        pairs = [(r[f"cascade_hypothesis_pa_mpjpe_{kind}_mm"], r["cascade_pa_mpjpe_mm"]) for r in scored
                 if r.get(f"cascade_hypothesis_pa_mpjpe_{kind}_mm") is not None]
        out[f"hypothesis_pa_mpjpe_{kind}_mm"] = float(np.mean([h for h, _ in pairs])) if pairs else None
        out[f"ratio_hypothesis_{kind}_to_estimate"] = _ratio([h for h, _ in pairs], [e for _, e in pairs])
    out["median_palm_length_max_over_min"] = float(np.median([r["cascade_palm_length_max_over_min"]
                                                              for r in scored]))
    return out
