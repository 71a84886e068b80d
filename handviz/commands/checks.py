"""Option checks every subcommand runs before any work, from the bounds in handviz.limits.

A bad value is an InputError: one line naming the option, the value and the allowed range; the CLI
exits 2 and nothing has been written yet (no model loaded, no output file opened).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from handviz import limits
from handviz.logs import InputError

_DEVICE = re.compile(r"^(cpu|cuda)(:(\d+))?$")


def check_range(option: str, value: float | None, low: float, high: float) -> None:
    """InputError unless low <= value <= high (None passes: the option was not given)."""
    if value is None:
        return
    try:
        limits.check_in_range(option, value, low, high)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def check_at_least(option: str, value: float | None, low: float) -> None:
    """InputError unless value >= low (None passes)."""
    if value is not None and not (value >= low and math.isfinite(value)):
        raise InputError(f"{option} must be at least {low:g}, got {value:g}")


def check_positive(option: str, value: float | None) -> None:
    """InputError unless value > 0 and finite (None passes)."""
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise InputError(f"{option} must be a positive number, got {value:g}")


def check_hypotheses(value: int, high: int = limits.HYPOTHESES_MAX) -> None:
    check_range("--hypotheses", value, limits.HYPOTHESES_MIN, high)


def check_ddim_steps(value: int) -> None:
    check_range("--ddim-steps", value, limits.DDIM_STEPS_MIN, limits.DDIM_STEPS_MAX)


def check_focal(value: float | None) -> None:
    check_range("--focal", value, limits.FOCAL_MIN_PX, limits.FOCAL_MAX_PX)


def check_device(value: str | None, option: str = "--device", allow_auto: bool = False) -> None:
    """cpu, cuda or cuda:K (and auto when allowed); CUDA ones only when this machine has that GPU."""
    if value is None or (allow_auto and value == "auto"):
        return
    match = _DEVICE.match(value)
    if match is None:
        allowed = "auto, cpu, cuda or cuda:K" if allow_auto else "cpu, cuda or cuda:K"
        raise InputError(f"{option} must be {allowed}, got {value!r}")
    if match.group(1) == "cpu":
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise InputError(f"{option} {value}: this machine has no usable CUDA GPU; use {option} cpu")
    index = int(match.group(3) or 0)
    if index >= count:
        raise InputError(f"{option} {value}: this machine has CUDA devices 0..{count - 1}")


def check_output_file(option: str, path: Path) -> None:
    """The output file's name is not an existing folder."""
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; give a file name")
