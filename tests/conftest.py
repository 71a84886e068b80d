"""Shared test set-up: quiet MediaPipe, logs into a temp folder, paths to shared data."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def demo_photo() -> Path:
    """A real Apache-2.0 hand photo shipped with the project (assets/demo)."""
    from handviz.paths import assets_dir

    photos = sorted((assets_dir() / "demo").glob("*.jpg"))
    if not photos:
        pytest.fail("assets/demo has no photos")
    return photos[0]
