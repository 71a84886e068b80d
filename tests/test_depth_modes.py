"""The depth-fit diagnostic of `eval --real` (handviz.eval.depth_modes): pure numpy checks."""

import numpy as np

from handviz.eval import metrics as M
from handviz.eval.depth_modes import depth_fit_errors, fit_depth_modes
from handviz.geometry import project
from handviz.posterior import finger_depth_modes

K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])


def _hand(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rel = rng.normal(0, 30, (21, 3))
    rel[0] = 0
    return rel + [20, -10, 480]


def _lean(hand: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    """The hand with its fingers leaned along their rays (finger_depth_modes' first five)."""
    modes = finger_depth_modes(hand)[:5]
    return hand * ((hand[:, 2] + 0.3 * amounts @ modes) / hand[:, 2])[:, None]


def test_leaning_fingers_are_fitted_away_and_the_projection_is_kept():
    truth = _hand(0)
    estimate = _lean(truth, np.array([1.0, -0.8, 0.5, 0.7, -1.2]))
    before = M.pa_mpjpe(estimate[None], truth[None])[0]
    assert before > 10.0
    fitted = fit_depth_modes(estimate, truth, finger_depth_modes(estimate))
    assert np.abs(project(fitted, K) - project(estimate, K)).max() < 1e-6  # along the rays only
    errors = depth_fit_errors(estimate, truth)
    # the modes come from the leaned hand, whose finger lengths differ a little from the truth's
    assert errors["finger_modes"] < 0.1 * before and errors["every_depth"] < 0.5


def test_sideways_error_stays_whatever_the_depths():
    """An error across the rays cannot be fitted away by depth; every depth fits at least as well
    as the finger modes, and neither makes the estimate worse."""
    truth = _hand(1)
    rng = np.random.default_rng(2)
    estimate = _lean(truth, rng.normal(0, 1, 5))
    estimate[:, :2] += rng.normal(0, 4, (21, 2))
    before = M.pa_mpjpe(estimate[None], truth[None])[0]
    errors = depth_fit_errors(estimate, truth)
    assert errors["every_depth"] <= errors["finger_modes"] + 1e-6 <= before + 1e-6
    assert errors["every_depth"] > 1.0
