"""The status bar's permanent fields: recording, backend, displayed fps, hands, dropped frames.

The fps shown is the displayed fps (timing.DisplayStats, the same number `bench --app` reports),
and the hand count is the number drawn in the 3D view, so the two views never disagree.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar

LOADING_TEXT = "loading model…"


class StatusPanel:
    """Labels added to a QStatusBar, keyed "rec", "backend", "fps", "hands", "dropped"."""

    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.labels: dict[str, QLabel] = {}
        for key, text in (("rec", ""), ("backend", LOADING_TEXT), ("fps", "– fps"), ("hands", "hands: 0"),
                          ("dropped", "dropped: 0")):
            label = QLabel(text)
            label.setObjectName(f"status_{key}")
            label.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(label)
            self.labels[key] = label
        self.labels["rec"].setStyleSheet("color:#ff5555; font-weight:bold;")

    def set_backend(self, text: str) -> None:
        self.labels["backend"].setText(text)

    def show_numbers(self, fps: float, hands: int, dropped: int, recorded: int | None) -> None:
        """recorded: frames committed to the session being recorded (None: not recording)."""
        self.labels["fps"].setText(f"{fps:.1f} fps")
        self.labels["hands"].setText(f"hands: {hands}")
        self.labels["dropped"].setText(f"dropped: {dropped}")
        self.labels["rec"].setText("" if recorded is None else f"● REC {recorded}")

    def show_error(self, message: str, what_failed: str) -> None:
        """An error that stopped the feed: the message stays until the next one (no timeout)."""
        self.set_backend(what_failed)
        self.bar.showMessage(message)
