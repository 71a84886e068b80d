"""The one schema of a session's descriptive metadata, whoever records it (the app, `handviz
record`, the soak): which source, which model (a fingerprint of its weights) and which options.
The writer adds its own facts (schema and app versions, fps, video file, frame counts) and
"intrinsics": the session controller opens the writer on the first recorded frame and passes that
frame's K, so it is the K the model actually used (never a guess)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Who made a session.
RECORDERS = ("app", "record", "soak")


@dataclass(frozen=True)
class SessionMeta:
    """What every session says about how it was made (stored as meta keys of the same names)."""

    source: str  # what was played: camera index, file, folder or "demo"
    recorded_by: str  # one of RECORDERS
    backend: str  # "cascade" or "MediaPipe 3D only"
    device: str  # "cpu", "cuda" or "-"
    model_fingerprint: str | None  # weights_fingerprint() of the cascade's weights; None: no model
    n_hypotheses: int  # joint hypotheses per hand asked of the model
    ddim_steps: int
    #: Hands followed over time (handviz.temporal); older sessions say "smoothing" instead (a
    #: One-Euro filter on the mesh, since removed).
    temporal: bool

    def __post_init__(self) -> None:
        if self.recorded_by not in RECORDERS:
            raise ValueError(f"recorded_by must be one of {', '.join(RECORDERS)}, got {self.recorded_by!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def weights_fingerprint(folder: str | Path) -> str:
    """'weights-<12 hex>' from the names and bytes of the folder's .safetensors files: which model
    made a session, even for weights that carry no version of their own."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.safetensors")):
        digest.update(path.name.encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return f"weights-{digest.hexdigest()[:12]}"
