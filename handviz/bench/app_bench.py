"""`handviz bench --app`: the real main window on the bundled demo, measured from outside the app.

What counts is what the user sees. A frame is *displayed* when the window's frame clock has drawn
it and its render has finished (timing.DisplayStats: the one definition, which the status bar's
fps uses too; the bench reports both). Capture->display latency is that moment minus the frame's
capture stamp (both on the pipeline's clock). MediaPipe alone is then timed on the same
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
                 n_hypotheses: int = HYPOTHESES_DEFAULT, size: tuple[int, int] | None = None) -> Iterator[Any]:
    """The app's MainWindow, shown, not yet playing, with its settings in workdir/handviz-bench.ini
    (recordings go to workdir/sessions). size: (width, height) px; None: the app's first-start
    size for this screen. Closed (feed stopped, VTK freed) on exit."""
    from PySide6.QtCore import QSettings

    from handviz.app.main_window import MainWindow

    app = qt_application()
    workdir = Path(workdir)
    store = QSettings(str(workdir / "handviz-bench.ini"), QSettings.Format.IniFormat)
    store.setValue("app/n_hypotheses", int(n_hypotheses))
    store.setValue("app/ddim_steps", 1)
    store.setValue("app/record_dir", str(workdir / "sessions"))
    window = MainWindow(backend_factory=backend_factory, settings=store, autostart=False)
    if size is not None:
        window.resize(*size)
    window.show()
    app.processEvents()
    try:
        yield window
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()


class WindowWatch:
    """Events, results and displayed frames of one MainWindow, as the bench needs them.

    A frame counts as displayed when the window's frame clock has drawn and rendered it (its
    `presenter.displayed` signal: the same events the status bar's fps counts, see
    timing.DisplayStats). While `measuring`, each is kept as (display time, capture->display s,
    hands drawn), and the status bar's fps and latency are sampled every STATS_INTERVAL_MS.
    """

    def __init__(self, window: Any) -> None:
        self.window = window
        self.events: list[Any] = []
        self.measuring = False
        self.displays: list[tuple[float, float, int]] = []
        self.stage_ms: dict[str, list[float]] = {}  # timing.STAGES' names -> ms per result
        self.status_fps: list[float] = []
        self.status_latency_ms: list[float] = []
        self.results = 0  # results that reached the GUI thread
        self.result_errors = 0
        window.bridge.event.connect(self._on_event)
        window.bridge.result_ready.connect(self._on_result)
        window.presenter.displayed.connect(self._on_displayed)

    def detach(self) -> None:
        for signal, slot in ((self.window.bridge.event, self._on_event),
                             (self.window.bridge.result_ready, self._on_result),
                             (self.window.presenter.displayed, self._on_displayed)):
            signal.disconnect(slot)

    def _on_event(self, _gen: int, event: Any) -> None:
        self.events.append(event)

    def _on_result(self, _gen: int, result: Any, _prepared: Any = None) -> None:
        self.results += 1
        self.result_errors += result.error is not None
        if self.measuring:
            for stage, ms in result.timings_ms.items():
                self.stage_ms.setdefault(stage, []).append(ms)

    def _on_displayed(self, shown: Any) -> None:
        if self.measuring and shown.latency_s is not None:
            self.displays.append((shown.displayed_at, shown.latency_s, shown.hands))

    def sample_status_bar(self) -> None:
        """The fps ("29.6 fps") and latency ("latency 48 ms") the user reads in the status bar now."""
        for key, word, samples in (("fps", 0, self.status_fps), ("latency", 1, self.status_latency_ms)):
            words = self.window.status_labels[key].text().split()
            try:
                samples.append(float(words[word]))
            except (IndexError, ValueError):
                pass  # "– fps" or "latency –": nothing shown yet

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


def longest_gap_ms(displays: list[tuple[float, float, int]]) -> float:
    """The longest time between two displays, ms (NaN with fewer than two)."""
    times = [t for t, _, _ in displays]
    return float(np.diff(times).max() * 1000.0) if len(times) > 1 else float("nan")


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
    #: The longest time between two frames displayed, ms: a stall of the whole app shows here
    #: (a full garbage collection held the GIL 200-250 ms before gui_gc froze the long-lived).
    longest_gap_ms: float
    seconds: float
    frames_displayed: int
    captured: int
    status_bar_fps: float  # mean of what the status bar said while measured (same definition as fps)
    status_bar_latency_ms: float  # median of the latency it said (DisplayStats' median, as latency_ms)
    pipeline_latency_ms: dict[str, float]
    stage_ms: dict[str, float]  # median ms per pipeline stage (timing.STAGES): where the latency goes
    fps_by_hands: dict[str, float]
    hands_mean: float
    hypotheses: int
    backend: str
    source: str
    source_fps: float | None
    window_px: tuple[int, int]  # the window's size while measured (what --window asked, if it got it)
    viewport_px: tuple[int, int]  # the 3D view on screen, device pixels
    render_px: tuple[int, int]  # what VTK rendered for it (smaller for a big view: vtk_widget.MAX_RENDER_PX)
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
            "longest_gap_ms": round(self.longest_gap_ms, 1),
            "seconds": round(self.seconds, 2), "frames_displayed": self.frames_displayed,
            "captured": self.captured, "status_bar_fps": round(self.status_bar_fps, 2),
            "status_bar_latency_ms": round(self.status_bar_latency_ms, 1),
            "pipeline_latency_ms": self.pipeline_latency_ms, "stage_ms": self.stage_ms, "fps_by_hands": self.fps_by_hands,
            "hands_mean": round(self.hands_mean, 3), "hypotheses": self.hypotheses, "backend": self.backend,
            "source": self.source, "source_fps": self.source_fps, "window_px": list(self.window_px),
            "viewport_px": list(self.viewport_px), "render_px": list(self.render_px),
            "process_cpu_cores": round(self.process_cpu_cores, 2), "loadavg_1m": round(self.loadavg_1m, 2),
            "errors": self.errors,
        }


def bench_app(backend_factory: Callable[[], InferenceBackend] | None, seconds: float = 20.0,
              warmup_s: float = 3.0, source: str = "demo", n_hypotheses: int = HYPOTHESES_DEFAULT,
              mediapipe_frames: int = MEDIAPIPE_FRAMES, load_timeout_s: float = 180.0,
              window_size: tuple[int, int] | None = None) -> AppBenchResult:
    """Open the main window on `source`, let it run warmup_s after the model is loaded, then count
    what it displays for `seconds`; then time MediaPipe alone on the same source's frames.
    window_size: (width, height) px of the window (None: the app's first-start size); the result
    gives the size it really had, since the frame rate of a software renderer follows it.

    backend_factory: what the app gets (commands.app.cascade_backend_factory for the real cascade);
    None measures the app without a model (MediaPipe's 3D only). Raises InputError when the model
    or the source fails to load, RuntimeError without an X display.
    """
    if not display_available():
        raise RuntimeError(NO_DISPLAY_NOTE)
    backend_factory = preloaded(backend_factory)
    with tempfile.TemporaryDirectory(prefix="handviz-bench-app-") as workdir, \
            bench_window(backend_factory, workdir, n_hypotheses, window_size) as window:
        watch = WindowWatch(window)
        window.open_source(source)
        backend = watch.wait_for_backend(load_timeout_s, require_model=backend_factory is not None)
        spin_until(lambda: False, warmup_s)
        from PySide6.QtCore import QTimer

        from handviz.app.main_window import STATS_INTERVAL_MS

        pipeline = window.feed
        dropped0 = pipeline.dropped + window.bridge.gui_dropped + window.presenter.skipped
        captured0 = pipeline.frames_captured
        load = os.getloadavg()[0]
        cpu0 = process_cpu_s()
        watch.measuring = True
        t0 = timing.now()
        sampler = QTimer()
        sampler.setInterval(STATS_INTERVAL_MS)
        sampler.timeout.connect(watch.sample_status_bar)
        QTimer.singleShot(int(2 * STATS_INTERVAL_MS), sampler.start)  # once the status bar's window is full
        spin_until(lambda: False, seconds)
        sampler.stop()
        watch.measuring = False
        elapsed = timing.now() - t0
        cpu = process_cpu_s() - cpu0
        dropped = pipeline.dropped + window.bridge.gui_dropped + window.presenter.skipped - dropped0
        captured = pipeline.frames_captured - captured0
        source_fps = pipeline.source.fps if pipeline.source is not None else None
        size = window.viewport.plotter.ren_win.GetSize()
        view = window.viewport.plotter.interactor
        ratio = view.devicePixelRatioF()
        view_px = (round(view.width() * ratio), round(view.height() * ratio))
        window_px = (window.width(), window.height())
        watch.detach()
        errors = [e.message for e in watch.error_events()]
    displays = watch.displays
    frames = source_frames(source, mediapipe_frames)
    return AppBenchResult(
        fps=len(displays) / elapsed if elapsed > 0 else 0.0,
        mediapipe_only_fps=mediapipe_only_fps(frames),
        latency_ms=_stats_ms([d[1] for d in displays]),
        dropped=int(dropped),
        longest_gap_ms=longest_gap_ms(displays),
        seconds=elapsed,
        frames_displayed=len(displays),
        captured=int(captured),
        status_bar_fps=float(np.mean(watch.status_fps)) if watch.status_fps else float("nan"),
        status_bar_latency_ms=float(np.median(watch.status_latency_ms)) if watch.status_latency_ms else float("nan"),
        pipeline_latency_ms=_stats_ms([ms / 1000.0 for ms in watch.stage_ms.get("latency", [])]),
        stage_ms={k: round(float(np.median(v)), 2) for k, v in watch.stage_ms.items()},
        fps_by_hands=fps_by_hands(displays),
        hands_mean=float(np.mean([d[2] for d in displays])) if displays else 0.0,
        hypotheses=n_hypotheses,
        backend=f"{backend.name} · {backend.device}",
        source=source,
        source_fps=source_fps,
        window_px=window_px,
        viewport_px=view_px,
        render_px=(int(size[0]), int(size[1])),
        process_cpu_cores=cpu / elapsed if elapsed > 0 else 0.0,
        loadavg_1m=load,
        errors=errors,
    )
