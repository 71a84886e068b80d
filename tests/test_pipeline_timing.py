"""Stage timings and rolling statistics."""

import numpy as np
import pytest

from handviz.pipeline.timing import RollingStats, stage_timings
from handviz.types import Frame, FrameResult, HandEstimate


def hand(value: float, wobble_mm: float = 0.0) -> HandEstimate:
    """A hand whose hypotheses each move one joint (a different one) by wobble_mm."""
    joints = np.full((21, 3), value, np.float32) + np.arange(63, dtype=np.float32).reshape(21, 3)
    hyps = np.repeat(joints[None], 21, axis=0)
    hyps[np.arange(21), np.arange(21), 0] += wobble_mm
    return HandEstimate("Right", 0.9, np.zeros((21, 2), np.float32), joints, hyps,
                        np.full(21, 2.0, np.float32), np.full((5, 3), value, np.float32), joints)


def test_stage_timings_from_stamps():
    stamps = {"captured": 1.0, "detect_start": 1.002, "detect_end": 1.022, "infer_start": 1.023,
              "infer_end": 1.028, "delivered": 1.030}
    t = stage_timings(stamps)
    assert t["detect"] == pytest.approx(20.0) and t["infer"] == pytest.approx(5.0)
    assert t["wait"] == pytest.approx(2.0) and t["latency"] == pytest.approx(30.0)
    assert "infer" not in stage_timings({"captured": 1.0})


def test_rolling_stats_fps_means_and_window():
    stats = RollingStats(window_s=1.0)
    for k in range(11):
        r = FrameResult(Frame(k, np.zeros((2, 2, 3), np.uint8)), [], [hand(0.0, wobble_mm=1.0 + k % 2)], np.eye(3),
                        timings_ms={"detect": 10.0 + k % 2 * 2})
        stats.add(r, at=10.0 + k * 0.05)
    snap = stats.snapshot(at=10.5)
    assert snap.fps == pytest.approx(20.0)
    assert snap.stage_ms["detect"] == pytest.approx(11.0, abs=0.2)
    # the cloud's mean 90 % radius (the colour scale's unit), averaged over the window's 11 frames
    radii = [hand(0.0, wobble_mm=1.0 + k % 2).joint_radius_90.mean() for k in range(11)]
    assert snap.mean_radius_90_mm == pytest.approx(np.mean(radii)) and 0 < snap.mean_radius_90_mm < 2
    assert snap.hands == 1 and snap.frames == 11
    assert stats.snapshot(at=20.0).fps == 0.0  # window emptied
