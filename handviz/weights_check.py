"""Check a .safetensors weights file before any model touches it.

Runs without torch (safetensors' numpy front reads only the header), so the CLI and the app can
say *which* file is wrong and *what to do* before the slow model import. Never unpickles anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from safetensors import SafetensorError, safe_open

from handviz.logs import InputError

_MISSING_HINT = "run `handviz train all`, or pass --weights DIR / set HANDVIZ_WEIGHTS"
_DAMAGED_HINT = "the file is damaged: re-download/reinstall handviz or retrain with `handviz train all`"
_MISMATCH_HINT = ("these weights are for a different model config: retrain with `handviz train all` "
                  "or point --weights / HANDVIZ_WEIGHTS at the matching folder")
_MAX_LISTED = 3


class WeightsError(InputError):
    """A weights file that is missing, damaged, or made for another model config."""


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def read_tensor_shapes(path: str | Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Tensor name -> shape, and the file's metadata, read from the header only.

    Raises WeightsError when the file is missing or is not a complete safetensors file.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: weights file not found; {_MISSING_HINT}")
    if path.is_dir():
        raise WeightsError(f"{path}: is a folder, expected a .safetensors weights file; {_MISSING_HINT}")
    try:
        with safe_open(str(path), framework="np") as f:
            shapes = {name: tuple(int(d) for d in f.get_slice(name).get_shape()) for name in f.keys()}
            metadata = dict(f.metadata() or {})
    except SafetensorError as exc:
        raise WeightsError(f"{path}: not a valid safetensors file ({exc}); {_DAMAGED_HINT}") from exc
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read weights ({exc.strerror or exc})") from exc
    return shapes, metadata


def check_weights_file(path: str | Path, expected: Mapping[str, Sequence[int]]) -> dict[str, str]:
    """Make sure `path` holds exactly the tensors in `expected` (name -> shape).

    Returns the file's metadata (str -> str, empty when none) so a caller can read a config
    stored with the weights without opening the file twice. Raises WeightsError with a one-line
    message naming the file, the first offending tensors and what to do.
    """
    found, metadata = read_tensor_shapes(path)
    wanted = {name: tuple(int(d) for d in shape) for name, shape in expected.items()}

    wrong_shape = [
        f"'{name}' is {_shape_text(found[name])}, expected {_shape_text(shape)}"
        for name, shape in wanted.items() if name in found and found[name] != shape
    ]
    missing = sorted(name for name in wanted if name not in found)
    unexpected = sorted(name for name in found if name not in wanted)

    problems = []
    if wrong_shape:
        problems.append("tensor " + _listed(wrong_shape))
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing ({_listed(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s) ({_listed(unexpected)})")
    if problems:
        raise WeightsError(f"{path}: " + "; ".join(problems) + f"; {_MISMATCH_HINT}")
    return metadata
