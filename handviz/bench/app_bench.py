"""`handviz bench --app`: the real main window on the bundled demo, measured from outside the app.

What counts is what the user sees. A frame is *displayed* when the viewport's VTK render window
finishes a render after that frame's result was drawn into it (an EndEvent observer), so results
that Qt folded into one repaint count once. Capture->display latency is that moment minus the
frame's CAPTURED stamp (both on the pipeline's clock). MediaPipe alone is then timed on the same
clip frames in the same process, after the window has closed, so the ratio compares like with like.

Needs an X display (run under `xvfb-run -a`). The window keeps its settings in a throwaway INI
file, never in the user's own settings.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handviz.limits import HYPOTHESES_DEFAULT
from handviz.logs import InputError
from handviz.pipeline import timing
from handviz.pipeline.inference import InferenceBackend

#: The JSON note (and the one line on stderr) when there is no display to open the window on.
NO_DISPLAY_NOTE = "no X display (DISPLAY is unset): run under `xvfb-run -a handviz bench --app`"
#: Frames of MediaPipe-alone timing: one full loop of the demo clip (3 photos x 60 frames).
MEDIAPIPE_FRAMES = 180
#: Name of the fallback backend (handviz.pipeline.inference.mediapipe_backend).
_FALLBACK_NAME = "MediaPipe 3D only"


def display_available() -> bool:
    """True when an X server is named (VTK in the viewport renders through X)."""
    return bool(os.environ.get("DISPLAY"))


def qt_application() -> Any:
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication(["handviz-bench"])


def spin_until(predicate: Callable[[], bool], timeout_s: float, poll_ms: int = 20) -> bool:
    """Run the Qt event loop (paints, queued signals, timers) until predicate() holds or timeout_s
    passes; returns predicate(). Unlike sleeping, this lets the window work as it does in the app."""
    from PySide6.QtCore import QEventLoop, QTimer

    if predicate():
        return True
    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s

    def check() -> None:
        if predicate() or time.monotonic() >= deadline:
            loop.quit()

    timer = QTimer()
    timer.setInterval(poll_ms)
    timer.timeout.connect(check)
    timer.start()
    loop.exec()
    timer.stop()
    return predicate()


@contextmanager
def bench_window(backend_factory: Callable[[], InferenceBackend] | None, workdir: str | Path,
                 n_hypotheses: int = HYPOTHESES_DEFAULT) -> Iterator[Any]:
    """The app's MainWindow, shown, not yet playing, with its settings in workdir/handviz-bench.ini
    (recordings go to workdir/sessions). Closed (feed stopped, VTK freed) on exit."""
    from PySide6.QtCore import QSettings

    from handviz.app.main_window import MainWindow

    app = qt_application()
    workdir = Path(workdir)
    store = QSettings(str(workdir / "handviz-bench.ini"), QSettings.Format.IniFormat)
    store.setValue("app/n_hypotheses", int(n_hypotheses))
    store.setValue("app/ddim_steps", 1)
    store.setValue("app/record_dir", str(workdir / "sessions"))
    window = MainWindow(backend_factory=backend_factory, settings=store, autostart=False)
    window.show()
    app.processEvents()
    try:
        yield window
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()


class WindowWatch:
    """Events, results and viewport renders of one MainWindow, as the bench needs them.

    Results are remembered by frame index when they reach the GUI; `result_shown` says which one
    was drawn into the viewport; the next VTK render puts it on screen. While `measuring`, each
    displayed frame is kept as (display time, capture->display s, hands in it).
    """

    def __init__(self, window: Any) -> None:
        self.window = window
        self.events: list[Any] = []
        self.measuring = False
        self.displays: list[tuple[float, float, int]] = []
        self.pipeline_latency_ms: list[float] = []
        self.results = 0  # results that reached the GUI thread
        self.result_errors = 0
        self.not_rendered = 0  # drawn into the viewport, then replaced before any render showed it
        self.renders = 0
        self._info: dict[int, tuple[float, int]] = {}
        self._drawn: int | None = None
        window.bridge.event.connect(lambda _gen, event: self.events.append(event))
        window.bridge.result_ready.connect(self._on_result)
        window.result_shown.connect(self._on_shown)
        self._observer = window.viewport.plotter.ren_win.AddObserver("EndEvent", self._on_render)

    def detach(self) -> None:
        self.window.viewport.plotter.ren_win.RemoveObserver(self._observer)

    def _on_result(self, _gen: int, result: Any) -> None:
        self.results += 1
        self.result_errors += result.error is not None
        self._info[result.frame.index] = (result.frame.stamps.get(timing.CAPTURED, np.nan), len(result.hands))
        if self.measuring and "latency" in result.timings_ms:
            self.pipeline_latency_ms.append(result.timings_ms["latency"])

    def _on_shown(self, index: int) -> None:
        if self._drawn is not None and self.measuring:
            self.not_rendered += 1
        self._drawn = index

    def _on_render(self, *_: object) -> None:
        at = timing.now()
        self.renders += 1
        index, self._drawn = self._drawn, None
        if index is None:
            return
        info = self._info.pop(index, None)
        for old in [k for k in self._info if k < index]:  # results the GUI skipped
            del self._info[old]
        if info is not None and self.measuring:
            self.displays.append((at, at - info[0], info[1]))

    def error_events(self) -> list[Any]:
        return [e for e in self.events if e.level == "error"]

    def wait_for_backend(self, timeout_s: float, require_model: bool) -> InferenceBackend:
        """Spin until the feed's backend is loaded; raise with the app's own message when the
        model failed to load (and require_model) or the source could not be opened."""

        def settled() -> bool:
            feed = self.window.feed
            return (feed is not None and feed.backend is not None) or any(
                e.kind == "source-error" for e in self.events)

        spin_until(settled, timeout_s)
        for event in self.events:
            if event.kind == "source-error":
                raise InputError(event.message)
            if event.kind == "backend-failed" and require_model:
                raise InputError(event.message)
        feed = self.window.feed
        if feed is None or feed.backend is None:
            raise RuntimeError(f"the model did not load within {timeout_s:.0f} s")
        return feed.backend


def process_cpu_s() -> float:
    """User + system CPU seconds of this process, all threads (MediaPipe's and torch's included)."""
    t = os.times()
    return t.user + t.system


def preloaded(factory: Callable[[], InferenceBackend] | None) -> Callable[[], InferenceBackend] | None:
    """Load the model now, so missing or damaged weights stop the bench with the loader's own
    message (the app would fall back to MediaPipe's 3D and carry on); the window then gets it at once."""
    if factory is None:
        return None
    backend = factory()
    return lambda: backend


def _stats_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"median": float("nan"), "p90": float("nan")}
    a = np.asarray(seconds, np.float64) * 1000.0
    return {"median": round(float(np.median(a)), 2), "p90": round(float(np.percentile(a, 90)), 2)}


