"""Plain data types that cross thread and layer boundaries (numpy only: no torch, no Qt).

Conventions (DESIGN.md): MediaPipe's 21-joint order, millimetres, camera frame
(x right, y down, z forward, like OpenCV). Pixel coordinates are (u, v) = (column, row).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from handviz.geometry import row_norms, similarity_aligned

NUM_JOINTS = 21


class HandJoint(IntEnum):
    """MediaPipe's 21 hand landmarks, in order."""

    WRIST = 0
    THUMB_CMC = 1
    THUMB_MCP = 2
    THUMB_IP = 3
    THUMB_TIP = 4
    INDEX_MCP = 5
    INDEX_PIP = 6
    INDEX_DIP = 7
    INDEX_TIP = 8
    MIDDLE_MCP = 9
    MIDDLE_PIP = 10
    MIDDLE_DIP = 11
    MIDDLE_TIP = 12
    RING_MCP = 13
    RING_PIP = 14
    RING_DIP = 15
    RING_TIP = 16
    PINKY_MCP = 17
    PINKY_PIP = 18
    PINKY_DIP = 19
    PINKY_TIP = 20


#: Parent of each joint in the kinematic tree (wrist is the root).
JOINT_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)

#: Each digit's joints from its base on the palm to its tip (the thumb from its CMC).
DIGIT_CHAINS: tuple[tuple[int, ...], ...] = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16),
                                             (17, 18, 19, 20))

#: Bones as (parent, child) pairs, for drawing skeletons.
BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(JOINT_PARENTS) if p >= 0)


@dataclass
class Detection:
    """One hand found by MediaPipe in one image.

    handedness is the *true* hand ("Left"/"Right") for the image as given: the detector
    already undoes MediaPipe's selfie-mirror convention.
    """

    keypoints_2d: np.ndarray  # (21, 2) float32, pixels
    world_3d: np.ndarray  # (21, 3) float32, mm, MediaPipe world landmarks (origin near hand centre)
    handedness: str  # "Left" | "Right"
    score: float
    keypoints_z: np.ndarray | None = None  # (21,) MediaPipe relative depth, in pixels-ish units
    crop: np.ndarray | None = None  # (S, S, 3) uint8 RGB, see handviz.features.crop_hand
    #: Where MediaPipe found this hand's keypoints on slightly changed copies of a photo (rotated,
    #: shrunk, mirrored; handviz.pipeline.augment), mapped back to this image: (M, 21, 2) px.
    #: None on live video, where it would cost the frame rate.
    tta_keypoints_2d: np.ndarray | None = None
    #: The share of those changed copies in which MediaPipe found this hand again, with the same
    #: handedness (0-1); None where no copy was read.
    tta_found_share: float | None = None
    #: On video, which hand this is over time (handviz.pipeline.hand_tracks: an id no other
    #: track shares); None for a photo or a detector that does not track.
    track: int | None = None


