"""The command line behaves like the tools users know: global options anywhere, a quiet console,
a log that says which process and command wrote each line."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from handviz.cli import build_parser, main
from handviz.native_noise import is_native_noise, quiet_native_stderr


@pytest.mark.parametrize("argv", [
    ["--weights", "w", "--debug", "predict", "a.png", "--out", "r.jsonl"],
    ["predict", "a.png", "--out", "r.jsonl", "--weights", "w", "--debug"],
    ["predict", "--weights", "w", "a.png", "--debug", "--out", "r.jsonl"],
    ["--debug", "predict", "a.png", "--out", "r.jsonl", "--weights", "w"],
])
def test_global_options_before_or_after_the_subcommand(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.weights == "w" and args.debug is True and args.command == "predict"


def test_global_options_default_when_absent_and_reach_nested_actions() -> None:
    args = build_parser().parse_args(["export", "s", "--all", "--out", "o"])
    assert args.weights is None and args.debug is False
    args = build_parser().parse_args(["data", "preview", "--debug"])
    assert args.debug is True


NATIVE_LINES = [
    "W0000 00:00:1796415415.443640    5052 inference_feedback_manager.cc:114] Feedback manager requires",
    "I0000 00:00:1733.1  77 gl_context.cc:357] GL version: 3.2",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c1e2f040] moov atom not found",
    "[ WARN:0@0.125] global cap_ffmpeg_impl.hpp:453 _opencv_ffmpeg_interrupt_callback",
    "\x1b[91mERROR: In vtkXOpenGLRenderWindow.cxx, line 1458\x1b[0m",
    "\x1b[91mvtkXOpenGLRenderWindow (0x5611d2b0): bad X server connection. DISPLAY=:99\x1b[0m",
    "\x1b[0m\x1b[33m2026-12-04 20:24:47.255 (   0.773s) [    7F6DA244DB80]vtkXOpenGLRenderWindow.:1452  "
    "WARN| bad X server connection. DISPLAY=\x1b[0m",
    "(   1.204s) [main thread     ]   vtkOpenGLRenderer.cxx:120   WARN| vtkOpenGLRenderer: no context",
]


@pytest.mark.parametrize("line", NATIVE_LINES)
def test_native_library_lines_are_recognised(line: str) -> None:
    assert is_native_noise(line)


@pytest.mark.parametrize("line", ["handviz predict: a.png: not a readable image; skipped",
                                  "handviz: error: --hypotheses must be within 1..256, got 0",
                                  "3 frames, 3 hands -> r.jsonl", "WARNING handviz.io: disk almost full"])
def test_our_own_lines_pass(line: str) -> None:
    assert not is_native_noise(line)


def test_native_lines_leave_the_console_for_the_log(capfd: pytest.CaptureFixture[str]) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    native = logging.getLogger("handviz.native")
    native.addHandler(handler)
    native.setLevel(logging.INFO)
    try:
        with quiet_native_stderr():
            os.write(2, ("\n".join(NATIVE_LINES) + "\n\nkeep me\n").encode())
            os.write(2, b"and the last line without a newline")
    finally:
        native.removeHandler(handler)
    assert capfd.readouterr().err == "keep me\nand the last line without a newline"
    assert len(records) == len(NATIVE_LINES)
    with quiet_native_stderr(enabled=False):
        os.write(2, (NATIVE_LINES[0] + "\n").encode())
    assert capfd.readouterr().err == NATIVE_LINES[0] + "\n"


def test_log_lines_carry_time_pid_and_command_and_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HANDVIZ_LOG_DIR", str(tmp_path / "logs"))
    assert main(["export", str(tmp_path / "missing"), "--all", "--out", str(tmp_path / "o")]) == 2
    lines = (tmp_path / "logs" / "handviz.log").read_text().splitlines()
    stamped = [ln for ln in lines if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ pid=\d+ export ", ln)]
    assert stamped and all(f"pid={os.getpid()} export " in ln for ln in stamped)
    assert any(ln.endswith(f"command line: handviz export {tmp_path / 'missing'} --all --out {tmp_path / 'o'}")
               for ln in lines)
    # Every record line (not traceback continuation lines) carries the stamp.
    records = [ln for ln in lines if re.match(r"\d{4}-\d\d-\d\d ", ln)]
    assert records == stamped


def test_a_child_process_holding_stderr_does_not_hold_up_the_exit(capfd: pytest.CaptureFixture[str]) -> None:
    """The filter's pipe never reaches end-of-file while a child holds its write end; leaving the
    block must still end the filter thread (drain what is there, then stop), not wait for the
    child: the thread is gone while the child still runs."""
    import subprocess
    import threading

    child = None
    try:
        with quiet_native_stderr():
            child = subprocess.Popen(["sleep", "600"])  # inherits fd 2, like multiprocessing's helpers
            os.write(2, b"last words\n")
        assert child.poll() is None  # the pipe's writer is still alive ...
        assert not [t for t in threading.enumerate() if t.name == "stderr-filter"]  # ... and the filter ended
    finally:
        if child is not None:
            child.kill()
            child.wait()
    assert capfd.readouterr().err == "last words\n"
