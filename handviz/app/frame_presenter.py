"""The GUI thread's frame budget: draw at most once per display refresh, only the newest result.

Results may arrive faster than the screen refreshes, or in bursts; each is *offered* here and
kept only until a newer one comes. A precise single-shot timer fires when the next refresh is
due, and then the newest result is drawn into the views, which ask Qt for one repaint. The 3D
widget renders in that repaint (once: a direct render would be repeated by its paintGL), and
when the render has finished (`rendered()`), the frame counts as displayed, in one DisplayStats
(the displayed fps of the status bar and of `bench --app`, see DESIGN.md). No new draw starts
while the last one has not reached the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication

from handviz.pipeline import timing
from handviz.pipeline.timing import Displayed, DisplayStats
from handviz.types import FrameResult

#: Used when the screen does not say its refresh rate.
FALLBACK_REFRESH_HZ = 60.0

#: draw(result, prepared) -> hands drawn; asks for a repaint, which calls rendered() when done.
DrawFn = Callable[[FrameResult, Any], int]
#: A drawn frame not rendered after this long (a hidden or minimised window) no longer holds back
#: the next draw; it is not counted as displayed.
RENDER_WAIT_S = 0.25


def screen_refresh_hz() -> float:
    screen = QGuiApplication.primaryScreen()
    rate = screen.refreshRate() if screen is not None else 0.0
    return rate if 10.0 <= rate <= 500.0 else FALLBACK_REFRESH_HZ


class FramePresenter(QObject):
    """Newest result wins; one draw per refresh period. `displayed` is emitted after each draw."""

    displayed = Signal(object)  # timing.Displayed

    def __init__(self, draw: DrawFn, parent: QObject | None = None, refresh_hz: float | None = None) -> None:
        super().__init__(parent)
        self._draw = draw
        self.period_s = 1.0 / (refresh_hz or screen_refresh_hz())
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._pending: tuple[FrameResult, Any] | None = None
        self._drawn: tuple[FrameResult, int, float] | None = None  # (result, hands, drawn at): not yet on screen
        self._next_due = 0.0
        self.skipped = 0  # offered, then replaced by a newer result before a refresh came
        #: False for a replay: its capture stamps come from another run, so no latency is measured.
        self.live = True
        self.stats = DisplayStats()

    def offer(self, result: FrameResult, prepared: Any = None) -> None:
        """Keep result for the next refresh (replacing one that waits)."""
        if self._pending is not None:
            self.skipped += 1
        self._pending = (result, prepared)
        if not self._timer.isActive():
            self._start_timer()

    def clear(self) -> None:
        """Forget what waits and the statistics (a new feed)."""
        self._timer.stop()
        self._pending = None
        self._drawn = None
        self.stats = DisplayStats()

    def _tick(self) -> None:
        if self._pending is None:
            return
        started = timing.now()
        if self._drawn is not None and started - self._drawn[2] < RENDER_WAIT_S:
            self._start_timer()  # the last draw is not on screen yet
            return
        pending, self._pending = self._pending, None
        self._next_due = started + self.period_s
        result, prepared = pending
        hands = self._draw(result, prepared)
        self._drawn = (result, hands, started)

    def rendered(self) -> None:
        """The 3D view finished a render: the frame drawn last is on screen now."""
        drawn, self._drawn = self._drawn, None
        if drawn is None:
            return  # a repaint without a new frame (a resize, a toggle)
        result, hands, _ = drawn
        captured = result.frame.captured_at if self.live else None
        shown = Displayed(result.frame.index, captured, timing.now(), hands)
        self.stats.add(shown)
        self.displayed.emit(shown)
        if self._pending is not None:  # a newer result waited for this render: draw it when due
            self._start_timer()

    def _start_timer(self) -> None:
        """Fire when the next refresh is due, or, while the last draw is not on screen, when it is
        given up on (rendered() restarts the timer as soon as the render ends)."""
        due = self._next_due if self._drawn is None else self._drawn[2] + RENDER_WAIT_S
        self._timer.start(int(max(0.0, (due - timing.now()) * 1000.0) + 0.5))
