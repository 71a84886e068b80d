"""The two ways the soak runs the app's own code with recording on, one Protocol for both:

- WindowRun: the MainWindow under an X display (its controller, frame clock and viewport);
- SceneRun: the same SessionController drawn into the same HandScene on a pyvista off-screen
  plotter, for machines without a display.
Neither re-implements the pipeline, the recording or the drawing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from handviz.logs import InputError
from handviz.pipeline.events import EventKind
from handviz.pipeline.inference import InferenceBackend

#: Kinds after which a soak cannot reach its frame count.
_FATAL = (EventKind.SOURCE_ENDED, EventKind.SOURCE_ERROR, EventKind.STOPPED)


class SoakRun(Protocol):
    """One way of running the app with recording on; the soak loop drives it."""

    viewport: str
    backend: str

    def start(self) -> None: ...
    def delivered(self) -> int: ...  # results delivered since recording started
    def advance(self, seconds: float, until: Callable[[], bool]) -> None: ...
    def alive(self) -> str | None: ...  # None while running, else why it stopped
    def counts(self) -> dict[str, int]: ...  # captured, shown, dropped, errors
    def error_messages(self) -> list[str]: ...
    def stop(self) -> tuple[bool, Path | None, int, int]: ...  # clean, session, written, not recorded
    def close(self) -> None: ...


def _why_stopped(events: list[Any], controller: Any) -> str | None:
    for event in events:
        if event.kind in _FATAL or (event.kind == EventKind.RECORDING_STOPPED and event.level == "error"):
            return f"{event.kind.value}: {event.message}"
    if not controller.recording:
        return f"recording stopped: {controller.recorder.error or 'unknown reason'}"
    pipeline = controller.pipeline
    if pipeline is None or not pipeline.running:
        return "the pipeline's threads ended"
    return None


class WindowRun:
    """The app's MainWindow (under an X display): open the video, wait for the model, press Record."""

    def __init__(self, video: Path, backend_factory: Callable[[], InferenceBackend] | None, workdir: Path,
                 n_hypotheses: int, load_timeout_s: float) -> None:
        self.video, self.backend_factory, self.workdir = video, backend_factory, workdir
        self.n_hypotheses, self.load_timeout_s = n_hypotheses, load_timeout_s
        self.viewport = f"main window (DISPLAY={os.environ.get('DISPLAY', '')})"
        self.backend = ""
        self._window_cm: Any = None

    def start(self) -> None:
        from handviz.bench.app_bench import WindowWatch, bench_window

        self._window_cm = bench_window(self.backend_factory, self.workdir, self.n_hypotheses)
        self.window = self._window_cm.__enter__()
        self.watch = WindowWatch(self.window)
        self.window.open_source(str(self.video))
        backend = self.watch.wait_for_backend(self.load_timeout_s, require_model=self.backend_factory is not None)
        self.backend = f"{backend.name} · {backend.device}"
        self.controller = self.window.controller
        self.window.actions_by_id["record"].setChecked(True)
        if not self.controller.recording:
            raise InputError(f"recording did not start: {self.window.banner.text or 'no reason shown'}")
        self._dropped0 = self._dropped_total()
        self._captured0 = self.controller.pipeline.frames_captured
        self._shown0 = self.window.frames_shown
        self._result_errors0 = self.watch.result_errors

    def _dropped_total(self) -> int:
        return self.controller.dropped + self.window.bridge.gui_dropped + self.window.presenter.skipped

    def delivered(self) -> int:
        # counted where the results are recorded: one produced just before the session opened
        # (still queued to the GUI when Record was pressed) is not in it, so none is missed
        return self.controller.recorder.frames_received

    def advance(self, seconds: float, until: Callable[[], bool]) -> None:
        from handviz.bench.app_bench import spin_until

        spin_until(until, seconds, poll_ms=50)

    def alive(self) -> str | None:
        return _why_stopped(self.watch.events, self.controller)

    def counts(self) -> dict[str, int]:
        return {"captured": self.controller.pipeline.frames_captured - self._captured0,
                "shown": self.window.frames_shown - self._shown0,
                "dropped": self._dropped_total() - self._dropped0,
                "errors": len(self.watch.error_events()) + self.watch.result_errors - self._result_errors0}

    def error_messages(self) -> list[str]:
        return [e.message for e in self.watch.error_events()]

    def stop(self) -> tuple[bool, Path | None, int, int]:
        path = self.controller.recorder.path
        pipeline = self.controller.pipeline
        summary = self.controller.stop_recording()  # what the Record button does, with the summary kept
        self.window.actions_by_id["record"].setChecked(False)
        self.window.stop_feed()  # joins the pipeline's threads
        clean = pipeline is not None and not pipeline.running
        written = summary.frames_written if summary is not None else 0
        return clean, path, written, summary.dropped if summary is not None else 0

    def close(self) -> None:
        if self._window_cm is not None:
            self.watch.detach()
            self._window_cm.__exit__(None, None, None)
            self._window_cm = None


