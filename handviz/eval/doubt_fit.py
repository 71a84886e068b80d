"""Fit the cloud's doubt (handviz.posterior.JointDoubt) on real photos with 3D truth:
`handviz eval --real DIR --guess-intrinsics --fit-doubt` prints the settings for cascade.json.

Each joint's 90 % radius is a line in the doubt's signals, averaged over the joint's digit (how
far MediaPipe's image z strays, how far the fused digit bends sideways, passes into another or
falls short of a hand's length and, on photos, how far MediaPipe's keypoints move on changed
copies of the photo). The line is fitted by least squares to the estimate's per-joint PA
error, over joints 1-20 of every hand MediaPipe's main detector found (the hands `predict`
gets; the evaluation's lighter fallback detector is left out), once with the test-time
augmentation's signals and once without them (the live app's line). A least-squares line is
the error's mean; DOUBT_SCALE turns it into the radius.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from handviz.posterior import digit_means

#: The fitted mean error times this is the 90 % radius: 1.645 (a normal's 90 % point) x 1.9,
#: chosen on the dev set so that the 90 % ball holds the truth 85-90 % of the time with one
#: digit leaning per hypothesis (weights/MODEL_CARD.md, "One digit per leaning hypothesis").
DOUBT_SCALE = 3.125
#: Fewer joints than this cannot pin seven coefficients.
MIN_JOINTS = 20


def _as_array(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def _joint_table(rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per scored joint (J,): "error", and the signals as JointDoubt.expected_error reads them,
    each averaged over the joint's digit: "image_z", "tta" (NaN where the photo had no changed
    copies), "bend", "overlap" and "shortfall"; and "lost", the hand's share of changed copies
    where MediaPipe lost it (0 where none was read)."""
    table: dict[str, list[float]] = {"error": [], "image_z": [], "tta": [], "bend": [], "overlap": [],
                                     "shortfall": [], "lost": []}
    for row in rows:
        signals = row.get("doubt_signals")
        per_joint = row.get("cascade_per_joint_pa_mm")
        if not signals or per_joint is None or row.get("fallback_detector"):
            continue
        z = digit_means(_as_array(signals["image_z"]))
        k = signals.get("tta_keypoints")
        k = np.full(len(z), np.nan) if k is None else digit_means(_as_array(k))
        bend = digit_means(_as_array(signals["sideways_bend"]))
        overlap = digit_means(_as_array(signals["overlap"]))
        shortfall = digit_means(_as_array(signals["shortfall"]))
        lost = signals.get("tta_lost")
        lost = np.zeros(len(z)) if lost is None else _as_array(lost)
        for j in range(1, len(per_joint)):
            if per_joint[j] is None or not np.isfinite(z[j]):
                continue
            for name, value in (("error", per_joint[j]), ("image_z", z[j]), ("tta", k[j]), ("bend", bend[j]),
                                ("overlap", overlap[j]), ("shortfall", shortfall[j]), ("lost", lost[j])):
                table[name].append(value)
    return {name: np.array(values, float) for name, values in table.items()}


def _line(columns: list[np.ndarray], errors: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients (intercept first) and the fit's Pearson r with the errors."""
    X = np.column_stack([np.ones(len(errors))] + columns)
    coef = np.linalg.lstsq(X, errors, rcond=None)[0]
    return coef, float(np.corrcoef(X @ coef, errors)[0, 1])


def fit_joint_doubt(rows: Sequence[dict[str, Any]], scale: float = DOUBT_SCALE) -> dict[str, Any]:
    """From evaluate_real_samples' per_sample rows (made with doubt_signals=True) -> {"doubt":
    cascade.json's "doubt" settings, "joints": how many joints each line was fitted on,
    "pearson": each line's in-sample Pearson r with the error}. ValueError when there are too
    few joints to fit."""
    t = _joint_table(rows)
    errors = t["error"]
    augmented = np.isfinite(t["tta"])
    if len(errors) < MIN_JOINTS or augmented.sum() < MIN_JOINTS:
        raise ValueError(f"{len(errors)} scored joints ({int(augmented.sum())} with test-time augmentation): "
                         f"need at least {MIN_JOINTS} of each to fit the doubt")
    shape = ("bend", "overlap", "shortfall")
    with_tta, r_tta = _line([t[k][augmented] for k in ("image_z", "tta", *shape, "lost")], errors[augmented])
    without, r_plain = _line([t[k] for k in ("image_z", *shape)], errors)
    doubt = {"base_mm": with_tta[0], "image_z_relative": with_tta[1], "tta_keypoints_relative": with_tta[2],
             "sideways_bend": with_tta[3], "overlap": with_tta[4], "shortfall": with_tta[5],
             "tta_lost": with_tta[6],
             "base_mm_without_tta": without[0], "image_z_relative_without_tta": without[1],
             "sideways_bend_without_tta": without[2], "overlap_without_tta": without[3],
             "shortfall_without_tta": without[4]}
    return {"doubt": {k: round(float(v) * scale, 3) for k, v in doubt.items()},
            "scale": scale,
            "joints": {"with_tta": int(augmented.sum()), "without_tta": int(len(errors))},
            "pearson": {"with_tta": round(r_tta, 3), "without_tta": round(r_plain, 3)}}
