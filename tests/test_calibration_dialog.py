"""Calibrate camera… in the app, under Xvfb: `xvfb-run -a python -m pytest tests/test_calibration_dialog.py`.

The dialog is fed synthetic photos of a board (tests/calib_boards.py), alone and through the
window's own feed (an image folder played as a clip), and must save and use the right K.
"""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")
if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
    pytest.skip("needs an X display: run under xvfb-run", allow_module_level=True)

from calib_boards import TRUE_K, photos
from fake_detector import FakeDetector
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QDialogButtonBox

from handviz.app import calibration_dialog
from handviz.app.calibration_dialog import CalibrationDialog
from handviz.app.main_window import MainWindow
from handviz.pipeline.intrinsics import load_intrinsics, save_intrinsics

pytestmark = pytest.mark.gui
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def board_rgb() -> list[np.ndarray]:
    return [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) for bgr in photos(14)]


@pytest.fixture(autouse=True)
def every_frame(monkeypatch, tmp_path):
    """Look at every frame offered (the app looks at 5 a second) and keep files in tmp_path."""
    monkeypatch.setattr(calibration_dialog, "DETECT_INTERVAL_S", 0.0)
    monkeypatch.setenv("HANDVIZ_CONFIG_DIR", str(tmp_path / "config"))


def feed(dialog: CalibrationDialog, frames: list[np.ndarray]) -> QTimer:
    """Offer the frames in a loop, one every 20 ms, as a live feed would."""
    timer = QTimer(dialog)
    state = {"k": 0}

    def tick() -> None:
        dialog.offer_frame(frames[state["k"] % len(frames)])
        state["k"] += 1

    timer.timeout.connect(tick)
    timer.start(20)
    return timer


def calibrate_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "handviz-calibrate"]


def assert_text_fits(dialog: CalibrationDialog) -> None:
    """Every wrapped label is as tall as its text at its width (a 0-high resize cut the first lines)."""
    from PySide6.QtWidgets import QLabel

    for label in dialog.findChildren(QLabel):
        if label.text():
            assert label.height() >= label.heightForWidth(label.width()), label.text()


def test_dialog_collects_views_solves_and_saves(qtbot, board_rgb, tmp_path):
    saved = []

    def save(result):
        saved.append(result)
        return save_intrinsics(tmp_path / "cam.json", result.K, result.width, result.height)

    dialog = CalibrationDialog(save)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.isModal() and dialog.progress_label.text().startswith("0 / 12 views")
    qtbot.wait(50)
    assert_text_fits(dialog)
    feed(dialog, board_rgb[:4])  # four poses only: progress, but no solve
    qtbot.waitUntil(lambda: dialog.bar.value() == 4, timeout=WAIT_MS)
    assert dialog.progress_label.text().startswith("4 / 12 views") and "new position" in dialog.progress_label.text()
    feed(dialog, board_rgb)
    with qtbot.waitSignal(dialog.calibrated, timeout=WAIT_MS) as signal:
        pass
    assert signal.args[0] == tmp_path / "cam.json" and len(saved) == 1
    assert abs(load_intrinsics(tmp_path / "cam.json").K[0, 0] / TRUE_K[0, 0] - 1) < 0.02
    assert "Focal length" in dialog.result_label.text() and "RMS" in dialog.result_label.text()
    assert dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).text() == "Close"
    qtbot.wait(50)
    assert_text_fits(dialog)
    dialog.reject()
    assert not calibrate_threads()


def test_cancel_saves_nothing(qtbot, board_rgb):
    dialog = CalibrationDialog(lambda result: pytest.fail("saved after Cancel"))
    qtbot.addWidget(dialog)
    dialog.show()
    feed(dialog, board_rgb[:3])
    qtbot.waitUntil(lambda: dialog.bar.value() == 3, timeout=WAIT_MS)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
    assert not dialog.isVisible() and not calibrate_threads()
    dialog.offer_frame(board_rgb[5])  # a frame after Cancel goes nowhere
    qtbot.wait(50)
    assert dialog.saved_path is None


def test_window_calibrates_from_its_own_feed_and_uses_the_file(qtbot, board_rgb, tmp_path):
    folder = tmp_path / "board"
    folder.mkdir()
    for k, rgb in enumerate(board_rgb):
        cv2.imwrite(str(folder / f"{k:02d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(source=str(folder), detector_factory=FakeDetector, settings=store)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window._current is not None, timeout=WAIT_MS)
    window.actions_by_id["calibrate_camera"].trigger()
    dialog = window.calibration_dialog
    assert dialog is not None and dialog.isVisible()
    window.controls.calibrate.click()  # again: the open dialog comes forward, no second one
    assert window.calibration_dialog is dialog
    with qtbot.waitSignal(dialog.calibrated, timeout=WAIT_MS) as signal:
        pass
    path = signal.args[0]
    assert path == tmp_path / "config" / "intrinsics" / "images-board.json"
    assert window.settings.intrinsics_file == str(path) and window.controls.intrinsics_label.text() == path.name
    assert abs(window.pipeline_options().intrinsics.K_for(640, 480)[0, 0] / TRUE_K[0, 0] - 1) < 0.02
    dialog.reject()
    assert window.calibration_dialog is None and not calibrate_threads()
    window.close()


def test_window_cancel_keeps_the_intrinsics_in_use(qtbot, board_rgb, tmp_path):
    K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
    before = save_intrinsics(tmp_path / "before.json", K, 640, 480)
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(detector_factory=FakeDetector, settings=store, autostart=False)
    qtbot.addWidget(window)
    assert window.set_intrinsics_file(str(before))
    window.calibrate_camera()
    dialog = window.calibration_dialog
    for rgb in board_rgb[:3]:
        dialog.offer_frame(rgb)
        qtbot.wait(30)
    dialog.reject()
    assert window.calibration_dialog is None and not calibrate_threads()
    assert window.settings.intrinsics_file == str(before) and window._calibration.K[0, 0] == 500.0
    assert not (tmp_path / "config").exists()
    window.close()
