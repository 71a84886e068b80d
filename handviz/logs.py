"""Logging set-up and the one-line error report the CLI prints.

Everything goes to a rotating file, so a user can attach it to a bug report; the console stays
quiet (warnings only) unless `--debug`. Errors the user can fix are `InputError`s: their message
is shown as-is and the process exits with status 2; anything else is a bug, reported in one line
with its traceback in the log file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import platform
import shlex
import sys
import tempfile
import traceback
from pathlib import Path

import platformdirs

from handviz import __version__

LOG_FILE_NAME = "handviz.log"
LOG_MAX_BYTES = 1_000_000
LOG_BACKUPS = 3

#: Exit status for problems in what the user gave us (bad path, damaged file, wrong option).
EXIT_INPUT_ERROR = 2
#: Exit status for anything unexpected (a bug).
EXIT_FAILURE = 1
#: Exit status after Ctrl+C, as shells report SIGINT.
EXIT_INTERRUPTED = 130

#: Every line says when, which process and which command: several processes share one file.
_FILE_FORMAT = "%(asctime)s pid=%(process)d %(command)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"
_CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"
_HANDLER_TAG = "_handviz_handler"
_FILE_ONLY = "file_only"

_log = logging.getLogger("handviz")
_current_log_file: Path | None = None
_current_command = "handviz"
#: The file this process has written its start-up line to: set-up again (the window does) must
#: not repeat it, or one start reads as two in a report.
_started_in: Path | None = None


class InputError(Exception):
    """A problem the user can fix (missing file, damaged input, bad option value).

    The message must name the thing at fault and say what to do, in one line; the CLI shows
    it without a traceback and exits with `EXIT_INPUT_ERROR`.
    """


def log_dir() -> Path:
    """$HANDVIZ_LOG_DIR, else the per-user state folder (e.g. ~/.local/state/handviz/logs)."""
    override = os.environ.get("HANDVIZ_LOG_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_state_dir("handviz")) / "logs"


def _writable_log_dir() -> Path:
    """`log_dir()`, or a temp folder when that cannot be created: logging must never stop the app."""
    preferred = log_dir()
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        return preferred
    except OSError as exc:
        fallback = Path(tempfile.gettempdir()) / "handviz-logs"
        fallback.mkdir(parents=True, exist_ok=True)
        print(f"handviz: warning: cannot write logs to {preferred} ({exc}); using {fallback}",
              file=sys.stderr)
        return fallback


def _drop_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, _FILE_ONLY, False)


def _add_command(record: logging.LogRecord) -> bool:
    record.command = _current_command
    return True


def setup_logging(debug: bool, command: str | None = None) -> Path:
    """Send logs to a rotating file (~1 MB x 3) and warnings (all with `debug`) to stderr.

    command: the subcommand every file line names (kept from an earlier call when None).
    Safe to call again: the handlers of an earlier call are replaced, not stacked, and the
    start-up line (version, Python, platform, pid) is written once per process and file.
    Returns the log file's path.
    """
    global _current_log_file, _current_command, _started_in
    if command is not None:
        _current_command = command
    log_file = _writable_log_dir() / LOG_FILE_NAME

    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_TAG, False)]:
        root.removeHandler(handler)
        handler.close()

    file_handler = logging.handlers.RotatingFileHandler(
        log_file, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    file_handler.setLevel(logging.DEBUG if debug else logging.INFO)
    file_handler.setFormatter(logging.Formatter(_FILE_FORMAT))
    file_handler.addFilter(_add_command)

    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if debug else logging.WARNING)
    console.setFormatter(logging.Formatter(_CONSOLE_FORMAT))
    console.addFilter(_drop_file_only)

    for handler in (file_handler, console):
        setattr(handler, _HANDLER_TAG, True)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    logging.captureWarnings(True)

    _current_log_file = log_file
    if _started_in != log_file:
        _started_in = log_file
        _log.info("handviz %s, Python %s on %s; pid %d", __version__, platform.python_version(),
                  platform.platform(), os.getpid())
    return log_file


def log_command_line(argv: list[str]) -> None:
    """Record how the process was started, so a log attached to a report can be replayed."""
    _log.info("command line: %s", shlex.join(["handviz", *map(str, argv)]))


def exit_code_for(exc: BaseException) -> int:
    """2 for problems in the user's input, 130 for Ctrl+C, 1 for everything else."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, (InputError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                        PermissionError)):
        return EXIT_INPUT_ERROR
    return EXIT_FAILURE


def _one_line(text: str) -> str:
    return " ".join(text.split())


def describe_error(exc: BaseException) -> str:
    """The single line shown to the user for `exc` (no traceback)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, InputError):
        return _one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    detail = _one_line(str(exc))
    return f"unexpected {type(exc).__name__}: {detail}" if detail else f"unexpected {type(exc).__name__}"


def report_error(exc: BaseException, debug: bool) -> int:
    """Print one clear line about `exc` on stderr (plus the traceback with `debug`).

    The traceback always goes to the log file. Returns the process exit status to use.
    """
    code = exit_code_for(exc)
    level = logging.ERROR if code == EXIT_FAILURE else logging.INFO
    _log.log(level, "command failed", exc_info=exc, extra={_FILE_ONLY: True})
    if debug and code != EXIT_INTERRUPTED:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    line = f"handviz: error: {describe_error(exc)}"
    if code == EXIT_FAILURE and not debug:
        where = f"; details in {_current_log_file}" if _current_log_file else ""
        line += f" (a bug: please report it{where}; --debug shows the traceback)"
    print(line, file=sys.stderr)
    return code
