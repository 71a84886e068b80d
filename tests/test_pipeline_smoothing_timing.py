"""One-Euro smoothing of the aggregate hand, stage timings and rolling statistics."""

import numpy as np
import pytest

from handviz.pipeline.smoothing import HandSmoother, OneEuroFilter
from handviz.pipeline.timing import RollingStats, stage_timings
from handviz.types import Frame, FrameResult, HandEstimate


def hand(value: float, handedness: str = "Right", n_verts: int = 5) -> HandEstimate:
    joints = np.full((21, 3), value, np.float32)
    return HandEstimate(handedness, 0.9, np.zeros((21, 2), np.float32), joints,
                        np.repeat(joints[None], 3, axis=0) + 7.0, np.full(21, 2.0, np.float32),
                        np.full((n_verts, 3), value, np.float32), joints)


def test_one_euro_passes_a_constant_and_lags_a_step_less_when_fast():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    x = np.ones((4, 3))
    assert np.allclose(f(x, 0.0), 1) and np.allclose(f(x, 0.033), 1)
    stepped = f(x * 101, 0.066)
    assert 1 < stepped[0, 0] < 101  # smoothed
    fast = OneEuroFilter(min_cutoff=1.0, beta=1.0)
    fast(x, 0.0)
    fast(x, 0.033)
    assert fast(x * 101, 0.066)[0, 0] > stepped[0, 0]  # speed raises the cutoff: less lag


def test_one_euro_restarts_on_new_shape_or_time_going_back():
    f = OneEuroFilter()
    f(np.zeros(3), 1.0)
    assert np.allclose(f(np.ones(4), 1.1), 1)  # new shape
    assert np.allclose(f(np.full(4, 9.0), 0.5), 9)  # time went back


def test_hand_smoother_filters_aggregate_only_and_resets_missing_slots():
    smooth = HandSmoother(min_cutoff=1.0, beta=0.0)
    smooth([hand(0.0)], 0.0)
    (out,) = smooth([hand(100.0)], 0.033)
    assert 0 < out.joints_3d[0, 0] < 100 and 0 < out.vertices[0, 0] < 100
    assert np.allclose(out.joint_hypotheses, 107.0)  # hypotheses stay raw
    assert smooth([], 0.066) == []
    (back,) = smooth([hand(100.0)], 0.1)
    assert np.allclose(back.joints_3d, 100.0)  # came back: no glide from the old place
    left, right = smooth([hand(0.0, "Left"), hand(50.0, "Right")], 0.133)
    assert np.allclose(left.joints_3d, 0.0) and right.joints_3d[0, 0] < 100


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
        r = FrameResult(Frame(k, np.zeros((2, 2, 3), np.uint8)), [], [hand(0.0)], np.eye(3),
                        timings_ms={"detect": 10.0 + k % 2 * 2})
        stats.add(r, at=10.0 + k * 0.05)
    snap = stats.snapshot(at=10.5)
    assert snap.fps == pytest.approx(20.0)
    assert snap.stage_ms["detect"] == pytest.approx(11.0, abs=0.2)
    assert snap.mean_spread_mm == pytest.approx(2.0) and snap.hands == 1 and snap.frames == 11
    assert stats.snapshot(at=20.0).fps == 0.0  # window emptied
