"""File > Camera: the cameras found by a background probe, plus "Rescan cameras".

Probing opens each camera (up to a second each), so it runs on its own thread and the menu
fills in when it is done; the camera in use is always listed even though the probe finds it busy.
"""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

from handviz.pipeline.sources import list_cameras

log = logging.getLogger(__name__)


class CameraMenu(QMenu):
    """Emits `camera_chosen(index)`; call `set_in_use` when the source changes."""

    camera_chosen = Signal(int)
    _found = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("&Camera", parent)
        self._group = QActionGroup(self)
        self._group.setExclusive(True)
        self._probe: threading.Thread | None = None
        self._closing = False
        self._in_use: int | None = None
        self.found: list[int] | None = None  # None until a probe finished
        self._found.connect(self._on_found)
        self._fill()

    def set_in_use(self, index: int | None) -> None:
        self._in_use = index
        self._fill()

    def probe_once(self) -> None:
        """Start the first probe (later ones come from "Rescan cameras")."""
        if self._probe is None:
            self.rescan()

    def rescan(self) -> None:
        if self._probe is not None and self._probe.is_alive():
            return

        def probe() -> None:
            try:
                found = list_cameras()
            except Exception:
                log.exception("camera probe failed")
                found = []
            if not self._closing:
                self._found.emit(found)

        self._probe = threading.Thread(target=probe, name="handviz-camera-probe", daemon=True)
        self._probe.start()

    def shutdown(self, timeout: float = 3.0) -> None:
        """Wait for a running probe (the window is closing)."""
        self._closing = True
        if self._probe is not None:
            self._probe.join(timeout)

    def _on_found(self, found: list[int]) -> None:
        self.found = list(found)
        self._fill()

    def _fill(self) -> None:
        self.clear()
        for action in self._group.actions():
            self._group.removeAction(action)
        indices = sorted(set(self.found or []) | ({self._in_use} if self._in_use is not None else set()))
        if self.found is None and not indices:
            self.addAction("Searching…").setEnabled(False)
        elif not indices:
            self.addAction("No camera found").setEnabled(False)
        for index in indices:
            action = QAction(f"Camera {index}", self, checkable=True)
            action.setChecked(index == self._in_use)
            action.triggered.connect(lambda _checked=False, i=index: self.camera_chosen.emit(i))
            self._group.addAction(action)
            self.addAction(action)
        self.addSeparator()
        self.addAction("Rescan cameras", self.rescan)
