"""`handviz bench --soak N`: the full pipeline for N frames with recording on; crashes, memory, stop.

A looping video (the demo photos written as a clip, or --video) plays through the app's own
classes (soak_runs.py): the MainWindow under an X display, or, with no display, the same
SessionController drawn into the same HandScene on a pyvista off-screen plotter.
Recording runs from the first frame after the model has loaded until the N-th delivered frame.
Resident memory (VmRSS) is sampled every few seconds; the baseline is taken after a warm-up,
when caches, the model and MediaPipe's graphs have settled, so growth means a leak, not start-up.
"""

from __future__ import annotations

import gc
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handviz.bench.loop_video import make_loop_video
from handviz.bench.soak_runs import SceneRun, SoakRun, WindowRun
from handviz.limits import HYPOTHESES_DEFAULT
from handviz.logs import InputError
from handviz.pipeline.inference import InferenceBackend

__all__ = ["MAX_GROWTH_MB", "SoakReport", "make_loop_video", "run_soak"]

#: The issue's bar: resident memory may grow at most this much over the soak (after warm-up).
MAX_GROWTH_MB = 50.0
#: None's refcount is a leak when it falls by more than this per frame and more than NONE_NOISE_REFS
#: in all: objects holding None come and go by a few hundred references between two samples.
NONE_LEAK_PER_FRAME = 0.5
NONE_NOISE_REFS = 500
#: Names of the threads handviz starts; none may outlive a stop.
OWN_THREAD_PREFIXES = ("handviz-", "session-writer")


def rss_mb() -> float:
    """Resident set size of this process in MB (VmRSS of /proc/self/status; psutil not needed)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("/proc/self/status has no VmRSS line (not Linux?)")


def os_thread_count() -> int:
    """Threads of this process as the OS sees them (native MediaPipe/torch/VTK threads included)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def none_refcount() -> int | None:
    """References to None, where they are counted (Python < 3.12; later, None is immortal).

    A C extension that returns None without taking a reference lowers this by one per call,
    and the process aborts ("deallocating None") when it reaches zero; a steady fall per frame
    shows such a bug long before it kills the app.
    """
    if sys.version_info >= (3, 12):
        return None
    return sys.getrefcount(None)


@dataclass
class MemorySample:
    t_s: float  # since recording started
    frames: int  # delivered since recording started
    rss_mb: float


@dataclass
class SoakReport:
    """What a soak measured; `as_json()` is what `handviz bench --soak` prints under "soak"."""

    frames_requested: int
    frames_processed: int  # results the pipeline delivered while recording
    frames_captured: int  # read from the source meanwhile (the difference was dropped as stale)
    frames_shown: int  # drawn in the viewport
    dropped: int  # pipeline + GUI drops (newest frame wins)
    errors: int  # error events and results that carried an error
    error_messages: list[str]
    crashed: bool  # the run died before N frames (source ended, pipeline stopped, time ran out)
    duration_s: float
    viewport: str  # "main window (DISPLAY=...)" or "pyvista off-screen plotter"
    backend: str
    warmup_frames: int
    rss_start_mb: float  # before the model, the window and the pipeline existed
    rss_warmup_mb: float  # baseline, after warm-up
    rss_end_mb: float  # at the N-th frame, before stopping
    rss_max_mb: float
    rss_after_stop_mb: float
    growth_mb: float  # rss_end - rss_warmup
    growth_slope_mb_per_1k: float  # least-squares slope of the samples after warm-up
    none_refs_change: int | None  # change of None's refcount from warm-up to the end (Python < 3.12)
    none_refs_per_frame: float | None  # the same per frame
    frames_to_none_abort: int | None  # at that rate, frames until None's refcount reaches zero
    stopped_cleanly: bool  # every pipeline thread joined within its timeout
    stop_s: float
    threads_left: list[str]  # Python threads alive after the stop (main thread excluded)
    os_threads_before: int
    os_threads_after: int
    session_frames: int  # frames readable from the recorded session
    session_complete: bool  # the session was closed cleanly (its meta says so)
    session_written: int  # frames the recorder reports as committed
    session_not_recorded: int  # records the writer dropped (the disk was too slow)
    session_mb: float
    samples: list[MemorySample] = field(default_factory=list)

    @property
    def own_threads_left(self) -> list[str]:
        return [name for name in self.threads_left if name.startswith(OWN_THREAD_PREFIXES)]

    @property
    def ok(self) -> bool:
        """The issue's bar: N frames, no crash or error, growth under 50 MB, a clean stop."""
        return (not self.crashed and self.errors == 0 and self.frames_processed >= self.frames_requested
                and self.growth_mb < MAX_GROWTH_MB and self.stopped_cleanly and not self.own_threads_left
                and self.session_frames > 0 and not self.none_refs_leak)

    @property
    def none_refs_leak(self) -> bool:
        """None loses references frame after frame: the process will abort, only later."""
        return (self.none_refs_per_frame is not None and self.none_refs_change is not None
                and self.none_refs_per_frame < -NONE_LEAK_PER_FRAME and self.none_refs_change < -NONE_NOISE_REFS)

    def as_json(self, with_samples: bool = True) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        if not with_samples:
            out.pop("samples")
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 2)
        return out


