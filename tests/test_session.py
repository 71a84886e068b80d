"""Session recording and replay: round trip, never blocking, full disk, damaged files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from handviz import __version__
from handviz.io.session import SessionDamagedError, SessionError, SessionReader, SessionWriter
from handviz.io.session_db import DB_NAME
from handviz.io.video import VIDEO_NAME
from handviz.types import Frame, FrameResult, HandEstimate

H, W = 96, 128
MESH = trimesh.creation.icosphere(subdivisions=2)  # 162 vertices, 320 faces
K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])


def frame_image(i: int, h: int = H, w: int = W) -> np.ndarray:
    """A picture that says which frame it is: a bright bar whose position and level encode i."""
    img = np.full((h, w, 3), 20, np.uint8)
    x = (i * 9) % (w - 16)
    img[:, x:x + 16] = (200, 120 + i % 100, 60)
    return img


def which_frame(img: np.ndarray, candidates: range) -> int:
    errors = [np.abs(img.astype(int) - frame_image(k, *img.shape[:2])).mean() for k in candidates]
    return candidates[int(np.argmin(errors))]


def make_hand(rng: np.random.Generator, handedness: str = "Right", n_hyp: int = 8,
              n_verts: int | None = None) -> HandEstimate:
    verts = MESH.vertices * 40 + [0, 0, 400] if n_verts is None else rng.normal(size=(n_verts, 3)) * 40
    return HandEstimate(
        handedness=handedness,
        score=float(rng.uniform(0.5, 1)),
        keypoints_2d=rng.uniform(0, 100, (21, 2)).astype(np.float32),
        joints_3d=rng.normal(0, 30, (21, 3)).astype(np.float32) + np.float32([0, 0, 400]),
        joint_hypotheses=rng.normal(0, 30, (n_hyp, 21, 3)).astype(np.float32),
        joint_spread=rng.uniform(0, 10, 21).astype(np.float32),
        vertices=np.asarray(verts, np.float32),
        mediapipe_world_3d=rng.normal(0, 30, (21, 3)).astype(np.float32),
    )


def make_result(i: int, hands: list[HandEstimate], image: np.ndarray | None = None) -> FrameResult:
    img = frame_image(i) if image is None else image
    stamps = {"captured": time.perf_counter(), "delivered": time.perf_counter() + 0.01}
    return FrameResult(frame=Frame(index=100 + i, image=img, source="test", stamps=stamps), detections=[],
                       hands=hands, intrinsics=K, timings_ms={"detect": 1.5 + i, "infer": 2.0})


def assert_same_hand(a: HandEstimate, b: HandEstimate) -> None:
    assert a.handedness == b.handedness
    assert a.score == pytest.approx(b.score)
    for name in ("keypoints_2d", "joints_3d", "joint_hypotheses", "joint_spread", "vertices",
                 "mediapipe_world_3d"):
        got, want = getattr(a, name), getattr(b, name)
        assert got.dtype == np.float32 and got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    results = []
    for i in range(12):  # 0, 1 or 2 hands; N and V vary, N=0 and odd V included
        hands = [make_hand(rng, "Right", n_hyp=i % 4 * 4)] if i % 3 else []
        if i % 4 == 0:
            hands += [make_hand(rng, "Left", n_verts=1609), make_hand(rng, "Right", n_verts=7)]
        results.append(make_result(i, hands))
    results[5].error = "inference failed"
    session = tmp_path / "s"
    with SessionWriter(session, MESH.faces, K, {"model_version": "test-1"}, fps=25.0) as writer:
        for r in results:
            assert writer.put(r, block=True)
    assert writer.error is None and writer.dropped == 0 and writer.frames_written == len(results)
    assert not (session / f"{DB_NAME}-wal").exists() or (session / f"{DB_NAME}-wal").stat().st_size == 0

    with SessionReader(session) as reader:
        assert len(reader) == len(results) and reader.complete and not reader.warnings
        assert reader.meta["app_version"] == __version__
        assert reader.meta["model_version"] == "test-1"
        assert reader.fps == 25.0 and reader.meta["video_codec"] == "MJPG"
        np.testing.assert_array_equal(reader.faces, MESH.faces)
        np.testing.assert_allclose(reader.intrinsics, K)
        records = list(reader)
        for k, (rec, res) in enumerate(zip(records, results)):
            assert rec.position == k and rec.source_index == res.frame.index
            assert (rec.width, rec.height) == (W, H)
            assert len(rec.hands) == len(res.hands)
            for a, b in zip(rec.hands, res.hands):
                assert_same_hand(a, b)
            assert rec.timings_ms == pytest.approx(res.timings_ms)
            assert rec.error == res.error
            np.testing.assert_allclose(rec.intrinsics, K)
            assert rec.image is not None and rec.image.shape == (H, W, 3)
            assert np.abs(rec.image.astype(int) - res.frame.image).mean() < 3  # JPEG, quality 85
        stamps = [r.timestamp for r in records]
        assert stamps[0] == 0.0 and all(b >= a for a, b in zip(stamps, stamps[1:]))
        # random access, backwards and forwards, gives the right pictures
        for k in (9, 2, 11, 0, 5):
            assert which_frame(reader.frame(k).image, range(12)) == k
        fr = reader.frame(4).to_frame_result()
        assert fr.frame.index == 104 and len(fr.hands) == 3 and fr.frame.image.shape == (H, W, 3)

    conn = sqlite3.connect(session / DB_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # raw float32 bytes, nothing else: V * 3 * 4 bytes per vertex blob
    n_verts, size = conn.execute("SELECT n_vertices, length(vertices) FROM hands LIMIT 1").fetchone()
    assert size == n_verts * 3 * 4
    conn.close()


def test_put_never_blocks_and_counts_drops(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    writer = SessionWriter(tmp_path / "s", MESH.faces, K, queue_size=2)
    gate, gave_up = threading.Event(), threading.Event()
    write = writer._write

    def stalled_write(item):  # a disk that stalls until the test lets it go on (or gives up once)
        if not gave_up.is_set() and not gate.wait(60):
            gave_up.set()
        write(item)

    writer._write = stalled_write
    accepted = sum(writer.put(make_result(i, [make_hand(rng)])) for i in range(10))
    # every put() returned while the disk was stalled: had one waited for it, the loop could only
    # have ended once the stall gave up
    assert not gave_up.is_set(), "put() waited for the stalled disk"
    assert accepted + writer.dropped == 10 and 2 <= accepted <= 3
    gate.set()
    writer.close()
    assert writer.error is None
    with SessionReader(tmp_path / "s") as reader:
        assert len(reader) == accepted and reader.meta["dropped"] == writer.dropped


def test_close_flushes_everything_queued(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    with SessionWriter(tmp_path / "s", MESH.faces, K, queue_size=64) as writer:
        for i in range(40):
            assert writer.put(make_result(i, [make_hand(rng)]))
    assert writer.put(make_result(40, [])) is False  # closed
    with SessionReader(tmp_path / "s") as reader:
        assert len(reader) == 40
        assert [r.source_index for r in reader] == list(range(100, 140))


def record_until_stopped(writer: SessionWriter, rng: np.random.Generator, image_fn=frame_image,
                         limit: int = 3000) -> int:
    for i in range(limit):
        if not writer.put(make_result(i, [make_hand(rng, n_verts=1609, n_hyp=32)], image_fn(i)), block=True):
            return i
    raise AssertionError("the recording never stopped")


def test_database_full_stops_recording_and_keeps_frames(tmp_path: Path) -> None:
    """PRAGMA max_page_count makes SQLite answer 'database or disk is full', as a full disk does."""
    rng = np.random.default_rng(3)
    messages: list[str] = []
    writer = SessionWriter(tmp_path / "s", MESH.faces, K, max_db_bytes=400_000, on_error=messages.append)
    record_until_stopped(writer, rng)
    writer.close()
    assert writer.error is not None and "disk is full" in writer.error and str(tmp_path / "s") in writer.error
    assert messages == [writer.error]
    assert writer.put(make_result(0, [])) is False
    assert writer.frames_written >= 5
    with SessionReader(tmp_path / "s") as reader:
        assert len(reader) == writer.frames_written
        assert not reader.complete
        assert all(len(r.hands) == 1 and r.image is not None for r in reader) and not reader.skipped


def test_video_size_limit_stops_recording_and_keeps_frames(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    messages: list[str] = []
    writer = SessionWriter(tmp_path / "s", MESH.faces, K, max_video_bytes=60_000, on_error=messages.append)
    record_until_stopped(writer, rng)
    writer.close()
    assert "disk is full" in writer.error and "size limit" in writer.error and messages == [writer.error]
    assert writer.frames_written >= 3
    with SessionReader(tmp_path / "s") as reader:
        assert len(reader) == writer.frames_written
        for k, rec in enumerate(reader):
            assert which_frame(rec.image, range(writer.frames_written + 5)) == k


@pytest.fixture()
def tiny_disk(tmp_path: Path):
    """A real 1.5 MiB file system (tmpfs); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_real_full_disk(tiny_disk: Path) -> None:
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)  # JPEG-unfriendly: fills the disk fast
    messages: list[str] = []
    writer = SessionWriter(tiny_disk / "s", MESH.faces, K, min_free_bytes=0, on_error=messages.append)
    record_until_stopped(writer, rng, image_fn=lambda i: noise)
    writer.close()
    assert "disk is full" in writer.error and messages == [writer.error]
    with SessionReader(tiny_disk / "s") as reader:
        assert len(reader) == writer.frames_written > 0
        assert all(len(r.hands) == 1 for r in reader) and not reader.skipped


