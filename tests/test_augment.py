"""Test-time augmentation (handviz.pipeline.augment): which changed copies count as the same hand."""

from __future__ import annotations

import numpy as np

from handviz.pipeline.augment import AUGMENTATIONS, _changed_copy, augment_detections
from handviz.types import Detection

RGB = np.zeros((200, 300, 3), np.uint8)


def _hand(kp: np.ndarray, handedness: str) -> Detection:
    return Detection(keypoints_2d=kp.astype(np.float32), world_3d=np.zeros((21, 3), np.float32),
                     handedness=handedness, score=0.9)


def _seen_on_copy(kp: np.ndarray, change: tuple[float, float] | None) -> np.ndarray:
    """Where a hand at kp in the photo lies in the changed copy's pixels."""
    image, back = _changed_copy(RGB, change)
    if back is None:
        out = kp.copy()
        out[:, 0] = RGB.shape[1] - out[:, 0]
        return out
    return (np.c_[kp, np.ones(len(kp))] @ np.linalg.inv(back).T)[:, :2]


def test_a_copy_that_misses_the_hand_or_calls_it_the_other_hand_is_not_found_again() -> None:
    kp = np.random.default_rng(0).uniform(100, 160, (21, 2))
    answers = iter([
        [_hand(_seen_on_copy(kp, AUGMENTATIONS[0]), "Right")],  # the same hand
        [_hand(_seen_on_copy(kp, AUGMENTATIONS[1]), "Left")],  # the same place, the other hand
        [],  # no hand at all
        [_hand(_seen_on_copy(kp, AUGMENTATIONS[3]), "Left")],  # mirrored: a left hand there is this right one
    ])
    assert AUGMENTATIONS[3] is None
    det = _hand(kp, "Right")
    augment_detections(lambda image: next(answers), RGB, [det])
    assert det.tta_keypoints_2d is not None and det.tta_keypoints_2d.shape == (2, 21, 2)
    np.testing.assert_allclose(det.tta_keypoints_2d, np.repeat(kp[None], 2, axis=0), atol=1e-3)
    assert det.tta_found_share == 2 / len(AUGMENTATIONS)
    np.testing.assert_allclose(det.keypoints_2d, kp, atol=1e-3)


def test_a_hand_found_on_no_copy_has_none_found_and_keeps_its_keypoints() -> None:
    kp = np.random.default_rng(1).uniform(100, 160, (21, 2))
    det = _hand(kp, "Left")
    augment_detections(lambda image: [], RGB, [det])
    assert det.tta_keypoints_2d is not None and det.tta_keypoints_2d.shape == (0, 21, 2)
    assert det.tta_found_share == 0.0
    np.testing.assert_allclose(det.keypoints_2d, kp, atol=1e-6)


def test_a_hand_most_copies_call_the_other_hand_is_relabelled() -> None:
    """MediaPipe's majority over its readings: three of the four copies see a left hand where the
    photo's reading said right; the hand becomes a left one, found again on those three copies."""
    kp = np.random.default_rng(2).uniform(100, 160, (21, 2))
    answers = iter([
        [_hand(_seen_on_copy(kp, AUGMENTATIONS[0]), "Left")],
        [_hand(_seen_on_copy(kp, AUGMENTATIONS[1]), "Left")],
        [_hand(_seen_on_copy(kp, AUGMENTATIONS[2]), "Right")],
        [_hand(_seen_on_copy(kp, AUGMENTATIONS[3]), "Right")],  # mirrored: a left hand in the photo
    ])
    det = _hand(kp, "Right")
    augment_detections(lambda image: next(answers), RGB, [det])
    assert det.handedness == "Left"
    assert det.tta_keypoints_2d is not None and len(det.tta_keypoints_2d) == 3
    assert det.tta_found_share == 3 / 4


def test_two_copies_against_do_not_relabel_and_a_far_hand_casts_no_vote() -> None:
    kp = np.random.default_rng(3).uniform(100, 160, (21, 2))
    far = kp + 80.0  # another hand, away from this one
    answers = iter([
        [_hand(_seen_on_copy(kp, AUGMENTATIONS[0]), "Left")],
        [_hand(_seen_on_copy(kp, AUGMENTATIONS[1]), "Left")],
        [_hand(_seen_on_copy(far, AUGMENTATIONS[2]), "Left")],
        [_hand(_seen_on_copy(kp, AUGMENTATIONS[3]), "Left")],  # mirrored: the right hand again
    ])
    det = _hand(kp, "Right")
    augment_detections(lambda image: next(answers), RGB, [det])
    assert det.handedness == "Right"
    assert det.tta_found_share == 1 / 4