def fps_by_hands(displays: list[tuple[float, float, int]]) -> dict[str, float]:
    """Display rate while k hands were on screen: the time until the next display is charged to
    the hand count of the frame shown. displays: (time s, latency s, hands) in display order."""
    time_by: dict[int, float] = {}
    count_by: dict[int, int] = {}
    for (t0, _, hands), (t1, _, _) in zip(displays, displays[1:]):
        time_by[hands] = time_by.get(hands, 0.0) + (t1 - t0)
        count_by[hands] = count_by.get(hands, 0) + 1
    return {str(k): round(count_by[k] / time_by[k], 2) for k in sorted(time_by) if time_by[k] > 0}


def source_frames(spec: str, n_frames: int) -> list[np.ndarray]:
    """The first n_frames RGB frames of a source spec ("demo", a video, a folder), looping."""
    from handviz.pipeline.sources import open_source

    frames: list[np.ndarray] = []
    with open_source(spec, loop=True) as source:
        while len(frames) < n_frames:
            image = source.read()
            if image is None:
                break
            frames.append(image)
    if not frames:
        raise InputError(f"{spec}: gave no frames")
    return frames


def mediapipe_only_fps(frames: list[np.ndarray]) -> float:
    """Frames/s of the app's own detector set-up (HandDetector(max_hands=2), tracking) alone."""
    from handviz.pipeline.detector import HandDetector

    with HandDetector(max_hands=2) as detector:
        detector.detect(frames[0])
        t0 = time.perf_counter()
        for image in frames:
            detector.detect(image)
        return len(frames) / (time.perf_counter() - t0)


