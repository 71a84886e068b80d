"""Play a recorded session back through the same callbacks as the live pipeline.

The reader lives on the player's own thread (SessionReader is one-thread-only, and reading a
frame decodes video, which must not stall the GUI). Frames are paced by their recorded
timestamps; pause, seek and step are commands the thread picks up at once.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from handviz.pipeline.events import EventKind, PipelineEvent
from handviz.types import FrameResult

log = logging.getLogger(__name__)

#: Fall this far behind the recorded timing and playback re-anchors instead of rushing (s).
_MAX_LAG_S = 0.25
#: Longer gaps in a recording (the camera paused) are skipped rather than waited out (s).
_MAX_GAP_S = 2.0


class SessionPlayer:
    """Deliver a session's frames as FrameResults (frame.index = position in the session).

    Events: "session-opened" (data: frames, fps, faces, intrinsics, complete, warnings),
    "source-error" (cannot open), "warning" (a damaged frame), "source-ended" (reached the end;
    playback pauses), "stopped".
    """

    def __init__(self, path: str | Path, on_result: Callable[[FrameResult], None],
                 on_event: Callable[[PipelineEvent], None] | None = None, speed: float = 1.0) -> None:
        self.path = Path(path)
        self._on_result = on_result
        self._on_event = on_event or (lambda event: None)
        self.speed = speed
        self.length = 0
        self.position = -1  # last delivered frame
        self._cond = threading.Condition()
        self._playing = True
        self._request: int | None = 0  # show this frame next (seek / step / start)
        self._stop = False
        self._thread: threading.Thread | None = None

    # ---- control (any thread) -------------------------------------------------------------
    @property
    def playing(self) -> bool:
        with self._cond:
            return self._playing

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a SessionPlayer starts once")
        self._thread = threading.Thread(target=self._run, name="handviz-replay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def threads(self) -> list[threading.Thread]:
        return [self._thread] if self._thread is not None else []

    def set_paused(self, paused: bool) -> None:
        with self._cond:
            if not paused and self.length and self.position >= self.length - 1:
                self._request = 0  # play again from the start
            self._playing = not paused
            self._cond.notify_all()

    def seek(self, k: int) -> None:
        """Show frame k (clamped) next; playback continues from there if playing."""
        with self._cond:
            self._request = max(0, min(int(k), max(0, self.length - 1)))
            self._cond.notify_all()

    def step(self, delta: int) -> None:
        """Pause and move delta frames from the frame on screen."""
        with self._cond:
            self._playing = False
            base = self._request if self._request is not None else self.position
            self._request = max(0, min(base + int(delta), max(0, self.length - 1)))
            self._cond.notify_all()

    # ---- thread ---------------------------------------------------------------------------
    def _emit(self, event: PipelineEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception("event callback failed for %s", event.kind)

    def _run(self) -> None:
        from handviz.io.session import SessionDamagedError, SessionError, SessionReader

        try:
            reader = SessionReader(self.path)
        except (SessionError, OSError) as exc:
            self._emit(PipelineEvent(EventKind.SOURCE_ERROR, str(exc), "error"))
            self._emit(PipelineEvent(EventKind.STOPPED, "replay stopped"))
            return
        try:
            with self._cond:
                self.length = len(reader)
            self._emit(PipelineEvent(EventKind.SESSION_OPENED, f"{self.path.name}: {len(reader)} frames", data={
                "frames": len(reader), "fps": reader.fps, "faces": reader.faces,
                "intrinsics": reader.intrinsics, "complete": reader.complete, "warnings": list(reader.warnings)}))
            if not len(reader):
                self._emit(PipelineEvent(EventKind.SOURCE_ENDED, f"{self.path.name}: the session has no frames"))
            anchor: tuple[float, float] | None = None  # (wall time, recorded timestamp)
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._stop or self._request is not None
                                        or (self._playing and self.length > 0))
                    if self._stop:
                        break
                    if self._request is not None:
                        k, jumped, self._request = self._request, True, None
                    else:
                        k, jumped = self.position + 1, False
                    if k >= self.length:
                        self._playing = False
                        self._emit(PipelineEvent(EventKind.SOURCE_ENDED, f"{self.path.name}: end of session"))
                        continue
                    playing = self._playing
                try:
                    record = reader.frame(k)
                except SessionDamagedError as exc:
                    self._emit(PipelineEvent(EventKind.WARNING, str(exc), "warning"))
                    self.position = k
                    continue
                if playing and not jumped and anchor is not None:
                    due = anchor[0] + (record.timestamp - anchor[1]) / self.speed
                    delay = due - time.monotonic()
                    if delay > _MAX_GAP_S or delay < -_MAX_LAG_S:
                        anchor = None
                    elif delay > 0:
                        with self._cond:
                            if self._cond.wait_for(lambda: self._stop or self._request is not None, delay):
                                if self._stop:
                                    break
                                continue  # a seek came in while waiting: serve it first
                if anchor is None or jumped:
                    anchor = (time.monotonic(), record.timestamp)
                result = record.to_frame_result(reader.intrinsics)
                result.frame.index = k
                result.frame.source = self.path.name  # timings_ms stay as recorded
                self.position = k
                try:
                    self._on_result(result)
                except Exception:
                    log.exception("replay result callback failed")
        finally:
            reader.close()
            self._emit(PipelineEvent(EventKind.STOPPED, "replay stopped"))
