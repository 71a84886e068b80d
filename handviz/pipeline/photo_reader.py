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
FRAME_FILL_SHARE of the photo's longer side (on the full photos 15 of 608 besides the 110 where
it found none; on the crops 600).

The changed copies of the photo (test-time augmentation, handviz.pipeline.augment) are copies of
what MediaPipe read: the bordered image, where it was used. A large photo is shrunk to
CANVAS_PHOTO_SIDE before its border is added (MediaPipe reads a hand at 224 px; a 4032-px phone
photo bordered in full took 2.6 s with its copies and the process peaked at 0.75 GB; shrunk,
0.4 s and 0.32 GB).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from handviz.pipeline.augment import augment_detections
from handviz.types import Detection

#: A hand whose keypoints span this share of the photo's longer side is read again with a border.
FRAME_FILL_SHARE = 0.35
#: The border added on each side, as a share of the photo's longer side.
BORDER_SHARE = 0.5
#: A photo whose longer side is larger is shrunk to this before the border is added (px).
CANVAS_PHOTO_SIDE = 1280

DetectFn = Callable[[np.ndarray], list[Detection]]


def hand_share(detection: Detection, width: int, height: int) -> float:
    """The longer side of the hand's keypoint box over the photo's longer side."""
    kp = np.asarray(detection.keypoints_2d, np.float64)
    return float(np.ptp(kp, axis=0).max()) / max(width, height, 1)


@dataclass(frozen=True)
class Canvas:
    """The photo as MediaPipe reads it the second time: shrunk by `scale` (<= 1), then `border` px
    of its edge pixels repeated around it. A photo pixel p is canvas pixel p * scale + border."""

    scale: float
    border: int

    @classmethod
    def for_photo(cls, width: int, height: int, border_share: float = BORDER_SHARE) -> Canvas:
        scale = min(1.0, CANVAS_PHOTO_SIDE / max(width, height, 1))
        return cls(scale, round(border_share * scale * max(width, height)))

    def image(self, rgb: np.ndarray) -> np.ndarray:
        if self.scale < 1.0:
            h, w = rgb.shape[:2]
            rgb = cv2.resize(rgb, (max(1, round(w * self.scale)), max(1, round(h * self.scale))),
                             interpolation=cv2.INTER_AREA)
        b = self.border
        return cv2.copyMakeBorder(rgb, b, b, b, b, cv2.BORDER_REPLICATE)

    def to_canvas(self, detections: list[Detection]) -> None:
        _map(detections, self.scale, float(self.border))

    def to_photo(self, detections: list[Detection]) -> None:
        _map(detections, 1.0 / self.scale, -self.border / self.scale)


def detect_on_canvas(detect: DetectFn, rgb: np.ndarray, canvas: Canvas) -> list[Detection]:
    """detect() on the canvas made from rgb; the detections in rgb's pixels (their keypoints' z
    too; their crops stay as cut from the canvas)."""
    found = detect(canvas.image(rgb))
    canvas.to_photo(found)
    for det in found:
        if det.keypoints_z is not None:
            det.keypoints_z = (np.asarray(det.keypoints_z, np.float32) / np.float32(canvas.scale)).astype(np.float32)
    return found


class PhotoReader:
    """A still-image detector (detect(rgb) -> detections) that reads a photo whose hand fills the
    frame again on a bordered canvas (see the module's note), and augments the photo as it read it."""

    def __init__(self, detector: object, border_share: float = BORDER_SHARE) -> None:
        """border_share: the border for a second reading, as a share of the photo's longer side
        (0: read every photo once, as it is)."""
        self._detector = detector
        self._detect: DetectFn = detector.detect  # type: ignore[attr-defined]
        self._border_share = border_share
        #: The canvas the last photo was read on; None: the photo as it is.
        self.canvas: Canvas | None = None

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Every hand in rgb (H, W, 3) uint8, keypoints in rgb's pixels."""
        h, w = rgb.shape[:2]
        found = self._detect(rgb)
        self.canvas = None
        canvas = Canvas.for_photo(w, h, self._border_share)
        if canvas.border <= 0 or (found and max(hand_share(d, w, h) for d in found) < FRAME_FILL_SHARE):
            return found
        wider = detect_on_canvas(self._detect, rgb, canvas)
        if len(wider) >= max(1, len(found)):  # never fewer hands than the first reading
            self.canvas = canvas
            return wider
        return found

    def close(self) -> None:
        """Close the detector it reads with (a pipeline closes its detector when it stops)."""
        close = getattr(self._detector, "close", None)
        if close is not None:
            close()

    def augment(self, rgb: np.ndarray, detections: list[Detection]) -> None:
        """Test-time augmentation of the photo last read (handviz.pipeline.augment). A photo read
        on a canvas is augmented as that canvas: its copies are turned and shrunk with the hand in
        the middle, not with the crop's edge reflected into the hand (dev set's crops, seed 0:
        per-photo Spearman 0.388 -> 0.422, mirrored crops 0.448 -> 0.474, at the same error)."""
        canvas = self.canvas
        if canvas is None:
            augment_detections(self._detect, rgb, detections)
            return
        canvas.to_canvas(detections)
        try:
            augment_detections(self._detect, canvas.image(rgb), detections)
        finally:
            canvas.to_photo(detections)


def _map(detections: list[Detection], scale: float, offset: float) -> None:
    """Keypoints (and their changed copies') p -> p * scale + offset, in x and y."""
    for det in detections:
        det.keypoints_2d = (np.asarray(det.keypoints_2d, np.float64) * scale + offset).astype(np.float32)
        if det.tta_keypoints_2d is not None:
            det.tta_keypoints_2d = (np.asarray(det.tta_keypoints_2d, np.float64) * scale + offset).astype(np.float32)
