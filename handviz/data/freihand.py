"""FreiHAND (Zimmermann et al., ICCV 2019) from a user's own download, as handviz Samples.

Published layout (FreiHAND_pub_v2, plus FreiHAND_pub_v2_eval for the evaluation labels):

    ROOT/training/rgb/%08d.jpg          130240 images = 4 versions x 32560 labelled hands
    ROOT/evaluation/rgb/%08d.jpg        3960 images
    ROOT/<split>_K.json                 per label: 3x3 intrinsics
    ROOT/<split>_xyz.json               per label: 21x3 joints, metres, camera frame, FreiHAND order
    ROOT/<split>_verts.json             per label: 778x3 MANO vertices, metres
    ROOT/<split>_scale.json, _mano.json (not needed here)

The training images come in four versions (green screen, then three background
post-processings) that share one label: image i uses label i % 32560. Label files are also
looked up in ROOT/<split>/ in case the evaluation archive was unpacked there.
FreiHAND's camera frame is OpenCV's and its joint order is MediaPipe's: only metres -> mm.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from handviz.data.joint_orders import to_mediapipe
from handviz.data.real_sample import Sample

SPLITS = ("training", "evaluation")
#: Names of the four training image versions, in file order.
TRAINING_VERSIONS = ("gs", "hom", "sample", "auto")


def _find_label_file(root: Path, split: str, name: str) -> Path | None:
    for folder in (root, root / split):
        path = folder / f"{split}_{name}.json"
        if path.is_file():
            return path
    return None


def _load_array(path: Path, expected_tail: tuple[int, ...] | None) -> np.ndarray:
    try:
        with path.open("r", encoding="utf-8") as f:
            arr = np.asarray(json.load(f), dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable FreiHAND label file ({exc}); re-extract the download") from exc
    if expected_tail is not None and (arr.ndim != 1 + len(expected_tail) or arr.shape[1:] != expected_tail):
        raise ValueError(f"{path}: expected entries of shape {expected_tail}, got array {arr.shape}")
    return arr


def _count_images(rgb_dir: Path) -> int:
    with os.scandir(rgb_dir) as it:
        return sum(1 for e in it if e.name.endswith(".jpg") and e.name[:-4].isdigit())


class FreiHandDataset(Sequence[Sample]):
    """FreiHAND images with their labels, indexable like a list.

    root: the folder holding training/ and evaluation/. split: "training" | "evaluation".
    versions: which training image versions to include (0-3, see TRAINING_VERSIONS); default
    all present. with_verts: also load the MANO vertices; training_verts.json is ~1 GB of
    JSON, so pass False there unless you need the mesh.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "evaluation",
        versions: Sequence[int] | None = None,
        with_verts: bool = True,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"FreiHAND split must be one of {SPLITS}; got {split!r}")
        self.root = Path(root).expanduser()
        self.split = split
        self.rgb_dir = self.root / split / "rgb"
        k_path = _find_label_file(self.root, split, "K")
        if not self.rgb_dir.is_dir() or k_path is None:
            raise FileNotFoundError(
                f"{self.root}: not a FreiHAND folder (need {split}/rgb/ and {split}_K.json); "
                "pass the folder where training/ and evaluation/ branch off"
            )
        self.K = _load_array(k_path, (3, 3))
        self.num_labels = len(self.K)
        self.joints_mm = self._optional_labels("xyz", (21, 3))
        self.verts_mm = self._optional_labels("verts", None) if with_verts else None
        self.versions = self._select_versions(versions)

    def _optional_labels(self, name: str, tail: tuple[int, ...] | None) -> np.ndarray | None:
        path = _find_label_file(self.root, self.split, name)
        if path is None:
            return None
        arr = _load_array(path, tail)
        if len(arr) != self.num_labels:
            raise ValueError(
                f"{path}: {len(arr)} entries but {self.split}_K.json has {self.num_labels}; the download looks mixed up"
            )
        if name == "xyz":
            arr = to_mediapipe(arr, "freihand")
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise ValueError(f"{path}: expected (N, P, 3) points, got {arr.shape}")
        return arr * np.float32(1000.0)  # metres -> mm

    def _select_versions(self, versions: Sequence[int] | None) -> tuple[int, ...]:
        present = _count_images(self.rgb_dir) // max(self.num_labels, 1)
        if present == 0:
            raise FileNotFoundError(
                f"{self.rgb_dir}: fewer images than the {self.num_labels} labels in {self.split}_K.json; "
                "the image archive is incomplete"
            )
        if versions is None:
            return tuple(range(present))
        chosen = tuple(int(v) for v in versions)
        missing = [v for v in chosen if not 0 <= v < present]
        if missing:
            raise ValueError(f"{self.rgb_dir}: image versions {missing} not present (found versions 0..{present - 1})")
        return chosen

    def __len__(self) -> int:
        return self.num_labels * len(self.versions)

    def image_id(self, index: int) -> int:
        """The file number of item `index` (its label is image_id % num_labels)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} FreiHAND samples")
        index %= len(self)
        version = self.versions[index // self.num_labels]
        return version * self.num_labels + index % self.num_labels

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        image_id = self.image_id(index)
        label = image_id % self.num_labels
        joints = self.joints_mm[label] if self.joints_mm is not None else None
        return Sample(
            dataset="freihand",
            split=self.split,
            sample_id=f"{image_id:08d}",
            image_path=self.rgb_dir / f"{image_id:08d}.jpg",
            K=self.K[label].astype(np.float64),
            joints_mm=joints,
            verts_mm=self.verts_mm[label] if self.verts_mm is not None else None,
            root_mm=joints[0] if joints is not None else None,
        )

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]
