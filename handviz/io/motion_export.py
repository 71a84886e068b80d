"""A whole session as one animated file: `handviz export SESSION --all --animated` (GLB) or BVH.

Each side (right, left) that appears is one track: the frames where that hand was seen (the most
confident one when two of a side were), keyed at the session's capture stamps (seconds from the
first recorded frame). The track's joints are fitted with the open hand (handviz.hand.motion)
and written as a skinned glTF (handviz.io.gltf_motion) or BVH motion (handviz.io.bvh).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from handviz.io.export import UNIT_SCALE, FrameOf, Units, hand_colour
from handviz.types import HandJoint

if TYPE_CHECKING:
    from handviz.hand.motion import HandMotion
    from handviz.io.session import SessionReader

SIDES = ("Right", "Left")


@dataclass
class Track:
    """One side's keys as recorded: positions in the session, times (s), joints (T, 21, 3) mm."""

    handedness: str
    positions: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    joints: list[np.ndarray] = field(default_factory=list)


@dataclass
class TrackSummary:
    handedness: str
    keys: int
    duration_s: float
    fit_error_mm: float  # mean over keys of the mean joint distance


@dataclass
class MotionExport:
    """What export_motion wrote: the files, a line per track, and the fitted tracks themselves."""

    files: list[Path]
    tracks: list[TrackSummary]
    motions: list[HandMotion]
    frames_unreadable: list[int]


def collect_tracks(reader: SessionReader, frame_of: FrameOf = "camera") -> tuple[list[Track], list[int]]:
    """Per side, the frames that show it (times strictly increasing); and unreadable positions."""
    from handviz.io.session import SessionDamagedError

    tracks = {side: Track(side) for side in SIDES}
    unreadable: list[int] = []
    for k in range(len(reader)):
        try:
            record = reader.frame(k)
        except SessionDamagedError:
            unreadable.append(k)
            continue
        for side, track in tracks.items():
            hands = [h for h in record.hands if h.handedness == side]
            if not hands:
                continue
            if track.times and record.timestamp <= track.times[-1]:
                continue  # a repeated stamp cannot be a key of its own
            joints = np.asarray(max(hands, key=lambda h: h.score).joints_3d, np.float64)
            if not np.isfinite(joints).all():
                continue
            if frame_of == "hand":
                joints = joints - joints[HandJoint.WRIST]
            track.positions.append(k)
            track.times.append(float(record.timestamp))
            track.joints.append(joints)
    return [t for t in tracks.values() if t.positions], unreadable


def export_motion(reader: SessionReader, out: str | Path, *, fmt: str = "glb", units: Units = "m",
                  frame_of: FrameOf = "camera") -> MotionExport:
    """Fit and write every track of the session to `out` (.glb: one file; .bvh: one per side,
    `NAME_right.bvh` / `NAME_left.bvh` when both hands appear). ValueError when no frame has a hand."""
    from handviz.hand.motion import fit_motion

    if fmt not in ("glb", "bvh"):
        raise ValueError(f"animated export writes glb or bvh, not {fmt!r}")
    tracks, unreadable = collect_tracks(reader, frame_of)
    if not tracks:
        raise ValueError("no frame has a hand to animate")
    start = min(t.times[0] for t in tracks)
    motions = [fit_motion(np.stack(t.joints), np.asarray(t.times) - start, t.handedness, UNIT_SCALE[units],
                          fixed_bones=fmt == "bvh") for t in tracks]
    out = Path(out)
    if fmt == "glb":
        from handviz.io.gltf_motion import write_motion_glb

        colours = [[c / 255.0 for c in hand_colour(m.handedness)] for m in motions]
        files = [write_motion_glb(motions, out, colours)]
    else:
        from handviz.io.bvh import write_bvh

        if len(motions) == 1:
            files = [write_bvh(motions[0], out)]
        else:
            files = [write_bvh(m, out.with_name(f"{out.stem}_{m.handedness.lower()}{out.suffix}"))
                     for m in motions]
    summaries = [TrackSummary(m.handedness, len(m.times), float(m.times[-1] - m.times[0]),
                              float(m.fit_error_mm.mean())) for m in motions]
    return MotionExport(files, summaries, motions, unreadable)
