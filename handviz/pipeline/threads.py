"""The three-stage pipeline: capture thread -> detect thread -> inference worker -> callback.

Stages hand frames over through `LatestQueue`s (newest wins, drops counted), stamp their times
into `Frame.stamps`, and turn their own failures into a `FrameResult.error` or a
`PipelineEvent`, then carry on with the next frame. `stop()` joins every thread and releases the
source. No Qt here: the app subscribes through the two callbacks.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from handviz.logs import InputError
from handviz.pipeline import timing
from handviz.pipeline.events import EventKind, PipelineEvent
from handviz.pipeline.inference import InferenceBackend, InferOptions, mediapipe_backend
from handviz.pipeline.intrinsics import IntrinsicsChoice
from handviz.pipeline.latest_queue import LatestQueue, QueueClosed
from handviz.pipeline.sources import Source, SourceError
from handviz.types import Detection, Frame, FrameResult

log = logging.getLogger(__name__)

#: How long a stage waits on its input before checking whether it should stop (seconds).
_POLL_S = 0.1


class Detector(Protocol):
    def detect(self, rgb: np.ndarray) -> list[Detection]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class PipelineOptions:
    """Everything the user may change while frames flow; replaced whole (never mutated)."""

    infer: InferOptions = field(default_factory=InferOptions)
    #: Follow each hand over time (handviz.temporal: its skeleton held, depths filtered) when the
    #: backend can; off, every frame stands alone.
    temporal: bool = True
    intrinsics: IntrinsicsChoice = field(default_factory=IntrinsicsChoice)


def _default_detector() -> Detector:
    from handviz.pipeline.detector import HandDetector

    return HandDetector(max_hands=2)


@dataclass
class _Detected:
    frame: Frame
    detections: list[Detection]
    error: str | None = None


class Pipeline:
    """Run `source` through a detector and an inference backend on three threads.

    detector_factory and backend_factory are called on the thread that uses the object (MediaPipe
    graphs and torch modules stay on one thread). backend_factory=None, or one that raises, falls
    back to MediaPipe's 3D (`mediapipe_backend`) with a "backend-failed" event. `source` may be a
    callable that opens it: then opening happens on the capture thread too (a camera can take
    seconds to answer), and a failure is a "source-error" event with data {"opening": True}.
    realtime=True paces file sources at their frame rate and drops the oldest frame when a stage
    is busy; realtime=False runs as fast as the stages allow and loses no frame (offline runs).
    Either way a file's frames carry their time on its clock (timing.SOURCE_TIME), which the
    smoother and the recording go by, so both modes give a clip the same timeline.
    """

    def __init__(
        self,
        source: Source | Callable[[], Source],
        on_result: Callable[[FrameResult], None],
        on_event: Callable[[PipelineEvent], None] | None = None,
        detector_factory: Callable[[], Detector] = _default_detector,
        backend_factory: Callable[[], InferenceBackend] | None = None,
        options: PipelineOptions | None = None,
        realtime: bool = True,
    ) -> None:
        self._source_opener = source if callable(source) and not isinstance(source, Source) else None
        self.source: Source | None = None if self._source_opener else source  # type: ignore[assignment]
        self._on_result = on_result
        self._on_event = on_event or (lambda event: None)
        self._detector_factory = detector_factory
        self._backend_factory = backend_factory
        self._options = options or PipelineOptions()
        self.realtime = realtime
        self.backend: InferenceBackend | None = None
        self._to_detect: LatestQueue[Frame] = LatestQueue(1)
        self._to_infer: LatestQueue[_Detected] = LatestQueue(1)
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._threads: list[threading.Thread] = []
        self._over_time: tuple[InferenceBackend, Any] | None = None  # the backend's temporal model, per feed
        self._frames_captured = 0
        self._reported_errors: set[str] = set()
        self._loader: threading.Thread | None = None
        #: Set once the detector exists (or failed): the model loads only then. MediaPipe and
        #: torch imported on two threads at once can deadlock inside the imports (seen here: the
        #: app hung at start, the detect thread in mediapipe's import, the loader in torch's).
        self._detector_settled = threading.Event()

    # ---- control ---------------------------------------------------------------------------
    @property
    def options(self) -> PipelineOptions:
        return self._options

    def set_options(self, **changes: Any) -> PipelineOptions:
        """Replace some options (PipelineOptions field names); takes effect with the next frame."""
        self._options = dataclasses.replace(self._options, **changes)
        return self._options

    @property
    def dropped(self) -> int:
        """Frames thrown away between stages because a newer one arrived first."""
        return self._to_detect.dropped + self._to_infer.dropped

    @property
    def frames_captured(self) -> int:
        return self._frames_captured

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def threads(self) -> list[threading.Thread]:
        return list(self._threads)

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def set_paused(self, paused: bool) -> None:
        """Hold the flow of frames (a camera keeps being read, so resuming shows a fresh frame)."""
        if paused:
            self._paused.set()
        else:
            self._paused.clear()

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("a Pipeline starts once; make a new one to run again")
        for name, target in (("capture", self._capture_loop), ("detect", self._detect_loop),
                             ("infer", self._infer_loop)):
            thread = threading.Thread(target=target, name=f"handviz-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop every stage, join the threads, release the source. True when all threads ended."""
        self._stop.set()
        self._to_detect.close()
        self._to_infer.close()
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout)
        if self._loader is not None:
            self._loader.join(0.2)  # a model load cannot be interrupted: a daemon, left to finish
        alive = [t.name for t in self._threads if t.is_alive() and t is not current]
        self._close_source()
        if alive:
            log.error("pipeline threads did not stop within %.1f s: %s", timeout, ", ".join(alive))
        return not alive

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a finite source to be fully processed; True when every thread ended."""
        for thread in self._threads:
            thread.join(timeout)
        return not self.running

    def wait_for_backend(self, timeout: float | None = None) -> InferenceBackend | None:
        """Block until the model is loaded (or fell back); for offline runs that need the model
        from the first frame. Call after start()."""
        if self._loader is None:
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._loader is None and self.backend is None and not self._stop.is_set():
                if deadline is not None and time.monotonic() > deadline:
                    return None
                time.sleep(0.01)
        if self._loader is not None:
            self._loader.join(timeout)
        return self.backend

    # ---- helpers ---------------------------------------------------------------------------
    def _emit(self, event: PipelineEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a broken subscriber must not kill a stage
            log.exception("event callback failed for %s", event.kind)

    def _stage_error(self, stage: str, exc: BaseException) -> str:
        """One line for the user; logged once per distinct error (a bug's traceback to the log)."""
        if isinstance(exc, InputError):  # says what to fix: no class name, no traceback
            message = f"{stage} failed: {str(exc).rstrip('.')}"
        else:
            message = f"{stage} failed: {type(exc).__name__}: {exc}"
        if message not in self._reported_errors:
            self._reported_errors.add(message)
            if isinstance(exc, InputError):
                log.warning("%s", message)
            else:
                log.error("%s", message, exc_info=exc)
        return message

    def _close_source(self) -> None:
        if self.source is None:
            return
        try:
            self.source.close()
        except Exception:
            log.exception("closing %s failed", self.source)

    # ---- stages ----------------------------------------------------------------------------
    def _open_source(self) -> Source | None:
        if self.source is None:
            assert self._source_opener is not None
            try:
                source = self._source_opener()
            except Exception as exc:
                message = str(exc) if isinstance(exc, SourceError) else self._stage_error("opening the source", exc)
                self._emit(PipelineEvent(EventKind.SOURCE_ERROR, message, "error", data={"opening": True}))
                return None
            self.source = source
            if self._stop.is_set():  # stopped while the camera was waking up
                self._close_source()
                return None
        self._emit(PipelineEvent(EventKind.SOURCE_OPENED, f"playing {self.source.name}", data={
            "name": self.source.name, "live": self.source.live, "fps": self.source.fps}))
        return self.source

    def _capture_loop(self) -> None:
        try:
            source = self._open_source()
            if source is not None:
                self._capture_frames(source)
        finally:
            self._to_detect.close()  # lets the detect stage drain and end

    def _capture_frames(self, source: Source) -> None:
        period = 1.0 / source.fps if (self.realtime and source.fps) else 0.0
        clock = None if source.live else source.fps  # frames per second of the source's own clock
        next_due = timing.now()
        index = 0
        warned = 0
        while not self._stop.is_set():
            if self._paused.is_set() and not source.live:
                self._stop.wait(_POLL_S)
                continue
            if period:
                delay = next_due - timing.now()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_due = max(next_due + period, timing.now() - period)
            try:
                image = source.read()
            except SourceError as exc:
                self._emit(PipelineEvent(EventKind.SOURCE_ERROR, str(exc), "error"))
                return
            except Exception as exc:
                message = self._stage_error(f"reading {source.name}", exc)
                self._emit(PipelineEvent(EventKind.SOURCE_ERROR, message, "error"))
                return
            for text in source.warnings[warned:]:
                self._emit(PipelineEvent(EventKind.WARNING, text, "warning"))
            warned = len(source.warnings)
            if image is None:
                self._emit(PipelineEvent(EventKind.SOURCE_ENDED, f"{source.name}: end of source"))
                return
            if self._paused.is_set():
                continue
            frame = Frame(index=index, image=image, source=source.name)
            frame.stamps[timing.CAPTURED] = timing.now()
            if clock:  # paced or not, frame k of a file is k / fps into it (app and `record` agree)
                frame.stamps[timing.SOURCE_TIME] = index / clock
            index += 1
            self._frames_captured = index
            self._to_detect.put(frame, wait=not self.realtime)

    def _drain(self, queue: LatestQueue) -> Iterator:
        """Items from a stage queue until it is closed, or empty while stop() has been asked."""
        while True:
            try:
                yield queue.get(timeout=_POLL_S)
            except TimeoutError:
                if self._stop.is_set():
                    return
            except QueueClosed:
                return

    def _detect_loop(self) -> None:
        try:
            detector = self._detector_factory()
        except Exception as exc:
            message = self._stage_error("starting the hand detector", exc)
            self._emit(PipelineEvent(EventKind.STAGE_ERROR, message, "error"))
            self._stop.set()
            self._to_detect.close()
            self._to_infer.close()
            return
        finally:
            self._detector_settled.set()
        try:
            for frame in self._drain(self._to_detect):
                frame.stamps[timing.DETECT_START] = timing.now()
                try:
                    item = _Detected(frame, detector.detect(frame.image))
                except Exception as exc:
                    item = _Detected(frame, [], self._stage_error("hand detection", exc))
                frame.stamps[timing.DETECT_END] = timing.now()
                self._to_infer.put(item, wait=not self.realtime)
        finally:
            self._to_infer.close()
            try:
                detector.close()
            except Exception:
                log.exception("closing the hand detector failed")

    def _start_loading_backend(self) -> threading.Thread | None:
        """Load the model on a helper thread, so frames keep flowing (with MediaPipe's 3D) while
        torch starts, and so stop() never waits on a load it cannot interrupt."""
        if self._backend_factory is None:
            self._use_backend(mediapipe_backend())
            return None
        factory = self._backend_factory

        def load() -> None:
            while not self._detector_settled.wait(_POLL_S):  # one native start at a time
                if self._stop.is_set():
                    return
            try:
                backend = factory()
            except Exception as exc:
                message = self._stage_error("loading the cascade", exc)
                self._emit(PipelineEvent(EventKind.BACKEND_FAILED, f"{message}. Showing MediaPipe's own 3D joints "
                                         "only (no mesh, no hypotheses).", "warning"))
                backend = mediapipe_backend()
            if not self._stop.is_set():
                self._use_backend(backend)

        loader = threading.Thread(target=load, name="handviz-model-load", daemon=True)
        loader.start()
        return loader

    def _use_backend(self, backend: InferenceBackend) -> None:
        self.backend = backend
        self._emit(PipelineEvent(EventKind.BACKEND_READY, f"{backend.name} on {backend.device}",
                                 data={"name": backend.name, "device": backend.device, "faces": backend.faces}))

    def _infer_loop(self) -> None:
        self._loader = self._start_loading_backend()
        interim = mediapipe_backend()  # live: until the model is loaded
        while not self.realtime and self._loader is not None and self._loader.is_alive():
            self._loader.join(_POLL_S)  # offline: every frame goes through the model
            if self._stop.is_set():
                break
        for item in self._drain(self._to_infer):
            self._deliver(self._infer_one(self.backend or interim, item))
        self._emit(PipelineEvent(EventKind.STOPPED, "pipeline stopped"))

    def _infer_one(self, backend: InferenceBackend, item: _Detected) -> FrameResult:
        frame = item.frame
        options = self._options
        h, w = frame.image.shape[:2]
        K = options.intrinsics.K_for(w, h)
        hands = []
        error = item.error
        frame.stamps[timing.INFER_START] = timing.now()
        t = timing.content_time(frame.stamps)
        over_time = self._temporal_model(backend, options.temporal)
        detections = item.detections
        if over_time is not None:
            try:
                detections = over_time.smooth(detections, t)
            except Exception as exc:  # the frame's own detections rather than none
                error = self._stage_error("following the hands over time", exc)
                over_time = self._over_time = None
        if error is None and detections:
            try:
                infer = options.infer if over_time is None else dataclasses.replace(options.infer, bone_prior=False)
                hands = backend.infer(frame, detections, K, infer)
            except Exception as exc:
                error = self._stage_error("3D estimation", exc)
        if over_time is not None:
            try:
                hands = over_time(hands, K, t)
            except Exception as exc:  # the frame's own hands rather than none
                error = self._stage_error("following the hands over time", exc)
                self._over_time = None
        frame.stamps[timing.INFER_END] = timing.now()
        return FrameResult(frame=frame, detections=item.detections, hands=hands, intrinsics=K, error=error)

    def _temporal_model(self, backend: InferenceBackend, enabled: bool) -> Any | None:
        """The backend's temporal model for this feed (a new one when the backend changes or the
        option is turned back on), or None when frames stand alone."""
        if not enabled or backend.temporal is None:
            self._over_time = None
            return None
        if self._over_time is None or self._over_time[0] is not backend:
            self._over_time = (backend, backend.temporal())
        return self._over_time[1]

    def _deliver(self, result: FrameResult) -> None:
        result.frame.stamps[timing.DELIVERED] = timing.now()
        result.timings_ms = timing.stage_timings(result.frame.stamps)
        try:
            self._on_result(result)
        except Exception as exc:
            message = self._stage_error("result callback", exc)
            self._emit(PipelineEvent(EventKind.STAGE_ERROR, message, "error"))
