"""Reading a recorded session folder back: `SessionReader` (frames, meta, faces) and the
`SessionFrame` it gives. It opens sessions cut short by a crash (SQLite replays its WAL), damaged
ones (the readable frames stay readable) and ones whose video ends early (images None).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handviz.io.blobs import BlobSizeError
from handviz.io.session_db import (
    DB_NAME,
    FRAME_COLUMNS,
    HAND_COLUMNS,
    SCHEMA_VERSION,
    decode_meta,
    hand_from_row,
    intrinsics_from_blob,
    select_sql,
)
from handviz.io.session_errors import SessionDamagedError, SessionError
from handviz.io.video import VIDEO_NAME, VIDEO_NAMES, VideoFrames, scale_to
from handviz.types import Frame, FrameResult, HandEstimate

log = logging.getLogger(__name__)


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
