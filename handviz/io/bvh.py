"""Hand motion as BVH (Biovision Hierarchy), the skeleton-motion format mocap tools read.

The hierarchy is the open hand's skeleton: the wrist is the ROOT (position + rotation channels,
OFFSET zero so its position channels are absolute), every bone with a child is a JOINT with
three rotation channels, and the five fingertips are End Sites. Rotations are each bone's
rotation in its parent's frame as Z, X, Y Euler angles in degrees (R = Rz Rx Ry, the order the
CHANNELS line names). BVH has one frame time, so the recorded keys (irregular capture stamps)
are resampled onto a uniform grid at the median recorded interval: slerp for rotations, linear
for the root, which keeps the motion's real speed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from handviz.hand.motion import HandMotion

DEFAULT_FRAME_TIME_S = 1.0 / 30.0
ROTATION_CHANNELS = "Zrotation Xrotation Yrotation"
EULER_ORDER = "ZXY"  # scipy: upper case = intrinsic, R = Rz @ Rx @ Ry


def uniform_grid(times: np.ndarray) -> tuple[np.ndarray, float]:
    """Key times resampled: (grid (N,), frame time s) covering times[0]..times[-1]."""
    times = np.asarray(times, np.float64)
    if len(times) < 2:
        return times.copy(), DEFAULT_FRAME_TIME_S
    step = float(np.median(np.diff(times)))
    count = int(round((times[-1] - times[0]) / step)) + 1
    return np.minimum(times[0] + step * np.arange(count), times[-1]), step


def resample(motion: HandMotion, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(local rotations (N, 21, 3, 3), root translation (N, 3)) at the grid's times."""
    if len(motion.times) < 2:
        return motion.local_rotations, motion.root_translation
    rotations = np.stack([Slerp(motion.times, Rotation.from_matrix(motion.local_rotations[:, j]))(grid).as_matrix()
                          for j in range(len(motion.parents))], axis=1)
    root = np.stack([np.interp(grid, motion.times, motion.root_translation[:, k]) for k in range(3)], axis=1)
    return rotations, root


def _children(parents: tuple[int, ...], j: int) -> list[int]:
    return [c for c, p in enumerate(parents) if p == j]


def channel_joints(parents: tuple[int, ...]) -> list[int]:
    """Joints with rotation channels (all but the tips), in the file's depth-first order."""
    order: list[int] = []

    def visit(j: int) -> None:
        if _children(parents, j):
            order.append(j)
            for c in _children(parents, j):
                visit(c)

    visit(parents.index(-1))
    return order


def _hierarchy(motion: HandMotion) -> list[str]:
    offsets, parents, names = motion.bone_offsets, motion.parents, motion.names
    lines: list[str] = []

    def fmt(v: np.ndarray) -> str:
        return " ".join(f"{x:.6f}" for x in v)

    def visit(j: int, depth: int) -> None:
        pad = "\t" * depth
        root = parents[j] < 0
        lines.append(f"{pad}{'ROOT' if root else 'JOINT'} {names[j]}")
        lines.append(pad + "{")
        lines.append(f"{pad}\tOFFSET {fmt(np.zeros(3) if root else offsets[j])}")
        channels = f"6 Xposition Yposition Zposition {ROTATION_CHANNELS}" if root else f"3 {ROTATION_CHANNELS}"
        lines.append(f"{pad}\tCHANNELS {channels}")
        for c in _children(parents, j):
            if _children(parents, c):
                visit(c, depth + 1)
            else:
                lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET {fmt(offsets[c])}", f"{pad}\t}}"])
        lines.append(pad + "}")

    visit(parents.index(-1), 0)
    return lines


def write_bvh(motion: HandMotion, path: str | Path) -> Path:
    """Write one hand track as BVH at `path`; returns it."""
    grid, frame_time = uniform_grid(motion.times)
    rotations, root = resample(motion, grid)
    joints = channel_joints(motion.parents)
    euler = Rotation.from_matrix(rotations[:, joints].reshape(-1, 3, 3)).as_euler(EULER_ORDER, degrees=True)
    values = np.concatenate([root, euler.reshape(len(grid), -1)], axis=1)
    lines = ["HIERARCHY", *_hierarchy(motion), "MOTION", f"Frames: {len(grid)}",
             f"Frame Time: {frame_time:.6f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
