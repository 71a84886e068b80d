"""Keep the console for handviz's own messages: native libraries' chatter goes to the log file.

MediaPipe, TFLite and absl (C++ logging), OpenCV's ffmpeg backend and VTK (e.g. "bad X server
connection", in colour) write straight to file descriptor 2, below Python's logging. Their
environment switches are set where they exist, and while a command runs, fd 2 is a pipe read by
a thread that forwards every line except those libraries' (which it logs at INFO, so a bug report
still has them). `--debug` turns all of this off and shows everything.
"""

from __future__ import annotations

import logging
import os
import re
import select
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("handviz.native")

#: Environment switches the libraries read at import time (set only when the user did not).
QUIET_ENVIRONMENT = {
    "GLOG_minloglevel": "2",  # MediaPipe's glog/absl: errors only
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TFLite / TensorFlow
    "OPENCV_LOG_LEVEL": "ERROR",
    "OPENCV_FFMPEG_LOGLEVEL": "-8",  # ffmpeg's AV_LOG_QUIET inside OpenCV
}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NOISE = re.compile("|".join([
    r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\]",  # absl / glog (MediaPipe)
    r"^WARNING: All log messages before absl::InitializeLog\(\)",
    r"^(INFO|WARNING|ERROR): .*(TensorFlow Lite|TfLite|XNNPACK|delegate)",
    r"^\[[^\]]+ @ 0x[0-9a-fA-F]+\]",  # ffmpeg: [mov,mp4,m4a @ 0x55d...]
    r"^\[ ?(WARN|INFO|ERROR|DEBUG):\d+@[\d.]+\]",  # OpenCV's own log
    r"^(ERROR|Warning|WARNING|Generic Warning): In .+, line \d+",  # VTK output window
    r"^vtk\w+ \(0x[0-9a-fA-F]+\)",
    r"^(\d{4}-\d\d-\d\d [\d:.]+ )?\(\s*[\d.]+s\) \[[^\]]*\]\s*\S+:\d+",  # vtkLogger
    r"bad X server connection",
]))
#: A partial line (no newline yet) is forwarded after this long, so prompts and bars show.
PARTIAL_LINE_WAIT_S = 0.2


def is_native_noise(line: str) -> bool:
    """True for a line written by MediaPipe/TFLite/absl, OpenCV/ffmpeg or VTK."""
    return bool(_NOISE.search(_ANSI.sub("", line).strip()))


class _Pump:
    """Reads the pipe that replaced fd 2; forwards handviz's lines, logs the libraries'."""

    def __init__(self, read_fd: int, console_fd: int) -> None:
        self.read_fd, self.console_fd = read_fd, console_fd
        #: Set when the command is over: drain what is there and stop, even if a child process
        #: (e.g. multiprocessing's resource tracker) still holds the pipe open.
        self.stopping = threading.Event()
        self._pending = b""
        self._after_noise = False  # VTK follows its message with blank lines: drop those too

    def _emit(self, chunk: bytes) -> None:
        text = chunk.decode("utf-8", "replace")
        bare = text.rstrip("\r\n")
        if is_native_noise(bare) or (self._after_noise and not bare.strip()):
            self._after_noise = True
            if bare.strip():
                log.info("%s", _ANSI.sub("", bare).strip())
            return
        self._after_noise = False
        try:
            os.write(self.console_fd, chunk)
        except OSError:
            pass

    def _split(self, final: bool) -> None:
        while True:
            ends = [i for i in (self._pending.find(b"\n"), self._pending.find(b"\r")) if i >= 0]
            if not ends:
                break
            cut = min(ends) + 1
            self._emit(self._pending[:cut])
            self._pending = self._pending[cut:]
        if final and self._pending:
            self._emit(self._pending)
            self._pending = b""

    def run(self) -> None:
        try:
            while True:
                stopping = self.stopping.is_set()
                ready, _, _ = select.select([self.read_fd], [], [], 0.05 if stopping else PARTIAL_LINE_WAIT_S)
                if not ready:
                    self._split(final=True)  # a prompt or progress bar waiting for its newline
                    if stopping:
                        break
                    continue
                data = os.read(self.read_fd, 65536)
                if not data:
                    break
                self._pending += data
                self._split(final=False)
            self._split(final=True)
        finally:
            os.close(self.read_fd)


@contextmanager
def quiet_native_stderr(enabled: bool = True) -> Iterator[None]:
    """While inside, native libraries' console lines go to the log file instead (POSIX only;
    elsewhere only the environment switches apply). enabled=False changes nothing."""
    if not enabled:
        yield
        return
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    try:
        console_fd = os.dup(2)
    except OSError:
        console_fd = -1
    if os.name != "posix" or console_fd < 0:
        yield
        return
    read_fd, write_fd = os.pipe()
    _flush_python_stderr()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = _Pump(read_fd, console_fd)
    thread = threading.Thread(target=pump.run, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        _flush_python_stderr()
        os.dup2(console_fd, 2)  # fd 2 is the console again; the pump drains the pipe and stops
        pump.stopping.set()
        thread.join(timeout=2.0)
        if not thread.is_alive():
            os.close(console_fd)


def _flush_python_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
