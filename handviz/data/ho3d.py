"""HO-3D v2/v3 (Hampali et al., CVPR 2020) from a user's own download, as handviz Samples.

Published layout:

    ROOT/train.txt, ROOT/evaluation.txt      one "<sequence>/<frame>" per line
    ROOT/<split>/<sequence>/rgb/<frame>.png  (v3: .jpg)
    ROOT/<split>/<sequence>/meta/<frame>.pkl annotations, split = train | evaluation

A train meta file holds handJoints3D (21x3, metres, HO3D joint order) and camMat (3x3);
an evaluation one holds only the wrist (handJoints3D, 3) and handBoundingBox (x1, y1, x2, y2).
HO3D's 3D data use the OpenGL camera (y up, hand at negative z); loaders flip y and z to
reach handviz's OpenCV frame, in which camMat projects as usual.

About pickles: HO3D ships its annotations only as Python pickles. handviz never loads
pickles from its own assets or weights; `read_meta` opens them only below the dataset root
the user names, and through an unpickler that rebuilds numpy arrays and plain Python values
and refuses anything else (no code can run from a meta file).
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handviz.data.joint_orders import to_mediapipe
from handviz.data.real_sample import Sample

SPLITS = ("train", "evaluation")
IMAGE_SUFFIXES = (".png", ".jpg")  # v2 ships png, v3 jpg

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles store raw bytes
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and builtin values; any other class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: HO3D meta files hold only numpy arrays")


def read_meta(root: str | os.PathLike[str], split: str, sequence: str, frame: str) -> dict[str, Any]:
    """The annotation dict of one HO3D frame, read from ROOT/<split>/<sequence>/meta/<frame>.pkl.

    Takes the dataset root so that only files inside the user's HO3D download are opened.
    HO3D's pickles were written by Python 2, hence latin-1 for their byte strings.
    """
    for part in (split, sequence, frame):
        if not part or part in (".", "..") or "/" in part or "\\" in part:
            raise ValueError(f"{split}/{sequence}/{frame}: not a plain HO3D name; check {split}.txt")
    path = Path(root).expanduser() / split / sequence / "meta" / f"{frame}.pkl"
    try:
        data = _ArraysOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: meta file missing; the HO3D download looks incomplete") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable HO3D meta file ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of annotations, found {type(data).__name__}")
    return data


def opengl_to_opencv(points: np.ndarray) -> np.ndarray:
    """points: (..., 3) in the OpenGL camera frame -> (..., 3) in the OpenCV one (y and z negated)."""
    return np.asarray(points, dtype=np.float64) * np.array([1.0, -1.0, -1.0])


def read_split_list(root: str | os.PathLike[str], split: str) -> list[tuple[str, str]]:
    """ROOT/<split>.txt as (sequence, frame) pairs, in file order (the order submissions use)."""
    path = Path(root).expanduser() / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; pass the HO3D folder where train/, evaluation/ and {split}.txt branch off"
        )
    pairs = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split("/")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{path}:{line_no}: expected '<sequence>/<frame>', got {line!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


class HO3DDataset(Sequence[Sample]):
    """HO3D frames with their labels, indexable like a list; meta files are read on access.

    root: the folder holding train/, evaluation/, train.txt and evaluation.txt.
    split: "train" (full joints) | "evaluation" (wrist and box only: joints_mm is None).
    HO3D gives no vertices (they need the MANO model), so verts_mm is always None.
    """

    def __init__(self, root: str | os.PathLike[str], split: str = "evaluation") -> None:
        if split not in SPLITS:
            raise ValueError(f"HO3D split must be one of {SPLITS}; got {split!r}")
        self.root = Path(root).expanduser()
        self.split = split
        self.frames = read_split_list(self.root, split)

    def __len__(self) -> int:
        return len(self.frames)

    def image_path(self, sequence: str, frame: str) -> Path:
        rgb = self.root / self.split / sequence / "rgb"
        for suffix in IMAGE_SUFFIXES:
            candidate = rgb / f"{frame}{suffix}"
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"{rgb / frame}.png/.jpg: image missing; the HO3D download looks incomplete")

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        sequence, frame = self.frames[index]
        meta = read_meta(self.root, self.split, sequence, frame)
        where = f"{self.split}/{sequence}/meta/{frame}.pkl"
        if meta.get("camMat") is None:
            raise ValueError(f"{where}: no camMat; this frame cannot be used")
        K = np.asarray(meta["camMat"], dtype=np.float64).reshape(3, 3)
        hand = meta.get("handJoints3D")
        joints_mm = root_mm = None
        if hand is not None:
            hand_mm = opengl_to_opencv(np.asarray(hand, dtype=np.float64)) * 1000.0
            if hand_mm.shape == (21, 3):
                joints_mm = to_mediapipe(hand_mm, "ho3d")
                root_mm = joints_mm[0].copy()
            elif hand_mm.reshape(-1).shape == (3,):
                root_mm = hand_mm.reshape(3)
            else:
                raise ValueError(f"{where}: handJoints3D has shape {hand_mm.shape}, expected (21, 3) or (3,)")
        box = meta.get("handBoundingBox")
        return Sample(
            dataset="ho3d",
            split=self.split,
            sample_id=f"{sequence}/{frame}",
            image_path=self.image_path(sequence, frame),
            K=K,
            joints_mm=joints_mm,
            verts_mm=None,
            root_mm=root_mm,
            bbox_xyxy=np.asarray(box, dtype=np.float64).reshape(4) if box is not None else None,
        )

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]
