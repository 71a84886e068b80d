"""A one-line message strip above the views, for things the user must notice (no camera, no
weights, a failed recording): clearer than the status bar, quieter than a dialog."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

_STYLES = {
    "info": "background:#264a6e; color:#e8f0f8;",
    "warning": "background:#6e5a1e; color:#fff6dc;",
    "error": "background:#6e2626; color:#ffe4e4;",
}


class Banner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        close = QToolButton(text="✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.level = "info"
        self.hide()

    def show_message(self, text: str, level: str = "info") -> None:
        self.level = level if level in _STYLES else "info"
        self.setStyleSheet(f"QFrame {{{_STYLES[self.level]}}} QLabel {{{_STYLES[self.level]}}}")
        self.label.setText(text)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""
