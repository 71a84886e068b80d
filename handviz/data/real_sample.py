"""One labelled photo from a public hand dataset, already in handviz's conventions.

Loaders (freihand.py, ho3d.py) convert at the door so that nothing downstream needs to know a
dataset's units, joint order or camera axes: millimetres, MediaPipe's 21-joint order, and the
OpenCV camera frame (x right, y down, z forward).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

#: A labelled hand with fewer joints than this is not scored: a similarity (7 degrees of freedom)
#: fitted on fewer, mostly neighbouring, joints says little about the hand's shape.
MIN_VISIBLE_JOINTS = 6


@dataclass(frozen=True)
class Sample:
    """A photo plus what the dataset knows about the hand in it.

    Fields a split does not provide are None: HO3D's evaluation split, for example, gives only
    the wrist position (root_mm) and a bounding box, FreiHAND's gives no box. A joint the label
    leaves out (hidden in every view, say) is a NaN row of joints_mm; see `visible`.
    """

    dataset: str  # "freihand" | "ho3d"
    split: str  # the dataset's split name, e.g. "training", "evaluation", "train"
    sample_id: str  # stable id within the split: FreiHAND image number, HO3D "<seq>/<frame>"
    image_path: Path
    K: np.ndarray  # (3, 3) intrinsics for image_path
    joints_mm: np.ndarray | None = None  # (21, 3) mm, camera frame, MediaPipe order; NaN rows: not labelled
    verts_mm: np.ndarray | None = None  # (V, 3) mm, camera frame (MANO topology: V = 778)
    root_mm: np.ndarray | None = None  # (3,) mm, wrist in the camera frame
    bbox_xyxy: np.ndarray | None = None  # (4,) px, hand box (x1, y1, x2, y2)
    handedness: str = "Right"
    group: str = ""  # the image's subfolder within its dataset (e.g. the camera), "" when none
    mirrored: bool = False  # the photo is read flipped left to right (`mirror_sample`)

    @property
    def visible(self) -> np.ndarray:
        """(21,) bool: the joints the label gives (finite and in front of the camera); none without joints."""
        if self.joints_mm is None:
            return np.zeros(21, bool)
        joints = np.asarray(self.joints_mm, np.float64)
        with np.errstate(invalid="ignore"):
            return np.all(np.isfinite(joints), axis=1) & (joints[:, 2] > 0)

    @property
    def labelled(self) -> bool:
        """Whether enough joints are labelled to score the hand (MIN_VISIBLE_JOINTS)."""
        return int(self.visible.sum()) >= MIN_VISIBLE_JOINTS

    def load_rgb(self) -> np.ndarray:
        """The image as (H, W, 3) uint8 RGB; a clear error names the file when it cannot be read."""
        import cv2

        bgr = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(
                f"{self.image_path}: cannot read this image; check that the {self.dataset} download is complete"
            )
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(rgb[:, ::-1]) if self.mirrored else rgb


_OTHER_HAND = {"Left": "Right", "Right": "Left"}


def mirror_sample(sample: Sample) -> Sample:
    """The same labelled photo seen in a mirror: a left hand where it showed a right one.

    A set of right hands read this way measures left hands too (the photos, the truth and so
    MediaPipe's view of them all mirrored). The image is read flipped (pixel x -> width - 1 - x),
    so the principal point moves alike and every 3D point's x changes sign in the camera frame;
    the handedness swaps.
    """
    last = sample.load_rgb().shape[1] - 1.0  # its width (and the same message when unreadable)
    K = np.array(sample.K, np.float64)
    K[0, 2] = last - K[0, 2]
    flip = np.array([-1.0, 1.0, 1.0])
    box = None if sample.bbox_xyxy is None else np.array([last - sample.bbox_xyxy[2], sample.bbox_xyxy[1],
                                                          last - sample.bbox_xyxy[0], sample.bbox_xyxy[3]])
    return replace(sample, K=K, bbox_xyxy=box, mirrored=not sample.mirrored,
                   handedness=_OTHER_HAND.get(sample.handedness, sample.handedness),
                   joints_mm=None if sample.joints_mm is None else np.asarray(sample.joints_mm, np.float64) * flip,
                   verts_mm=None if sample.verts_mm is None else np.asarray(sample.verts_mm, np.float64) * flip,
                   root_mm=None if sample.root_mm is None else np.asarray(sample.root_mm, np.float64) * flip)
