"""Worker threads -> GUI thread: results and events cross here, by queued Qt signals.

A FrameResult holds numpy arrays and plain values only, so it crosses threads safely; VTK and
widgets are touched only by the slots on the GUI thread. At most one result is in flight: while
the GUI is still busy, a newer result replaces the waiting one (newest wins, drops counted).
`prepare`, when set, runs on the worker thread for each result the GUI will get (the video
overlay is painted there, off the GUI thread's frame budget); its value travels with the result.

Each feed gets its own generation number; signals carry it, so the window can ignore whatever an
old feed had already sent when the user switched sources.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal

from handviz.pipeline.events import PipelineEvent
from handviz.types import FrameResult


class ResultBridge(QObject):
    """Connect `result_ready(gen, result, prepared)` and `event(gen, event)` in the GUI thread.

    The slot connected to result_ready must call `done()` once it has taken the result.
    """

    result_ready = Signal(int, object, object)  # generation, FrameResult, prepare(result) or None
    event = Signal(int, object)  # generation, PipelineEvent
    _resend = Signal(int, object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._in_flight = False
        self._pending: tuple[int, FrameResult, Any] | None = None
        self._closed = False
        self.generation = 0
        self.gui_dropped = 0
        self.prepare: Callable[[FrameResult], Any] | None = None
        self._resend.connect(self.result_ready, Qt.ConnectionType.QueuedConnection)

    def new_feed(self) -> tuple[Callable[[FrameResult], None], Callable[[PipelineEvent], None]]:
        """Start a new generation; returns (on_result, on_event) callbacks for the new feed."""
        with self._lock:
            self.generation += 1
            self._pending = None
            self._in_flight = False
            gen = self.generation
        return (lambda result: self._deliver(gen, result)), (lambda event: self._deliver_event(gen, event))

    def _deliver(self, gen: int, result: FrameResult) -> None:
        """Worker-thread side: hand a result to the GUI (or park it while the GUI is busy)."""
        with self._lock:
            if self._closed or gen != self.generation:
                return
            prepare = self.prepare
        prepared = prepare(result) if prepare is not None else None
        with self._lock:
            if self._in_flight:
                if self._pending is not None:
                    self.gui_dropped += 1
                self._pending = (gen, result, prepared)
                return
            self._in_flight = True
        self.result_ready.emit(gen, result, prepared)

    def done(self) -> None:
        """GUI side: the last result is taken; send the one that waited, if any."""
        with self._lock:
            pending, self._pending = self._pending, None
            self._in_flight = pending is not None and not self._closed
        if self._in_flight and pending is not None:
            self._resend.emit(*pending)

    def _deliver_event(self, gen: int, event: PipelineEvent) -> None:
        with self._lock:
            if self._closed or gen != self.generation:
                return
        self.event.emit(gen, event)

    def close(self) -> None:
        """Stop passing anything on (the window is closing)."""
        with self._lock:
            self._closed = True
            self._pending = None
