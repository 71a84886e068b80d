"""The status bar's permanent fields: recording, backend, displayed fps, capture-to-display
latency, hands, dropped frames.

The fps and the latency are those of displayed frames (timing.DisplayStats: its fps and median
latency, the same numbers `bench --app` reports); fps alone would hide a pipeline that keeps up
but lags. The hand count is the number drawn in the 3D view, so the two views never disagree.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar

LOADING_TEXT = "loading model…"
NO_LATENCY_TEXT = "latency –"


class StatusPanel:
    """Labels added to a QStatusBar, keyed "rec", "backend", "fps", "latency", "hands", "dropped"."""

    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.labels: dict[str, QLabel] = {}
        for key, text in (("rec", ""), ("backend", LOADING_TEXT), ("fps", "– fps"), ("latency", NO_LATENCY_TEXT),
                          ("hands", "hands: 0"), ("dropped", "dropped: 0")):
            label = QLabel(text)
            label.setObjectName(f"status_{key}")
            label.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(label)
            self.labels[key] = label
        self.labels["rec"].setStyleSheet("color:#ff5555; font-weight:bold;")
        self.labels["latency"].setToolTip("capture to display, median of the last 2 s (none for a replay)")

    def set_backend(self, text: str) -> None:
        self.labels["backend"].setText(text)

    def show_numbers(self, fps: float, hands: int, dropped: int, recorded: int | None,
                     latency_ms: float | None = None) -> None:
        """recorded: frames committed to the session being recorded (None: not recording);
        latency_ms: capture to display (None: no live frame shown lately, e.g. a replay)."""
        self.labels["fps"].setText(f"{fps:.1f} fps")
        self.labels["latency"].setText(NO_LATENCY_TEXT if latency_ms is None else f"latency {latency_ms:.0f} ms")
        self.labels["hands"].setText(f"hands: {hands}")
        self.labels["dropped"].setText(f"dropped: {dropped}")
        self.labels["rec"].setText("" if recorded is None else f"● REC {recorded}")

    def show_error(self, message: str, what_failed: str) -> None:
        """An error that stopped the feed: the message stays until the next one (no timeout)."""
        self.set_backend(what_failed)
        self.bar.showMessage(message)
