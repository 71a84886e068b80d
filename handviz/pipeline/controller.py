"""The session controller: open a feed, record it, stop it. Qt-free, so the window, `handviz
record`, the soak and the tests drive the same object (napari keeps ViewerModel apart from QtViewer).

It owns the feed (a live Pipeline or a SessionPlayer), the options, the recorder and the one
session-metadata schema (handviz.io.session_meta). Results and events reach the owner through
two callbacks, called on worker threads: a window forwards them to its GUI thread.
Recording opens its session on the first result after `start_recording`, so the session's K is the
one that frame used; every result is recorded before any view could skip it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from handviz.io.session_meta import SessionMeta
from handviz.logs import InputError
from handviz.pipeline.events import EventKind, PipelineEvent
from handviz.pipeline.inference import InferenceBackend
from handviz.pipeline.recording import Recorder, RecordingSummary, default_session_path
from handviz.pipeline.replay import SessionPlayer
from handviz.pipeline.sources import open_source
from handviz.pipeline.threads import Detector, Pipeline, PipelineOptions
from handviz.types import FrameResult

log = logging.getLogger(__name__)

SESSION_MARKER = "session.sqlite"


def is_session_folder(path: Path) -> bool:
    """A folder that holds a recorded session (replay it rather than play it as images)."""
    return path.is_dir() and (path / SESSION_MARKER).is_file()


class SessionController:
    """One feed at a time, its options and its recording.

    on_result(result) / on_event(event) are called on worker threads. backend_factory builds the
    cascade backend (None: MediaPipe's 3D only); detector_factory the hand detector (tests may pass
    a fake). realtime=False (offline `record`): no pacing, no dropped frame, recording waits for
    the disk. recorded_by names the recorder in the session metadata.
    """

    def __init__(self, on_result: Callable[[FrameResult], None], on_event: Callable[[PipelineEvent], None],
                 backend_factory: Callable[[], InferenceBackend] | None = None,
                 detector_factory: Callable[[], Detector] | None = None,
                 options: PipelineOptions | None = None, realtime: bool = True, recorded_by: str = "app") -> None:
        self._on_result = on_result
        self._on_event = on_event
        self._backend_factory = backend_factory
        self._detector_factory = detector_factory
        self._options = options or PipelineOptions()
        self.realtime = realtime
        self.recorded_by = recorded_by
        self.recorder = Recorder()
        self._lock = threading.Lock()
        self._feed: Pipeline | SessionPlayer | None = None
        self.feed_spec: str | None = None
        self.source_fps: float | None = None
        self.faces = None
        self._record_to: Path | None = None  # armed: opens on the next result

    # ---- feeds -------------------------------------------------------------------------------
    @property
    def feed(self) -> Pipeline | SessionPlayer | None:
        return self._feed

    @property
    def is_replay(self) -> bool:
        return isinstance(self._feed, SessionPlayer)

    @property
    def pipeline(self) -> Pipeline | None:
        return self._feed if isinstance(self._feed, Pipeline) else None

    @property
    def backend(self) -> InferenceBackend | None:
        pipeline = self.pipeline
        return pipeline.backend if pipeline is not None else None

    @property
    def dropped(self) -> int:
        """Frames the live pipeline dropped between its stages (newest wins)."""
        pipeline = self.pipeline
        return pipeline.dropped if pipeline is not None else 0

    def open_source(self, spec: str | int | None, loop: bool = True, record_to: str | Path | None = None) -> Pipeline:
        """Play a camera index, video file, image folder or "demo" (None: camera 0). record_to: a
        new session folder that records from the very first frame (what `handviz record` does)."""
        self.stop()
        spec_text = None if spec is None else str(spec)
        self.feed_spec, self.source_fps = spec_text, None
        kwargs = {} if self._detector_factory is None else {"detector_factory": self._detector_factory}
        pipeline = Pipeline(lambda: open_source(spec_text, loop=loop), self._result, self._event,
                            backend_factory=self._backend_factory, options=self._options,
                            realtime=self.realtime, **kwargs)
        self._feed = pipeline
        if record_to is not None:
            self.start_recording(Path(record_to).parent, path=record_to)
        pipeline.start()
        return pipeline

    def open_session(self, path: str | Path) -> SessionPlayer:
        """Replay a recorded session folder (nothing is recorded from a replay)."""
        self.stop()
        self.feed_spec, self.source_fps = str(path), None
        player = SessionPlayer(path, self._result, self._event)
        self._feed = player
        player.start()
        return player

    def stop(self, timeout: float = 5.0) -> bool:
        """Finish any recording, then stop the feed and join its threads; True when they ended."""
        self.stop_recording()
        feed, self._feed = self._feed, None
        if feed is None:
            return True
        clean = feed.stop(timeout)
        if not clean:
            log.error("a feed did not stop in time; its threads are daemons and end with the app")
        return clean

    def wait(self, timeout: float | None = None) -> bool:
        """Offline runs: wait until a finite source is fully processed."""
        pipeline = self.pipeline
        return pipeline.wait(timeout) if pipeline is not None else True

    # ---- options and playback ------------------------------------------------------------------
    @property
    def options(self) -> PipelineOptions:
        return self._options

    def set_options(self, options: PipelineOptions) -> None:
        """New options for the live pipeline (from its next frame) and for every later feed."""
        self._options = options
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.set_options(infer=options.infer, temporal=options.temporal, intrinsics=options.intrinsics)

    def set_paused(self, paused: bool) -> None:
        if self._feed is not None:
            self._feed.set_paused(paused)

    def step(self, delta: int) -> None:
        if isinstance(self._feed, SessionPlayer):
            self._feed.step(delta)

    def seek(self, k: int) -> None:
        if isinstance(self._feed, SessionPlayer):
            self._feed.seek(k)

    # ---- recording -----------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        """Recording, or armed to start with the next result."""
        with self._lock:
            armed = self._record_to is not None
        return armed or self.recorder.recording

    def start_recording(self, folder: str | Path, path: str | Path | None = None) -> Path:
        """Record the live feed into path (None: a new session-<time> folder inside folder).
        Raises InputError when there is no live feed or the folder cannot hold a session."""
        if self.pipeline is None:
            raise InputError("Recording works on a live source (camera, video, folder), not on a replay")
        target = Path(path) if path is not None else default_session_path(folder)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{target.parent}: cannot create the folder ({exc.strerror})") from exc
        if (target / SESSION_MARKER).exists():
            raise InputError(f"{target}: already holds a session; choose another folder or delete it")
        with self._lock:
            self._record_to = target
        return target

    def stop_recording(self) -> RecordingSummary | None:
        """Finish the session (flushes what is queued); None when nothing was recorded. The caller
        reports the summary; a recording that fails by itself is a RECORDING_STOPPED event."""
        with self._lock:
            self._record_to = None
        return self.recorder.stop()

    def session_meta(self) -> SessionMeta:
        """The metadata of a session recorded now, from the feed's real backend and options."""
        backend = self.backend
        options = self._options
        return SessionMeta(source=self.feed_spec or "camera 0", recorded_by=self.recorded_by,
                           backend=backend.name if backend is not None else "unknown",
                           device=backend.device if backend is not None else "unknown",
                           model_fingerprint=backend.fingerprint if backend is not None else None,
                           n_hypotheses=options.infer.n_hypotheses, ddim_steps=options.infer.ddim_steps,
                           temporal=options.temporal)

    def _open_recording(self, target: Path, result: FrameResult) -> None:
        """On the worker thread, with the first result to record: its K goes into the session."""
        try:
            self.recorder.start(target, self.faces, result.intrinsics, self.session_meta().as_dict(),
                                fps=self.source_fps or 30.0, on_error=self._recording_failed)
        except (InputError, OSError, ValueError) as exc:
            self._recording_failed(f"cannot record: {exc}")
            return
        # Armed until now, so `recording` never reads False while the session opens; a
        # stop_recording() that came meanwhile disarmed it, and wins.
        with self._lock:
            cancelled = self._record_to != target
            self._record_to = None
        if cancelled:
            self.recorder.stop()
            return
        self._event(PipelineEvent(EventKind.RECORDING_STARTED, f"recording into {target}", data={"path": str(target)}))

    def _recording_failed(self, message: str) -> None:
        with self._lock:
            self._record_to = None
        self._event(PipelineEvent(EventKind.RECORDING_STOPPED, message, "error", data={"error": message}))

    # ---- worker-thread callbacks ---------------------------------------------------------------
    def _result(self, result: FrameResult) -> None:
        with self._lock:
            target = self._record_to  # cleared by _open_recording once the session is open
        if target is not None:
            self._open_recording(target, result)
        self.recorder.put(result, block=not self.realtime)
        self._on_result(result)

    def _event(self, event: PipelineEvent) -> None:
        if event.kind in (EventKind.BACKEND_READY, EventKind.SESSION_OPENED):
            self.faces = event.data.get("faces")
        elif event.kind == EventKind.SOURCE_OPENED:
            self.source_fps = event.data.get("fps")
        self._on_event(event)
