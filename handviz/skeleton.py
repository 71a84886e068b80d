"""A hand's bones: their lengths, a hand set to given lengths, and an average adult's proportions.

The open hand model (assets/hand, an average adult's hand from MakeHuman) gives the proportions
that one estimate's bones are drawn toward: a single frame's bones are noisy (its keypoints' 2D
error moves each joint along its ray), a person's proportions vary far less than that.
"""

from __future__ import annotations

import functools

import numpy as np

from handviz.geometry import row_norms
from handviz.types import JOINT_PARENTS

#: The bones: (parent, child), the 20 of the kinematic tree.
LINKS: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(JOINT_PARENTS) if p >= 0)
_LINK_ENDS = np.array(LINKS).T  # (2, 20): parents, children


def _depth(joint: int) -> int:
    return 0 if JOINT_PARENTS[joint] < 0 else 1 + _depth(JOINT_PARENTS[joint])


#: The links grouped by their child's depth in the tree (the wrist's children first), each level
#: as (links, parents, children): one vectorised step per level instead of one per bone.
_LEVELS = tuple((links, _LINK_ENDS[0, links], _LINK_ENDS[1, links])
                for links in (np.flatnonzero([_depth(c) == d for _, c in LINKS])
                              for d in range(1, 1 + max(_depth(c) for _, c in LINKS))))


def with_bone_lengths(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(21, 3) joints with every bone set to the person's length (20,), LINKS' order.

    From the wrist out, each joint moves along the line from its (already moved) parent to where
    it was, to the bone's length: the hand keeps its pose and stays near its lines of sight, and
    its bones stop breathing from frame to frame (dev set's 8 videos, 2 seeds: bone-length CV
    5.9 -> 2.4 %, PA-MPJPE 10.32 -> 10.09 mm, acceleration 0.64 -> 0.62x MediaPipe's; keeping each
    bone's own direction instead: 10.21 mm).
    """
    src = np.asarray(joints, np.float64)
    lengths = np.asarray(lengths, np.float64)
    out = src.copy()
    for links, parent, child in _LEVELS:  # a level's parents are all placed by the levels before it
        base = out[parent]
        step = src[child] - base
        scale = lengths[links] / np.maximum(row_norms(step), 1e-9)
        out[child] = base + scale[:, None] * step
    return out


def link_lengths(joints: np.ndarray) -> np.ndarray:
    """(..., 21, 3) -> (..., 20) mm: the length of every bone in LINKS."""
    j = np.asarray(joints, np.float64)
    return row_norms(j.take(_LINK_ENDS[1], axis=-2) - j.take(_LINK_ENDS[0], axis=-2))


@functools.cache
def model_bone_lengths() -> np.ndarray:
    """(20,) mm: the open hand model's bones, read once."""
    from handviz.hand.asset import load_hand_asset

    return link_lengths(load_hand_asset().rest_joints)


def prior_bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(20,) mm: the open hand model's bones (assets/hand, an average adult's proportions), scaled
    to the total of the hand's (21, 3): what its bones would be with an average adult's proportions.

    On video it is the skeleton's prior for a track's first frame (handviz.temporal): one frame's
    bones are a poor guess at a person's, and with the skeleton learnt from a handful of frames
    whose errors persist, that first guess stays. Dev set's 8 videos, 3 seeds, against the first
    frame's own lengths: PA-MPJPE 10.06 -> 9.86 mm (0.964x -> 0.945x the same frames as photos);
    the learnt skeleton's bones err 0.114 (mean |log ratio| over the palm) before, the model's
    0.127 on its own. Scaled by the bones' mean ratio in logs instead: 9.89 mm; the model with
    stage 1's published finger proportions: 9.94 mm.
    """
    return _prior_for(link_lengths(joints))


def _prior_for(lengths: np.ndarray) -> np.ndarray:
    """prior_bone_lengths of a hand whose bones are `lengths` (20,)."""
    model = model_bone_lengths()
    return model * (float(lengths.sum()) / float(model.sum()))


def drawn_toward_prior(joints: np.ndarray, share: float) -> np.ndarray:
    """The hand (21, 3) with each bone's length moved toward an average adult's proportions
    (`prior_bone_lengths`) by share, in logs (0: as it is, 1: the proportions), by
    `with_bone_lengths`: the wrist stays, the pose and the bones' directions are kept."""
    if share <= 0:
        return np.asarray(joints, np.float64)
    own = link_lengths(joints)  # once: the prior is scaled by their total
    return with_bone_lengths(joints, np.maximum(own, 1e-9) ** (1.0 - share) * _prior_for(own) ** share)
