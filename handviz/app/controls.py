"""The settings panel: hypotheses, DDIM steps, over time, mirror, focal length / intrinsics file.

It only shows and edits values; the window listens to `changed` and applies them to the
pipeline, so the panel knows nothing about threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QWidget,
)

from handviz.limits import (
    DDIM_STEPS_DEFAULT,
    DDIM_STEPS_MAX_LIVE,
    DDIM_STEPS_MIN,
    HYPOTHESES_DEFAULT,
    HYPOTHESES_MAX_LIVE,
    HYPOTHESES_MIN,
)
from handviz.pipeline.intrinsics import DEFAULT_FOV_DEG


@dataclass(frozen=True)
class ControlValues:
    n_hypotheses: int
    ddim_steps: int
    temporal: bool  # follow each hand over time
    mirror: bool
    focal_px: float  # 0: guess from the default field of view


class ControlsPanel(QWidget):
    """Emits `changed` after any edit, `load_intrinsics_requested` / `intrinsics_cleared` for the
    file, `calibrate_requested` to measure one from a checkerboard."""

    changed = Signal()
    load_intrinsics_requested = Signal()
    intrinsics_cleared = Signal()
    calibrate_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        self.hypotheses = QSpinBox(minimum=HYPOTHESES_MIN, maximum=HYPOTHESES_MAX_LIVE, value=HYPOTHESES_DEFAULT)
        self.hypotheses.setToolTip("Joint hypotheses sampled per hand (more: a fuller cloud, more time)")
        self.ddim_steps = QSpinBox(minimum=DDIM_STEPS_MIN, maximum=DDIM_STEPS_MAX_LIVE, value=DDIM_STEPS_DEFAULT)
        self.ddim_steps.setToolTip("DDIM denoising steps per stage (1 is the real-time setting)")
        self.temporal = QCheckBox("Follow each hand")
        self.temporal.setChecked(True)
        self.temporal.setToolTip("Fuse each hand over the frames: its bones held, its depths filtered "
                                 "(off: every frame stands alone)")
        self.mirror = QCheckBox("Selfie view")
        self.focal = QDoubleSpinBox(minimum=0.0, maximum=10000.0, decimals=0, singleStep=10.0)
        self.focal.setSpecialValueText(f"auto ({DEFAULT_FOV_DEG:.0f}° FOV)")
        self.focal.setSuffix(" px")
        self.focal.setToolTip("Focal length in pixels; sets how far away the mesh is placed")
        self.intrinsics_label = QLabel("none")
        self.intrinsics_label.setWordWrap(True)
        load = QPushButton("Load…")
        clear = QPushButton("Clear")
        self.calibrate = QPushButton("Calibrate…")
        self.calibrate.setToolTip("Measure this camera's focal length from a printed checkerboard")
        load.clicked.connect(self.load_intrinsics_requested)
        clear.clicked.connect(self.intrinsics_cleared)
        self.calibrate.clicked.connect(self.calibrate_requested)
        file_row = QHBoxLayout()
        file_row.addWidget(self.intrinsics_label, 1)
        file_row.addWidget(load)
        file_row.addWidget(clear)
        file_row.addWidget(self.calibrate)
        self.K_label = QLabel("–")
        self.K_label.setToolTip("The intrinsics used for the frame on screen")
        form.addRow("Hypotheses", self.hypotheses)
        form.addRow("DDIM steps", self.ddim_steps)
        form.addRow("Over time", self.temporal)
        form.addRow("Mirror", self.mirror)
        form.addRow("Focal length", self.focal)
        form.addRow("Intrinsics file", file_row)
        form.addRow("K in use", self.K_label)
        for box in (self.hypotheses, self.ddim_steps):
            box.valueChanged.connect(lambda _v: self.changed.emit())
        self.focal.valueChanged.connect(lambda _v: self.changed.emit())
        for check in (self.temporal, self.mirror):
            check.toggled.connect(lambda _c: self.changed.emit())

    def values(self) -> ControlValues:
        return ControlValues(self.hypotheses.value(), self.ddim_steps.value(), self.temporal.isChecked(),
                             self.mirror.isChecked(), float(self.focal.value()))

    def set_values(self, values: ControlValues) -> None:
        """Show values without emitting `changed` (restoring settings)."""
        widgets = (self.hypotheses, self.ddim_steps, self.temporal, self.mirror, self.focal)
        for w in widgets:
            w.blockSignals(True)
        self.hypotheses.setValue(values.n_hypotheses)
        self.ddim_steps.setValue(values.ddim_steps)
        self.temporal.setChecked(values.temporal)
        self.mirror.setChecked(values.mirror)
        self.focal.setValue(values.focal_px)
        for w in widgets:
            w.blockSignals(False)

    def set_intrinsics_file(self, name: str) -> None:
        self.intrinsics_label.setText(name or "none")
        self.focal.setEnabled(not name)  # the file's focal length wins

    def show_K(self, K: np.ndarray) -> None:
        self.K_label.setText(f"f = {K[0, 0]:.0f}, {K[1, 1]:.0f} px; c = ({K[0, 2]:.0f}, {K[1, 2]:.0f})")
