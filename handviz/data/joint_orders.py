"""Joint orders of public hand datasets, as index maps into MediaPipe's 21-joint order.

Each `<DATASET>_TO_MEDIAPIPE` tuple `idx` reads `mediapipe_joints = dataset_joints[..., idx, :]`:
entry i names the dataset joint that plays MediaPipe joint i (see handviz.types.HandJoint:
wrist, then thumb, index, middle, ring, pinky, each base -> tip).

- FreiHAND: wrist, then each finger base -> tip, thumb to pinky; the same as MediaPipe.
- HO3D: MANO's 16 joints (wrist; index, middle, pinky, ring, thumb, 3 each, base -> tip) with
  the five fingertips appended in thumb, index, middle, ring, pinky order (indices 16-20).
- InterHand2.6M (per hand): each finger tip -> base, thumb to pinky, wrist last (index 20).
  The 42-joint arrays hold the right hand in 0-20 and the left in 21-41.
- RHD (per hand): wrist first, then each finger tip -> base, thumb to pinky.
  The 42-joint arrays hold the left hand in 0-20 and the right in 21-41.
"""

from __future__ import annotations

import numpy as np

FREIHAND_TO_MEDIAPIPE: tuple[int, ...] = tuple(range(21))

HO3D_TO_MEDIAPIPE: tuple[int, ...] = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)

INTERHAND_TO_MEDIAPIPE: tuple[int, ...] = (20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16)

RHD_TO_MEDIAPIPE: tuple[int, ...] = (0, 4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13, 20, 19, 18, 17)

#: Where each hand sits in a dataset's 42-joint (two-hand) array: hand -> first index.
TWO_HAND_OFFSETS: dict[str, dict[str, int]] = {
    "interhand": {"Right": 0, "Left": 21},
    "rhd": {"Left": 0, "Right": 21},
}

_TO_MEDIAPIPE: dict[str, tuple[int, ...]] = {
    "mediapipe": tuple(range(21)),
    "freihand": FREIHAND_TO_MEDIAPIPE,
    "ho3d": HO3D_TO_MEDIAPIPE,
    "interhand": INTERHAND_TO_MEDIAPIPE,
    "rhd": RHD_TO_MEDIAPIPE,
}


def inverse(order: tuple[int, ...]) -> tuple[int, ...]:
    """The index map that undoes `order`: x[..., order, :][..., inverse(order), :] == x."""
    inv = [0] * len(order)
    for mediapipe_index, source_index in enumerate(order):
        inv[source_index] = mediapipe_index
    return tuple(inv)


def _order(dataset: str) -> tuple[int, ...]:
    try:
        return _TO_MEDIAPIPE[dataset.lower()]
    except KeyError:
        raise ValueError(f"unknown joint order {dataset!r}; known: {', '.join(sorted(_TO_MEDIAPIPE))}") from None


def to_mediapipe(joints: np.ndarray, dataset: str) -> np.ndarray:
    """joints: (..., 21, C) in `dataset`'s order -> (..., 21, C) in MediaPipe's order (a copy)."""
    arr = np.asarray(joints)
    if arr.ndim < 2 or arr.shape[-2] != 21:
        raise ValueError(f"expected (..., 21, C) joints in {dataset} order; got shape {arr.shape}")
    return arr[..., list(_order(dataset)), :].copy()


def from_mediapipe(joints: np.ndarray, dataset: str) -> np.ndarray:
    """joints: (..., 21, C) in MediaPipe's order -> (..., 21, C) in `dataset`'s order (a copy)."""
    arr = np.asarray(joints)
    if arr.ndim < 2 or arr.shape[-2] != 21:
        raise ValueError(f"expected (..., 21, C) joints in MediaPipe order; got shape {arr.shape}")
    return arr[..., list(inverse(_order(dataset))), :].copy()


def split_two_hands(joints42: np.ndarray, dataset: str) -> dict[str, np.ndarray]:
    """A (..., 42, C) two-hand array of InterHand2.6M or RHD -> {"Right": (..., 21, C), "Left": ...}.

    Both hands come out in MediaPipe order.
    """
    arr = np.asarray(joints42)
    key = dataset.lower()
    if key not in TWO_HAND_OFFSETS:
        raise ValueError(f"{dataset!r} has no two-hand layout; known: {', '.join(sorted(TWO_HAND_OFFSETS))}")
    if arr.ndim < 2 or arr.shape[-2] != 42:
        raise ValueError(f"expected (..., 42, C) joints for {dataset}; got shape {arr.shape}")
    return {
        hand: to_mediapipe(arr[..., start : start + 21, :], key) for hand, start in TWO_HAND_OFFSETS[key].items()
    }
