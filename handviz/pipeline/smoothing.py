"""One-Euro filtering of the aggregate hand (Casiez, Roussel, Vogel, CHI 2012).

Why One-Euro: a still hand needs strong smoothing (jitter shows), a moving hand needs little
(lag shows); the filter's cutoff rises with speed. It runs on the aggregate joints and vertices
only; the hypotheses are left raw, since their scatter *is* the uncertainty the app shows.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from handviz.types import HandEstimate


def _alpha(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Element-wise One-Euro filter for arrays of a fixed shape (e.g. joints (21, 3) in mm).

    min_cutoff (Hz): smoothing at rest; beta (1/mm): how fast the cutoff rises with speed (mm/s);
    d_cutoff (Hz): smoothing of the speed estimate itself.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.02, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filtered copy of x at time t (seconds); a new shape or a non-increasing t restarts."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


class HandSmoother:
    """Keeps one pair of filters (joints, vertices) per hand slot, keyed by handedness.

    A slot whose hand is missing in a frame is reset, so a hand that comes back does not glide in
    from where the last one was.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.02) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self._filters: dict[str, tuple[OneEuroFilter, OneEuroFilter]] = {}

    def reset(self) -> None:
        self._filters.clear()

    def __call__(self, hands: list[HandEstimate], t: float) -> list[HandEstimate]:
        """Smoothed copies of `hands` (joints_3d and vertices only) at time t (seconds)."""
        seen = set()
        out = []
        for hand in hands:
            key = hand.handedness
            if key in seen:  # two hands with one label: leave the second unfiltered
                out.append(hand)
                continue
            seen.add(key)
            if key not in self._filters:
                self._filters[key] = (OneEuroFilter(self.min_cutoff, self.beta),
                                      OneEuroFilter(self.min_cutoff, self.beta))
            f_joints, f_verts = self._filters[key]
            joints = f_joints(hand.joints_3d, t).astype(np.float32)
            verts = f_verts(hand.vertices, t).astype(np.float32) if hand.vertices.size else hand.vertices
            out.append(dataclasses.replace(hand, joints_3d=joints, vertices=verts))
        for key in list(self._filters):
            if key not in seen:
                del self._filters[key]
        return out
