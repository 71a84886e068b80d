"""Official results files for the FreiHAND and HO3D CodaLab challenges.

Both challenges take a zip holding pred.json = [xyz_list, verts_list]: one 21x3 joint list and
one Vx3 vertex list per evaluation image, in the order of the dataset's evaluation list, in
metres and in the absolute camera frame. They differ in the rest:

- FreiHAND: OpenCV camera frame (z forward), FreiHAND joint order (= MediaPipe's).
- HO3D: OpenGL camera frame (y up, hand at negative z), HO3D joint order (MANO + tips).

Inputs here are handviz's: millimetres, MediaPipe order, OpenCV frame, absolute positions
(root-relative joints plus a wrist position, e.g. HO3D's given root). Vertices of any topology
are accepted: with V != 778 both challenges skip the mesh error and align the vertices for the
F-score with the transform fitted on the joints.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from handviz.data.joint_orders import from_mediapipe, to_mediapipe

FREIHAND_EVAL_SIZE = 3960
HO3D_EVAL_SIZES = {"v2": 11524, "v3": 20137}
MANO_VERTEX_COUNT = 778

Missing = Literal["error", "zeros"]
_DATASETS = ("freihand", "ho3d")


def _check_dataset(dataset: str) -> None:
    if dataset not in _DATASETS:
        raise ValueError(f"dataset must be one of {_DATASETS}; got {dataset!r}")


def _to_official(points_mm: np.ndarray, dataset: str, is_joints: bool) -> np.ndarray:
    pts = np.asarray(points_mm, dtype=np.float64) / 1000.0
    if dataset == "ho3d":
        if is_joints:
            pts = from_mediapipe(pts, "ho3d")
        pts = pts * np.array([1.0, -1.0, -1.0])  # OpenCV -> OpenGL
    return pts


def _from_official(points_m: np.ndarray, dataset: str, is_joints: bool) -> np.ndarray:
    pts = np.asarray(points_m, dtype=np.float64)
    if dataset == "ho3d":
        pts = pts * np.array([1.0, -1.0, -1.0])  # OpenGL -> OpenCV
        if is_joints:
            pts = to_mediapipe(pts, "ho3d")
    return pts * 1000.0


def build_pred(
    joints_mm: Sequence[np.ndarray | None],
    verts_mm: Sequence[np.ndarray | None],
    dataset: str,
    missing: Missing = "error",
) -> tuple[list, int]:
    """The [xyz_list, verts_list] structure for `dataset`, and how many entries were missing.

    joints_mm: per image (21, 3) mm, MediaPipe order, absolute OpenCV camera frame, or None
    when nothing was detected; verts_mm: per image (V, 3) mm in the same frame, or None.
    missing="zeros" writes all-zero entries for None (the challenges' "zero predictor"), so a
    run with failures still yields a complete file; "error" refuses.
    """
    _check_dataset(dataset)
    if len(joints_mm) != len(verts_mm):
        raise ValueError(
            f"{len(joints_mm)} joint entries but {len(verts_mm)} vertex entries; give one of each per image"
        )
    present_verts = [np.asarray(v) for v in verts_mm if v is not None]
    vertex_count = present_verts[0].shape[0] if present_verts else MANO_VERTEX_COUNT
    xyz_list, verts_list, n_missing = [], [], 0
    for i, (joints, verts) in enumerate(zip(joints_mm, verts_mm)):
        if joints is None or verts is None:
            if missing != "zeros":
                raise ValueError(f"entry {i}: no prediction; pass missing='zeros' to write the zero predictor there")
            n_missing += 1
            xyz_list.append(np.zeros((21, 3)).tolist())
            verts_list.append(np.zeros((vertex_count, 3)).tolist())
            continue
        j, v = np.asarray(joints, dtype=np.float64), np.asarray(verts, dtype=np.float64)
        if j.shape != (21, 3):
            raise ValueError(f"entry {i}: joints must be (21, 3) mm; got {j.shape}")
        if v.shape != (vertex_count, 3):
            raise ValueError(f"entry {i}: vertices must be ({vertex_count}, 3) like the first entry; got {v.shape}")
        if not np.all(np.isfinite(j)) or not np.all(np.isfinite(v)):
            raise ValueError(f"entry {i}: joints or vertices contain NaN/inf")
        if j[0, 2] <= 0:
            raise ValueError(
                f"entry {i}: wrist depth {j[0, 2]:.1f} mm is not in front of the camera; the challenges need "
                "absolute camera-frame positions (add the wrist position to root-relative joints)"
            )
        xyz_list.append(np.round(_to_official(j, dataset, True), 6).tolist())
        verts_list.append(np.round(_to_official(v, dataset, False), 6).tolist())
    return [xyz_list, verts_list], n_missing


def write_pred_json(
    path: str | os.PathLike[str],
    joints_mm: Sequence[np.ndarray | None],
    verts_mm: Sequence[np.ndarray | None],
    dataset: str,
    missing: Missing = "error",
    expected_count: int | None = None,
) -> int:
    """Write `dataset`'s pred.json (see build_pred); returns the number of missing entries filled.

    expected_count: refuse a file of the wrong length (FREIHAND_EVAL_SIZE, HO3D_EVAL_SIZES[v]).
    The file is written to a temporary name and renamed, so a failure never leaves half a file.
    """
    if expected_count is not None and len(joints_mm) != expected_count:
        raise ValueError(f"{dataset} expects {expected_count} predictions, got {len(joints_mm)}")
    pred, n_missing = build_pred(joints_mm, verts_mm, dataset, missing)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pred-", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(pred, f)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n_missing


def read_pred_json(path: str | os.PathLike[str], dataset: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A pred.json back in handviz conventions: per image (21, 3) joints and (V, 3) vertices.

    Millimetres, OpenCV camera frame, MediaPipe order; for scoring a saved submission locally.
    """
    _check_dataset(dataset)
    try:
        with Path(path).open("r", encoding="utf-8") as f:
            pred = json.load(f)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable pred.json ({exc})") from exc
    if not (isinstance(pred, list) and len(pred) == 2 and len(pred[0]) == len(pred[1])):
        raise ValueError(f"{path}: expected [xyz_list, verts_list] of equal lengths")
    joints = [_from_official(np.asarray(x), dataset, True) for x in pred[0]]
    verts = [_from_official(np.asarray(v), dataset, False) for v in pred[1]]
    return joints, verts


def zip_submission(json_path: str | os.PathLike[str], zip_path: str | os.PathLike[str] | None = None) -> Path:
    """Pack pred.json as the challenges want it: a zip with pred.json at its top level. Returns the zip's path."""
    src = Path(json_path)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such prediction file; write it with write_pred_json first")
    out = Path(zip_path) if zip_path is not None else src.with_suffix(".zip")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(src, arcname="pred.json")
    return out