def test_frames_of_another_size_keep_their_video(tmp_path: Path) -> None:
    """Defect 3: a source that changes size (the demo did) must not replay on black: every frame
    keeps video, scaled to the session's size on writing and back to its own size on reading."""
    rng = np.random.default_rng(6)
    small = frame_image(1, 60, 80)  # (h, w) = (60, 80): a quarter of the session's size
    with SessionWriter(tmp_path / "s", MESH.faces, K) as writer:
        writer.put(make_result(0, [make_hand(rng)]), block=True)
        writer.put(make_result(1, [make_hand(rng)], small), block=True)
        writer.put(make_result(2, [make_hand(rng)]), block=True)
    with SessionReader(tmp_path / "s") as reader:
        images = [reader.frame(k).image for k in range(3)]
        assert all(image is not None for image in images)
        assert which_frame(images[2], range(3)) == 2
        assert (reader.frame(1).width, reader.frame(1).height) == (80, 60)
        assert images[1].shape == (60, 80, 3) and images[1].any()
        assert np.abs(images[1].astype(int) - small).mean() < 12  # JPEG and two resizes away
        assert reader.frame(1).to_frame_result().frame.image.shape == (60, 80, 3)


def write_session(path: Path, n: int, seed: int = 7) -> list[FrameResult]:
    rng = np.random.default_rng(seed)
    results = [make_result(i, [make_hand(rng, n_verts=1609, n_hyp=32)]) for i in range(n)]
    with SessionWriter(path, MESH.faces, K) as writer:
        for r in results:
            writer.put(r, block=True)
    return results


