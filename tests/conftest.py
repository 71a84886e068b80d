"""Shared test set-up: quiet MediaPipe, logs into a temp folder, paths to shared data."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _log_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep handviz's log files out of the real home folder."""
    monkeypatch.setenv("HANDVIZ_LOG_DIR", str(tmp_path_factory.getbasetemp() / "logs"))


_widgets_left = 0  # widgets alive after the last clean-up (some live as long as the process)


@pytest.fixture(autouse=True)
def _free_widgets_on_the_main_thread():
    """After a test that made widgets, destroy them here, on the main thread. Left as garbage,
    a later test's worker thread would collect them, and a Qt object destroyed off the GUI thread
    deadlocks (the CI hang: ~QObject on the infer thread waiting for the GIL, the main thread
    holding it and waiting for Qt's mutex)."""
    global _widgets_left
    yield
    widgets = sys.modules.get("PySide6.QtWidgets")
    if widgets is None or widgets.QApplication.instance() is None:
        return
    if len(widgets.QApplication.allWidgets()) <= _widgets_left:
        return  # this test made none: skip the (slow) full collection
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    _widgets_left = len(widgets.QApplication.allWidgets())


@pytest.fixture(scope="session")
def demo_photo() -> Path:
    """A real Apache-2.0 hand photo shipped with the project (assets/demo)."""
    from handviz.paths import assets_dir

    photos = sorted((assets_dir() / "demo").glob("*.jpg"))
    if not photos:
        pytest.fail("assets/demo has no photos")
    return photos[0]
