"""Which MediaPipe detection belongs to which labelled hand (`eval --real` and `eval --hands3d`).

Whole keypoint sets are compared, not wrists alone, so two interacting hands stay apart; only the
joints a label gives take part, so a hand with hidden joints is matched on the ones it shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from handviz.types import Detection

#: A detection belongs to a labelled hand when its mean 2D keypoint error is below this fraction
#: of the hand's projected box diagonal; a worse one is counted as a miss, not scored.
MATCH_GATE = 0.5
#: Added to the normalised 2D cost of a detection whose handedness disagrees with the label, so
#: that of two detections on one hand the correctly labelled one wins unless it is far worse.
HANDEDNESS_PENALTY = 0.25


def _normalised_distance(det: Detection, uv: np.ndarray) -> float:
    """Mean 2D distance over the labelled joints / their box diagonal; inf when none is labelled."""
    seen = np.all(np.isfinite(uv), axis=1)
    if not seen.any():
        return float("inf")
    uv = uv[seen]
    diag = max(float(np.linalg.norm(uv.max(axis=0) - uv.min(axis=0))), 1.0)
    kp = np.asarray(det.keypoints_2d, np.float64)[seen]
    return float(np.linalg.norm(kp - uv, axis=1).mean()) / diag


def match_detections(detections: Sequence[Detection], gt_uv: Sequence[np.ndarray],
                     handedness: Sequence[str]) -> list[int | None]:
    """For each labelled hand, the index of its detection or None (one detection per hand at most).

    gt_uv: per hand (21, 2) px, the projected ground truth, NaN rows for joints the label lacks.
    Cost: mean 2D keypoint distance over the labelled joints, over their box diagonal, plus
    HANDEDNESS_PENALTY when the handedness disagrees; pairs beyond MATCH_GATE are never made.
    """
    if not detections or not gt_uv:
        return [None] * len(gt_uv)
    dist = np.array([[_normalised_distance(det, np.asarray(uv, np.float64)) for det in detections]
                     for uv in gt_uv])
    mismatch = np.array([[det.handedness != hand for det in detections] for hand in handedness], dtype=float)
    cost = np.where(dist <= MATCH_GATE, dist + HANDEDNESS_PENALTY * mismatch, 1e6)
    out: list[int | None] = [None] * len(gt_uv)
    for i, j in zip(*linear_sum_assignment(cost)):
        if dist[i, j] <= MATCH_GATE:
            out[i] = int(j)
    return out
