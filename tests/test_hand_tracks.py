"""Defect 2: no phantom second hand. Duplicates of one hand are suppressed (overlap plus keypoint
distance), handedness holds on video, and a masked second pass adds only hands not found before."""

from __future__ import annotations

import numpy as np
import pytest

from handviz.pipeline.hand_tracks import SHAPE_JUMP, HandednessTracker, same_hand, shape_change, suppress_duplicates
from handviz.types import Detection


def hand(x: float, y: float, size: float = 150.0, label: str = "Right", score: float = 0.98,
         mirrored: bool = False) -> Detection:
    """21 keypoints spread over a size x size box at (x, y); mirrored swaps left and right."""
    rng = np.random.default_rng(0)
    unit = rng.uniform(0, 1, (21, 2))
    unit[0], unit[1] = (0, 0), (1, 1)  # the box is exactly size x size
    if mirrored:
        unit[:, 0] = 1 - unit[:, 0]
    kp = (np.array([x, y]) + unit * size).astype(np.float32)
    return Detection(kp, np.zeros((21, 3), np.float32), label, score)


def test_a_phantom_on_top_of_a_hand_is_suppressed_and_the_better_one_kept():
    real = hand(100, 100)
    phantom = hand(110, 105, size=140, label="Left", score=0.59)
    assert same_hand(real, phantom)
    assert suppress_duplicates([phantom, real]) == [real]


def test_two_hands_side_by_side_are_both_kept():
    right, left = hand(100, 100), hand(300, 110, label="Left")
    assert not same_hand(right, left)
    assert suppress_duplicates([right, left]) == [right, left]


def test_overlapping_boxes_with_far_keypoints_are_two_hands():
    a = hand(100, 100)
    b = hand(140, 100, label="Left")  # crossed hands: the boxes overlap, the fingers point apart
    b.keypoints_2d = (b.keypoints_2d.min(axis=0) + b.keypoints_2d.max(axis=0) - b.keypoints_2d).astype(np.float32)
    assert not same_hand(a, b)


def labels_seen(tracker: HandednessTracker, labels: list[tuple[str, float]]) -> list[str]:
    """The held labels of one hand moving slowly right, given MediaPipe's (label, score) per frame."""
    return [tracker.update([hand(100 + k, 100, label=label, score=score)])[0].handedness
            for k, (label, score) in enumerate(labels)]


def test_handedness_holds_through_short_flips_and_changes_after_a_long_one():
    tracker = HandednessTracker()
    sure_right, sure_left = ("Right", 0.98), ("Left", 0.98)
    out = labels_seen(tracker, [sure_right] * 5 + [sure_left] * 4 + [sure_right] * 3 + [sure_left] * 5)
    assert out[:12] == ["Right"] * 12  # a flicker of four confident frames is ignored
    assert out[-1] == "Left"  # a lasting change is followed
    # a second hand elsewhere has a track, and a label, of its own
    both = tracker.update([hand(110, 100, label="Left"), hand(400, 100, label="Right")])
    assert [d.handedness for d in both] == ["Left", "Right"]
    assert both[0].track != both[1].track


def test_an_unsure_first_label_gives_way_to_confident_ones_at_once():
    """The dev set's videos open with MediaPipe unsure ("Left" at 0.74) on a right hand, then sure."""
    out = labels_seen(HandednessTracker(), [("Left", 0.74)] + [("Right", 0.96)] * 5)
    assert out == ["Left"] + ["Right"] * 5


def test_a_tracked_hand_keeps_its_id_and_another_hand_in_its_place_gets_a_new_one():
    tracker = HandednessTracker()
    ids = [tracker.update([hand(100 + k, 100)])[0].track for k in range(5)]
    assert len(set(ids)) == 1 and ids[0] is not None
    other = hand(105, 100, mirrored=True)  # a cut to another hand where this one was
    assert shape_change(hand(104, 100).keypoints_2d, other.keypoints_2d) > SHAPE_JUMP
    after = tracker.update([other])[0].track
    assert after != ids[0]
    assert tracker.update([hand(106, 100, mirrored=True)])[0].track == after
    # a hand gone for long, found again elsewhere, is a new hand; a fresh tracker gives new ids
    for _ in range(12):
        tracker.update([])
    assert tracker.update([hand(107, 100, mirrored=True)])[0].track != after
    assert HandednessTracker().update([hand(100, 100)])[0].track not in ids


