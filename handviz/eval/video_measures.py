"""Measures of a hand tracked through a video (numpy): what a sequence shows that a photo cannot.

- per-frame PA-MPJPE on the labelled joints (handviz.eval.metrics' definition), so a video's
  frames compare with the same frames run as photos;
- acceleration error: each frame's joints aligned to the truth by a similarity (on the joints
  labelled in all three frames of a triplet), then the norm of the difference between the
  predicted and the true second difference, mean over joints (mm/frame^2). A hand that shakes
  scores high; a smooth hand that follows the truth scores the labels' own noise;
- bone-length variation: per bone, its length over the palm's (wrist to middle MCP) in every
  frame of a video, the coefficient of variation across the frames, median over the 19 other
  bones. A person's bones do not change length: 0 for a rigid skeleton.

Shapes: sequences (T, 21, 3) mm, NaN rows where a joint is not labelled or a frame has no hand.
"""

from __future__ import annotations

import numpy as np

from handviz.eval import metrics as M
from handviz.types import JOINT_PARENTS

#: The bone the others are measured against: wrist to middle MCP, the palm's length.
PALM_BONE = (0, 9)
#: (parent, child) of every bone but the palm's.
MEASURED_BONES: tuple[tuple[int, int], ...] = tuple(
    (p, c) for c, p in enumerate(JOINT_PARENTS) if p >= 0 and (p, c) != PALM_BONE)


def _finite(points: np.ndarray) -> np.ndarray:
    """(..., 21) bool: the joints with finite coordinates."""
    return np.all(np.isfinite(points), axis=-1)


def pa_errors(pred: np.ndarray, gt: np.ndarray, min_joints: int = 6) -> np.ndarray:
    """(T,) mm: each frame's PA-MPJPE over the joints labelled and predicted; NaN where fewer
    than min_joints are both."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    out = np.full(len(pred), np.nan)
    for t in range(len(pred)):
        both = _finite(pred[t]) & _finite(gt[t])
        if both.sum() >= min_joints:
            out[t] = M.pa_mpjpe(pred[t][both], gt[t][both])[0]
    return out


def acceleration_error(pred: np.ndarray, gt: np.ndarray, min_joints: int = 6) -> tuple[float, int]:
    """(mean mm/frame^2, number of triplets) over every three consecutive frames with min_joints
    joints labelled and predicted in all three; NaN and 0 when there is none."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    values = []
    for t in range(1, len(pred) - 1):
        both = np.all([_finite(pred[k]) & _finite(gt[k]) for k in (t - 1, t, t + 1)], axis=0)
        if both.sum() < min_joints:
            continue
        g = gt[t - 1:t + 2][:, both]
        p = M.procrustes_align(pred[t - 1:t + 2][:, both], g)
        accel = (p[2] - 2 * p[1] + p[0]) - (g[2] - 2 * g[1] + g[0])
        values.append(float(np.linalg.norm(accel, axis=-1).mean()))
    return (float(np.mean(values)) if values else float("nan")), len(values)


def bone_length_variation(sequence: np.ndarray, min_frames: int = 3) -> float:
    """Median over bones of the coefficient of variation of bone length / palm length across the
    frames of one sequence (T, 21, 3) where both are known; NaN with fewer than min_frames."""
    seq = np.asarray(sequence, np.float64)
    palm = np.linalg.norm(seq[:, PALM_BONE[1]] - seq[:, PALM_BONE[0]], axis=-1)
    cvs = []
    for parent, child in MEASURED_BONES:
        ratio = np.linalg.norm(seq[:, child] - seq[:, parent], axis=-1) / palm
        ratio = ratio[np.isfinite(ratio)]
        if len(ratio) >= min_frames:
            cvs.append(float(ratio.std() / ratio.mean()))
    return float(np.median(cvs)) if cvs else float("nan")
