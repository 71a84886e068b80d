"""Recorded sessions: a folder with `video.avi` (frames as seen) and `session.sqlite` (results).

`SessionWriter` takes FrameResults from the live pipeline without ever blocking it: a bounded
queue feeds its own writer thread, and a full queue drops (and counts) the record instead of
waiting. Frames are committed in small transactions, as soon as the writer is idle and at
least every `commit_every` frames / `commit_interval_s`, so a crash loses at most those.
A full disk stops the recording with a message (`writer.error`, `on_error`); what was
committed stays readable.

`SessionReader` (session_reader.py) opens a session, including one cut short by a crash (its WAL),
a damaged one (the readable frames stay readable) or one whose video ends early (images None).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from handviz import __version__
from handviz.io.session_db import (
    DB_NAME,
    FRAME_COLUMNS,
    HAND_COLUMNS,
    SCHEMA_VERSION,
    configure_for_writing,
    hand_row,
    insert_sql,
    intrinsics_blob,
    is_disk_full,
    meta_rows,
)
from handviz.io.session_errors import SessionDamagedError, SessionError
from handviz.io.video import DEFAULT_MIN_FREE_BYTES, FOURCC, VIDEO_NAME, VideoSink, scale_to
from handviz.types import FrameResult

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 32  # ~1 s of camera frames
DEFAULT_COMMIT_EVERY = 5
DEFAULT_COMMIT_INTERVAL_S = 0.2
_STOP = object()


@dataclass
class _Pending:
    result: FrameResult
    put_time: float  # time.perf_counter() when handed to put()
    at: float | None = None  # the frame's time as the caller gave it (seconds, any origin)


class SessionWriter:
    """Record FrameResults into a new session folder, on a thread of its own.

    faces: (F, 3) int triangle indices of the hand mesh (stored once, for export).
    intrinsics: (3, 3) K at the start; each frame also keeps its own FrameResult.intrinsics.
    meta: extra JSON-able facts (model_version, source, ...); schema_version, app_version, created,
        fps, intrinsics and the video's name are the writer's own and win over same-named keys.
    on_error: called once, on the writer thread, with the message when recording stops early.
    max_db_bytes / max_video_bytes: stop as on a full disk once a file reaches this size.
    min_free_bytes: stop when the disk has less than this left.
    """

    def __init__(self, path: str | os.PathLike[str], faces: np.ndarray, intrinsics: np.ndarray,
                 meta: dict[str, Any] | None = None, *, fps: float = 30.0,
                 queue_size: int = DEFAULT_QUEUE_SIZE, commit_every: int = DEFAULT_COMMIT_EVERY,
                 commit_interval_s: float = DEFAULT_COMMIT_INTERVAL_S,
                 on_error: Callable[[str], None] | None = None, max_db_bytes: int | None = None,
                 max_video_bytes: int | None = None,
                 min_free_bytes: int = DEFAULT_MIN_FREE_BYTES) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.commit_every = max(1, int(commit_every))
        self.commit_interval_s = float(commit_interval_s)
        self.on_error = on_error
        self.max_video_bytes = max_video_bytes
        self.min_free_bytes = min_free_bytes
        #: Why recording stopped early (None while all is well).
        self.error: str | None = None
        self._frames_written = 0  # committed
        self._dropped = 0
        self._queued = 0
        self._next_frame = 0
        self._t0: float | None = None
        self._video: VideoSink | None = None
        self._size_warned = False
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, int(queue_size)))
        self._lock = threading.Lock()
        self._closing = False
        self._conn = self._create(faces, intrinsics, meta or {}, max_db_bytes)
        self._thread = threading.Thread(target=self._run, name="session-writer", daemon=True)
        self._thread.start()

    # -- caller side -------------------------------------------------------------------------

    @property
    def frames_written(self) -> int:
        """Frames committed to the database (they survive a crash from now on)."""
        return self._frames_written

    @property
    def dropped(self) -> int:
        """Records refused because the queue was full (the disk could not keep up)."""
        return self._dropped

    @property
    def received(self) -> int:
        """Results offered while recording: queued for writing or dropped. Counted under the
        writer's own lock, so it is the race-free "frames delivered while recording"."""
        with self._lock:
            return self._queued + self._dropped

    @property
    def recording(self) -> bool:
        return not self._closing and self.error is None

    def put(self, result: FrameResult, *, block: bool = False, timeout: float | None = None,
            at: float | None = None) -> bool:
        """Queue one result; True when it will be written.

        block=False (the live view): never waits; a full queue drops and counts the record.
        block=True (headless `record`): waits for room, up to `timeout` seconds (None: forever).
        at: the frame's time in seconds, any origin (the recorder gives a file's own clock);
        None: its capture stamp, else when it was put. Stored relative to the first frame's.
        The writer keeps references to the arrays: do not modify them afterwards.
        """
        item = _Pending(result, time.perf_counter(), at)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if not self.recording:
                    return False
                try:
                    self._queue.put_nowait(item)
                    self._queued += 1
                    return True
                except queue.Full:
                    if not block or (deadline is not None and time.monotonic() >= deadline):
                        self._count_drop()
                        return False
            time.sleep(0.002)

    def _count_drop(self) -> None:
        self._dropped += 1
        if self._dropped in (1, 10) or self._dropped % 100 == 0:
            log.warning("%s: the disk is not keeping up; %d frame(s) not recorded so far",
                        self.path, self._dropped)

    def close(self) -> None:
        """Write what is queued, finish the files, stop the thread. Safe to call twice."""
        with self._lock:
            already = self._closing
            self._closing = True
        if not already:
            while self._thread.is_alive():
                try:
                    self._queue.put(_STOP, timeout=0.1)
                    break
                except queue.Full:
                    continue
        self._thread.join()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- setup --------------------------------------------------------------------------------

    def _create(self, faces: np.ndarray, intrinsics: np.ndarray, meta: dict[str, Any],
                max_db_bytes: int | None) -> sqlite3.Connection:
        db = self.path / DB_NAME
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SessionError(f"{self.path}: cannot create the session folder ({exc.strerror})") from exc
        if db.exists() and db.stat().st_size > 0:
            raise SessionError(f"{self.path}: already holds a session; choose another folder or delete it")
        faces = np.asarray(faces)
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3) triangle indices, got shape {faces.shape}")
        full_meta = {
            **meta,
            "schema_version": SCHEMA_VERSION,
            "app_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "fps": self.fps,
            "intrinsics": np.asarray(intrinsics, dtype=float).reshape(3, 3).tolist(),
            "video_file": VIDEO_NAME,
            "video_codec": FOURCC,
            # Written again on close; stored now so closing updates rows in place instead of
            # adding a page at the end of the file (a cut-short file then keeps its meta).
            "frames_written": 0,
            "dropped": 0,
            "closed_cleanly": False,
            "stopped_reason": None,
        }
        try:
            # isolation_level=None: we issue BEGIN/SAVEPOINT/COMMIT ourselves (see _write).
            conn = sqlite3.connect(db, check_same_thread=False, timeout=10.0, isolation_level=None)
            configure_for_writing(conn, max_db_bytes)
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                             meta_rows(full_meta, faces))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            what = "the disk is full" if is_disk_full(exc) else str(exc)
            raise SessionError(f"{db}: cannot create the session database ({what})") from exc
        return conn

    # -- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        pending = 0
        last_commit = time.monotonic()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.commit_interval_s)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    break
                if item is not None:
                    self._write(item)
                    pending += 1
                if pending and (pending >= self.commit_every or self._queue.empty()
                                or time.monotonic() - last_commit >= self.commit_interval_s):
                    self._conn.execute("COMMIT")
                    self._frames_written += pending
                    pending, last_commit = 0, time.monotonic()
            if self._conn.in_transaction:
                self._conn.execute("COMMIT")
            self._frames_written += pending
            pending = 0
            self._finish(closed_cleanly=True)
        except Exception as exc:  # noqa: BLE001 - any failure must stop recording, never kill the app
            self._fail(exc, pending)
        finally:
            self._release()

    def _write(self, item: _Pending) -> None:
        result = item.result
        image = result.frame.image
        video_frame = self._write_video(image)
        captured = result.frame.captured_at
        t_capture = item.at if item.at is not None else captured if captured is not None else item.put_time
        if self._t0 is None:
            self._t0 = t_capture
        frame = self._next_frame
        height, width = (image.shape[:2] if image is not None else (0, 0))
        frame_row = (
            frame, int(result.frame.index), float(t_capture - self._t0), int(width), int(height),
            video_frame, len(result.hands), intrinsics_blob(result.intrinsics),
            json.dumps({k: float(v) for k, v in result.timings_ms.items()}),
            json.dumps({k: float(v) for k, v in result.frame.stamps.items()}), result.error,
        )
        hand_rows = [hand_row(frame, slot, hand) for slot, hand in enumerate(result.hands)]
        # A savepoint per frame: a frame is stored whole or not at all, even when the disk
        # fills up between its frame row and its hand rows.
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN")
        self._conn.execute("SAVEPOINT frame")
        try:
            self._conn.execute(insert_sql("frames", FRAME_COLUMNS), frame_row)
            self._conn.executemany(insert_sql("hands", HAND_COLUMNS), hand_rows)
            self._conn.execute("RELEASE frame")
        except sqlite3.Error:
            try:
                self._conn.execute("ROLLBACK TO frame")
                self._conn.execute("RELEASE frame")
            except sqlite3.Error:
                pass  # SQLite already rolled the whole transaction back
            raise
        self._next_frame += 1

    def _write_video(self, image: np.ndarray | None) -> int | None:
        if image is None or image.ndim != 3 or image.shape[2] != 3:
            return None
        size = (image.shape[1], image.shape[0])
        if self._video is None:
            self._video = VideoSink(self.path / VIDEO_NAME, self.fps, size,
                                    max_bytes=self.max_video_bytes, min_free_bytes=self.min_free_bytes)
        if size != self._video.size:
            if not self._size_warned:
                log.info("%s: frame size changed from %dx%d to %dx%d; such frames are scaled to the "
                         "video's size and scaled back on reading", self.path, *self._video.size, *size)
                self._size_warned = True
            image = scale_to(image, self._video.size)
        return self._video.write(np.ascontiguousarray(image, dtype=np.uint8))

    def _finish(self, closed_cleanly: bool, reason: str | None = None) -> None:
        """Final facts into meta, then fold the WAL into the database file."""
        facts = {"frames_written": self._frames_written, "dropped": self._dropped,
                 "closed_cleanly": closed_cleanly, "stopped_reason": reason}
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN")
        self._conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                               [(k, json.dumps(v)) for k, v in facts.items()])
        self._conn.execute("COMMIT")
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _fail(self, exc: Exception, pending: int) -> None:
        """Keep what can be kept, then report once."""
        if self._conn.in_transaction:  # e.g. a video error: the database may still take them
            try:
                self._conn.execute("COMMIT")
                self._frames_written += pending
            except sqlite3.Error:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
        if is_disk_full(exc):
            cause = f"the disk is full ({exc})"
            hint = "free some space and record again"
        else:
            cause = f"{type(exc).__name__}: {exc}"
            hint = "see the log for details"
        message = (f"recording stopped: {cause}; the {self._frames_written} frames recorded "
                   f"before are kept in {self.path}; {hint}")
        try:
            self._finish(closed_cleanly=False, reason=message)
        except sqlite3.Error:
            pass
        self.error = message
        log.error(message, exc_info=not is_disk_full(exc))
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:  # noqa: BLE001 - a broken callback must not hide the error
                log.exception("session on_error callback failed")

    def _release(self) -> None:
        if self._video is not None:
            self._video.close()
        self._conn.close()


# The reader lives in its own module; importing it from here keeps `handviz.io.session` the one
# place to get both sides of the format.
from handviz.io.session_reader import SessionFrame, SessionReader  # noqa: E402

__all__ = ["SessionDamagedError", "SessionError", "SessionFrame", "SessionReader", "SessionWriter"]