class SceneRun:
    """The SessionController drawn into a HandScene on a pyvista off-screen plotter (no display)."""

    def __init__(self, video: Path, backend_factory: Callable[[], InferenceBackend] | None, workdir: Path,
                 n_hypotheses: int, load_timeout_s: float, size: tuple[int, int] = (640, 480)) -> None:
        self.video, self.backend_factory, self.workdir = video, backend_factory, workdir
        self.n_hypotheses, self.load_timeout_s, self.size = n_hypotheses, load_timeout_s, size
        self.viewport = "pyvista off-screen plotter" + ("" if os.environ.get("DISPLAY") else " (no X display)")
        self.backend = ""
        self._lock = threading.Lock()
        self._newest: Any = None
        self._shown = self._errors = self._gui_dropped = 0
        self._events: list[Any] = []
        self.plotter: Any = None

    def _on_result(self, result: Any) -> None:  # worker thread: the controller has recorded it already
        with self._lock:
            self._errors += result.error is not None
            if self._newest is not None:
                self._gui_dropped += 1
            self._newest = result

    def start(self) -> None:
        import pyvista as pv

        from handviz.pipeline.controller import SessionController
        from handviz.pipeline.inference import InferOptions
        from handviz.pipeline.threads import PipelineOptions
        from handviz.scene.hand_scene import HandScene

        self.plotter = pv.Plotter(off_screen=True, window_size=list(self.size))
        self.scene = HandScene(self.plotter)
        options = PipelineOptions(infer=InferOptions(n_hypotheses=self.n_hypotheses))
        self.controller = SessionController(self._on_result, self._events.append, backend_factory=self.backend_factory,
                                            options=options, recorded_by="soak")
        pipeline = self.controller.open_source(str(self.video))
        backend = pipeline.wait_for_backend(self.load_timeout_s)
        failed = [e for e in self._events if e.kind in (EventKind.BACKEND_FAILED, EventKind.SOURCE_ERROR)]
        if failed and (self.backend_factory is not None or failed[0].kind == EventKind.SOURCE_ERROR):
            self.controller.stop()
            raise InputError(failed[0].message)
        if backend is None:
            self.controller.stop()
            raise RuntimeError(f"the model did not load within {self.load_timeout_s:.0f} s")
        self.backend = f"{backend.name} · {backend.device}"
        self.scene.set_faces(backend.faces)
        self.controller.start_recording(self.workdir / "sessions")
        with self._lock:
            self._dropped0 = self.controller.dropped + self._gui_dropped
            self._errors0 = self._errors
        self._captured0 = pipeline.frames_captured

    def delivered(self) -> int:
        return self.controller.recorder.frames_received

    def advance(self, seconds: float, until: Callable[[], bool]) -> None:
        """Draw the newest result and render, as the window's frame clock does, until `until`."""
        stop = threading.Event()
        deadline = threading.Timer(seconds, stop.set)
        deadline.start()
        try:
            while not stop.is_set() and not until():
                with self._lock:
                    result, self._newest = self._newest, None
                if result is None:
                    stop.wait(0.005)
                    continue
                self.scene.show_hands(result.hands)
                self.plotter.render()
                self._shown += 1
        finally:
            deadline.cancel()

    def alive(self) -> str | None:
        return _why_stopped(self._events, self.controller)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"captured": self.controller.pipeline.frames_captured - self._captured0, "shown": self._shown,
                    "dropped": self.controller.dropped + self._gui_dropped - self._dropped0,
                    "errors": sum(e.level == "error" for e in self._events) + self._errors - self._errors0}

    def error_messages(self) -> list[str]:
        return [e.message for e in self._events if e.level == "error"]

    def stop(self) -> tuple[bool, Path | None, int, int]:
        path = self.controller.recorder.path
        summary = self.controller.stop_recording()
        clean = self.controller.stop()
        written = summary.frames_written if summary is not None else 0
        return clean, path, written, summary.dropped if summary is not None else 0

    def close(self) -> None:
        if self.plotter is not None:
            self.plotter.close()
            self.plotter = None
