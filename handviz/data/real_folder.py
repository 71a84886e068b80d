"""A plain folder of real photos with 3D hand truth: the format `handviz eval --real DIR` reads.

    DIR/labels.jsonl    one JSON object per line, one line per image:
        {"image": "images/0001.jpg",                  # path relative to DIR
         "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],  # intrinsics of that image (px)
         "hands": [{"joints_3d": [[x, y, z], ...],    # 21 joints, mm, camera frame (x right,
                                                      #   y down, z forward), MediaPipe order;
                                                      #   null for a joint (or the whole hand)
                                                      #   the label does not give
                    "handedness": "Right"}]}          # "Right" | "Left" | null (unknown)
    DIR/images/...      the photos, directly or in subfolders (images/<camera>/0001.jpg): each
                        subfolder is a group that `eval --real` also reports on its own
    DIR/SOURCE.md       where the data came from and its licence

A hand with fewer than MIN_VISIBLE_JOINTS (6) labelled joints is kept but not scored: the
evaluation counts it as unlabelled.

Any real set with 3D truth can be converted into it once (see `handviz data real-folder`);
data under research-only licences stays out of the repository and out of training.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from handviz.data.real_sample import MIN_VISIBLE_JOINTS, Sample

LABELS = "labels.jsonl"


class RealFolderError(ValueError):
    """The folder or one of its labels does not follow the format; the message names the line."""


def _joints(root: Path, line_no: int, hand: dict, k: int) -> np.ndarray:
    """(21, 3) mm with NaN rows for the joints the label leaves out (null, or not in front of the camera)."""
    raw = hand.get("joints_3d")
    if raw is None:
        return np.full((21, 3), np.nan)
    if not isinstance(raw, list) or len(raw) != 21:
        shape = np.shape(raw) if isinstance(raw, list) else type(raw).__name__
        raise RealFolderError(f"{root / LABELS}:{line_no}: hand {k} joints_3d must be 21x3 (null for a "
                              f"joint the label lacks), got {shape}")
    joints = np.full((21, 3), np.nan)
    for j, xyz in enumerate(raw):
        if xyz is None:
            continue
        try:
            point = np.asarray(xyz, dtype=np.float64)
        except (TypeError, ValueError):
            point = np.empty(0)
        if point.shape != (3,):
            raise RealFolderError(f"{root / LABELS}:{line_no}: hand {k} joint {j} must be [x, y, z] or null, "
                                  f"got {xyz!r}")
        joints[j] = point
    with np.errstate(invalid="ignore"):
        joints[~(np.all(np.isfinite(joints), axis=1) & (joints[:, 2] > 0))] = np.nan
    return joints


def _group(image: Path) -> str:
    """The image's folder below images/ (or below DIR): images/<camera>/0001.jpg -> "<camera>"."""
    parts = image.parent.parts
    if parts and parts[0] == "images":
        parts = parts[1:]
    return "/".join(parts)


def _hand_sample(root: Path, line_no: int, entry: dict, hand: dict, k: int, K: np.ndarray) -> Sample:
    joints = _joints(root, line_no, hand, k)
    handedness = hand.get("handedness") or "Right"
    if handedness not in ("Left", "Right"):
        raise RealFolderError(f"{root / LABELS}:{line_no}: handedness must be Left, Right or null, "
                              f"got {handedness!r}")
    image = Path(entry["image"])
    return Sample(dataset=root.name, split="real", sample_id=f"{image.with_suffix('').as_posix()}/{k}",
                  image_path=root / image, K=K, joints_mm=joints, handedness=handedness, group=_group(image))


def load_real_folder(root: str | Path) -> list[Sample]:
    """Every labelled hand in the folder, in file order (one Sample per hand), those with fewer than
    MIN_VISIBLE_JOINTS joints too (Sample.labelled says which can be scored)."""
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
            if not isinstance(hand, dict):
                raise RealFolderError(f"{path}:{line_no}: hand {k} must be an object with joints_3d and handedness")
            samples.append(_hand_sample(root, line_no, entry, hand, k, K))
    if not any(s.labelled for s in samples):
        raise RealFolderError(f"{path}: no scorable hand (at least {MIN_VISIBLE_JOINTS} joints in front of "
                              "the camera)")
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
            "hands": [{"joints_3d": [None if np.isnan(xyz).any() else xyz.tolist()
                                     for xyz in np.round(np.asarray(s.joints_mm, np.float64), 3)],
                       "handedness": s.handedness} for s in group],
        }))
    (out / LABELS).write_text("\n".join(lines) + "\n")
    (out / "SOURCE.md").write_text(source_note.rstrip() + "\n")
    return out
