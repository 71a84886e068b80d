"""Hand pose and shape metrics, batched numpy, with FreiHAND's definitions.

Every error is in the unit of its input (millimetres across handviz). Functions return one
value per sample, shape (B,), so callers can both average and inspect outliers.

Where we differ from FreiHAND's reference code, on purpose:
- Procrustes alignment allows only proper rotations (det R = +1). FreiHAND's script uses
  scipy's `orthogonal_procrustes`, which may return a reflection; a mirrored hand (a left
  hand passed as right) must not look perfect after alignment.
- F-score thresholds are in millimetres (FreiHAND's are in metres: 0.005 and 0.015).

Calibration measures ask whether the hypotheses' spread predicts the error: rank correlation
between a sample's spread and its error, and how often the truth falls inside the spread.
"""

from __future__ import annotations

import warnings
from typing import Callable, Literal

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import pearsonr, spearmanr

Align = Literal["none", "root", "procrustes"]
_EPS = 1e-12


def _as_batch(points: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (B, K, 3) or (K, 3); got {arr.shape}")
    return arr


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = _as_batch(pred, "pred"), _as_batch(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} must have the same shape")
    return p, g


def similarity_transform(
    pred: np.ndarray, gt: np.ndarray, scale: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The similarity (s, R, t) minimising sum ||s R pred_i + t - gt_i||^2 (Umeyama, 1991).

    pred, gt: (B, K, 3). Returns s: (B,), R: (B, 3, 3) with det R = +1, t: (B, 3).
    A reflection is never returned: when the best orthogonal map is improper, the last
    singular direction is flipped (the "det fix"), which is the best proper rotation.
    """
    p, g = _check_pair(pred, gt)
    mu_p, mu_g = p.mean(axis=1, keepdims=True), g.mean(axis=1, keepdims=True)
    pc, gc = p - mu_p, g - mu_g
    cov = np.einsum("bki,bkj->bij", pc, gc)  # (B, 3, 3) = pc^T gc
    u, sing, vt = np.linalg.svd(cov)
    v = np.swapaxes(vt, 1, 2)
    ut = np.swapaxes(u, 1, 2)
    d = np.sign(np.linalg.det(v @ ut))
    d[d == 0] = 1.0
    fix = np.ones_like(sing)
    fix[:, 2] = d
    rot = v @ (fix[:, :, None] * ut)  # V diag(1, 1, d) U^T
    if scale:
        var_p = np.sum(pc**2, axis=(1, 2))
        s = np.sum(sing * fix, axis=1) / np.maximum(var_p, _EPS)
    else:
        s = np.ones(p.shape[0])
    t = mu_g[:, 0] - s[:, None] * np.einsum("bij,bj->bi", rot, mu_p[:, 0])
    return s, rot, t


def apply_similarity(points: np.ndarray, s: np.ndarray, rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    """points: (B, P, 3) -> s R points + t, (B, P, 3). Lets a joint-fitted transform move a mesh."""
    pts = _as_batch(points, "points")
    return s[:, None, None] * np.einsum("bij,bpj->bpi", rot, pts) + t[:, None, :]


def procrustes_align(pred: np.ndarray, gt: np.ndarray, scale: bool = True) -> np.ndarray:
    """pred aligned to gt by the best similarity with a proper rotation. pred, gt: (B, K, 3) -> (B, K, 3)."""
    s, rot, t = similarity_transform(pred, gt, scale=scale)
    return apply_similarity(pred, s, rot, t)


def joint_errors(pred: np.ndarray, gt: np.ndarray, align: Align = "root", root: int = 0) -> np.ndarray:
    """Euclidean error per point, (B, K), after `align`.

    align: "none" (as given), "root" (both made relative to point `root`, the wrist for
    joints), "procrustes" (pred similarity-aligned to gt).
    """
    p, g = _check_pair(pred, gt)
    if align == "root":
        p = p - p[:, root : root + 1]
        g = g - g[:, root : root + 1]
    elif align == "procrustes":
        p = procrustes_align(p, g)
    elif align != "none":
        raise ValueError(f"align must be 'none', 'root' or 'procrustes'; got {align!r}")
    return np.linalg.norm(p - g, axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = 0) -> np.ndarray:
    """Mean per-joint position error, (B,). Root-relative at joint `root` (the wrist) unless root is None."""
    if root is None:
        return joint_errors(pred, gt, align="none").mean(axis=1)
    return joint_errors(pred, gt, align="root", root=root).mean(axis=1)


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean per-joint error after similarity Procrustes alignment, (B,). pred, gt: (B, 21, 3)."""
    return joint_errors(pred, gt, align="procrustes").mean(axis=1)


def pa_mpvpe(pred_verts: np.ndarray, gt_verts: np.ndarray) -> np.ndarray:
    """Mean per-vertex error after Procrustes on the vertices themselves, (B,). Needs the same topology: (B, V, 3)."""
    return joint_errors(pred_verts, gt_verts, align="procrustes").mean(axis=1)


def precision_recall(pred: np.ndarray, gt: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Point-set precision and recall at `threshold`, each (B,), with no alignment.

    precision: fraction of predicted points whose nearest gt point is closer than threshold;
    recall: fraction of gt points whose nearest predicted point is closer than threshold.
    pred: (B, P, 3), gt: (B, G, 3); P and G may differ (nearest neighbours, not correspondences).
    """
    p, g = _as_batch(pred, "pred"), _as_batch(gt, "gt")
    if p.shape[0] != g.shape[0]:
        raise ValueError(f"pred and gt batch sizes differ: {p.shape[0]} vs {g.shape[0]}")
    precision = np.empty(p.shape[0])
    recall = np.empty(p.shape[0])
    for b in range(p.shape[0]):
        d_pred_to_gt, _ = cKDTree(g[b]).query(p[b])
        d_gt_to_pred, _ = cKDTree(p[b]).query(g[b])
        precision[b] = np.mean(d_pred_to_gt < threshold)
        recall[b] = np.mean(d_gt_to_pred < threshold)
    return precision, recall


def f_score(pred: np.ndarray, gt: np.ndarray, threshold_mm: float, align: bool = True) -> np.ndarray:
    """F-score at threshold_mm, (B,): harmonic mean of precision and recall (0 when both are 0).

    With align=True (FreiHAND's "aligned F-score"), pred is first Procrustes-aligned to gt,
    which needs matching point counts; to align a mesh of another topology, move it with
    `similarity_transform` fitted on the joints and pass align=False.
    """
    p, g = _as_batch(pred, "pred"), _as_batch(gt, "gt")
    if align:
        p = procrustes_align(p, g)
    precision, recall = precision_recall(p, g, threshold_mm)
    denom = precision + recall
    return np.where(denom > 0, 2 * precision * recall / np.maximum(denom, _EPS), 0.0)


_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mpjpe": mpjpe,
    "pa_mpjpe": pa_mpjpe,
    "pa_mpvpe": pa_mpvpe,
}


def per_hypothesis_error(hyps: np.ndarray, gt: np.ndarray, metric: str = "pa_mpjpe") -> np.ndarray:
    """Error of every hypothesis, (B, N). hyps: (B, N, K, 3), gt: (B, K, 3); metric: mpjpe | pa_mpjpe | pa_mpvpe."""
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}; got {metric!r}")
    h = np.asarray(hyps, dtype=np.float64)
    g = _as_batch(gt, "gt")
    if h.ndim != 4 or h.shape[0] != g.shape[0] or h.shape[2:] != g.shape[1:]:
        raise ValueError(f"hyps must be (B, N, K, 3) matching gt {g.shape}; got {h.shape}")
    b, n = h.shape[:2]
    flat = h.reshape(b * n, *h.shape[2:])
    g_rep = np.repeat(g, n, axis=0)
    return _METRICS[metric](flat, g_rep).reshape(b, n)


def best_of_n(hyps: np.ndarray, gt: np.ndarray, metric: str = "pa_mpjpe") -> np.ndarray:
    """Error of the best hypothesis per sample, (B,): an oracle measure of what the samples cover."""
    return per_hypothesis_error(hyps, gt, metric).min(axis=1)


def pck_curve(errors: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of points with error <= each threshold, (T,), averaged per point index then over points (FreiHAND).

    errors: (B, K) distances; thresholds: (T,).
    """
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError(f"errors must be (B, K); got {e.shape}")
    th = np.asarray(thresholds, dtype=np.float64)
    per_point = (e[None, :, :] <= th[:, None, None]).mean(axis=1)  # (T, K)
    return per_point.mean(axis=1)


def auc_pck(
    pred: np.ndarray,
    gt: np.ndarray,
    align: Align = "procrustes",
    max_mm: float = 50.0,
    steps: int = 100,
) -> float:
    """Area under the PCK curve for thresholds linspace(0, max_mm, steps), normalised to [0, 1].

    HO3D and FreiHAND report it on 0-50 mm with 100 steps. pred, gt: (B, K, 3).
    """
    thresholds = np.linspace(0.0, max_mm, steps)
    curve = pck_curve(joint_errors(pred, gt, align=align), thresholds)
    return _trapezoid(curve, thresholds) / (thresholds[-1] - thresholds[0])


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoid-rule integral (np.trapz is deprecated in numpy 2, np.trapezoid missing in 1.x)."""
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def spread(hyps: np.ndarray, kind: Literal["mean", "std"] = "mean") -> np.ndarray:
    """Per-joint spread of the hypotheses around their mean, (B, K). hyps: (B, N, K, 3).

    kind="mean": mean Euclidean distance to the hypotheses' mean;
    kind="std": root mean squared distance (the 3D standard deviation).
    """
    h = np.asarray(hyps, dtype=np.float64)
    if h.ndim != 4 or h.shape[-1] != 3:
        raise ValueError(f"hyps must be (B, N, K, 3); got {h.shape}")
    dist = np.linalg.norm(h - h.mean(axis=1, keepdims=True), axis=-1)  # (B, N, K)
    if kind == "mean":
        return dist.mean(axis=1)
    if kind == "std":
        return np.sqrt((dist**2).mean(axis=1))
    raise ValueError(f"kind must be 'mean' or 'std'; got {kind!r}")


def _correlatable(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """x, y as flat float arrays of one length; None when either is constant or shorter than 2."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x {x.shape} and y {y.shape} must have the same length")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return x, y


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of two (B,) arrays; nan when either is constant or B < 2."""
    pair = _correlatable(x, y)
    if pair is None:
        return float("nan")
    x, y = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(x, y).statistic)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two (B,) arrays; nan when either is constant or B < 2."""
    pair = _correlatable(x, y)
    return float("nan") if pair is None else float(pearsonr(*pair).statistic)


def sparsification(uncertainty: np.ndarray, errors: np.ndarray,
                   fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sparsification curve and its oracle, each (F,): the mean error of the samples left after
    removing the fraction f (of B, rounded) with the largest uncertainty, or with the largest
    error for the oracle. uncertainty, errors: (B,); fractions: (F,) in [0, 1). One sample is
    always kept. A spread that ranks the error well gives a curve that falls like the oracle's.
    """
    u, e = np.asarray(uncertainty, np.float64).ravel(), np.asarray(errors, np.float64).ravel()
    if u.shape != e.shape or u.size == 0:
        raise ValueError(f"uncertainty {u.shape} and errors {e.shape} must be the same non-empty length")
    removed = [min(int(round(float(f) * u.size)), u.size - 1) for f in np.asarray(fractions, np.float64)]
    by_spread = e[np.argsort(-u, kind="stable")]
    by_error = np.sort(e)[::-1]
    return (np.array([by_spread[m:].mean() for m in removed]), np.array([by_error[m:].mean() for m in removed]))


def ause(fractions: np.ndarray, curve: np.ndarray, oracle: np.ndarray) -> float:
    """Area between a sparsification curve and its oracle (trapezoid over the fractions), in the
    errors' unit: 0 when the spread ranks the samples exactly as their errors do."""
    return _trapezoid(np.asarray(curve, np.float64) - np.asarray(oracle, np.float64),
                      np.asarray(fractions, np.float64))


def coverage(errors: np.ndarray, spreads: np.ndarray, k: float) -> float:
    """Fraction of joints whose error is within k times their spread. errors, spreads: (B, K)."""
    e, s = np.asarray(errors, dtype=np.float64), np.asarray(spreads, dtype=np.float64)
    if e.shape != s.shape:
        raise ValueError(f"errors {e.shape} and spreads {s.shape} must have the same shape")
    return float(np.mean(e <= k * s))


def interval_coverage(hyps: np.ndarray, gt: np.ndarray, level: float = 0.9) -> float:
    """Fraction of gt coordinates inside the hypotheses' central `level` interval, per axis.

    hyps: (B, N, K, 3), gt: (B, K, 3). A calibrated sampler gives about `level`; far below
    means over-confident hypotheses, far above means over-dispersed ones.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level}")
    h = np.asarray(hyps, dtype=np.float64)
    g = _as_batch(gt, "gt")
    lo, hi = np.quantile(h, [(1 - level) / 2, (1 + level) / 2], axis=1)  # each (B, K, 3)
    return float(np.mean((g >= lo) & (g <= hi)))


def calibration(hyps: np.ndarray, gt: np.ndarray, estimate: np.ndarray | None = None) -> dict[str, float]:
    """How well the hypotheses' spread predicts the error of the estimate.

    hyps: (B, N, K, 3) and gt: (B, K, 3) in one frame (align them first, e.g. root-relative);
    estimate: (B, K, 3), default the hypotheses' mean. Returns
    spearman (per-sample mean spread vs per-sample mean joint error), coverage_1x and
    coverage_2x (joint error <= k x that joint's spread), interval_coverage_90.
    """
    h = np.asarray(hyps, dtype=np.float64)
    est = h.mean(axis=1) if estimate is None else _as_batch(estimate, "estimate")
    errors = joint_errors(est, gt, align="none")  # (B, K)
    spreads = spread(h)  # (B, K)
    return {
        "spearman": spearman(spreads.mean(axis=1), errors.mean(axis=1)),
        "coverage_1x": coverage(errors, spreads, 1.0),
        "coverage_2x": coverage(errors, spreads, 2.0),
        "interval_coverage_90": interval_coverage(h, gt, 0.9),
    }
