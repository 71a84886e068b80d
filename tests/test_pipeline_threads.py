"""The threaded pipeline without Qt: order, stamps, errors that do not stop it, clean stops."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from handviz.pipeline.events import PipelineEvent
from handviz.pipeline.inference import InferenceBackend, mediapipe_backend
from handviz.pipeline.sources import ImageFolderSource, Source, SourceError, demo_dir
from handviz.pipeline.threads import Pipeline
from handviz.types import Detection, FrameResult, HandEstimate

WAIT_S = 10.0


class ListSource(Source):
    """n tiny frames whose pixel value is the frame number; optional failure after `fail_after`."""

    def __init__(self, n: int, fail_after: int | None = None, fps: float | None = None, live: bool = False):
        super().__init__()
        self.name, self.n, self.fail_after, self.fps, self.live = "list", n, fail_after, fps, live
        self.i = 0
        self.closed = threading.Event()

    def read(self):
        if self.fail_after is not None and self.i >= self.fail_after:
            raise SourceError("list: unplugged")
        if self.i >= self.n:
            return None
        img = np.full((24, 32, 3), self.i % 256, np.uint8)
        self.i += 1
        return img

    def close(self):
        self.closed.set()


class EndlessLive(Source):
    """A camera-like source whose read blocks briefly, forever."""

    name, live = "endless", True

    def __init__(self):
        super().__init__()
        self.closed = threading.Event()

    def read(self):
        time.sleep(0.005)  # a camera's frame interval (stand-in behaviour, not a wait for the test)
        return np.zeros((24, 32, 3), np.uint8)

    def close(self):
        self.closed.set()


def make_detection(value: float = 0.0) -> Detection:
    kp = np.stack([np.linspace(10, 30, 21), np.linspace(5, 20, 21)], axis=1).astype(np.float32)
    world = np.stack([np.linspace(-40, 40, 21), np.linspace(-80, 10, 21), np.linspace(-5, 5, 21)],
                     axis=1).astype(np.float32)
    return Detection(keypoints_2d=kp, world_3d=world, handedness="Right", score=0.9 + 0.0 * value)


class FakeDetector:
    """One hand per frame; raises on frames whose pixel value is in `fail_on`."""

    def __init__(self, fail_on=()):
        self.fail_on = set(fail_on)
        self.closed = False

    def detect(self, rgb):
        value = int(rgb[0, 0, 0])
        if value in self.fail_on:
            raise RuntimeError(f"detector broke on {value}")
        return [make_detection(value)]

    def close(self):
        self.closed = True


def tiny_backend(fail_on=(), delay_s: float = 0.0) -> InferenceBackend:
    """A stand-in for the cascade: joints from the frame number, 4 hypotheses, a 3-vertex 'mesh'."""

    def infer(frame, detections, K, options):
        if delay_s:
            time.sleep(delay_s)  # a slow model (stand-in behaviour)
        value = int(frame.image[0, 0, 0])
        if value in fail_on:
            raise ValueError(f"model broke on {value}")
        joints = np.full((21, 3), float(value), np.float32) + [0, 0, 500]
        hyps = np.repeat(joints[None], options.n_hypotheses, axis=0)
        return [HandEstimate(d.handedness, d.score, d.keypoints_2d, joints, hyps, np.zeros(21, np.float32),
                             joints[:3].copy(), d.world_3d) for d in detections]

    return InferenceBackend(infer, "tiny", "cpu", np.array([[0, 1, 2]], np.int32))


def run_to_end(pipeline: Pipeline) -> None:
    pipeline.start()
    assert pipeline.wait(WAIT_S), "pipeline did not finish"
    pipeline.stop()


def collect(**kwargs):
    results: list[FrameResult] = []
    events: list[PipelineEvent] = []
    return results, events, Pipeline(on_result=results.append, on_event=events.append, **kwargs)


def handviz_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("handviz-")]


def test_offline_run_delivers_every_frame_in_order_with_stamps():
    source = ListSource(8)
    results, events, pipeline = collect(source=source, detector_factory=FakeDetector,
                                        backend_factory=lambda: tiny_backend(), realtime=False)
    run_to_end(pipeline)
    assert [r.frame.index for r in results] == list(range(8))
    assert [float(r.hands[0].joint_hypotheses[0, 0, 0]) for r in results] == list(range(8))  # frame k's own output
    r = results[-1]
    assert set(r.timings_ms) >= {"detect", "infer", "latency"} and all(v >= 0 for v in r.timings_ms.values())
    assert r.intrinsics.shape == (3, 3) and r.error is None
    assert r.hands[0].joint_hypotheses.shape == (32, 21, 3)
    assert pipeline.dropped == 0
    kinds = [e.kind for e in events]
    assert kinds[0] in ("source-opened", "backend-ready") and "source-ended" in kinds and kinds[-1] == "stopped"
    assert source.closed.is_set() and not handviz_threads()


@pytest.mark.parametrize("realtime", [False, True])
def test_file_frames_carry_their_time_on_the_source_clock(realtime: bool):
    """Paced (the app) or not (`record`), frame k of a 50 fps file is k / 50 s into it: the time
    the smoother and a recording go by (issue 21: `record` used processing times)."""
    from handviz.pipeline import timing

    results, _, pipeline = collect(source=ListSource(6, fps=50.0), detector_factory=FakeDetector,
                                   backend_factory=lambda: tiny_backend(), realtime=realtime)
    run_to_end(pipeline)
    assert [r.frame.stamps[timing.SOURCE_TIME] for r in results] == [r.frame.index / 50.0 for r in results]
    assert all(timing.content_time(r.frame.stamps) == r.frame.stamps[timing.SOURCE_TIME] for r in results)
    live, _, pipeline = collect(source=ListSource(3, fps=30.0, live=True), detector_factory=FakeDetector,
                                backend_factory=lambda: tiny_backend(), realtime=False)
    run_to_end(pipeline)
    assert live and all(timing.SOURCE_TIME not in r.frame.stamps for r in live)  # a camera has no clock of its own
    assert timing.content_time(live[0].frame.stamps) == live[0].frame.captured_at


class HalvingTemporal:
    """A temporal model that marks what it smooths (score halved) and counts the frames it follows."""

    def __init__(self):
        self.followed = 0

    def smooth(self, detections, t):
        return [dataclasses.replace(d, score=d.score / 2) for d in detections]

    def __call__(self, hands, K, t):
        self.followed += 1
        return hands


@pytest.mark.parametrize("temporal", [True, False])
def test_the_model_gets_the_temporal_models_smoothed_detections_and_the_frame_keeps_mediapipes(temporal: bool):
    seen, bone_prior, models = [], [], []
    backend = tiny_backend()
    infer = backend.infer

    def recording_infer(frame, detections, K, options):
        seen.append(detections[0].score)
        bone_prior.append(options.bone_prior)
        return infer(frame, detections, K, options)

    def new_model():
        models.append(HalvingTemporal())
        return models[-1]

    backend = dataclasses.replace(backend, infer=recording_infer, temporal=new_model)
    results, _, pipeline = collect(source=ListSource(4), detector_factory=FakeDetector, backend_factory=lambda: backend,
                                   realtime=False)
    pipeline.set_options(temporal=temporal)
    run_to_end(pipeline)
    assert seen == [pytest.approx(0.45 if temporal else 0.9)] * 4
    assert all(r.detections[0].score == pytest.approx(0.9) for r in results)  # what is drawn: MediaPipe's
    assert [m.followed for m in models] == ([4] if temporal else [])
    # a single frame's bones are drawn toward an adult's; a followed hand's skeleton is learnt
    assert bone_prior == [not temporal] * 4


def test_a_raising_model_is_reported_and_the_next_frame_recovers():
    results, _, pipeline = collect(source=ListSource(5), detector_factory=FakeDetector,
                                   backend_factory=lambda: tiny_backend(fail_on={2}), realtime=False)
    run_to_end(pipeline)
    by_index = {r.frame.index: r for r in results}
    assert "3D estimation failed" in by_index[2].error and "model broke on 2" in by_index[2].error
    assert by_index[2].hands == [] and len(by_index[2].detections) == 1
    assert by_index[3].error is None and len(by_index[3].hands) == 1


def test_a_raising_detector_is_reported_and_the_next_frame_recovers():
    results, _, pipeline = collect(source=ListSource(4), detector_factory=lambda: FakeDetector(fail_on={1}),
                                   backend_factory=lambda: tiny_backend(), realtime=False)
    run_to_end(pipeline)
    assert "hand detection failed" in results[1].error
    assert results[2].error is None and results[2].hands


def test_source_failing_mid_run_is_an_event_not_a_crash():
    source = ListSource(100, fail_after=3)
    results, events, pipeline = collect(source=source, detector_factory=FakeDetector,
                                        backend_factory=lambda: tiny_backend(), realtime=False)
    run_to_end(pipeline)
    assert len(results) == 3
    errors = [e for e in events if e.kind == "source-error"]
    assert len(errors) == 1 and "unplugged" in errors[0].message and not errors[0].data.get("opening")
    assert source.closed.is_set() and not handviz_threads()


def test_source_that_cannot_open_is_an_event():
    def opener():
        raise SourceError("camera 3: not present")

    results, events, pipeline = collect(source=opener, detector_factory=FakeDetector, realtime=False)
    run_to_end(pipeline)
    assert results == []
    error = next(e for e in events if e.kind == "source-error")
    assert error.data["opening"] and "camera 3" in error.message


def test_backend_that_cannot_load_falls_back_to_mediapipe_3d():
    def broken():
        raise FileNotFoundError("weights/stage1.safetensors missing")

    results, events, pipeline = collect(source=ListSource(2), detector_factory=FakeDetector,
                                        backend_factory=broken, realtime=False)
    run_to_end(pipeline)
    failed = next(e for e in events if e.kind == "backend-failed")
    assert "stage1.safetensors" in failed.message and "MediaPipe's own 3D joints" in failed.message
    ready = next(e for e in events if e.kind == "backend-ready")
    assert ready.data["faces"] is None
    hand = results[0].hands[0]
    assert hand.vertices.shape == (0, 3) and hand.joint_hypotheses.shape == (1, 21, 3)
    assert hand.joints_3d[:, 2].min() > 0  # placed in front of the camera


def test_slow_model_drops_oldest_frames_and_keeps_latency_bounded():
    """A 30 ms model behind a 200 fps source: the oldest frames are dropped, and the model always
    starts on (about) the newest frame read, instead of falling further behind with every frame
    as a first-in-first-out queue would (by frame 60, some 50 frames behind)."""
    source = ListSource(60, fps=200.0)
    behind: list[int] = []  # frames read after the one the model starts on
    slow = tiny_backend(delay_s=0.03)

    def infer(frame, detections, K, options):
        behind.append(source.i - 1 - frame.index)
        return slow.infer(frame, detections, K, options)

    results, _, pipeline = collect(source=source, detector_factory=FakeDetector, realtime=True,
                                   backend_factory=lambda: InferenceBackend(infer, "tiny", "cpu", slow.faces))
    run_to_end(pipeline)
    assert pipeline.dropped > 10
    assert len(results) < 60
    assert [r.frame.index for r in results] == sorted({r.frame.index for r in results})  # in order, once each
    assert np.median(behind) <= 2, behind  # measured: 0 every time


def test_stop_joins_every_thread_and_releases_a_live_source():
    source = EndlessLive()
    got_one = threading.Event()
    pipeline = Pipeline(source, on_result=lambda r: got_one.set(), detector_factory=FakeDetector,
                        backend_factory=lambda: tiny_backend())
    pipeline.start()
    assert got_one.wait(WAIT_S)
    assert len(handviz_threads()) == 3
    assert pipeline.stop()  # True: every thread joined within stop()'s own timeout
    assert source.closed.is_set() and not handviz_threads()


def test_options_change_while_running():
    seen = []
    ready, changed = threading.Event(), threading.Event()

    def on_result(r):
        seen.append(r.hands[0].joint_hypotheses.shape[0])
        ready.set()
        if seen[-1] == 5:
            changed.set()

    pipeline = Pipeline(EndlessLive(), on_result=on_result, detector_factory=FakeDetector,
                        backend_factory=lambda: tiny_backend())
    pipeline.start()
    try:
        assert ready.wait(WAIT_S)
        from handviz.pipeline.inference import InferOptions

        pipeline.set_options(infer=InferOptions(n_hypotheses=5))
        assert changed.wait(WAIT_S), f"no result with the new option: {seen[-5:]}"
        assert seen[0] == 32  # the default before the change
    finally:
        pipeline.stop()


def test_real_detector_on_the_demo_photos():
    """MediaPipe itself, through the threads, on the bundled photos (each shown once)."""
    source = ImageFolderSource(demo_dir(), warn_skipped=False)
    results, events, pipeline = collect(source=source, backend_factory=mediapipe_backend, realtime=False)
    run_to_end(pipeline)
    assert len(results) == 3 and all(r.error is None for r in results)
    with_hands = [r for r in results if r.hands]
    assert len(with_hands) >= 2
    hand = with_hands[0].hands[0]
    assert hand.handedness in ("Left", "Right") and np.all(np.isfinite(hand.joints_3d))
    assert 50 < float(hand.joints_3d[:, 2].mean()) < 3000  # in front of the camera, in mm


class GatedLoad:
    """A model load that lasts until the test says: `entered` is set when the pipeline starts it,
    `release()` lets it finish, `finished` is set when it has. The factory gives up waiting after
    LOAD_GIVE_UP_S so that a test that fails leaves no thread behind for long."""

    LOAD_GIVE_UP_S = 60.0

    def __init__(self) -> None:
        self.entered, self._gate, self.finished = threading.Event(), threading.Event(), threading.Event()

    def release(self) -> None:
        self._gate.set()

    def __call__(self) -> InferenceBackend:
        self.entered.set()
        self._gate.wait(self.LOAD_GIVE_UP_S)
        self.finished.set()
        return tiny_backend()


def test_live_frames_flow_while_the_model_loads_then_it_takes_over():
    results: list[FrameResult] = []
    interim, model = threading.Event(), threading.Event()

    def on_result(r):
        results.append(r)
        mesh = r.hands[0].vertices.shape[0] if r.hands else None
        if mesh == 0 and sum(1 for x in results if x.hands and x.hands[0].vertices.shape[0] == 0) >= 3:
            interim.set()  # MediaPipe's 3D joints, no mesh
        if mesh == 3:
            model.set()  # the tiny model's 3-vertex mesh

    load = GatedLoad()
    pipeline = Pipeline(EndlessLive(), on_result=on_result, detector_factory=FakeDetector, backend_factory=load)
    pipeline.start()
    try:
        assert interim.wait(WAIT_S), "no MediaPipe-3D frames while the model was loading"
        assert not model.is_set() and not load.finished.is_set()
        load.release()
        assert model.wait(WAIT_S), "the loaded model never took over"
        assert pipeline.backend is not None and pipeline.backend.name == "tiny"
    finally:
        load.release()
        pipeline.stop()


class CountingDetector(FakeDetector):
    """FakeDetector that sets `detected_two` once it has found hands in two frames."""

    def __init__(self, detected_two: threading.Event):
        super().__init__()
        self.frames, self.detected_two = 0, detected_two

    def detect(self, rgb):
        found = super().detect(rgb)
        self.frames += 1
        if self.frames >= 2:
            self.detected_two.set()
        return found


def test_offline_run_waits_for_the_model():
    """Frames are detected while the model loads, and none is delivered until the model is
    there: every frame gets the model's mesh, none MediaPipe's 3D."""
    load, detected_two = GatedLoad(), threading.Event()
    results, _, pipeline = collect(source=ListSource(3), detector_factory=lambda: CountingDetector(detected_two),
                                   backend_factory=load, realtime=False)
    pipeline.start()
    try:
        assert detected_two.wait(WAIT_S)
        assert results == [] and not load.finished.is_set()
        load.release()
        assert pipeline.wait(WAIT_S), "pipeline did not finish"
    finally:
        load.release()
        pipeline.stop()
    assert [r.hands[0].vertices.shape[0] for r in results] == [3, 3, 3]


def test_stop_does_not_wait_for_a_model_load():
    load = GatedLoad()
    pipeline = Pipeline(EndlessLive(), on_result=lambda r: None, detector_factory=FakeDetector,
                        backend_factory=load)
    pipeline.start()
    assert load.entered.wait(WAIT_S)
    assert pipeline.stop()
    assert not load.finished.is_set(), "stop() returned only after the model load had finished"
    load.release()
    pipeline._loader.join(WAIT_S)  # leave no thread behind for later tests
    assert load.finished.is_set()
    assert pipeline.backend is None  # a load that finishes after stop is not used


def test_cached_backend_factory_loads_once_and_remembers_a_failure():
    from handviz.pipeline.inference import CachedBackendFactory

    calls = []

    def good():
        calls.append(1)
        return tiny_backend()

    cached = CachedBackendFactory(good)
    assert cached() is cached() and len(calls) == 1

    def bad():
        calls.append(2)
        raise FileNotFoundError("no weights")

    failing = CachedBackendFactory(bad)
    for _ in range(2):
        with pytest.raises(FileNotFoundError):
            failing()
    assert calls.count(2) == 1
