"""Cleaning MediaPipe's hands before the model sees them: no duplicate of one hand, and a
handedness that does not flicker on video.

MediaPipe sometimes reports one hand twice, when its tracking carries a hand box over a cut (the
demo's photo changes): on the two-thumbs photo a "Left" on top of the right hand (its box 68%
inside the right hand's, keypoints 0.22 box diagonals away on average), on the thumb-up photo a
"Right" across the fingers (49%, 0.31). A duplicate is a second detection
whose keypoint box lies mostly inside a kept one's and whose keypoints lie close to it; the
higher-scored one is kept. On video, each hand's label is
held by a short-lived track and changes only after FLIP_FRAMES frames that agree on the change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from handviz.types import Detection

#: Boxes overlapping at least this much (intersection over the smaller box) may be one hand ...
DUPLICATE_OVERLAP = 0.4
#: ... and are when their keypoints lie this close (mean distance / box diagonal). A mirrored
#: duplicate (thumb where the pinky was) still has its wrist, palm and middle finger in place.
DUPLICATE_KEYPOINT_FRAC = 0.35
#: A box this much inside another is one hand, whatever its keypoints say.
SURE_DUPLICATE_OVERLAP = 0.85
#: Frames a new label must persist before a tracked hand's handedness changes.
FLIP_FRAMES = 5
#: A track not matched for this many frames is forgotten (the hand left the picture).
MAX_MISSED_FRAMES = 10
#: A detection continues a track when their boxes overlap at least this much.
TRACK_IOU = 0.3


def keypoint_box(keypoints_2d: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) of the 21 keypoints (pixels)."""
    kp = np.asarray(keypoints_2d, np.float64)
    return np.concatenate([kp.min(axis=0), kp.max(axis=0)])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def box_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area: 1 when one box lies inside the other."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    if w <= 0 or h <= 0 or smaller <= 0:
        return 0.0
    return float(w * h / smaller)


def keypoint_distance_frac(a: Detection, b: Detection) -> float:
    """Mean distance of corresponding keypoints over the larger box's diagonal."""
    box_a, box_b = keypoint_box(a.keypoints_2d), keypoint_box(b.keypoints_2d)
    diagonal = max(np.hypot(*(box_a[2:] - box_a[:2])), np.hypot(*(box_b[2:] - box_b[:2])), 1e-6)
    diff = np.asarray(a.keypoints_2d, np.float64) - np.asarray(b.keypoints_2d, np.float64)
    return float(np.linalg.norm(diff, axis=1).mean() / diagonal)


def same_hand(a: Detection, b: Detection) -> bool:
    """Overlap plus keypoint distance: the two detections are one hand."""
    overlap = box_overlap(keypoint_box(a.keypoints_2d), keypoint_box(b.keypoints_2d))
    if overlap >= SURE_DUPLICATE_OVERLAP:
        return True
    return overlap >= DUPLICATE_OVERLAP and keypoint_distance_frac(a, b) <= DUPLICATE_KEYPOINT_FRAC


def suppress_duplicates(detections: list[Detection]) -> list[Detection]:
    """Keep the best-scored detection of each hand, in their original order."""
    kept: list[int] = []
    for i in sorted(range(len(detections)), key=lambda k: -detections[k].score):
        if not any(same_hand(detections[i], detections[k]) for k in kept):
            kept.append(i)
    return [detections[i] for i in sorted(kept)]


@dataclass
class _Track:
    box: np.ndarray
    label: str
    pending: str | None = None  # a different label seen lately
    pending_frames: int = 0
    missed: int = 0


class HandednessTracker:
    """Stable labels on video: call `update(detections)` once per frame, in frame order."""

    def __init__(self) -> None:
        self._tracks: list[_Track] = []

    def reset(self) -> None:
        self._tracks = []

    def update(self, detections: list[Detection]) -> list[Detection]:
        """The detections with each tracked hand's held label (new Detection objects)."""
        boxes = [keypoint_box(d.keypoints_2d) for d in detections]
        free = list(range(len(self._tracks)))
        out: list[Detection] = []
        for det, box in zip(detections, boxes):
            best = max(free, key=lambda t: box_iou(self._tracks[t].box, box), default=None)
            if best is None or box_iou(self._tracks[best].box, box) < TRACK_IOU:
                self._tracks.append(_Track(box, det.handedness, missed=-1))
                out.append(det)
                continue
            free.remove(best)
            track = self._tracks[best]
            track.box, track.missed = box, -1  # -1: seen this frame (incremented below to 0)
            self._vote(track, det.handedness)
            out.append(det if det.handedness == track.label else replace(det, handedness=track.label))
        seen = {id(t) for t in self._tracks if t.missed == -1}
        for track in self._tracks:
            track.missed = 0 if id(track) in seen else track.missed + 1
        self._tracks = [t for t in self._tracks if t.missed <= MAX_MISSED_FRAMES]
        return out

    @staticmethod
    def _vote(track: _Track, label: str) -> None:
        if label == track.label:
            track.pending, track.pending_frames = None, 0
            return
        track.pending_frames = track.pending_frames + 1 if track.pending == label else 1
        track.pending = label
        if track.pending_frames >= FLIP_FRAMES:
            track.label, track.pending, track.pending_frames = label, None, 0
