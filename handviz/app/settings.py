"""The app's persistent choices as one typed record, read from and written to QSettings.

QSettings hands back strings on some platforms ("true", "32"); converting through the field's
declared type here keeps the rest of the app free of that.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, fields

from PySide6.QtCore import QByteArray, QSettings, QSize
from PySide6.QtGui import QGuiApplication

from handviz.limits import (
    DDIM_STEPS_DEFAULT,
    DDIM_STEPS_MAX_LIVE,
    DDIM_STEPS_MIN,
    HYPOTHESES_DEFAULT,
    HYPOTHESES_MAX_LIVE,
    HYPOTHESES_MIN,
)

log = logging.getLogger(__name__)

ORGANIZATION = "handviz"
APPLICATION = "handviz"


@dataclass
class AppSettings:
    """Everything restored at the next start. focal_px 0 means 'guess from a 60 degree FOV'."""

    n_hypotheses: int = HYPOTHESES_DEFAULT
    ddim_steps: int = DDIM_STEPS_DEFAULT
    temporal: bool = True  # follow each hand over time (handviz.temporal)
    mirror: bool = False
    focal_px: float = 0.0
    intrinsics_file: str = ""
    show_cloud: bool = True
    show_skeleton: bool = True
    show_overlay: bool = True
    show_plots: bool = True
    show_controls: bool = True
    follow_hand: bool = False
    record_dir: str = ""
    last_dir: str = ""


def _coerce(value: object, kind: type) -> object:
    if kind is bool:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    return kind(value)


def load_settings(store: QSettings) -> AppSettings:
    """Read every field, keeping the default for missing or unreadable values."""
    defaults = AppSettings()
    values = {}
    types = {"int": int, "float": float, "bool": bool, "str": str}
    for f in fields(AppSettings):
        default = getattr(defaults, f.name)
        raw = store.value(f"app/{f.name}", default)
        try:
            values[f.name] = _coerce(raw, types[str(f.type)])
        except (TypeError, ValueError):
            log.warning("settings: ignoring unreadable %s=%r", f.name, raw)
            values[f.name] = default
    settings = AppSettings(**values)
    settings.n_hypotheses = min(HYPOTHESES_MAX_LIVE, max(HYPOTHESES_MIN, settings.n_hypotheses))
    settings.ddim_steps = min(DDIM_STEPS_MAX_LIVE, max(DDIM_STEPS_MIN, settings.ddim_steps))
    settings.focal_px = max(0.0, settings.focal_px)
    return settings


def save_settings(store: QSettings, settings: AppSettings) -> None:
    for name, value in dataclasses.asdict(settings).items():
        store.setValue(f"app/{name}", value)


def save_window_state(store: QSettings, geometry: QByteArray, state: QByteArray) -> None:
    store.setValue("window/geometry", geometry)
    store.setValue("window/state", state)


#: The first window's size, at most: room for the video, the 3D view and the docks.
LARGEST_DEFAULT_WINDOW = QSize(1400, 900)
#: ... and at most this share of the screen's free area, so it fits a 1366x768 laptop. Software
#: OpenGL composes the whole window per frame, so a smaller window is also a faster one (DESIGN.md).
SCREEN_SHARE = 0.85


def default_window_size() -> QSize:
    """The size of a window with no saved geometry: LARGEST_DEFAULT_WINDOW, shrunk to fit the screen."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return LARGEST_DEFAULT_WINDOW
    free = screen.availableGeometry()
    return QSize(min(LARGEST_DEFAULT_WINDOW.width(), int(free.width() * SCREEN_SHARE)),
                 min(LARGEST_DEFAULT_WINDOW.height(), int(free.height() * SCREEN_SHARE)))


def load_window_state(store: QSettings) -> tuple[QByteArray | None, QByteArray | None]:
    geometry = store.value("window/geometry")
    state = store.value("window/state")
    return (geometry if isinstance(geometry, QByteArray) else None,
            state if isinstance(state, QByteArray) else None)
