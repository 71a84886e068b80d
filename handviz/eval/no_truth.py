"""Checks of a 3D hand that need no 3D truth: they run on any photo or clip a user has.

- reprojection: do the 3D joints (and the mesh's joints) land on MediaPipe's 2D keypoints, as a
  fraction of the hand's 2D size? The keypoints are the most precise thing we observe.
- mirror consistency: the mirrored photo must give the mirrored hand (PA-MPJPE between the two).
- jitter: on a clip, how much the root-relative joints shake from frame to frame (mm per frame
  of second difference, so steady motion does not count).
- bone proportions: finger lengths over the middle finger's, against published anthropometry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from handviz.eval import metrics as M
from handviz.geometry import project

#: Finger length (MCP to tip along the bones; thumb MCP-IP-TIP) over the middle finger's:
#: means of 51 young adults measured on photographs (Chatzioglou, Pinar and Govsa 2024, Anat Cell
#: Biol 57(2):172-182: thumb 49.5, index 63.9, middle 70.7, ring 65.5, little 53.3 mm, SD 4-6 mm).
FINGER_CHAINS: dict[str, tuple[int, ...]] = {
    "thumb": (2, 3, 4), "index": (5, 6, 7, 8), "middle": (9, 10, 11, 12), "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20)}
PUBLISHED_FINGER_MM = {"thumb": 49.5, "index": 63.9, "middle": 70.7, "ring": 65.5, "pinky": 53.3}
PUBLISHED_FINGER_SD_MM = {"thumb": 5.5, "index": 4.1, "middle": 5.2, "ring": 4.8, "pinky": 4.3}


def hand_size_px(kp2d: np.ndarray) -> float:
    """Diagonal of the keypoints' 2D bounding box (px): the yardstick for 2D errors."""
    kp = np.asarray(kp2d, np.float64)
    return float(np.linalg.norm(kp.max(axis=0) - kp.min(axis=0)))


def reprojection_error(points_3d: np.ndarray, kp2d: np.ndarray, K: np.ndarray) -> dict[str, float]:
    """Median and mean distance (px, and as a fraction of the hand's 2D size) of the projected joints."""
    d = np.linalg.norm(project(points_3d, K).astype(np.float64) - np.asarray(kp2d, np.float64), axis=-1)
    size = max(hand_size_px(kp2d), 1.0)
    return {"median_px": float(np.median(d)), "mean_px": float(d.mean()), "median_frac": float(np.median(d) / size)}


def mirror_gap_mm(joints: np.ndarray, joints_from_mirrored_image: np.ndarray) -> float:
    """PA-MPJPE between a hand and the hand found in the mirrored image, mirrored back (x -> -x)."""
    back = np.asarray(joints_from_mirrored_image, np.float64) * np.array([-1.0, 1.0, 1.0])
    return float(M.pa_mpjpe(np.asarray(joints, np.float64), back)[0])


def jitter_mm(sequence: np.ndarray) -> float:
    """Mean norm of the second difference of root-relative joints over a clip: (T, 21, 3) -> mm.

    A hand held still or moving steadily scores 0; sampling noise or flicker scores high.
    """
    seq = np.asarray(sequence, np.float64)
    if len(seq) < 3:
        return float("nan")
    rel = seq - seq[:, :1]
    acc = rel[2:] - 2 * rel[1:-1] + rel[:-2]
    return float(np.linalg.norm(acc, axis=-1)[:, 1:].mean())


def finger_lengths(joints: np.ndarray) -> dict[str, float]:
    """Per finger, the summed bone lengths from its MCP (thumb: MCP) to its tip, mm."""
    j = np.asarray(joints, np.float64)
    return {name: float(sum(np.linalg.norm(j[b] - j[a]) for a, b in zip(chain[:-1], chain[1:])))
            for name, chain in FINGER_CHAINS.items()}


def proportion_z_scores(joints: np.ndarray) -> dict[str, float]:
    """Each finger's length over the middle finger's, as a z-score against the published ratio.

    The ratio's spread is taken from the published SDs (relative errors added in quadrature),
    so |z| < 2 means a proportion seen in most adults.
    """
    lengths = finger_lengths(joints)
    out = {}
    for name in ("thumb", "index", "ring", "pinky"):
        ratio = lengths[name] / max(lengths["middle"], 1e-6)
        pub = PUBLISHED_FINGER_MM[name] / PUBLISHED_FINGER_MM["middle"]
        rel_sd = np.hypot(PUBLISHED_FINGER_SD_MM[name] / PUBLISHED_FINGER_MM[name],
                          PUBLISHED_FINGER_SD_MM["middle"] / PUBLISHED_FINGER_MM["middle"])
        out[name] = float((ratio - pub) / (pub * rel_sd))
    return out


def summarize_checks(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians over hands of each per-hand check in rows (keys ending _frac, _px, _mm, _z)."""
    keys = sorted({k for r in rows for k, v in r.items() if isinstance(v, float)})
    out: dict[str, Any] = {"num_hands": len(rows)}
    for key in keys:
        values = np.array([r[key] for r in rows if isinstance(r.get(key), float) and np.isfinite(r[key])])
        out[f"median_{key}"] = float(np.median(values)) if len(values) else None
    return out
