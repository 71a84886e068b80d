"""Recording switch and session playback (pause, seek, step, end) without Qt."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from handviz.pipeline.events import PipelineEvent
from handviz.pipeline.recording import Recorder, default_session_path
from handviz.pipeline.replay import SessionPlayer
from handviz.types import Frame, FrameResult, HandEstimate

WAIT_S = 10.0
FACES = np.array([[0, 1, 2]], np.int32)


def result(k: int) -> FrameResult:
    joints = np.full((21, 3), float(k), np.float32) + [0, 0, 400]
    hand = HandEstimate("Right", 0.9, np.zeros((21, 2), np.float32), joints, joints[None].repeat(2, 0),
                        np.ones(21, np.float32), joints[:3].copy(), joints)
    image = np.full((32, 48, 3), 10 * k, np.uint8)
    frame = Frame(k, image, "test", {"captured": 100.0 + k / 30})
    return FrameResult(frame, [], [hand], np.diag([500.0, 500.0, 1.0]), {"detect": 20.0})


def record(path, n=6) -> None:
    rec = Recorder()
    rec.start(path, FACES, np.eye(3), {"source": "test"}, fps=30.0)
    assert rec.recording
    for k in range(n):
        rec.put(result(k))
    summary = rec.stop()
    assert summary.frames_written == n and summary.error is None and not rec.recording
    assert rec.stop() is None


class Collector:
    def __init__(self):
        self.results: list[FrameResult] = []
        self.events: list[PipelineEvent] = []
        self.changed = threading.Condition()

    def on_result(self, r):
        with self.changed:
            self.results.append(r)
            self.changed.notify_all()

    def on_event(self, e):
        with self.changed:
            self.events.append(e)
            self.changed.notify_all()

    def wait(self, predicate) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self), WAIT_S), "timed out"


def test_default_session_path_never_reuses_a_folder(tmp_path):
    first = default_session_path(tmp_path)
    first.mkdir()
    second = default_session_path(tmp_path)
    assert second != first and second.parent == tmp_path and second.name.startswith(first.name)


def test_recorded_session_plays_back_in_order_then_pauses_at_the_end(tmp_path):
    record(tmp_path / "s", n=6)
    c = Collector()
    player = SessionPlayer(tmp_path / "s", c.on_result, c.on_event, speed=4.0)
    player.start()
    try:
        c.wait(lambda c: any(e.kind == "source-ended" for e in c.events))
        opened = next(e for e in c.events if e.kind == "session-opened")
        assert opened.data["frames"] == 6 and np.array_equal(opened.data["faces"], FACES)
        assert [r.frame.index for r in c.results] == list(range(6))
        assert c.results[3].hands[0].joints_3d[0, 0] == pytest.approx(3.0)
        assert c.results[0].frame.image.shape == (32, 48, 3)
        assert not player.playing
    finally:
        assert player.stop()
    assert not player.running


def test_seek_and_step_while_paused(tmp_path):
    record(tmp_path / "s", n=6)
    c = Collector()
    player = SessionPlayer(tmp_path / "s", c.on_result, c.on_event)
    player.set_paused(True)
    player.start()
    try:
        c.wait(lambda c: len(c.results) >= 1)  # the first frame is shown even when paused
        player.seek(4)
        c.wait(lambda c: c.results[-1].frame.index == 4)
        player.step(-1)
        c.wait(lambda c: c.results[-1].frame.index == 3)
        player.step(+10)  # clamped to the last frame
        c.wait(lambda c: c.results[-1].frame.index == 5)
        at_last = len(c.results)
        player.seek(2)  # a later request: whatever the step set off has been delivered before it
        c.wait(lambda c: c.results[-1].frame.index == 2)
        assert [r.frame.index for r in c.results[at_last - 1:]] == [5, 2]  # nothing played on by itself
        assert not player.playing
    finally:
        player.stop()


def test_missing_session_is_an_event(tmp_path):
    c = Collector()
    player = SessionPlayer(tmp_path / "nope", c.on_result, c.on_event)
    player.start()
    c.wait(lambda c: any(e.kind == "stopped" for e in c.events))
    error = next(e for e in c.events if e.kind == "source-error")
    assert "no such session folder" in error.message
    assert player.stop()


def test_recorder_refuses_an_existing_session(tmp_path):
    record(tmp_path / "s", n=1)
    from handviz.io.session import SessionError

    with pytest.raises(SessionError, match="already holds a session"):
        Recorder().start(tmp_path / "s", FACES, np.eye(3), {})


def test_recorder_counts_only_what_its_session_was_offered(tmp_path):
    """The soak's "frames delivered while recording": a result put before the session opened
    (the one still on its way to the GUI when Record was pressed) is not counted, so it can never
    be expected in the session."""
    rec = Recorder()
    rec.put(result(0))  # nothing recording yet: not offered to any session
    assert rec.frames_received == 0
    rec.start(tmp_path / "s", FACES, np.diag([500.0, 500.0, 1.0]), {})
    for k in range(1, 4):
        rec.put(result(k), block=True)
    summary = rec.stop()
    rec.put(result(9))  # after the stop: not counted either
    assert rec.frames_received == 3 == summary.frames_written + summary.dropped