def _slope_per_1k(samples: list[MemorySample]) -> float:
    if len(samples) < 2 or samples[-1].frames == samples[0].frames:
        return 0.0
    frames = np.array([s.frames for s in samples], np.float64)
    rss = np.array([s.rss_mb for s in samples], np.float64)
    return float(np.polyfit(frames, rss, 1)[0] * 1000.0)


def _folder_mb(path: Path | None) -> float:
    if path is None or not path.is_dir():
        return 0.0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def default_warmup(n_frames: int) -> int:
    """10% of the run, at least 30 and at most 1000 frames, never more than half of it."""
    return min(n_frames // 2, max(30, min(1000, n_frames // 10)))


@dataclass
class _Drive:
    """What the soak loop saw while frames flowed (before the stop)."""

    samples: list[MemorySample] = field(default_factory=list)
    rss_warm: float | None = None
    none_warm: int | None = None
    frames_warm: int = 0
    why_stopped: str | None = None
    duration_s: float = 0.0
    rss_end: float = 0.0
    none_end: int | None = None
    frames_end: int = 0

    def none_change(self) -> int | None:
        if self.none_warm is None or self.none_end is None or self.frames_end <= self.frames_warm:
            return None
        return self.none_end - self.none_warm

    def none_rate(self) -> float | None:
        change = self.none_change()
        return None if change is None else change / (self.frames_end - self.frames_warm)

    def frames_to_abort(self) -> int | None:
        rate = self.none_rate()
        return int(self.none_end / -rate) if rate is not None and rate < 0 and self.none_end else None


def _drive(run: SoakRun, n_frames: int, warmup: int, sample_every_s: float, limit_s: float,
           say: Callable[[str], None]) -> _Drive:
    """Let frames flow until n_frames were delivered (or the run died, or limit_s passed), taking
    the memory baseline after `warmup` frames and a sample every sample_every_s after that."""
    d = _Drive()
    t0 = next_note = time.monotonic()
    while True:
        target = warmup if d.rss_warm is None else n_frames
        run.advance(sample_every_s, lambda: run.delivered() >= target)
        done, now = run.delivered(), time.monotonic()
        if d.rss_warm is None and done >= warmup:
            gc.collect()
            # rounded like every sample, so growth and the maximum compare like with like
            d.rss_warm, d.none_warm, d.frames_warm = round(rss_mb(), 2), none_refcount(), done
        if d.rss_warm is not None:
            d.samples.append(MemorySample(round(now - t0, 2), done, round(rss_mb(), 2)))
        if done >= n_frames:
            break
        d.why_stopped = run.alive()
        if d.why_stopped is None and now - t0 > limit_s:
            d.why_stopped = f"gave up after {limit_s:.0f} s ({done} of {n_frames} frames)"
        if d.why_stopped is not None:
            break
        if now >= next_note:
            say(f"soak: {done}/{n_frames} frames, {now - t0:.0f} s, RSS {rss_mb():.0f} MB")
            next_note = now + 60.0
    d.duration_s = time.monotonic() - t0
    d.rss_end, d.none_end, d.frames_end = round(rss_mb(), 2), none_refcount(), run.delivered()
    return d


def run_soak(n_frames: int, backend_factory: Callable[[], InferenceBackend] | None,
             video: str | Path | None = None, workdir: str | Path | None = None,
             window: bool | None = None, n_hypotheses: int = HYPOTHESES_DEFAULT, warmup_frames: int | None = None,
             sample_every_s: float = 5.0, max_seconds: float | None = None, load_timeout_s: float = 180.0,
             keep_session: bool = False, progress: Callable[[str], None] | None = None) -> SoakReport:
    """Run the app's pipeline over a looping video for n_frames delivered frames, recording.

    backend_factory: what the app gets (commands.app.cascade_backend_factory for the cascade).
    video: None writes the demo clip (make_loop_video) into the work folder. workdir: None uses a
    temp folder, removed afterwards unless keep_session. window: True the MainWindow (needs an X
    display), False the off-screen plotter, None whichever the environment allows.
    max_seconds: give up (crashed=True) after this long; default allows 2 frames/s plus 2 minutes.
    """
    if n_frames < 1:
        raise InputError(f"--soak needs at least 1 frame, got {n_frames}")
    from handviz.bench.app_bench import display_available, preloaded

    use_window = display_available() if window is None else window
    if use_window and not display_available():
        raise RuntimeError("the main window needs an X display: run under xvfb-run -a")
    own_dir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="handviz-soak-") if own_dir else workdir)
    work.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda text: None)
    warmup = default_warmup(n_frames) if warmup_frames is None else max(0, min(int(warmup_frames), n_frames))
    limit = max_seconds if max_seconds is not None else n_frames / 2.0 + 120.0
    try:
        clip = Path(video) if video is not None else make_loop_video(work / "soak-clip.avi")
        if not clip.exists():
            raise InputError(f"{clip}: no such video; pass an existing file to --video")
        gc.collect()
        rss_start, threads_before = rss_mb(), os_thread_count()
        backend_factory = preloaded(backend_factory)
        kind = WindowRun if use_window else SceneRun
        run: SoakRun = kind(clip, backend_factory, work, n_hypotheses, load_timeout_s)
        try:
            run.start()
            say(f"soak: {run.backend}, {run.viewport}, recording; {n_frames} frames, warm-up {warmup}")
            d = _drive(run, n_frames, warmup, sample_every_s, limit, say)
            counts, messages = run.counts(), run.error_messages()
            t_stop = time.monotonic()
            clean, session, written, not_recorded = run.stop()
            stop_s = time.monotonic() - t_stop
        finally:
            run.close()
        gc.collect()
        time.sleep(0.2)  # daemon threads that were told to end get a moment to be reaped
        threads_left = [t.name for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
        session_frames, complete = _read_session(session)
        rss_warm = d.rss_end if d.rss_warm is None else d.rss_warm
        return SoakReport(
            frames_requested=n_frames, frames_processed=d.frames_end, frames_captured=counts["captured"],
            frames_shown=counts["shown"], dropped=counts["dropped"], errors=counts["errors"],
            error_messages=messages + ([d.why_stopped] if d.why_stopped else []), crashed=d.why_stopped is not None,
            duration_s=d.duration_s, viewport=run.viewport, backend=run.backend, warmup_frames=warmup,
            rss_start_mb=rss_start, rss_warmup_mb=rss_warm, rss_end_mb=d.rss_end,
            rss_max_mb=max([s.rss_mb for s in d.samples] + [d.rss_end, rss_warm]), rss_after_stop_mb=rss_mb(),
            growth_mb=d.rss_end - rss_warm, growth_slope_mb_per_1k=_slope_per_1k(d.samples),
            none_refs_change=d.none_change(), none_refs_per_frame=d.none_rate(),
            frames_to_none_abort=d.frames_to_abort(),
            stopped_cleanly=clean, stop_s=stop_s, threads_left=threads_left,
            os_threads_before=threads_before, os_threads_after=os_thread_count(),
            session_frames=session_frames, session_complete=complete, session_written=written,
            session_not_recorded=not_recorded, session_mb=_folder_mb(session), samples=d.samples,
        )
    finally:
        if own_dir and not keep_session:
            shutil.rmtree(work, ignore_errors=True)


def _read_session(path: Path | None) -> tuple[int, bool]:
    """(frames readable, closed cleanly) of a recorded session; (0, False) when there is none."""
    if path is None or not path.exists():
        return 0, False
    from handviz.io.session import SessionReader

    with SessionReader(path) as reader:
        return len(reader), bool(reader.complete)
