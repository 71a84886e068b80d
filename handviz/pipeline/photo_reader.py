"""MediaPipe on a still photo: a hand that fills the frame is read again with a border around it.

MediaPipe's palm detector expects a hand with room around it. On a photo cut close around the
hand (a dataset's 256-px crop, a close-up) it often finds nothing, or only part of the hand, and
then gets its handedness wrong (the dev set's real photos cut to 256-px crops, as the held-out
set is: 412 of 608 hands found, mean keypoint error 15.1 px, handedness right for 94.4 %).
With half the photo's longer side added around it (its edge pixels repeated) it finds 506, at
12.4 px, handedness right for 98.8 %; the border, not the larger image, does it (the same crops
scaled up 2x: 413 found, 15.3 px). A hand that does not fill the frame loses by the border (it
shrinks in MediaPipe's input): on the full 640x480 photos the border costs 9.9 -> 12.1 px. So
the border is used only where the first reading found no hand, or a hand spanning at least
FRAME_FILL_SHARE of the photo's longer side (on the full photos 15 of 608, on the crops 600).

The changed copies of the photo (test-time augmentation, handviz.pipeline.augment) are copies of
what MediaPipe read: the bordered image, where it was used.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from handviz.pipeline.augment import augment_detections
from handviz.types import Detection

#: A hand whose keypoints span this share of the photo's longer side is read again with a border.
FRAME_FILL_SHARE = 0.35
#: The border added on each side, as a share of the photo's longer side.
BORDER_SHARE = 0.5

DetectFn = Callable[[np.ndarray], list[Detection]]


def hand_share(detection: Detection, width: int, height: int) -> float:
    """The longer side of the hand's keypoint box over the photo's longer side."""
    kp = np.asarray(detection.keypoints_2d, np.float64)
    return float(np.ptp(kp, axis=0).max()) / max(width, height, 1)


def detect_with_border(detect: DetectFn, rgb: np.ndarray, border: int) -> list[Detection]:
    """detect() on rgb with `border` px of its edge pixels repeated around it; the detections in
    rgb's pixels (their crops stay as cut from the bordered image: the same pixels)."""
    if border <= 0:
        return detect(rgb)
    found = detect(_bordered(rgb, border))
    _shift(found, -border)
    return found


class PhotoReader:
    """A still-image detector (detect(rgb) -> detections) that reads a photo whose hand fills the
    frame again with a border (see the module's note), and augments the photo as it read it."""

    def __init__(self, detector: object, border_share: float = BORDER_SHARE) -> None:
        """border_share: the border for a second reading, as a share of the photo's longer side
        (0: read every photo once, as it is)."""
        self._detect: DetectFn = detector.detect  # type: ignore[attr-defined]
        self._border_share = border_share
        #: The border the last photo was read with (px; 0: none).
        self.border = 0

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Every hand in rgb (H, W, 3) uint8, keypoints in rgb's pixels."""
        h, w = rgb.shape[:2]
        found = self._detect(rgb)
        self.border = 0
        border = round(self._border_share * max(w, h))
        if border <= 0 or (found and max(hand_share(d, w, h) for d in found) < FRAME_FILL_SHARE):
            return found
        wider = detect_with_border(self._detect, rgb, border)
        if len(wider) >= max(1, len(found)):  # never fewer hands than the first reading
            self.border = border
            return wider
        return found

    def augment(self, rgb: np.ndarray, detections: list[Detection]) -> None:
        """Test-time augmentation of the photo last read (handviz.pipeline.augment). A photo read
        with a border is augmented as the bordered image: its copies are turned and shrunk with the
        hand in the middle, not with the crop's edge reflected into the hand (dev set's crops, seed
        0: per-photo Spearman 0.388 -> 0.423, mirrored crops 0.448 -> 0.474, at the same error)."""
        border = self.border
        if border <= 0:
            augment_detections(self._detect, rgb, detections)
            return
        _shift(detections, border)
        try:
            augment_detections(self._detect, _bordered(rgb, border), detections)
        finally:
            _shift(detections, -border)


def _bordered(rgb: np.ndarray, border: int) -> np.ndarray:
    return cv2.copyMakeBorder(rgb, border, border, border, border, cv2.BORDER_REPLICATE)


def _shift(detections: list[Detection], offset: float) -> None:
    """Move the detections' keypoints (and their changed copies') by offset px in x and y."""
    for det in detections:
        det.keypoints_2d = (np.asarray(det.keypoints_2d, np.float32) + np.float32(offset)).astype(np.float32)
        if det.tta_keypoints_2d is not None:
            det.tta_keypoints_2d = (np.asarray(det.tta_keypoints_2d, np.float32) + np.float32(offset)).astype(np.float32)
