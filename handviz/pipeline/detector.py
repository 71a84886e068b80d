"""MediaPipe Hands as a small front object: rgb image in, list of Detection out.

MediaPipe's legacy solution labels handedness as if the image were a mirrored selfie; we
report the true hand for the image as given (`mirrored=False`: a plain camera or photo).
"""

from __future__ import annotations

import logging
from types import TracebackType

import numpy as np

from handviz.features import CROP_SIZE, crop_hand
from handviz.types import Detection

log = logging.getLogger(__name__)

_SWAP = {"Left": "Right", "Right": "Left"}


class HandDetector:
    """Find up to `max_hands` hands; `static=True` treats every image independently (photos,
    synthetic labelling), `static=False` lets MediaPipe track across video frames (faster)."""

    def __init__(
        self,
        max_hands: int = 2,
        mirrored: bool = False,
        model_complexity: int = 1,
        static: bool = False,
        min_confidence: float = 0.5,
        crop_size: int = CROP_SIZE,
    ) -> None:
        import mediapipe as mp  # heavy import, kept local so `handviz --help` stays fast

        self.mirrored = mirrored
        self.crop_size = crop_size
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=static,
            max_num_hands=max_hands,
            model_complexity=model_complexity,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """rgb: (H, W, 3) uint8. Returns one Detection per hand found (possibly none)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        rgb = np.ascontiguousarray(rgb)
        result = self._hands.process(rgb)
        if not result.multi_hand_landmarks:
            return []
        detections = []
        worlds = result.multi_hand_world_landmarks or [None] * len(result.multi_hand_landmarks)
        for lms, world, hand in zip(result.multi_hand_landmarks, worlds, result.multi_handedness):
            pts = np.array([[p.x, p.y, p.z] for p in lms.landmark], dtype=np.float32)
            kp2d = pts[:, :2] * np.array([w, h], np.float32)
            if world is not None:
                w3d = np.array([[p.x, p.y, p.z] for p in world.landmark], dtype=np.float32) * 1000.0
            else:
                w3d = np.full((21, 3), np.nan, np.float32)
            label = hand.classification[0].label
            if not self.mirrored:
                label = _SWAP.get(label, label)
            detections.append(
                Detection(
                    keypoints_2d=kp2d,
                    world_3d=w3d,
                    handedness=label,
                    score=float(hand.classification[0].score),
                    keypoints_z=pts[:, 2] * w,
                    crop=crop_hand(rgb, kp2d, self.crop_size),
                )
            )
        return detections

    def close(self) -> None:
        self._hands.close()

    def __enter__(self) -> HandDetector:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