@pytest.mark.slow
def test_no_phantom_hand_over_two_loops_of_the_demo_with_mediapipe():
    """The demo shows one detectable hand per photo; MediaPipe's tracking carried boxes over the
    photo changes and reported a second one (a "Left" on the two-thumbs photo's right hand)."""
    from handviz.pipeline.detector import HandDetector
    from handviz.pipeline.sources import DEMO_FPS, DEMO_SECONDS_PER_PHOTO, open_source

    n = 2 * 3 * int(DEMO_FPS * DEMO_SECONDS_PER_PHOTO)
    with open_source("demo", loop=True) as src, HandDetector(max_hands=2) as detector:
        counts = [len(detector.detect(src.read())) for _ in range(n)]
    assert max(counts) == 1, [k for k, c in enumerate(counts) if c > 1]
    assert sum(counts) >= 0.95 * n


@pytest.mark.slow
def test_masked_second_pass_on_the_two_thumbs_photo_adds_no_copy_of_the_found_hand():
    """What the second pass finds on the two-thumbs photo: the front (right) hand is found; with it
    masked, MediaPipe finds nothing more (the back hand stays missed, as at confidence 0.05)."""
    import cv2

    from handviz.pipeline.detector import HandDetector, masked_hands
    from handviz.pipeline.sources import demo_dir

    rgb = cv2.cvtColor(cv2.imread(str(demo_dir() / "two_thumbs_up.jpg")), cv2.COLOR_BGR2RGB)
    with HandDetector(max_hands=2, static=True, second_pass=True) as detector:
        found = detector.detect(rgb)
    assert [d.handedness for d in found] == ["Right"]
    masked = masked_hands(rgb, found)
    x0, y0 = found[0].keypoints_2d.min(axis=0).astype(int) + 2
    assert (masked[y0, x0] == rgb.reshape(-1, 3).mean(axis=0).astype(np.uint8)).all()


def test_on_video_a_one_hand_graph_follows_one_hand_and_the_full_graph_searches_every_few_frames():
    """MediaPipe's palm detector runs on every frame while it tracks fewer hands than allowed; the
    detector keeps that search to every `search_every` frames, keeps the followed hand's landmarks
    from the one-hand graph on a search frame (no shake), and lets the full graph track once it
    has found every hand."""
    from handviz.pipeline.detector import HandDetector

    followed, other = hand(100, 100), hand(400, 100, label="Left")
    with HandDetector(max_hands=2, search_every=4) as detector:
        calls: list[tuple[int, str]] = []
        frame = [0]
        second_hand_in_view = range(9, 15)

        def run(graph: object, rgb: np.ndarray) -> list[Detection]:
            full = graph is detector._hands
            calls.append((frame[0], "full" if full else "one"))
            if not full:
                return [followed]
            seen = [hand(102, 101)]  # the full graph's own landmarks of the followed hand differ a little
            return seen + [other] if frame[0] in second_hand_in_view else seen

        detector._run = run  # type: ignore[method-assign]
        rgb = np.zeros((480, 640, 3), np.uint8)
        results = []
        for frame[0] in range(18):
            results.append(detector.detect(rgb))
    by_frame = {f: [g for k, g in calls if k == f] for f in range(18)}
    # searches on frames 0, 4, 8 (both graphs); the one on frame 12 finds the second hand, and the
    # full graph tracks both until one leaves (frame 15); then the one-hand graph follows again
    for f in range(12):
        assert by_frame[f] == (["one", "full"] if f % 4 == 0 else ["one"]), (f, by_frame[f])
    assert [by_frame[f] for f in range(12, 18)] == [["one", "full"]] + [["full"]] * 3 + [["one"]] * 2
    assert [len(r) for r in results] == [1] * 12 + [2] * 3 + [1] * 3
    # the followed hand keeps the one-hand graph's landmarks on the search frames that find nothing new
    assert all(np.array_equal(results[f][0].keypoints_2d, followed.keypoints_2d) for f in (0, 4, 8))


def test_photos_and_one_hand_detectors_use_a_single_graph():
    from handviz.pipeline.detector import HandDetector

    for kwargs in (dict(max_hands=2, static=True), dict(max_hands=1), dict(max_hands=2, search_every=1)):
        with HandDetector(**kwargs) as detector:
            assert detector._one_hand is None, kwargs
