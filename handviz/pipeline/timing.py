"""Stage stamps and rolling statistics: what the status bar and the performance plots show.

Each stage writes `frame.stamps[<event>] = time.perf_counter()`; `stage_timings` turns the stamps
into per-stage milliseconds, and `RollingStats` keeps a short window of them for FPS and means.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from handviz.types import CAPTURED_STAMP, FrameResult

# Stamp names, in the order a frame meets them.
CAPTURED = CAPTURED_STAMP
DETECT_START = "detect_start"
DETECT_END = "detect_end"
INFER_START = "infer_start"
INFER_END = "infer_end"
DELIVERED = "delivered"
#: Not a stage: a file's frame k at k / fps seconds, the source's own clock (cameras have none).
#: Sessions and the smoother go by it, so a clip keeps its speed however fast frames were
#: processed (`record` runs unpaced: its capture stamps were 0.02-783 ms apart on a 30 fps demo).
SOURCE_TIME = "source_time"

#: (timing name, from stamp, to stamp). "latency" is capture -> result delivered.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("detect", DETECT_START, DETECT_END),
    ("infer", INFER_START, INFER_END),
    ("wait", CAPTURED, DETECT_START),
    ("latency", CAPTURED, DELIVERED),
)


def now() -> float:
    """The clock every stamp uses (seconds, monotonic)."""
    return time.perf_counter()


def content_time(stamps: dict[str, float]) -> float:
    """When the frame happens in what it shows (seconds): its time on the source's clock when the
    source has one (files, folders, the demo), else its capture stamp (cameras)."""
    return stamps.get(SOURCE_TIME, stamps[CAPTURED])


def stage_timings(stamps: dict[str, float]) -> dict[str, float]:
    """Milliseconds per stage for the stamps present (missing stamps -> stage left out)."""
    out = {}
    for name, start, end in STAGES:
        if start in stamps and end in stamps:
            out[name] = (stamps[end] - stamps[start]) * 1000.0
    return out


@dataclass
class StatsSnapshot:
    """Rolling means over the last window: fps of delivered results, ms per stage, and the hands'
    mean 90 % radius (the unit of the cloud's colour scale)."""

    fps: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)
    mean_radius_90_mm: float | None = None
    hands: int = 0
    frames: int = 0


class RollingStats:
    """Thread-safe window (seconds) of delivered results."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._items: deque[tuple[float, dict[str, float], float | None, int]] = deque()
        self.total = 0

    def add(self, result: FrameResult, at: float | None = None) -> None:
        """Record one delivered result (at: its delivery time, default now())."""
        at = now() if at is None else at
        radii = [float(h.joint_radius_90.mean()) for h in result.hands if h.joint_hypotheses.size]
        radius = sum(radii) / len(radii) if radii else None
        with self._lock:
            self._items.append((at, dict(result.timings_ms), radius, len(result.hands)))
            self.total += 1
            self._trim(at)

    def _trim(self, at: float) -> None:
        while self._items and at - self._items[0][0] > self.window_s:
            self._items.popleft()

    def snapshot(self, at: float | None = None) -> StatsSnapshot:
        """Means over the window ending at `at` (default now())."""
        at = now() if at is None else at
        with self._lock:
            self._trim(at)
            items = list(self._items)
        if not items:
            return StatsSnapshot(frames=self.total)
        span = items[-1][0] - items[0][0]
        fps = (len(items) - 1) / span if len(items) > 1 and span > 0 else 0.0
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _, timings, _, _ in items:
            for name, ms in timings.items():
                sums[name] = sums.get(name, 0.0) + ms
                counts[name] = counts.get(name, 0) + 1
        radii = [r for _, _, r, _ in items if r is not None]
        return StatsSnapshot(
            fps=fps,
            stage_ms={name: sums[name] / counts[name] for name in sums},
            mean_radius_90_mm=sum(radii) / len(radii) if radii else None,
            hands=items[-1][3],
            frames=self.total,
        )


@dataclass(frozen=True)
class Displayed:
    """One result put on screen: the render that first showed it ended at displayed_at."""

    index: int  # Frame.index
    captured_at: float | None  # Frame.captured_at (None: a replayed frame from another run)
    displayed_at: float
    hands: int  # hands drawn in the 3D view

    @property
    def latency_s(self) -> float | None:
        """Capture -> display, when the capture happened in this process."""
        return None if self.captured_at is None else self.displayed_at - self.captured_at


class DisplayStats:
    """The one definition of *displayed fps*, shared by the status bar and `bench --app`: results
    whose render finished, each counted once, per second of a sliding window (results replaced
    before they were drawn do not count). Thread-safe; fed by the window's frame clock."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._items: deque[Displayed] = deque()
        self._since: float | None = None
        self.total = 0

    def add(self, shown: Displayed) -> None:
        with self._lock:
            if self._since is None:
                self._since = shown.displayed_at
            self._items.append(shown)
            self.total += 1
            self._trim(shown.displayed_at)

    def _trim(self, at: float) -> None:
        while self._items and at - self._items[0].displayed_at > self.window_s:
            self._items.popleft()

    def fps(self, at: float | None = None) -> float:
        """Displays in the last window_s (or since the first display, if that is shorter) per second."""
        at = now() if at is None else at
        with self._lock:
            self._trim(at)
            if not self._items or self._since is None:
                return 0.0
            span = min(self.window_s, at - self._since)
            if span <= 0:
                return 0.0
            # the first display opens the span; it is not counted in it
            n = len(self._items) - (1 if at - self._since <= self.window_s else 0)
            return n / span

    def latency_ms(self, at: float | None = None) -> float | None:
        """Median capture -> display over the window (None: no live frame in it); with an even count,
        the mean of the two middle ones, as `bench --app` (numpy) takes it."""
        at = now() if at is None else at
        with self._lock:
            self._trim(at)
            lat = [d.latency_s for d in self._items if d.latency_s is not None]
        return statistics.median(lat) * 1000.0 if lat else None
