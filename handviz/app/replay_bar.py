"""Scrub bar for replaying a session: play/pause, frame step, a slider and the position."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QStyle, QToolButton, QWidget


class ReplayBar(QWidget):
    """Emits `seek(k)` while the slider is dragged, `step(delta)` and `play_toggled(playing)`."""

    seek = Signal(int)
    step = Signal(int)
    play_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        style = self.style()
        self.back = QToolButton(icon=style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward))
        self.back.setToolTip("Previous frame (,)")
        self.play = QToolButton(checkable=True)
        self.play.setToolTip("Play / pause (Space)")
        self.forward = QToolButton(icon=style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward))
        self.forward.setToolTip("Next frame (.)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setTracking(True)
        self.label = QLabel("0 / 0")
        self.label.setMinimumWidth(110)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        for w in (self.back, self.play, self.forward):
            layout.addWidget(w)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self.back.clicked.connect(lambda: self.step.emit(-1))
        self.forward.clicked.connect(lambda: self.step.emit(1))
        self.play.toggled.connect(self._on_play)
        self.slider.valueChanged.connect(self._on_slider)
        self._quiet = False
        self.set_playing(True)

    def _on_play(self, playing: bool) -> None:
        self._show_play_icon(playing)
        self.play_toggled.emit(playing)

    def _show_play_icon(self, playing: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play.setIcon(self.style().standardIcon(icon))

    def _on_slider(self, value: int) -> None:
        if not self._quiet:
            self.seek.emit(value)

    def set_length(self, frames: int) -> None:
        self.slider.setRange(0, max(0, frames - 1))
        self.set_position(0, frames)

    def set_position(self, k: int, frames: int | None = None) -> None:
        """Reflect the frame on screen without emitting seek."""
        frames = self.slider.maximum() + 1 if frames is None else frames
        self._quiet = True
        self.slider.setValue(k)
        self._quiet = False
        self.label.setText(f"{k + 1} / {frames}")

    def set_playing(self, playing: bool) -> None:
        was = self.play.blockSignals(True)
        self.play.setChecked(playing)
        self.play.blockSignals(was)
        self._show_play_icon(playing)
