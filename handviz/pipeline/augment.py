"""Test-time augmentation for photos: MediaPipe on slightly changed copies says where it is unsure.

The photo is rotated by +-8 degrees, shrunk to 0.85 about its centre and mirrored; MediaPipe runs
on each copy and what it finds is mapped back into the photo. How far its keypoints move is
evidence that the hand is hard to read (issue 20, dev set: per-photo Spearman with the error
0.42), which the cascade's posterior turns into the cloud's width (handviz.posterior.JointDoubt).
Where most copies call the hand the other hand, it is relabelled, and a hand MediaPipe loses on
some copies is doubted more (`Detection.tta_found_share`). It costs four more MediaPipe runs per
photo, so `predict` and `eval --real` use it on photos and the live app does not.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from handviz.types import Detection

#: (rotation in degrees, scale) about the image centre; None is the mirror image.
AUGMENTATIONS: tuple[tuple[float, float] | None, ...] = ((8.0, 1.0), (-8.0, 1.0), (0.0, 0.85), None)
#: A changed copy's hand is the same hand when its keypoints lie within this share of the
#: hand's 2D size from the original's, on average.
MATCH_SHARE = 0.3
#: A hand is relabelled when at least this many of the changed copies call it the other hand.
RELABEL_VOTES = 3
_SWAP = {"Left": "Right", "Right": "Left"}


def _changed_copy(rgb: np.ndarray, change: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The changed image and the 3x3 map from its pixels back to the photo's (None: mirrored)."""
    h, w = rgb.shape[:2]
    if change is None:
        return np.ascontiguousarray(rgb[:, ::-1]), None
    forward = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), change[0], change[1]), [0.0, 0.0, 1.0]])
    return cv2.warpAffine(rgb, forward[:2], (w, h), borderMode=cv2.BORDER_REFLECT), np.linalg.inv(forward)


def _mapped_back(det: Detection, back: np.ndarray | None, width: int) -> tuple[np.ndarray, str]:
    """A changed copy's detection in the photo's terms: keypoints (21, 2) and hand."""
    kp = np.asarray(det.keypoints_2d, np.float64).copy()
    if back is None:  # mirrored: x flips, and so does the hand
        kp[:, 0] = width - kp[:, 0]
        return kp, _SWAP.get(det.handedness, det.handedness)
    return (np.c_[kp, np.ones(len(kp))] @ back.T)[:, :2], det.handedness


def _nearest(kp0: np.ndarray, mapped: list[tuple[np.ndarray, str]], hand: str | None) -> tuple[np.ndarray, str] | None:
    """The copy's hand nearest kp0 (of the given handedness, or any when None), if it lies within
    MATCH_SHARE of the hand's 2D size."""
    size = float(np.linalg.norm(np.ptp(kp0, axis=0)))
    near = [(float(np.linalg.norm(kp - kp0, axis=1).mean()), kp, h) for kp, h in mapped if hand is None or h == hand]
    if not near:
        return None
    gap, kp, h = min(near, key=lambda t: t[0])
    return (kp, h) if gap <= MATCH_SHARE * size else None


def augment_detections(detect: Callable[[np.ndarray], list[Detection]], rgb: np.ndarray,
                       detections: list[Detection]) -> None:
    """Fill each detection's tta_keypoints_2d (M, 21, 2) from `detect` (a static-image MediaPipe)
    run on the changed copies of rgb; M counts the copies where that hand was found again, with
    the same handedness (M may be 0), and tta_found_share is M over the copies read. Its
    keypoints_2d become the mean over the photo and those copies (PA-MPJPE on the dev set's real
    photos, 5 seeds: 10.58 -> 10.49 mm).

    A hand that at least RELABEL_VOTES copies, each at the hand's place, call the other hand is
    relabelled first: MediaPipe's majority over its five readings (dev set, seed 0: handedness
    wrong on 22 -> 18 of 732 full frames, 52 -> 50 of 758 mirrored crops; PA-MPJPE 11.08 ->
    11.00 mm and 11.67 -> 11.63 mm; no hand it had right was relabelled on the full frames)."""
    if not detections:
        return
    width = rgb.shape[1]
    readings = []
    for change in AUGMENTATIONS:
        image, back = _changed_copy(rgb, change)
        readings.append([_mapped_back(d, back, width) for d in detect(image)])
    for det in detections:
        kp0 = np.asarray(det.keypoints_2d, np.float64)
        other = _SWAP.get(det.handedness, det.handedness)
        votes = [_nearest(kp0, mapped, None) for mapped in readings]
        if sum(v is not None and v[1] == other for v in votes) >= RELABEL_VOTES:
            det.handedness = other
        copies = [m[0] for m in (_nearest(kp0, mapped, det.handedness) for mapped in readings) if m is not None]
        det.tta_keypoints_2d = np.array(copies, np.float32).reshape(-1, 21, 2)
        det.tta_found_share = len(copies) / len(AUGMENTATIONS)
        if copies:  # averaged over the copies, MediaPipe's keypoints err less (dev set: 10.58 -> 10.49 mm)
            det.keypoints_2d = np.concatenate([np.asarray(det.keypoints_2d, np.float32)[None],
                                               det.tta_keypoints_2d]).mean(axis=0)
