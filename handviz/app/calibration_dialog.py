"""Calibrate camera…: a small non-modal dialog that measures the camera's K from a printed
checkerboard, fed by the frames the window already draws (the camera is not opened twice).

The window hands it each drawn frame (`offer_frame`, GUI thread); at most one every
DETECT_INTERVAL_S goes to a worker thread through a one-slot LatestQueue (newest wins), where
handviz.pipeline.calibration looks for the board (CALIB_CB_FAST_CHECK: a few ms without one) and,
once enough views are kept, solves. So the GUI thread never waits on OpenCV. Only a good solve
reaches `save` (the window writes the file and starts using it); Cancel stops the worker and
changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from handviz.logs import InputError
from handviz.pipeline.calibration import (
    BOARD_DEFAULT,
    SQUARE_MM_DEFAULT,
    VIEWS_DEFAULT,
    CameraCalibration,
    CheckerboardCalibrator,
)
from handviz.pipeline.latest_queue import LatestQueue, QueueClosed

log = logging.getLogger(__name__)

#: Seconds between frames looked at: 5 a second is enough for a hand-held board and costs the
#: pipeline's two cores little (the fast check takes a few ms on a frame without the board).
DETECT_INTERVAL_S = 0.2

INTRO = ("Print OpenCV's {cols}x{rows} checkerboard ({sq} squares, {mm:g} mm each), keep it flat, and "
         "hold it in front of the camera at different places, distances and tilts. Views are kept "
         "when the whole board is seen somewhere new.")


class CalibrationDialog(QDialog):
    """save(result) -> the file written (raises InputError/OSError to refuse); `calibrated(path)`
    is emitted after it succeeded."""

    calibrated = Signal(object)  # Path of the saved intrinsics file
    # worker -> GUI, each with the worker's generation (a late signal of a stopped one is ignored)
    _checked = Signal(int, str, int)  # progress line, views kept
    _solved = Signal(int, object)  # CameraCalibration
    _failed = Signal(int, str)

    def __init__(self, save: Callable[[CameraCalibration], Path], parent: QWidget | None = None,
                 board: tuple[int, int] = BOARD_DEFAULT, square_mm: float = SQUARE_MM_DEFAULT,
                 views: int = VIEWS_DEFAULT) -> None:
        super().__init__(parent)
        self.setWindowTitle("Calibrate camera")
        self.setModal(False)
        self._save = save
        self._settings = (board, square_mm, views)
        intro = QLabel(INTRO.format(cols=board[0], rows=board[1], sq=f"{board[0] + 1}x{board[1] + 1}", mm=square_mm))
        intro.setWordWrap(True)
        self.progress_label = QLabel()
        self.progress_label.setWordWrap(True)
        self.bar = QProgressBar(minimum=0, maximum=views)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, parent=self)
        self.restart_button = QPushButton("Start over")
        self.buttons.addButton(self.restart_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.rejected.connect(self.reject)
        self.restart_button.clicked.connect(self.restart)
        layout = QVBoxLayout(self)
        for w in (intro, self.progress_label, self.bar, self.result_label, self.buttons):
            layout.addWidget(w)
        self._checked.connect(self._on_checked)
        self._solved.connect(self._on_solved)
        self._failed.connect(self._on_failed)
        self._queue: LatestQueue[np.ndarray] = LatestQueue(1)
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._last_offer = float("-inf")
        self.saved_path: Path | None = None
        self.setMinimumWidth(460)
        self._fit_text()
        self.restart()

    # ---- GUI thread ---------------------------------------------------------------------------
    def _fit_text(self) -> None:
        """Tall enough for the wrapped text at the current width: a top-level window does not
        grow for a label's height-for-width by itself (without it the first lines were cut)."""
        width = max(self.width(), self.minimumWidth())
        self.resize(width, max(self.height() if self.isVisible() else 0, self.heightForWidth(width),
                               self.sizeHint().height()))

    def offer_frame(self, image: np.ndarray) -> None:
        """A frame the window drew ((H, W, 3) uint8 RGB); looked at unless one was taken lately."""
        now = time.monotonic()
        if self._thread is None or not self._thread.is_alive() or now - self._last_offer < DETECT_INTERVAL_S:
            return
        self._last_offer = now
        self._queue.put(image)

    def restart(self) -> None:
        """Forget the views kept and look again (after a refused solve, or a new camera)."""
        self.stop()
        board, square_mm, views = self._settings
        calibrator = CheckerboardCalibrator(board, square_mm, views, fast=True)
        self._queue = LatestQueue(1)
        self.saved_path = None
        self.bar.setValue(0)
        self.progress_label.setText(f"0 / {views} views — show the board to the camera")
        self.result_label.clear()
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Cancel")
        self._generation += 1
        self._thread = threading.Thread(target=_work, args=(self._generation, calibrator, self._queue, self._checked,
                                                            self._solved, self._failed),
                                        name="handviz-calibrate", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the worker (waits for the frame or solve it is on); nothing is saved."""
        self._queue.close()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None

    def done(self, result: int) -> None:  # Cancel, Close, Esc, the title bar's close
        self.stop()
        super().done(result)

    def _current(self, gen: int) -> bool:
        """Is gen the running worker's (not one stopped by Cancel or Start over)?"""
        return self._thread is not None and gen == self._generation

    def _on_checked(self, gen: int, message: str, kept: int) -> None:
        if not self._current(gen):
            return
        self.bar.setValue(kept)
        self.progress_label.setText(message)

    def _on_solved(self, gen: int, result: CameraCalibration) -> None:
        if not self._current(gen):
            return
        try:
            path = self._save(result)
        except (InputError, OSError) as exc:
            self._on_failed(gen, f"could not save the calibration: {exc}")
            return
        self.saved_path = path
        self.bar.setValue(self.bar.maximum())
        self.progress_label.setText(f"Saved {path} and using it now.")
        self.result_label.setText(f"Focal length {result.focal_px:.1f} px · horizontal field of view "
                                  f"{result.hfov_deg:.1f}° · RMS error {result.rms_px:.2f} px "
                                  f"({result.views} views at {result.width}x{result.height})")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Close")
        self._fit_text()
        log.info("calibrated: %s -> %s", result.summary(), path)
        self.calibrated.emit(path)

    def _on_failed(self, gen: int, message: str) -> None:
        if not self._current(gen):
            return
        self.progress_label.setText("Not calibrated; the intrinsics in use are unchanged.")
        self.result_label.setText(f"{message}\nPress Start over to try again.")
        self._fit_text()


def _work(gen: int, calibrator: CheckerboardCalibrator, queue: LatestQueue[np.ndarray], checked: Signal,
          solved: Signal, failed: Signal) -> None:
    """The worker thread: look at each frame, then solve. It holds no reference to the dialog (a
    Qt object must not be freed on this thread), only its signals; the dialog joins it first."""
    while True:
        try:
            image = queue.get()
        except QueueClosed:
            return
        if queue.closed:  # stopped while this frame waited
            return
        try:
            check = calibrator.add_frame(image)
            checked.emit(gen, check.message, len(calibrator.views))
            if calibrator.ready:
                checked.emit(gen, f"{calibrator.progress()} — solving…", len(calibrator.views))
                solved.emit(gen, calibrator.solve())
                return
        except InputError as exc:
            failed.emit(gen, str(exc))
            return
        except Exception as exc:  # a bug: reported in the dialog and the log, the app goes on
            log.exception("calibration failed")
            failed.emit(gen, f"calibration failed unexpectedly ({type(exc).__name__}); see the log")
            return
