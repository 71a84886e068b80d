"""One home for the bounds and defaults that the app, the CLI and the cascade all check.

Every place that accepts a hypothesis count, a DDIM step count or a focal length reads these,
so the spin box, `predict --hypotheses` and `Cascade.predict` can never disagree.
"""

from __future__ import annotations

#: Joint hypotheses per hand: default, and the inclusive range every entry point accepts.
HYPOTHESES_DEFAULT = 32
HYPOTHESES_MIN = 1
HYPOTHESES_MAX = 256
#: The app's spin box stops lower: more than this does not fit a live frame budget on a CPU.
HYPOTHESES_MAX_LIVE = 64

#: DDIM steps per stage: one step is the shipped default (see weights/MODEL_CARD.md).
DDIM_STEPS_DEFAULT = 1
DDIM_STEPS_MIN = 1
DDIM_STEPS_MAX = 50
#: The app's spin box stops lower: each step costs a full network pass per stage.
DDIM_STEPS_MAX_LIVE = 4

#: Focal length in pixels, when given by hand (a 60-degree guess is used otherwise).
FOCAL_MIN_PX = 1.0
FOCAL_MAX_PX = 100_000.0


def check_in_range(name: str, value: float, low: float, high: float) -> None:
    """Raise ValueError naming the value and the allowed range when value is outside [low, high]."""
    if not low <= value <= high:
        raise ValueError(f"{name} must be within {low:g}..{high:g}, got {value:g}")
