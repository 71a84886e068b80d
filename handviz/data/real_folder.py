"""A plain folder of real photos with 3D hand truth: the format `handviz eval --real DIR` reads.

    DIR/labels.jsonl    one JSON object per line, one line per image:
        {"image": "images/0001.jpg",                  # path relative to DIR
         "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],  # intrinsics of that image (px)
         "hands": [{"joints_3d": [[x, y, z], ...],    # 21 joints, mm, camera frame (x right,
                                                      #   y down, z forward), MediaPipe order
                    "handedness": "Right"}]}          # "Right" | "Left" | null (unknown)
    DIR/images/...      the photos
    DIR/SOURCE.md       where the data came from and its licence

Any real set with 3D truth can be converted into it once (see `handviz data real-folder`);
data under research-only licences stays out of the repository and out of training.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from handviz.data.real_sample import Sample

LABELS = "labels.jsonl"


class RealFolderError(ValueError):
    """The folder or one of its labels does not follow the format; the message names the line."""


def _hand_sample(root: Path, line_no: int, entry: dict, hand: dict, k: int, K: np.ndarray) -> Sample | None:
    joints = np.asarray(hand.get("joints_3d"), dtype=np.float64)
    if joints.shape != (21, 3):
        raise RealFolderError(f"{root / LABELS}:{line_no}: hand {k} joints_3d must be 21x3, got {joints.shape}")
    if not (np.all(np.isfinite(joints)) and np.all(joints[:, 2] > 0)):
        return None  # not scorable: behind the camera or missing joints
    handedness = hand.get("handedness") or "Right"
    if handedness not in ("Left", "Right"):
        raise RealFolderError(f"{root / LABELS}:{line_no}: handedness must be Left, Right or null, "
                              f"got {handedness!r}")
    image = Path(entry["image"])
    return Sample(dataset=root.name, split="real", sample_id=f"{image.with_suffix('').as_posix()}/{k}",
                  image_path=root / image, K=K, joints_mm=joints, handedness=handedness)


def load_real_folder(root: str | Path) -> list[Sample]:
    """Every scorable labelled hand in the folder, in file order (one Sample per hand)."""
    root = Path(root)
    path = root / LABELS
    if not path.is_file():
        raise RealFolderError(f"{path}: missing; a real evaluation folder holds {LABELS} and its images "
                              "(see `handviz eval --help`)")
    samples: list[Sample] = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            K = np.asarray(entry["K"], dtype=np.float64)
            hands = entry["hands"]
            _ = entry["image"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RealFolderError(f"{path}:{line_no}: not a label line ({exc}); each line needs image, K, hands") \
                from exc
        if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise RealFolderError(f"{path}:{line_no}: K must be a 3x3 intrinsics matrix with positive focals")
        for k, hand in enumerate(hands):
            sample = _hand_sample(root, line_no, entry, hand, k, K)
            if sample is not None:
                samples.append(sample)
    if not samples:
        raise RealFolderError(f"{path}: no scorable hand (21 finite joints in front of the camera)")
    return samples


def write_real_folder(samples: Sequence[Sample], out: str | Path, source_note: str) -> Path:
    """Copy the samples' images into out/images and write out/labels.jsonl and out/SOURCE.md.

    Hands of one image share a line. The images keep their file names, prefixed by a running
    number so that two datasets' "0001.jpg" cannot collide.
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    by_image: dict[Path, list[Sample]] = {}
    for sample in samples:
        by_image.setdefault(Path(sample.image_path), []).append(sample)
    lines = []
    for n, (image, group) in enumerate(by_image.items()):
        rel = Path("images") / f"{n:05d}_{image.name}"
        shutil.copyfile(image, out / rel)
        lines.append(json.dumps({
            "image": rel.as_posix(),
            "K": np.round(np.asarray(group[0].K, np.float64), 4).tolist(),
            "hands": [{"joints_3d": np.round(np.asarray(s.joints_mm, np.float64), 3).tolist(),
                       "handedness": s.handedness} for s in group],
        }))
    (out / LABELS).write_text("\n".join(lines) + "\n")
    (out / "SOURCE.md").write_text(source_note.rstrip() + "\n")
    return out
