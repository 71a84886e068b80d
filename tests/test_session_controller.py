"""The Qt-free session controller that the window, `record`, the soak and these tests all drive."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from fake_detector import FakeDetector

from handviz.io.session import SessionReader
from handviz.io.session_meta import SessionMeta
from handviz.logs import InputError
from handviz.pipeline.controller import SessionController
from handviz.pipeline.events import EventKind, PipelineEvent
from handviz.pipeline.inference import InferOptions, mediapipe_backend
from handviz.pipeline.sources import demo_dir
from handviz.pipeline.threads import PipelineOptions


class Collector:
    def __init__(self) -> None:
        self.results, self.events = [], []
        self.stopped = threading.Event()
        self.ended = threading.Event()
        self._delivered = threading.Condition()

    def on_result(self, result) -> None:
        with self._delivered:
            self.results.append(result)
            self._delivered.notify_all()

    def wait_for_results(self, n: int, timeout: float) -> bool:
        """Until at least n results were delivered (False: not within timeout s)."""
        with self._delivered:
            return self._delivered.wait_for(lambda: len(self.results) >= n, timeout)

    def on_event(self, event: PipelineEvent) -> None:
        self.events.append(event)
        if event.kind == EventKind.STOPPED:
            self.stopped.set()
        elif event.kind == EventKind.SOURCE_ENDED:
            self.ended.set()


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for k, photo in enumerate(sorted(demo_dir().glob("*.jpg")) * 3):
        shutil.copy(photo, folder / f"{k:02d}.jpg")
    return folder


def make_controller(c: Collector, realtime: bool = False) -> SessionController:
    fingerprinted = mediapipe_backend()
    fingerprinted.fingerprint = "weights-test"
    return SessionController(c.on_result, c.on_event, backend_factory=lambda: fingerprinted,
                             detector_factory=FakeDetector, realtime=realtime, recorded_by="record",
                             options=PipelineOptions(infer=InferOptions(n_hypotheses=7)))


def test_offline_run_records_every_frame_with_one_metadata_schema(photos, tmp_path):
    c = Collector()
    controller = make_controller(c)
    path = tmp_path / "session"
    controller.open_source(str(photos), loop=False, record_to=path)  # from the very first frame
    assert controller.recording
    assert c.stopped.wait(60)
    summary = controller.stop_recording()
    assert controller.stop() and not controller.recording
    assert summary is not None and summary.frames_written == len(c.results) == 6 and summary.dropped == 0
    with SessionReader(path) as reader:
        meta = {k: reader.meta[k] for k in SessionMeta.__dataclass_fields__}
        assert meta == {"source": str(photos), "recorded_by": "record", "backend": "MediaPipe 3D only",
                        "device": "-", "model_fingerprint": "weights-test", "n_hypotheses": 7,
                        "ddim_steps": 1, "temporal": True}
        np.testing.assert_allclose(reader.intrinsics, c.results[0].intrinsics)  # the K actually used
        assert len(reader) == 6 and all(reader.frame(k).image is not None for k in range(6))
    kinds = [e.kind for e in c.events]
    assert EventKind.RECORDING_STARTED in kinds and EventKind.SOURCE_ENDED in kinds


def test_recording_reads_true_while_the_session_opens_and_a_stop_meanwhile_wins(photos, tmp_path, monkeypatch):
    """The first result opens the session on the worker thread; until it is open `recording` must
    stay True (it read False there once, failing a run), and a stop_recording() that comes while it
    opens must leave nothing recording."""
    c = Collector()
    controller = make_controller(c)
    seen: list[bool] = []
    start = controller.recorder.start

    def opening(*args, **kwargs):
        seen.append(controller.recording)
        if len(seen) == 2:
            controller.stop_recording()  # the user stops while the second session opens
        return start(*args, **kwargs)

    monkeypatch.setattr(controller.recorder, "start", opening)
    controller.open_source(str(photos), loop=False, record_to=tmp_path / "a")
    assert c.stopped.wait(60)
    assert controller.stop_recording().frames_written == 6
    before = len(c.results)
    controller.open_source(str(photos), loop=True, record_to=tmp_path / "b")
    # the result that opens the second session is delivered once the controller has dealt with
    # the stop that came while it opened
    assert c.wait_for_results(before + 1, 60)
    assert seen == [True, True]
    assert not controller.recording and not controller.recorder.recording
    assert controller.stop()


def test_recording_needs_a_live_feed_and_a_free_folder(photos, tmp_path):
    c = Collector()
    controller = make_controller(c)
    with pytest.raises(InputError, match="live source"):
        controller.start_recording(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "session.sqlite").write_bytes(b"x")
    controller.open_source(str(photos), loop=False)
    with pytest.raises(InputError, match="already holds a session"):
        controller.start_recording(tmp_path, path=tmp_path / "taken")
    assert controller.stop()


def test_replay_through_the_controller_and_no_recording_of_it(photos, tmp_path):
    c = Collector()
    controller = make_controller(c)
    controller.open_source(str(photos), loop=False)
    path = controller.start_recording(tmp_path)
    assert c.stopped.wait(60)
    summary = controller.stop_recording()
    controller.stop()
    replay = Collector()
    player = SessionController(replay.on_result, replay.on_event)
    player.open_session(path)
    assert player.is_replay and player.pipeline is None
    with pytest.raises(InputError):
        player.start_recording(tmp_path)
    assert replay.ended.wait(60)
    assert len(replay.results) == summary.frames_written > 0
    assert player.stop()


def test_event_kinds_are_a_closed_set():
    assert PipelineEvent("source-ended", "x").kind is EventKind.SOURCE_ENDED  # the historic strings
    with pytest.raises(ValueError):
        PipelineEvent("source-endd", "a typo is an error, not an event nobody handles")
    from handviz.app.feed_events import FeedEvents

    # the window handles every kind but the final "stopped" (a new kind needs a handler)
    assert set(FeedEvents(None).table) == set(EventKind) - {EventKind.STOPPED}