@dataclass
class AppBenchResult:
    """One app measurement; `as_json()` is what `handviz bench --app` prints under "app"."""

    fps: float
    mediapipe_only_fps: float
    latency_ms: dict[str, float]
    dropped: int
    seconds: float
    frames_displayed: int
    captured: int
    not_rendered: int
    pipeline_latency_ms: dict[str, float]
    fps_by_hands: dict[str, float]
    hands_mean: float
    hypotheses: int
    backend: str
    source: str
    source_fps: float | None
    viewport_px: tuple[int, int]
    process_cpu_cores: float  # CPU seconds this process used per wall second while measured
    loadavg_1m: float  # the machine's load when the measurement started (others' work included)
    errors: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.fps / self.mediapipe_only_fps if self.mediapipe_only_fps > 0 else float("nan")

    def as_json(self) -> dict[str, Any]:
        return {
            "fps": round(self.fps, 2), "mediapipe_only_fps": round(self.mediapipe_only_fps, 2),
            "ratio": round(self.ratio, 3), "latency_ms": self.latency_ms, "dropped": self.dropped,
            "seconds": round(self.seconds, 2), "frames_displayed": self.frames_displayed,
            "captured": self.captured, "not_rendered": self.not_rendered,
            "pipeline_latency_ms": self.pipeline_latency_ms, "fps_by_hands": self.fps_by_hands,
            "hands_mean": round(self.hands_mean, 3), "hypotheses": self.hypotheses, "backend": self.backend,
            "source": self.source, "source_fps": self.source_fps, "viewport_px": list(self.viewport_px),
            "process_cpu_cores": round(self.process_cpu_cores, 2), "loadavg_1m": round(self.loadavg_1m, 2),
            "errors": self.errors,
        }


def bench_app(backend_factory: Callable[[], InferenceBackend] | None, seconds: float = 20.0,
              warmup_s: float = 3.0, source: str = "demo", n_hypotheses: int = HYPOTHESES_DEFAULT,
              mediapipe_frames: int = MEDIAPIPE_FRAMES, load_timeout_s: float = 180.0) -> AppBenchResult:
    """Open the main window on `source`, let it run warmup_s after the model is loaded, then count
    what it displays for `seconds`; then time MediaPipe alone on the same source's frames.

    backend_factory: what the app gets (commands.app.cascade_backend_factory for the real cascade);
    None measures the app without a model (MediaPipe's 3D only). Raises InputError when the model
    or the source fails to load, RuntimeError without an X display.
    """
    if not display_available():
        raise RuntimeError(NO_DISPLAY_NOTE)
    backend_factory = preloaded(backend_factory)
    with tempfile.TemporaryDirectory(prefix="handviz-bench-app-") as workdir, \
            bench_window(backend_factory, workdir, n_hypotheses) as window:
        watch = WindowWatch(window)
        window.open_source(source)
        backend = watch.wait_for_backend(load_timeout_s, require_model=backend_factory is not None)
        spin_until(lambda: False, warmup_s)
        pipeline = window.feed
        dropped0 = pipeline.dropped + window.bridge.gui_dropped
        captured0 = pipeline.frames_captured
        load = os.getloadavg()[0]
        cpu0 = process_cpu_s()
        watch.measuring = True
        t0 = timing.now()
        spin_until(lambda: False, seconds)
        watch.measuring = False
        elapsed = timing.now() - t0
        cpu = process_cpu_s() - cpu0
        dropped = pipeline.dropped + window.bridge.gui_dropped - dropped0
        captured = pipeline.frames_captured - captured0
        source_fps = pipeline.source.fps if pipeline.source is not None else None
        size = window.viewport.plotter.ren_win.GetSize()
        watch.detach()
        errors = [e.message for e in watch.error_events()]
    displays = watch.displays
    frames = source_frames(source, mediapipe_frames)
    return AppBenchResult(
        fps=len(displays) / elapsed if elapsed > 0 else 0.0,
        mediapipe_only_fps=mediapipe_only_fps(frames),
        latency_ms=_stats_ms([d[1] for d in displays]),
        dropped=int(dropped),
        seconds=elapsed,
        frames_displayed=len(displays),
        captured=int(captured),
        not_rendered=watch.not_rendered,
        pipeline_latency_ms=_stats_ms([ms / 1000.0 for ms in watch.pipeline_latency_ms]),
        fps_by_hands=fps_by_hands(displays),
        hands_mean=float(np.mean([d[2] for d in displays])) if displays else 0.0,
        hypotheses=n_hypotheses,
        backend=f"{backend.name} · {backend.device}",
        source=source,
        source_fps=source_fps,
        viewport_px=(int(size[0]), int(size[1])),
        process_cpu_cores=cpu / elapsed if elapsed > 0 else 0.0,
        loadavg_1m=load,
        errors=errors,
    )
