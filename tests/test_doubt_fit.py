"""Fitting the cloud's doubt (handviz.eval.doubt_fit) from evaluate_real_samples' rows."""

from __future__ import annotations

import numpy as np
import pytest

from handviz.eval.doubt_fit import DOUBT_SCALE, fit_joint_doubt
from handviz.posterior import JointDoubt, digit_means


def _rows(n_hands: int, seed: int = 0, fallback_error: float | None = None) -> list[dict]:
    """Hands whose per-joint error is exactly 3 + 20 z + 50 k + 7 b + 11 o + 13 s + 9 l (with TTA)
    or, where a photo had no TTA, 3 + 20 z + 7 b + 11 o + 13 s, with z, k, b, o and s each averaged
    over the joint's digit as the doubt reads them and l the hand's share of copies where MediaPipe
    lost it; joint 0 and one null joint per hand are not scored."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(n_hands):
        z, k, b, o = rng.uniform(0, 0.3, 21), rng.uniform(0, 0.1, 21), rng.uniform(0, 0.5, 21), rng.uniform(0, 1, 21)
        s = rng.uniform(0, 0.2, 21)
        tta = h % 3 != 0
        lost = float(rng.choice([0.0, 0.25])) if tta else 0.0
        err = 3 + 20 * digit_means(z) + (50 * digit_means(k) + 9 * lost if tta else 0.0) + 7 * digit_means(b) + \
            11 * digit_means(o) + 13 * digit_means(s)
        per_joint = [round(float(e), 6) for e in err]
        per_joint[5] = None
        rows.append({"cascade_per_joint_pa_mm": per_joint, "fallback_detector": False,
                     "doubt_signals": {"image_z": z.tolist(), "tta_keypoints": k.tolist() if tta else None,
                                       "sideways_bend": b.tolist(), "overlap": o.tolist(),
                                       "shortfall": s.tolist(), "tta_lost": [lost] * 21 if tta else None}})
    if fallback_error is not None:  # a hand the lighter detector found: predict never sees those
        rows.append({**rows[1], "fallback_detector": True,
                     "cascade_per_joint_pa_mm": [fallback_error] * 21})
    rows.append({"detected": False})  # a missed hand: no cascade, no signals
    return rows


def test_the_fit_recovers_the_line_and_scales_it_to_the_radius():
    fitted = fit_joint_doubt(_rows(30, fallback_error=500.0))
    doubt = fitted["doubt"]
    assert doubt["base_mm"] == pytest.approx(3 * DOUBT_SCALE, abs=1e-3)
    assert doubt["image_z_relative"] == pytest.approx(20 * DOUBT_SCALE, abs=1e-2)
    assert doubt["tta_keypoints_relative"] == pytest.approx(50 * DOUBT_SCALE, abs=1e-2)
    assert doubt["sideways_bend"] == pytest.approx(7 * DOUBT_SCALE, abs=1e-2)
    assert doubt["overlap"] == pytest.approx(11 * DOUBT_SCALE, abs=1e-2)
    assert doubt["shortfall"] == pytest.approx(13 * DOUBT_SCALE, abs=1e-2)
    assert doubt["tta_lost"] == pytest.approx(9 * DOUBT_SCALE, abs=1e-2)
    assert all(doubt[f"{k}_without_tta"] > 0 for k in ("sideways_bend", "overlap", "shortfall"))  # fitted on all
    assert fitted["joints"] == {"with_tta": 20 * 19, "without_tta": 30 * 19}
    assert fitted["pearson"]["with_tta"] == pytest.approx(1.0)
    JointDoubt.from_dict(doubt)  # what cascade.json takes


def test_too_few_joints_is_a_clear_error():
    with pytest.raises(ValueError, match="need at least"):
        fit_joint_doubt(_rows(1))


def test_fit_doubt_needs_real_photos(capsys):
    from handviz.cli import main

    assert main(["eval", "--synthetic", "4", "--fit-doubt"]) == 2
    assert "--fit-doubt: works with --real" in capsys.readouterr().err
