"""Cleaning MediaPipe's hands before the model sees them: no duplicate of one hand, and a
handedness that does not flicker on video.

MediaPipe sometimes reports one hand twice, when its tracking carries a hand box over a cut (the
demo's photo changes): on the two-thumbs photo a "Left" on top of the right hand (its box 68%
inside the right hand's, keypoints 0.22 box diagonals away on average), on the thumb-up photo a
"Right" across the fingers (49%, 0.31). A duplicate is a second detection
whose keypoint box lies mostly inside a kept one's and whose keypoints lie close to it; the
higher-scored one is kept. On video, each hand's label is
held by a short-lived track: its handedness is a two-state hidden Markov chain that MediaPipe's
label and score observe each frame (`HandednessBelief`), so a few confident flickers are ignored,
a lasting change is followed, and an unsure first label gives way to confident ones at once.
Each track has an id that no other track of the process shares (`Detection.track`): the
temporal model (handviz.temporal) keeps one state per id, and a new id starts its motion afresh
(with the bones of the hand of its side seen last, while that one is out of view and still
remembered: the same person's hand found again). A track
ends when its hand is gone for MAX_MISSED_FRAMES, or when its keypoints change shape more in
one frame than a hand does (SHAPE_JUMP: a cut to another hand at the same place).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np

from handviz.types import Detection

#: Boxes overlapping at least this much (intersection over the smaller box) may be one hand ...
DUPLICATE_OVERLAP = 0.4
#: ... and are when their keypoints lie this close (mean distance / box diagonal). A mirrored
#: duplicate (thumb where the pinky was) still has its wrist, palm and middle finger in place.
DUPLICATE_KEYPOINT_FRAC = 0.35
#: A box this much inside another is one hand, whatever its keypoints say.
SURE_DUPLICATE_OVERLAP = 0.85
#: A tracked hand's chance per frame of really turning into the other hand (a swap or a cut the
#: shape test missed): it bounds how sure the track gets, log((1 - p) / p) = 9.2 nats.
HANDEDNESS_SWITCH = 1e-4
#: What one MediaPipe label is worth, as a share of its score's log-odds: its scores are
#: overconfident (the dev set's videos open with "Left" at 0.99 on a right hand). At 0.5, five
#: frames at 0.98 turn a settled track, four do not. Against the five-frame vote it replaces, the
#: dev set's 8 real videos (one right hand) shown as a left hand in 20 -> 13 frames, PA-MPJPE
#: frame by frame 10.69 -> 10.46 mm (3 seeds).
LABEL_WEIGHT = 0.5
#: A track not matched for this many frames is forgotten (the hand left the picture).
MAX_MISSED_FRAMES = 10
#: A detection continues a track when their boxes overlap at least this much ...
TRACK_IOU = 0.3
#: ... and its keypoints, the mean translation taken out, moved less than this share of the
#: hand's size (keypoint box diagonal) since the track's last frame. On the dev set's 8 real
#: videos (one hand grasping, 30 fps) a frame changes the shape by 1.3 % median and 7 % at the
#: 99th percentile; 2 of 983 frames change more than 12 % (MediaPipe finding the hand again after
#: a bad frame); the demo's cuts from one photo's hand to the next change it by 16-22 %.
SHAPE_JUMP = 0.12

_track_ids = itertools.count()


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


def shape_change(a: np.ndarray, b: np.ndarray) -> float:
    """How far keypoints b (21, 2) lie from a (21, 2), each set's mean taken out, on average, over
    a's box diagonal: 0 for a hand that only moved across the image."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diagonal = max(float(np.linalg.norm(np.ptp(a, axis=0))), 1e-6)
    return float(np.linalg.norm((b - b.mean(axis=0)) - (a - a.mean(axis=0)), axis=1).mean() / diagonal)


@dataclass
class HandednessBelief:
    """The log-odds (nats) that a tracked hand is a right hand: a two-state hidden Markov chain.

    predict(): the hand may have switched (HANDEDNESS_SWITCH); update(label, score): MediaPipe's
    label with its score, worth LABEL_WEIGHT of its log-odds. The label shown is the likelier state
    (the previous one on a tie).
    """

    log_odds: float = 0.0
    label: str = "Right"

    def predict(self) -> None:
        p = HANDEDNESS_SWITCH
        right = 1.0 / (1.0 + np.exp(-self.log_odds))
        right = (1.0 - p) * right + p * (1.0 - right)
        self.log_odds = float(np.log(right / (1.0 - right)))

    def update(self, label: str, score: float) -> None:
        s = min(max(float(score), 1e-6), 1.0 - 1e-6)
        evidence = LABEL_WEIGHT * np.log(s / (1.0 - s))
        self.log_odds += evidence if label == "Right" else -evidence
        if self.log_odds != 0.0:
            self.label = "Right" if self.log_odds > 0 else "Left"


@dataclass
class _Track:
    box: np.ndarray
    keypoints: np.ndarray
    belief: HandednessBelief
    missed: int = 0
    id: int = field(default_factory=lambda: next(_track_ids))

    @property
    def label(self) -> str:
        return self.belief.label


class HandednessTracker:
    """Stable labels on video: call `update(detections)` once per frame, in frame order."""

    def __init__(self) -> None:
        self._tracks: list[_Track] = []

    def reset(self) -> None:
        self._tracks = []

    def update(self, detections: list[Detection]) -> list[Detection]:
        """The detections with each tracked hand's held label and its track's id (new Detection
        objects)."""
        boxes = [keypoint_box(d.keypoints_2d) for d in detections]
        free = list(range(len(self._tracks)))
        out: list[Detection] = []
        for det, box in zip(detections, boxes):
            best = max(free, key=lambda t: box_iou(self._tracks[t].box, box), default=None)
            if best is not None and box_iou(self._tracks[best].box, box) >= TRACK_IOU \
                    and shape_change(self._tracks[best].keypoints, det.keypoints_2d) > SHAPE_JUMP:
                free.remove(best)  # another hand where this one was: its track ends here
                self._tracks[best].missed = MAX_MISSED_FRAMES
                best = None
            if best is None or box_iou(self._tracks[best].box, box) < TRACK_IOU:
                track = _Track(box, np.asarray(det.keypoints_2d, np.float64), HandednessBelief(label=det.handedness))
                self._tracks.append(track)
            else:
                free.remove(best)
                track = self._tracks[best]
                track.box, track.keypoints = box, np.asarray(det.keypoints_2d, np.float64)
                track.belief.predict()
            track.missed = -1  # seen this frame (incremented below to 0)
            track.belief.update(det.handedness, det.score)
            out.append(replace(det, handedness=track.label, track=track.id))
        seen = {id(t) for t in self._tracks if t.missed == -1}
        for track in self._tracks:
            track.missed = 0 if id(track) in seen else track.missed + 1
        self._tracks = [t for t in self._tracks if t.missed <= MAX_MISSED_FRAMES]
        return out
