"""What the window does for each feed event: one handler per EventKind, found in a table.

The handlers change widgets only (GUI thread); they are methods of a small class so the table is
checked against the Enum once, and the main window stays a layout plus the feed's lifecycle.
What they use of the window is the `FeedView` protocol here, so this module needs nothing from
main_window (which imports it) and the two do not import each other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from handviz.app import gui_gc
from handviz.app.actions import set_checked_quietly
from handviz.pipeline.events import EventKind, PipelineEvent

if TYPE_CHECKING:
    import numpy as np
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QStatusBar

    from handviz.app.banner import Banner
    from handviz.app.camera_menu import CameraMenu
    from handviz.app.replay_bar import ReplayBar
    from handviz.app.status_panel import StatusPanel
    from handviz.app.video_view import VideoView
    from handviz.pipeline.controller import SessionController

log = logging.getLogger(__name__)


class FeedView(Protocol):
    """The parts of the main window the event handlers change (MainWindow has them all)."""

    status: StatusPanel
    banner: Banner
    camera_menu: CameraMenu
    controller: SessionController
    video: VideoView
    replay_bar: ReplayBar
    actions_by_id: dict[str, QAction]
    fallback_to_demo: bool

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 (Qt name)

    def set_faces(self, faces: np.ndarray | None) -> None: ...

    def open_source(self, spec: str | int | None, fallback_to_demo: bool = False) -> None: ...


class FeedEvents:
    """`handle(event)` runs the handler of event.kind (kinds without one are only logged)."""

    def __init__(self, window: FeedView) -> None:
        self.w = window
        self.table: dict[EventKind, Callable[[PipelineEvent], None]] = {
            EventKind.BACKEND_READY: self.backend_ready,
            EventKind.BACKEND_FAILED: self.backend_failed,
            EventKind.SOURCE_OPENED: self.source_opened,
            EventKind.SOURCE_ERROR: self.source_error,
            EventKind.SESSION_OPENED: self.session_opened,
            EventKind.SOURCE_ENDED: self.source_ended,
            EventKind.WARNING: self.warning,
            EventKind.STAGE_ERROR: self.warning,
            EventKind.RECORDING_STARTED: self.recording_started,
            EventKind.RECORDING_STOPPED: self.recording_stopped,
        }

    def handle(self, event: PipelineEvent) -> None:
        log.info("feed event %s: %s", event.kind.value, event.message)
        handler = self.table.get(event.kind)
        if handler is not None:
            handler(event)

    def backend_ready(self, event: PipelineEvent) -> None:
        gui_gc.freeze_long_lived()  # the model is loaded: full collections skip it from now on
        self.w.set_faces(event.data.get("faces"))
        name, device = event.data["name"], event.data["device"]
        self.w.status.set_backend(name if device == "-" else f"{name} · {device}")

    def backend_failed(self, event: PipelineEvent) -> None:
        self.w.banner.show_message(event.message, "warning")

    def source_opened(self, event: PipelineEvent) -> None:
        self.w.statusBar().showMessage(event.message, 3000)
        self.w.camera_menu.probe_once()

    def source_error(self, event: PipelineEvent) -> None:
        w = self.w
        spec = w.controller.feed_spec
        if event.data.get("opening") and w.fallback_to_demo and not w.controller.is_replay:
            if spec is None or spec.strip().isdigit():
                text = f"No camera found ({event.message}). Showing the bundled demo instead."
            else:
                text = f"{event.message}. Showing the bundled demo instead."
            w.banner.show_message(text, "warning")
            w.open_source("demo")
            return
        w.banner.show_message(event.message, "error")
        w.video.set_message(event.message)
        w.status.show_error(event.message, "replay failed" if w.controller.is_replay else "no source")

    def session_opened(self, event: PipelineEvent) -> None:
        gui_gc.freeze_long_lived()  # a replay loads no model, but the modules and the window stay
        w = self.w
        w.set_faces(event.data.get("faces"))
        w.replay_bar.set_length(int(event.data["frames"]))
        w.status.set_backend(f"replay · {event.data['fps']:.0f} fps recorded")
        notes = list(event.data.get("warnings") or [])
        if not event.data.get("complete", True):
            notes.append("this session was cut short (crash or full disk); all committed frames are shown")
        if notes:
            w.banner.show_message("; ".join(notes), "warning")

    def source_ended(self, event: PipelineEvent) -> None:
        w = self.w
        w.statusBar().showMessage(event.message, 5000)
        if w.controller.is_replay:
            w.replay_bar.set_playing(False)
            set_checked_quietly(w.actions_by_id["pause"], True)

    def warning(self, event: PipelineEvent) -> None:
        self.w.statusBar().showMessage(event.message, 5000)
        if event.level == "error":
            self.w.banner.show_message(event.message, "error")

    def recording_started(self, event: PipelineEvent) -> None:
        self.w.statusBar().showMessage(event.message, 5000)

    def recording_stopped(self, event: PipelineEvent) -> None:
        """Only failures arrive here (a normal stop is reported by the Record toggle)."""
        if event.level == "error":
            set_checked_quietly(self.w.actions_by_id["record"], False)
            self.w.controller.stop_recording()
            self.w.banner.show_message(f"Recording stopped: {event.message}", "error")
