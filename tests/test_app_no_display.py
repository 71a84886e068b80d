"""Defect 5: with no display the app says what to do in one line, exits 2 and logs it (Qt would
abort with exit 134 and plugin noise that points into cv2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from handviz.commands.app import display_problem, forget_cv2_qt_plugins

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland checks are Linux-only")
def test_display_problem_names_the_fix():
    assert "xvfb-run" in display_problem({})
    assert "apt install xvfb" in display_problem({})
    assert display_problem({"DISPLAY": ":987654"}) is not None  # a display whose socket is not there
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}) is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None


def test_cv2_plugin_path_is_forgotten(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", f"{os.sep}x{os.sep}cv2{os.sep}qt{os.sep}plugins")
    monkeypatch.setenv("QT_QPA_FONTDIR", f"{os.sep}x{os.sep}cv2{os.sep}qt{os.sep}fonts")
    forget_cv2_qt_plugins()
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ and "QT_QPA_FONTDIR" not in os.environ


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland checks are Linux-only")
def test_app_without_display_exits_2_with_one_line_and_a_log(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["HANDVIZ_LOG_DIR"] = str(tmp_path)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    run = subprocess.run([sys.executable, "-m", "handviz", "--source", "demo"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "xvfb-run" in lines[0] and "qt.qpa" not in run.stderr, run.stderr
    assert "no display" in (tmp_path / "handviz.log").read_text()
