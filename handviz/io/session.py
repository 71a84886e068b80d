"""Recorded sessions: a folder with `video.avi` (frames as seen) and `session.sqlite` (results).

`SessionWriter` takes FrameResults from the live pipeline without ever blocking it: a bounded
queue feeds its own writer thread, and a full queue drops (and counts) the record instead of
waiting. Frames are committed in small transactions, as soon as the writer is idle and at
least every `commit_every` frames / `commit_interval_s`, so a crash loses at most those.
A full disk stops the recording with a message (`writer.error`, `on_error`); what was
committed stays readable.

`SessionReader` opens a session, including one cut short by a crash (SQLite replays its WAL),
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handviz import __version__
from handviz.io.blobs import BlobSizeError
from handviz.io.session_db import (
    DB_NAME,
    FRAME_COLUMNS,
    HAND_COLUMNS,
    SCHEMA_VERSION,
    configure_for_writing,
    decode_meta,
    hand_from_row,
    hand_row,
    insert_sql,
    intrinsics_blob,
    intrinsics_from_blob,
    is_disk_full,
    meta_rows,
    select_sql,
)
from handviz.io.video import DEFAULT_MIN_FREE_BYTES, FOURCC, VIDEO_NAME, VIDEO_NAMES, VideoFrames, VideoSink, scale_to
from handviz.logs import InputError
from handviz.types import Frame, FrameResult, HandEstimate

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 32  # ~1 s of camera frames
DEFAULT_COMMIT_EVERY = 5
DEFAULT_COMMIT_INTERVAL_S = 0.2
_STOP = object()


class SessionError(InputError):
    """A session folder that cannot be written or read; the message names it and what to do."""


class SessionDamagedError(SessionError):
    """One frame of an otherwise readable session cannot be read back."""


@dataclass
class _Pending:
    result: FrameResult
    put_time: float  # time.perf_counter() when handed to put()


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
    def recording(self) -> bool:
        return not self._closing and self.error is None

    def put(self, result: FrameResult, *, block: bool = False, timeout: float | None = None) -> bool:
        """Queue one result; True when it will be written.

        block=False (the live view): never waits; a full queue drops and counts the record.
        block=True (headless `record`): waits for room, up to `timeout` seconds (None: forever).
        The writer keeps references to the arrays: do not modify them afterwards.
        """
        item = _Pending(result, time.perf_counter())
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if not self.recording:
                    return False
                try:
                    self._queue.put_nowait(item)
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
        t_capture = captured if captured is not None else item.put_time
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


@dataclass
class SessionFrame:
    """One recorded frame read back: what the pipeline said, and the image if the video has it.

    position: 0-based place in the session (what `frame(k)`, replay and export count);
    source_index: Frame.index the source gave it. timestamp: seconds since the first frame.
    """

    position: int
    source_index: int
    timestamp: float
    width: int
    height: int
    image: np.ndarray | None  # (H, W, 3) uint8 RGB, None when the video does not reach it
    hands: list[HandEstimate]
    intrinsics: np.ndarray | None  # (3, 3)
    timings_ms: dict[str, float] = field(default_factory=dict)
    stamps: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def to_frame_result(self, default_intrinsics: np.ndarray | None = None) -> FrameResult:
        """A FrameResult for the views; a missing image becomes black at the recorded size so
        the meshes can still be drawn (check `image is None` to tell)."""
        image = self.image
        if image is None:
            image = np.zeros((max(self.height, 1), max(self.width, 1), 3), np.uint8)
        K = self.intrinsics if self.intrinsics is not None else default_intrinsics
        if K is None:
            K = np.eye(3)
        frame = Frame(index=self.source_index, image=image, source="session", stamps=dict(self.stamps))
        return FrameResult(frame=frame, detections=[], hands=self.hands, intrinsics=K,
                           timings_ms=dict(self.timings_ms), error=self.error)


class SessionReader:
    """Read a session folder: `len(reader)`, `reader.frame(k)`, `for f in reader`, `reader.meta`.

    `warnings` lists what was found damaged; `complete` is False for a session cut short.
    Not thread-safe: use one reader per thread.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        #: Positions that `iter()` skipped because they could not be read.
        self.skipped: list[int] = []
        db = self.path / DB_NAME
        if not self.path.is_dir():
            raise SessionError(f"{self.path}: no such session folder (record one with `handviz record`)")
        if not db.is_file():
            raise SessionError(f"{self.path}: has no {DB_NAME}; is this a handviz session folder?")
        self._db = db
        try:
            self._open(salvage=False)
        except SessionError as first:
            # A cut-short file fails SQLite's size check before anything is read; a salvage
            # connection (read-only, size check off) can still reach the pages that are there.
            try:
                self._open(salvage=True)
            except SessionError:
                raise first from None
            self._warn(f"{db}: damaged ({first.__cause__}); reading what is left")
        self.video = self._open_video()

    def _open(self, salvage: bool) -> None:
        self._conn = self._connect(self._db, salvage)
        try:
            #: (F, 3) int32 triangles of the recorded hand mesh.
            self.meta, self.faces = self._read_meta()
            self._rows = self._read_frame_rows()
        except BaseException:
            self._conn.close()
            raise

    # -- opening ------------------------------------------------------------------------------

    def _unreadable(self, exc: BaseException) -> SessionError:
        return SessionError(f"{self._db}: not a readable handviz session ({exc}); "
                            "the file is damaged or not a session database")

    def _connect(self, db: Path, salvage: bool) -> sqlite3.Connection:
        """Read-write when allowed (so SQLite can replay a crashed session's WAL), else read-only;
        `mode=rw` never creates a file. salvage: read-only with writable_schema, which makes SQLite
        trust the file's real length over the page count in its header (we never write)."""
        last: sqlite3.Error | None = None
        for mode in ("ro",) if salvage else ("rw", "ro"):
            try:
                conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode={mode}", uri=True, timeout=10.0)
                if salvage:
                    conn.execute("PRAGMA writable_schema=ON")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.Error as exc:
                last = exc
        assert last is not None
        raise self._unreadable(last) from last

    def _read_meta(self) -> tuple[dict[str, Any], np.ndarray]:
        try:
            try:
                rows = self._conn.execute("SELECT key, value FROM meta").fetchall()
            except sqlite3.DatabaseError:
                rows = self._meta_rows_one_by_one()
            meta, faces = decode_meta(rows)
        except (sqlite3.Error, ValueError) as exc:
            raise self._unreadable(exc) from exc
        version = meta.get("schema_version")
        if not isinstance(version, int):
            raise self._unreadable(ValueError("no schema_version in meta"))
        if version > SCHEMA_VERSION:
            raise SessionError(f"{self._db}: written by a newer handviz (session format {version}, "
                               f"this one reads up to {SCHEMA_VERSION}); update handviz")
        return meta, faces

    def _meta_rows_one_by_one(self) -> list[tuple[str, Any]]:
        """The meta rows that can still be read from a damaged file."""
        rows = []
        for (key,) in self._conn.execute("SELECT key FROM meta").fetchall():
            try:
                value = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]
                rows.append((key, value))
            except sqlite3.DatabaseError as exc:
                self._warn(f"{self._db}: meta '{key}' is damaged ({exc})")
        return rows

    def _read_frame_rows(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        try:
            for row in self._conn.execute(select_sql("frames", FRAME_COLUMNS) + " ORDER BY frame"):
                rows.append(row)
            return rows
        except sqlite3.Error as exc:
            if "no such table" in str(exc):
                raise self._unreadable(exc) from exc
            damage = exc
        rows += self._probe_frame_rows(rows[-1][0] + 1 if rows else 0)
        self._warn(f"{self._db}: damaged ({damage}); {len(rows)} frames could be read")
        return rows

    def _probe_frame_rows(self, start: int) -> list[tuple[Any, ...]]:
        """Frames after a damaged page, one lookup each (frames are numbered 0, 1, ...); stops at
        the recorded count or after a long run of frames that are not there."""
        upper = self.meta.get("frames_written") or None  # 0: not closed, count unknown
        for query in ("SELECT max(frame) FROM frames", "SELECT max(frame) FROM hands"):
            if upper is not None:
                break
            try:
                top = self._conn.execute(query).fetchone()[0]
                upper = None if top is None else top + 1
            except sqlite3.Error:
                continue
        found, misses, k = [], 0, start
        sql = select_sql("frames", FRAME_COLUMNS) + " WHERE frame = ?"
        while (k < upper) if upper is not None else (misses < 10_000):
            try:
                row = self._conn.execute(sql, (k,)).fetchone()
            except sqlite3.Error:
                row = None
            if row is None:
                misses += 1
            else:
                found.append(row)
                misses = 0
            k += 1
        return found

    def _open_video(self) -> VideoFrames | None:
        names = [self.meta.get("video_file", VIDEO_NAME), *VIDEO_NAMES]
        path = next((self.path / n for n in names if (self.path / n).is_file()), None)
        if path is None:
            if any(row[5] is not None for row in self._rows[:1]):
                self._warn(f"{self.path}: the video file is missing; frames have no images")
            return None
        try:
            return VideoFrames(path)
        except OSError as exc:
            self._warn(f"{path}: cannot be read ({exc.strerror}); frames have no images")
            return None

    def _warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)

    # -- reading ------------------------------------------------------------------------------

    @property
    def intrinsics(self) -> np.ndarray:
        """(3, 3) K at the start of the recording."""
        return np.asarray(self.meta["intrinsics"], dtype=np.float64).reshape(3, 3)

    @property
    def fps(self) -> float:
        return float(self.meta.get("fps", 30.0))

    @property
    def complete(self) -> bool:
        """True when the recording was closed normally (not cut short by a crash or full disk)."""
        return bool(self.meta.get("closed_cleanly", False))

    def __len__(self) -> int:
        return len(self._rows)

    def frame(self, k: int) -> SessionFrame:
        """Frame at position k (0 <= k < len); SessionDamagedError when its data is damaged."""
        if not 0 <= k < len(self._rows):
            raise IndexError(f"{self.path}: frame {k} out of range (the session has {len(self._rows)})")
        (position, source_index, timestamp, width, height, video_frame, n_hands, K_blob,
         timings, stamps, error) = self._rows[k]
        try:
            rows = self._conn.execute(select_sql("hands", HAND_COLUMNS) + " WHERE frame = ? ORDER BY slot",
                                      (position,)).fetchall()
            hands = [hand_from_row(row) for row in rows]
            if len(hands) != n_hands:
                raise BlobSizeError(f"{len(hands)} hands stored, {n_hands} expected")
            K = intrinsics_from_blob(K_blob)
            timings_ms, stamp_map = json.loads(timings), json.loads(stamps)
        except (sqlite3.Error, ValueError) as exc:
            raise SessionDamagedError(f"{self._db}: frame {k} is damaged and cannot be read ({exc})") from exc
        image = None
        if self.video is not None and video_frame is not None:
            image = self.video.read(video_frame)
            if image is not None and image.shape[:2] != (height, width) and width > 0 and height > 0:
                image = scale_to(image, (width, height))  # recorded at another size than the video's
        return SessionFrame(position=k, source_index=source_index, timestamp=timestamp, width=width,
                            height=height, image=image, hands=hands, intrinsics=K,
                            timings_ms=timings_ms, stamps=stamp_map, error=error)

    def __getitem__(self, k: int) -> SessionFrame:
        return self.frame(k)

    def __iter__(self) -> Iterator[SessionFrame]:
        """Every readable frame in order; damaged ones are skipped (see `skipped`, `warnings`)."""
        for k in range(len(self._rows)):
            try:
                yield self.frame(k)
            except SessionDamagedError as exc:
                self.skipped.append(k)
                self._warn(str(exc))

    def close(self) -> None:
        if self.video is not None:
            self.video.close()
            self.video = None
        self._conn.close()

    def __enter__(self) -> SessionReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