@dataclass
class HandEstimate:
    """What the cascade says about one hand: aggregate, hypotheses and their spread.

    Two kinds of doubt, kept apart: the hypotheses (and joint_spread, joint_radius_90) are doubt
    about the hand's shape, every hypothesis at the estimate's size and distance; distance_mm is
    where the hand may be, since one image cannot tell a big far hand from a small near one.
    """

    handedness: str
    score: float
    keypoints_2d: np.ndarray  # (21, 2) px
    joints_3d: np.ndarray  # (21, 3) mm, camera frame (root translation solved from 2D + K)
    joint_hypotheses: np.ndarray  # (N, 21, 3) mm, camera frame
    joint_spread: np.ndarray  # (21,) mm, per joint the hypotheses' mean distance from the estimate (aligned)
    vertices: np.ndarray  # (V, 3) mm, camera frame
    mediapipe_world_3d: np.ndarray  # (21, 3) mm
    #: (near, far) mm: the wrist's distance from the camera for the range of adult hand sizes
    #: (handviz.placement); None where unknown.
    distance_mm: tuple[float, float] | None = None
    #: The detection's track (Detection.track): which hand this is over time, None on photos.
    track: int | None = None

    #: _aligned_distances and joint_radius_90, kept once made (read-only): not init fields, so
    #: `dataclasses.replace` (a hand with other joints) never carries them over. The temporal
    #: model reads the radius on the worker, the app on the GUI thread: one alignment per hand.
    _distances: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _radius_90: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_hypotheses(cls, joints_3d: np.ndarray, joint_hypotheses: np.ndarray, **fields: Any) -> HandEstimate:
        """A hand whose joint_spread (and later joint_radius_90) come from one alignment of its
        hypotheses to its joints (float32, as stored)."""
        hand = cls(joints_3d=np.asarray(joints_3d, np.float32), joint_hypotheses=np.asarray(joint_hypotheses, np.float32),
                   joint_spread=np.zeros(NUM_JOINTS, np.float32), **fields)
        distances = hand._aligned_distances()
        hand.joint_spread = (distances.sum(axis=0) / len(distances)).astype(np.float32)  # np.mean's value, cheaper
        return hand

    def replaced(self, **changes: Any) -> HandEstimate:
        """`dataclasses.replace` that keeps the spread right: new joints or hypotheses get their
        spread remade by one alignment; other changes (keypoints, vertices) keep the one made."""
        if "joints_3d" in changes or "joint_hypotheses" in changes:
            fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
            fields.update(changes)
            fields.pop("joint_spread")
            return HandEstimate.from_hypotheses(**fields)
        out = dataclasses.replace(self, **changes)
        out._distances, out._radius_90 = self._distances, self._radius_90
        return out

    @property
    def joint_radius_90(self) -> np.ndarray:
        """(21,) mm: per joint, the radius around the estimate that holds 90 % of the hypotheses,
        each hypothesis first aligned to the estimate by a similarity (shape, not place or size).

        The ball the app colours the cloud by; on real photos with 3D truth it holds the true
        joint about as often as it says (weights/MODEL_CARD.md, "the 90 % ball").
        """
        if self._radius_90 is None:
            self._radius_90 = np.quantile(self._aligned_distances(), 0.9, axis=0).astype(np.float32)
            self._radius_90.flags.writeable = False  # shared by every reader of this hand
        return self._radius_90

    def _aligned_distances(self) -> np.ndarray:
        """(N, 21) mm: each hypothesis' joints from the estimate's, after a similarity (made once)."""
        if self._distances is None:
            hyps = np.asarray(self.joint_hypotheses, np.float64).reshape(-1, NUM_JOINTS, 3)
            est = np.asarray(self.joints_3d, np.float64)
            self._distances = row_norms(similarity_aligned(hyps, est) - est)
            self._distances.flags.writeable = False
        return self._distances

    def to_json(self, with_vertices: bool = False) -> dict[str, Any]:
        """The DESIGN.md `predict` line format for one hand."""
        out: dict[str, Any] = {
            "handedness": self.handedness,
            "score": round(float(self.score), 4),
            "keypoints_2d": np.round(self.keypoints_2d, 2).tolist(),
            "joints_3d": np.round(self.joints_3d, 2).tolist(),
            "joint_hypotheses": np.round(self.joint_hypotheses, 2).tolist(),
            "joint_spread": np.round(self.joint_spread, 3).tolist(),
            "joint_radius_90": np.round(self.joint_radius_90, 3).tolist(),
            "distance_mm": None if self.distance_mm is None else [round(float(v), 1) for v in self.distance_mm],
            "mediapipe_world_3d": np.round(self.mediapipe_world_3d, 2).tolist(),
        }
        if with_vertices:
            out["vertices"] = np.round(self.vertices, 2).tolist()
        return out


#: The stamp a frame gets the moment it is captured (handviz.pipeline.timing names the others).
CAPTURED_STAMP = "captured"


@dataclass
class Frame:
    """One captured image plus the times each stage touched it (seconds, time.perf_counter)."""

    index: int
    image: np.ndarray  # (H, W, 3) uint8 RGB
    source: str = ""
    stamps: dict[str, float] = field(default_factory=dict)

    @property
    def captured_at(self) -> float | None:
        """When the image was captured (the one capture time: sessions, latency and display use it)."""
        return self.stamps.get(CAPTURED_STAMP)


@dataclass
class FrameResult:
    """Everything the views and the recorder need for one processed frame."""

    frame: Frame
    detections: list[Detection]
    hands: list[HandEstimate]
    intrinsics: np.ndarray  # (3, 3)
    timings_ms: dict[str, float] = field(default_factory=dict)  # stage name -> ms
    error: str | None = None
