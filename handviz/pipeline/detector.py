"""MediaPipe Hands as a small front object: rgb image in, list of Detection out.

MediaPipe's legacy solution labels handedness as if the image were a mirrored selfie; we
report the true hand for the image as given (`mirrored=False`: a plain camera or photo).
Duplicates of one hand are suppressed, and on video (static=False) each hand keeps its
handedness from frame to frame (hand_tracks.py). `second_pass=True` looks again with the
hands found so far masked out, for a hand MediaPipe's palm detector missed next to another.

On video, MediaPipe runs its palm detector on every frame while it tracks fewer hands than it
may find (12 of its 21 ms per frame here, with one hand in view and two allowed). So while fewer
hands are tracked, a one-hand graph follows one (10 ms per frame), and every `search_every`
frames the full graph also looks at the frame and adds the hands it finds that are new (the
followed hand keeps the one-hand graph's landmarks: switching graphs on a search frame shook
it, still-clip jitter 2.5 -> 3.4 mm). Once every hand is found, the full graph tracks them all.
"""

from __future__ import annotations

import logging
from types import TracebackType

import numpy as np

from handviz.features import CROP_SIZE, crop_hand
from handviz.pipeline.hand_tracks import HandednessTracker, keypoint_box, same_hand, suppress_duplicates
from handviz.types import Detection

log = logging.getLogger(__name__)

_SWAP = {"Left": "Right", "Right": "Left"}
#: The second pass masks each found hand's keypoint box grown by this fraction on every side.
MASK_MARGIN = 0.2
#: On video, how often (in frames) the full graph looks for more hands than are tracked: at 30
#: frames/s a hand that comes into view is found within a third of a second. A search frame runs
#: both graphs (31 ms here); every 5 frames, bench --app's median latency was 54-58 ms, every
#: 10 frames 42-51 ms.
SEARCH_EVERY = 10


class HandDetector:
    """Find up to `max_hands` hands; `static=True` treats every image independently (photos,
    synthetic labelling), `static=False` lets MediaPipe track across video frames (faster).
    search_every: on video, look for more hands than are tracked every this many frames (1:
    every frame, MediaPipe's own behaviour)."""

    def __init__(
        self,
        max_hands: int = 2,
        mirrored: bool = False,
        model_complexity: int = 1,
        static: bool = False,
        min_confidence: float = 0.5,
        crop_size: int = CROP_SIZE,
        second_pass: bool = False,
        search_every: int = SEARCH_EVERY,
    ) -> None:
        import mediapipe as mp  # heavy import, kept local so `handviz --help` stays fast

        self.mirrored = mirrored
        self.crop_size = crop_size
        self.max_hands = max_hands
        self._tracker = None if static else HandednessTracker()
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=static,
            max_num_hands=max_hands,
            model_complexity=model_complexity,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )
        self._one_hand = None  # video: follows one hand without looking for more
        if not static and max_hands > 1 and search_every > 1:
            self._one_hand = mp.solutions.hands.Hands(
                static_image_mode=False, max_num_hands=1, model_complexity=model_complexity,
                min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence)
        self.search_every = search_every
        self._since_search = search_every - 1  # the first frame looks for every hand
        self._full_tracks_all = False  # the full graph found max_hands hands last time: it tracks them
        self._second = None
        if second_pass:  # its own graph: a still image, one hand, no tracking state shared
            self._second = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1,
                                                    model_complexity=model_complexity,
                                                    min_detection_confidence=min_confidence)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """rgb: (H, W, 3) uint8. Returns one Detection per hand found (possibly none)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        rgb = np.ascontiguousarray(rgb)
        detections = self._video_detections(rgb) if self._one_hand is not None else \
            suppress_duplicates(self._run(self._hands, rgb))
        if self._second is not None and 0 < len(detections) < self.max_hands:
            masked = masked_hands(rgb, detections)
            found = [d for d in self._run(self._second, masked) if not any(same_hand(d, k) for k in detections)]
            for d in found:
                d.crop = crop_hand(rgb, d.keypoints_2d, self.crop_size)  # from the unmasked image
            detections += found
        if self._tracker is not None:
            detections = self._tracker.update(detections)
        return detections

    def _video_detections(self, rgb: np.ndarray) -> list[Detection]:
        """One video frame through the one-hand graph, or the full graph when it tracks every hand;
        a search with the full graph when one is due (see the module's docstring)."""
        if self._full_tracks_all:
            found = suppress_duplicates(self._run(self._hands, rgb))
            self._full_tracks_all = len(found) >= self.max_hands
            self._since_search = 0
            return found
        detections = suppress_duplicates(self._run(self._one_hand, rgb))
        self._since_search += 1
        if self._since_search < self.search_every:
            return detections
        self._since_search = 0
        found = suppress_duplicates(self._run(self._hands, rgb))
        new = [d for d in found if not any(same_hand(d, k) for k in detections)]
        if new and len(detections) + len(new) >= self.max_hands:
            self._full_tracks_all = True  # it found every hand: it tracks them from the next frame
            return found
        return detections + new

    def _run(self, hands: object, rgb: np.ndarray) -> list[Detection]:
        """One MediaPipe graph over rgb: every hand it reports, labelled with the true hand."""
        h, w = rgb.shape[:2]
        result = hands.process(rgb)  # type: ignore[attr-defined]
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
        if self._one_hand is not None:
            self._one_hand.close()
        if self._second is not None:
            self._second.close()

    def __enter__(self) -> HandDetector:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def masked_hands(rgb: np.ndarray, detections: list[Detection]) -> np.ndarray:
    """A copy of rgb with each detection's keypoint box (grown by MASK_MARGIN) filled with the
    image's mean colour, so a detector run on it can only find other hands."""
    out = rgb.copy()
    fill = rgb.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    h, w = rgb.shape[:2]
    for d in detections:
        x0, y0, x1, y1 = keypoint_box(d.keypoints_2d)
        mx, my = (x1 - x0) * MASK_MARGIN, (y1 - y0) * MASK_MARGIN
        c0, r0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
        c1, r1 = min(w, int(np.ceil(x1 + mx))), min(h, int(np.ceil(y1 + my)))
        out[r0:r1, c0:c1] = fill
    return out
