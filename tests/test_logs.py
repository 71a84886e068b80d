"""Logging goes to a rotating file; errors reach the user as one line with the right exit code."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

import pytest

from handviz import logs
from handviz.logs import (
    EXIT_FAILURE,
    EXIT_INPUT_ERROR,
    EXIT_INTERRUPTED,
    InputError,
    report_error,
    setup_logging,
)


@pytest.fixture()
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private log folder; the root logger's handlers are put back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    monkeypatch.setenv("HANDVIZ_LOG_DIR", str(tmp_path / "logs"))
    yield tmp_path / "logs"
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved_level)
    logging.captureWarnings(False)


def ours(kind: type) -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers
            if type(h) is kind and getattr(h, "_handviz_handler", False)]


def test_log_file_under_override_with_rotation(log_dir: Path, capsys) -> None:
    path = setup_logging(debug=False)
    assert path == log_dir / "handviz.log"
    (file_handler,) = ours(logging.handlers.RotatingFileHandler)
    assert file_handler.maxBytes == 1_000_000 and file_handler.backupCount == 3

    log = logging.getLogger("handviz.test")
    log.info("quiet detail")
    log.warning("loud problem")
    text = path.read_text(encoding="utf-8")
    assert "quiet detail" in text and "loud problem" in text
    err = capsys.readouterr().err
    assert "loud problem" in err and "quiet detail" not in err


def test_debug_shows_debug_on_console_and_setup_does_not_stack(log_dir: Path, capsys) -> None:
    setup_logging(debug=False)
    setup_logging(debug=True)
    assert len(ours(logging.handlers.RotatingFileHandler)) == 1
    assert len(ours(logging.StreamHandler)) == 1
    logging.getLogger("handviz.test").debug("fine detail")
    assert capsys.readouterr().err.count("fine detail") == 1


def test_default_location_is_the_user_state_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HANDVIZ_LOG_DIR", raising=False)
    monkeypatch.setattr(logs.platformdirs, "user_state_dir", lambda app: f"/state/{app}")
    assert logs.log_dir() == Path("/state/handviz/logs")


def test_unwritable_log_folder_falls_back(tmp_path: Path, log_dir: Path, monkeypatch, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("HANDVIZ_LOG_DIR", str(blocker / "logs"))
    monkeypatch.setattr(logs.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    assert setup_logging(debug=False) == tmp_path / "tmp" / "handviz-logs" / "handviz.log"
    assert "cannot write logs" in capsys.readouterr().err


def test_input_error_is_one_line_exit_2_and_no_traceback(log_dir: Path, capsys) -> None:
    log_file = setup_logging(debug=False)
    code = report_error(InputError("clip.mp4: cannot decode video;\n try another file"), debug=False)
    assert code == EXIT_INPUT_ERROR
    err = capsys.readouterr().err
    assert err == "handviz: error: clip.mp4: cannot decode video; try another file\n"
    assert "InputError" in log_file.read_text(encoding="utf-8")


def test_missing_file_is_an_input_error(log_dir: Path, capsys) -> None:
    setup_logging(debug=False)
    try:
        open(log_dir / "nope.jsonl", encoding="utf-8")
    except FileNotFoundError as exc:
        assert report_error(exc, debug=False) == EXIT_INPUT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.jsonl: No such file or directory" in err


def test_bug_points_at_the_log_and_debug_adds_the_traceback(log_dir: Path, capsys) -> None:
    log_file = setup_logging(debug=False)

    def broken() -> None:
        raise ZeroDivisionError("division by zero")

    try:
        broken()
    except ZeroDivisionError as exc:
        assert report_error(exc, debug=False) == EXIT_FAILURE
        quiet = capsys.readouterr().err
        assert report_error(exc, debug=True) == EXIT_FAILURE
        loud = capsys.readouterr().err
    assert quiet.count("\n") == 1 and "Traceback" not in quiet
    assert "ZeroDivisionError: division by zero" in quiet and str(log_file) in quiet
    assert "Traceback" in loud and "in broken" in loud
    assert "in broken" in log_file.read_text(encoding="utf-8")


def test_ctrl_c_exits_130(log_dir: Path, capsys) -> None:
    setup_logging(debug=False)
    assert report_error(KeyboardInterrupt(), debug=False) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "handviz: error: interrupted\n"


def test_the_start_up_line_is_written_once_per_process_and_file(log_dir: Path) -> None:
    """issue 21: the app set logging up again on launch and the log read as two starts."""
    from handviz import __version__

    first = setup_logging(debug=False, command="app")
    setup_logging(debug=False)  # a second set-up in the same process, as the window's launch did
    assert first.read_text(encoding="utf-8").count(f"handviz {__version__}, Python") == 1


def test_the_app_launch_leaves_logging_to_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """cli.main sets logging up for every command; the window's launch must not do it again.
    Stopped where Qt would start (no QApplication is made, so no display is needed)."""
    from PySide6 import QtWidgets

    from handviz.commands import app

    class QtStarts(Exception):
        pass

    class NoApplication:
        @staticmethod
        def instance() -> None:
            return None

        def __init__(self, *args: object) -> None:
            raise QtStarts

    calls: list[bool] = []
    monkeypatch.setattr(logs, "setup_logging", lambda *a, **k: calls.append(True))
    monkeypatch.setattr(app, "display_problem", lambda: None)
    monkeypatch.setattr(QtWidgets, "QApplication", NoApplication)
    with pytest.raises(QtStarts):
        app.launch(source="demo")
    assert calls == []
