"""Live performance plots (pyqtgraph): FPS, per-stage ms, latency and the cloud's mean 90 % radius
over time (the unit of the 3D view's colour scale).

Fed a `StatsSnapshot` a few times a second (not per frame), so the plots cost nothing noticeable
even when frames arrive at camera rate.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from handviz.pipeline.timing import StatsSnapshot

#: Seconds of history on screen.
HISTORY_S = 30.0
STAGE_PENS = {"detect": (102, 194, 165), "infer": (252, 141, 98), "wait": (141, 160, 203)}
#: Smallest y span per plot, so a flat or empty series still reads sensibly (0 at the bottom).
Y_FLOOR = {"FPS": 30.0, "Stage time": 50.0, "Latency (capture → shown)": 100.0, "Mean 90 % radius": 20.0}


class PerformancePlots(pg.GraphicsLayoutWidget):
    """Four small plots side by side; `add(t, snapshot)` appends one sample."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("#1e2127")
        self.setMinimumHeight(140)
        self._t: deque[float] = deque()
        self._series: dict[str, deque[float]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._plot_of: dict[str, pg.PlotItem] = {}
        self._floor: dict[int, float] = {}
        fps = self._plot("FPS", "frames/s")
        self._curve(fps, "fps", (255, 255, 255))
        stages = self._plot("Stage time", "ms")
        # The key lives in the title (coloured names): a legend box would cover the newest samples.
        key = " ".join(f'<span style="color: rgb{pen}">{name}</span>' for name, pen in STAGE_PENS.items())
        stages.setTitle(f"Stage time: {key}")
        for name, pen in STAGE_PENS.items():
            self._curve(stages, name, pen)
        latency = self._plot("Latency (capture → shown)", "ms")
        self._curve(latency, "latency", (255, 217, 47))
        radius = self._plot("Mean 90 % radius", "mm")
        self._curve(radius, "radius", (231, 138, 195))

    def _plot(self, title: str, unit: str) -> pg.PlotItem:
        plot = self.addPlot(title=title)
        plot.setLabel("left", unit)
        plot.setLabel("bottom", "seconds ago")
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMouseEnabled(x=False, y=False)
        plot.setXRange(-HISTORY_S, 0, padding=0)  # fixed: the time axis never needs repainting
        plot.setYRange(0, Y_FLOOR[title], padding=0)
        plot.hideButtons()
        self._floor[id(plot)] = Y_FLOOR[title]
        return plot

    def _curve(self, plot: pg.PlotItem, key: str, pen: tuple[int, int, int]) -> None:
        self._series[key] = deque()
        self._curves[key] = plot.plot(pen=pg.mkPen(pen, width=2), connect="finite")
        self._plot_of[key] = plot

    def add(self, t: float, snapshot: StatsSnapshot) -> None:
        """One sample at time t (seconds, any monotonic clock)."""
        values = {"fps": snapshot.fps, "latency": snapshot.stage_ms.get("latency", np.nan),
                  "radius": snapshot.mean_radius_90_mm if snapshot.mean_radius_90_mm is not None else np.nan}
        for name in STAGE_PENS:
            values[name] = snapshot.stage_ms.get(name, np.nan)
        self._t.append(t)
        for key, series in self._series.items():
            series.append(float(values[key]))
        while self._t and t - self._t[0] > HISTORY_S:
            self._t.popleft()
            for series in self._series.values():
                series.popleft()
        x = np.asarray(self._t) - t
        tops: dict[int, float] = {}
        for key, curve in self._curves.items():
            y = np.asarray(self._series[key])
            curve.setData(x, y)
            plot = self._plot_of[key]
            top = float(np.nanmax(y)) if np.isfinite(y).any() else 0.0
            tops[id(plot)] = max(tops.get(id(plot), 0.0), top)
        for key, plot in self._plot_of.items():  # y: 0 .. a rounded-up maximum, changed rarely
            want = max(self._floor[id(plot)], tops[id(plot)] * 1.15)
            current = plot.viewRange()[1][1]
            if want > current or want < current * 0.5:
                plot.setYRange(0, want, padding=0)

    def clear_history(self) -> None:
        self._t.clear()
        for series in self._series.values():
            series.clear()
        for curve in self._curves.values():
            curve.setData([], [])

    def latest(self, key: str) -> float | None:
        """The newest sample of a series (for tests and the status bar)."""
        series = self._series.get(key)
        return series[-1] if series else None
