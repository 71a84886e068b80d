"""What feeds (a live pipeline, a session replay) and the session controller tell their owner.

One Enum names every kind, so a subscriber dispatches on a closed set (a table of handlers),
never on free strings; `PipelineEvent("source-ended", ...)` still works and is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class EventKind(str, Enum):
    """Every event a feed or the controller emits (values are the historic strings)."""

    SOURCE_OPENED = "source-opened"  # data: name, live, fps
    SOURCE_ENDED = "source-ended"
    SOURCE_ERROR = "source-error"  # data: opening (bool) when the source never opened
    SESSION_OPENED = "session-opened"  # data: frames, fps, faces, intrinsics, complete, warnings
    BACKEND_READY = "backend-ready"  # data: name, device, faces
    BACKEND_FAILED = "backend-failed"
    STAGE_ERROR = "stage-error"
    WARNING = "warning"
    RECORDING_STARTED = "recording-started"  # data: path
    RECORDING_STOPPED = "recording-stopped"  # data: path, frames_written, dropped; level error when it failed
    STOPPED = "stopped"


@dataclass
class PipelineEvent:
    """Something the user should hear about. level: "info" | "warning" | "error".
    data: numpy/plain values only (it crosses threads)."""

    kind: EventKind
    message: str
    level: str = "info"
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kind = EventKind(self.kind)  # a misspelt kind fails here, not silently in a view
