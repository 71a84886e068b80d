"""Where the estimate's error lies: its joints moved along their own camera rays by the depth
profiles that best fit the truth (a diagnostic for `eval --real`, issue 10; never used to predict).

Each joint keeps its projection, so what is left after the fit is error that no depth could
remove. With the posterior's finger modes (each finger leaning about its base, the palm's tilt)
the fit says how much of the error is fingers leaning the wrong way; with every joint's depth
free it says how much is depth at all.
"""

from __future__ import annotations

import numpy as np

from handviz.eval import metrics as M
from handviz.posterior import finger_depth_modes, similarity_align


def fit_depth_modes(joints: np.ndarray, truth: np.ndarray, modes: np.ndarray, rounds: int = 8) -> np.ndarray:
    """joints (21, 3) camera frame (z > 0), moved along their rays by depth offsets a @ modes
    (modes: (M, 21)) chosen so that they best match truth (21, 3), which is brought onto them by a
    similarity each round (Gauss-Newton in a; the similarity's scale slows it, 8 rounds come within
    0.3 mm of the optimum on a 19 mm lean)."""
    X = np.asarray(joints, np.float64)
    T = np.asarray(truth, np.float64)
    modes = np.asarray(modes, np.float64)
    a = np.zeros(len(modes))
    moved = X
    for _ in range(rounds):
        moved = X * ((X[:, 2] + a @ modes) / X[:, 2])[:, None]
        residual = similarity_align(T, moved) - moved  # (21, 3)
        along_ray = moved / moved[:, 2:3]  # d point / d depth
        A = (modes[:, :, None] * along_ray[None]).reshape(len(modes), -1).T  # (63, M)
        a = a + np.linalg.lstsq(A, residual.reshape(-1), rcond=None)[0]
    return X * ((X[:, 2] + a @ modes) / X[:, 2])[:, None]


def depth_fit_errors(joints: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """PA-MPJPE (mm) of the joints after fitting the finger modes, and after fitting every depth."""
    X = np.asarray(joints, np.float64)
    T = np.asarray(truth, np.float64)[None]
    every_depth = np.eye(len(X))[1:]  # the wrist's depth is the hand's distance: PA ignores it
    return {
        "finger_modes": float(M.pa_mpjpe(fit_depth_modes(X, T[0], finger_depth_modes(X))[None], T)[0]),
        "every_depth": float(M.pa_mpjpe(fit_depth_modes(X, T[0], every_depth)[None], T)[0]),
    }
