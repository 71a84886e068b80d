"""An on/off switch around a SessionWriter that worker threads can feed while the GUI toggles it.

The pipeline's result callback calls `put` for every result (before the GUI skips any); the
writer queues and writes on its own thread, so recording never slows the pipeline.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from handviz.pipeline.timing import content_time
from handviz.types import FrameResult

log = logging.getLogger(__name__)


def default_session_path(folder: str | Path) -> Path:
    """folder/session-YYYYmmdd-HHMMSS (a suffix -2, -3 ... when that exists already)."""
    folder = Path(folder).expanduser()
    stem = "session-" + _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = folder / stem, 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}"
    return path


@dataclass
class RecordingSummary:
    path: Path
    frames_written: int
    dropped: int
    error: str | None


class Recorder:
    """Thread-safe: `start` / `stop` from the GUI, `put` from the worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writer: Any = None
        self._last: Any = None  # the current or last session's writer, for its counts
        self._path: Path | None = None

    @property
    def recording(self) -> bool:
        with self._lock:
            return self._writer is not None and self._writer.recording

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def frames_received(self) -> int:
        """Results the current (or last) session was offered: written, queued or dropped. A
        result produced just before the session opened is never in it."""
        with self._lock:
            return self._last.received if self._last is not None else 0

    @property
    def frames_written(self) -> int:
        with self._lock:
            return self._writer.frames_written if self._writer is not None else 0

    @property
    def error(self) -> str | None:
        with self._lock:
            return self._writer.error if self._writer is not None else None

    def start(self, path: str | Path, faces: np.ndarray | None, intrinsics: np.ndarray, meta: dict[str, Any],
              fps: float = 30.0, on_error: Callable[[str], None] | None = None) -> Path:
        """Open a new session at path; raises SessionError (a message for the user) on failure."""
        from handviz.io.session import SessionWriter

        faces = np.zeros((0, 3), np.int32) if faces is None else np.asarray(faces, np.int32)
        writer = SessionWriter(path, faces, intrinsics, meta, fps=fps, on_error=on_error)
        with self._lock:
            old, self._writer, self._path = self._writer, writer, Path(path)
            self._last = writer
        if old is not None:
            old.close()
        log.info("recording into %s", path)
        return Path(path)

    def put(self, result: FrameResult, block: bool = False) -> None:
        """Queue one result; block=True (offline runs) waits for the disk instead of dropping.
        Its session time is timing.content_time: a file's own clock, a camera's capture stamp."""
        with self._lock:
            writer = self._writer
        if writer is not None:
            writer.put(result, block=block, at=content_time(result.frame.stamps))

    def stop(self) -> RecordingSummary | None:
        """Finish the session (flushes what is queued); None when nothing was recording."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is None:
            return None
        writer.close()
        summary = RecordingSummary(Path(writer.path), writer.frames_written, writer.dropped, writer.error)
        log.info("recorded %d frame(s) into %s (%d dropped)", summary.frames_written, summary.path, summary.dropped)
        return summary
