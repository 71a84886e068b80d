"""The session database: schema, and rows <-> numpy for the hands table.

Layout (one row per recorded frame, one per hand):
  meta(key, value)      JSON text values; `faces` is a BLOB of int32 (F, 3)
  frames(frame, ...)    frame = position in the session (0, 1, ...); also its frame in the video
                        when video_frame is set; source_index = Frame.index from the source
  hands(frame, slot, ...) float32 blobs; shapes from the schema plus n_hypotheses / n_vertices

WAL mode with synchronous=NORMAL: a commit costs no fsync, and a committed frame survives the
app crashing or being killed (only an OS crash or power cut can lose the last commits).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import numpy as np

from handviz.io.blobs import FLOAT32, FLOAT64, INT32, from_blob, to_blob
from handviz.types import NUM_JOINTS, HandEstimate

DB_NAME = "session.sqlite"
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS frames (
    frame INTEGER PRIMARY KEY,
    source_index INTEGER NOT NULL,
    timestamp REAL NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    video_frame INTEGER,
    n_hands INTEGER NOT NULL,
    intrinsics BLOB,
    timings TEXT NOT NULL,
    stamps TEXT NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS hands (
    frame INTEGER NOT NULL REFERENCES frames(frame),
    slot INTEGER NOT NULL,
    handedness TEXT NOT NULL,
    score REAL NOT NULL,
    keypoints_2d BLOB NOT NULL,
    joints_3d BLOB NOT NULL,
    n_hypotheses INTEGER NOT NULL,
    joint_hypotheses BLOB NOT NULL,
    joint_spread BLOB NOT NULL,
    n_vertices INTEGER NOT NULL,
    vertices BLOB NOT NULL,
    mediapipe_world_3d BLOB NOT NULL,
    PRIMARY KEY (frame, slot)
);
"""

HAND_COLUMNS = ("frame", "slot", "handedness", "score", "keypoints_2d", "joints_3d", "n_hypotheses",
                "joint_hypotheses", "joint_spread", "n_vertices", "vertices", "mediapipe_world_3d")
FRAME_COLUMNS = ("frame", "source_index", "timestamp", "width", "height", "video_frame", "n_hands",
                 "intrinsics", "timings", "stamps", "error")


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def select_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"SELECT {', '.join(columns)} FROM {table}"


def configure_for_writing(conn: sqlite3.Connection, max_bytes: int | None = None) -> None:
    """WAL + synchronous=NORMAL, the schema, and an optional size cap (PRAGMA max_page_count:
    past it SQLite answers 'database or disk is full', exactly as on a full disk)."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    if max_bytes is not None:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={max(1, int(max_bytes) // page_size)}")


def is_disk_full(exc: BaseException) -> bool:
    """SQLITE_FULL ('database or disk is full') or ENOSPC from a file write."""
    if isinstance(exc, sqlite3.OperationalError):
        return "full" in str(exc).lower()
    return isinstance(exc, OSError) and exc.errno == 28


def meta_rows(meta: dict[str, Any], faces: np.ndarray) -> list[tuple[str, Any]]:
    """meta values as JSON text, faces as an int32 blob."""
    rows: list[tuple[str, Any]] = [(k, json.dumps(v)) for k, v in meta.items()]
    rows.append(("faces", to_blob(faces, INT32)))
    return rows


def decode_meta(rows: list[tuple[str, Any]]) -> tuple[dict[str, Any], np.ndarray]:
    """(meta without faces, faces (F, 3) int32) from the meta table's rows."""
    meta: dict[str, Any] = {}
    faces = np.zeros((0, 3), np.int32)
    for key, value in rows:
        if key == "faces":
            faces = from_blob(value, (-1, 3), INT32, "faces") if value else faces
        else:
            meta[key] = json.loads(value)
    return meta, faces


def hand_row(frame: int, slot: int, hand: HandEstimate) -> tuple[Any, ...]:
    hyps = np.asarray(hand.joint_hypotheses, dtype=np.float32).reshape(-1, NUM_JOINTS, 3)
    verts = np.asarray(hand.vertices, dtype=np.float32).reshape(-1, 3)
    return (frame, slot, str(hand.handedness), float(hand.score),
            to_blob(hand.keypoints_2d), to_blob(hand.joints_3d), len(hyps), to_blob(hyps),
            to_blob(hand.joint_spread), len(verts), to_blob(verts), to_blob(hand.mediapipe_world_3d))


def hand_from_row(row: tuple[Any, ...]) -> HandEstimate:
    """A HandEstimate from a row of HAND_COLUMNS; BlobSizeError when a blob is damaged."""
    (frame, slot, handedness, score, kp2d, j3d, n_hyp, hyps, spread, n_verts, verts, mp3d) = row
    where = f"frame {frame} hand {slot}"
    return HandEstimate(
        handedness=handedness,
        score=float(score),
        keypoints_2d=from_blob(kp2d, (NUM_JOINTS, 2), FLOAT32, f"{where} keypoints_2d"),
        joints_3d=from_blob(j3d, (NUM_JOINTS, 3), FLOAT32, f"{where} joints_3d"),
        joint_hypotheses=from_blob(hyps, (n_hyp, NUM_JOINTS, 3), FLOAT32, f"{where} joint_hypotheses"),
        joint_spread=from_blob(spread, (NUM_JOINTS,), FLOAT32, f"{where} joint_spread"),
        vertices=from_blob(verts, (n_verts, 3), FLOAT32, f"{where} vertices"),
        mediapipe_world_3d=from_blob(mp3d, (NUM_JOINTS, 3), FLOAT32, f"{where} mediapipe_world_3d"),
    )


def intrinsics_blob(K: np.ndarray | None) -> bytes | None:
    return None if K is None else to_blob(np.asarray(K).reshape(3, 3), FLOAT64)


def intrinsics_from_blob(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else from_blob(blob, (3, 3), FLOAT64, "intrinsics")