def test_truncated_video_leaves_data_and_images_where_it_ends(tmp_path: Path) -> None:
    results = write_session(tmp_path / "s", 30)
    video = tmp_path / "s" / VIDEO_NAME
    with video.open("r+b") as f:
        f.truncate(video.stat().st_size // 2)
    with SessionReader(tmp_path / "s") as reader:
        assert len(reader) == 30
        records = [reader.frame(k) for k in (20, 3, 29, 0, 10)] + list(reader)
        assert all(len(r.hands) == 1 for r in records)
        with_image = [r.position for r in reader if r.image is not None]
        assert 5 <= len(with_image) < 30 and with_image == list(range(len(with_image)))
        for k in with_image:
            assert which_frame(reader.frame(k).image, range(30)) == k
        assert_same_hand(reader.frame(29).hands[0], results[29].hands[0])


def test_missing_or_damaged_video(tmp_path: Path) -> None:
    write_session(tmp_path / "s", 5)
    video = tmp_path / "s" / VIDEO_NAME
    video.write_bytes(b"not a video at all" * 10)
    with SessionReader(tmp_path / "s") as reader:
        assert len(reader) == 5 and all(r.image is None for r in reader) and reader.warnings
    video.unlink()
    with SessionReader(tmp_path / "s") as reader:
        assert len(reader) == 5 and all(r.image is None and r.hands for r in reader)


def test_truncated_database_gives_readable_frames_or_a_clear_error(tmp_path: Path) -> None:
    results = write_session(tmp_path / "s", 40)
    db = tmp_path / "s" / DB_NAME
    full = db.read_bytes()
    readable_somewhere = False
    for fraction in (0.9, 0.6, 0.3, 0.02):
        db.write_bytes(full[:int(len(full) * fraction)])
        try:
            reader = SessionReader(tmp_path / "s")
        except SessionError as exc:
            assert str(db) in str(exc)
            continue
        with reader:
            assert len(reader) <= 40
            for k in range(len(reader)):
                try:
                    rec = reader.frame(k)
                except SessionDamagedError as exc:
                    assert f"frame {k}" in str(exc)
                    continue
                readable_somewhere = True
                assert_same_hand(rec.hands[0], results[k].hands[0])
            assert len(list(reader)) + len(reader.skipped) == len(reader)
    assert readable_somewhere, "no cut left any frame readable"


@pytest.mark.parametrize("content", [b"", b"this is not a database" * 100], ids=["empty", "garbage"])
def test_unreadable_database_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / DB_NAME).write_bytes(content)
    with pytest.raises(SessionError, match="not a readable handviz session"):
        SessionReader(tmp_path / "s")


def test_missing_session_and_existing_session(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="no such session folder"):
        SessionReader(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SessionError, match="has no session.sqlite"):
        SessionReader(tmp_path / "empty")
    assert not (tmp_path / "empty" / DB_NAME).exists()  # the reader never creates one
    write_session(tmp_path / "s", 2)
    with pytest.raises(SessionError, match="already holds a session"):
        SessionWriter(tmp_path / "s", MESH.faces, K)
    with SessionReader(tmp_path / "s") as reader:
        assert len(reader) == 2
