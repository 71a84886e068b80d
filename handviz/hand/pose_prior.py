"""Plausible random hands for the synthetic data engine (numpy; deterministic given the rng).

sample_poses mixes three sources, then clamps to the joint limits:
- named gestures (open, fist, pinch, counting, ...) with Gaussian jitter;
- a finger-synergy model: one grip level shared by all fingers plus noise correlated between
  neighbouring fingers, PIP following MCP, DIP ~ 2/3 PIP, spread shrinking as fingers curl;
- uniform draws inside the limits (with the DIP coupling), for coverage of odd poses.
Angle conventions are articulation.py's: (flex, abd, twist) radians per MediaPipe joint.
"""

from __future__ import annotations

import numpy as np

from handviz.hand.articulation import JOINT_LIMITS, clamp_to_limits
from handviz.types import NUM_JOINTS

#: MCP joint of index, middle, ring, pinky (PIP = +1, DIP = +2).
FINGER_MCPS = (5, 9, 13, 17)
THUMB = (1, 2, 3)  # CMC, MCP, IP

# Finger = (MCP flex, PIP flex, DIP flex, MCP abd) in degrees; thumb = (CMC flex, CMC abd,
# CMC twist, MCP flex, IP flex). Positive abd = toward the thumb.
_STRAIGHT = (0, 0, 0, 0)
_CURLED = (88, 100, 65, 0)
_THUMB_OPEN = (0, 0, 0, 0, 0)
_THUMB_TUCKED = (40, -10, 20, 45, 35)  # across the curled fingers, as in a fist
_THUMB_ON_MIDDLE = (40, 0, 25, 40, 20)  # holds the curled middle/ring (counting, pointing)

_GESTURES_DEG: dict[str, tuple[tuple[float, ...], ...]] = {
    # name: (thumb, index, middle, ring, pinky)
    "open": (_THUMB_OPEN, _STRAIGHT, _STRAIGHT, _STRAIGHT, _STRAIGHT),
    "spread": ((-15, -10, 0, 0, 0), (0, 0, 0, 18), (0, 0, 0, 0), (0, 0, 0, -15), (0, 0, 0, -25)),
    "relaxed": ((10, 5, 5, 15, 15), (20, 30, 20, 3), (25, 35, 23, 0), (30, 40, 27, -3), (35, 45, 30, -6)),
    "fist": (_THUMB_TUCKED, _CURLED, _CURLED, _CURLED, _CURLED),
    "pinch": ((35, 6, 10, 7, 12), (52, 48, 25, 0), (25, 20, 10, 0), (20, 15, 10, -3), (20, 15, 10, -6)),
    "point": (_THUMB_ON_MIDDLE, _STRAIGHT, _CURLED, _CURLED, _CURLED),
    "power_grasp": ((20, 25, 20, 25, 15), (55, 65, 40, 0), (60, 65, 40, 0), (62, 65, 40, 0), (65, 65, 40, 0)),
    "precision_grasp": ((25, 30, 30, 15, 15), (35, 40, 25, 8), (38, 40, 25, 0), (40, 40, 25, -6), (42, 40, 25, -12)),
    "ok": ((29, 6, 10, 14, 21), (57, 47, 20, 0), (5, 5, 3, 0), (5, 5, 3, -6), (5, 5, 3, -12)),
    "thumbs_up": ((25, -25, -10, 0, 0), _CURLED, _CURLED, _CURLED, _CURLED),
    "count_1": (_THUMB_ON_MIDDLE, _STRAIGHT, _CURLED, _CURLED, _CURLED),
    "count_2": ((40, 0, 25, 40, 20), (0, 0, 0, 8), (0, 0, 0, -5), _CURLED, _CURLED),
    "count_3": ((42, 0, 25, 45, 30), (0, 0, 0, 5), _STRAIGHT, (0, 0, 0, -5), _CURLED),
    "count_4": ((45, -10, 30, 45, 30), (0, 0, 0, 5), _STRAIGHT, (0, 0, 0, -5), (0, 0, 0, -10)),
    "count_5": ((-5, -5, 0, 0, 0), (0, 0, 0, 12), _STRAIGHT, (0, 0, 0, -10), (0, 0, 0, -18)),
}


def _gesture_angles(spec: tuple[tuple[float, ...], ...]) -> np.ndarray:
    thumb, *fingers = spec
    angles = np.zeros((NUM_JOINTS, 3))
    cmc, mcp, ip = THUMB
    angles[cmc] = thumb[0], thumb[1], thumb[2]
    angles[mcp, 0] = thumb[3]
    angles[ip, 0] = thumb[4]
    for base, (mcp_flex, pip_flex, dip_flex, abd) in zip(FINGER_MCPS, fingers):
        angles[base] = mcp_flex, abd, 0.0
        angles[base + 1, 0] = pip_flex
        angles[base + 2, 0] = dip_flex
    return np.deg2rad(angles)


#: name -> (21, 3) radians, all within JOINT_LIMITS.
GESTURES: dict[str, np.ndarray] = {name: _gesture_angles(spec) for name, spec in _GESTURES_DEG.items()}

# Jitter (radians, 1 sigma) on (flex, abd, twist) for gestures.
_JITTER = np.deg2rad([8.0, 4.0, 3.0])


def _jittered_gestures(n: int, rng: np.random.Generator) -> np.ndarray:
    if n == 0:  # small batches can draw no gesture at all
        return np.zeros((0, NUM_JOINTS, 3))
    names = list(GESTURES)
    picks = rng.integers(len(names), size=n)
    base = np.stack([GESTURES[names[i]] for i in picks])
    return base + rng.normal(size=base.shape) * _JITTER


def _synergy_poses(n: int, rng: np.random.Generator) -> np.ndarray:
    """Grip level shared by the fingers + noise correlated between neighbours."""
    angles = np.zeros((n, NUM_JOINTS, 3))
    grip = rng.uniform(-0.15, 1.0, size=(n, 1))
    idx = np.arange(4)
    corr = 0.6 ** np.abs(idx[:, None] - idx[None, :])  # neighbouring fingers move together
    noise = rng.multivariate_normal(np.zeros(4), corr, size=n) * rng.uniform(0.1, 0.45, size=(n, 1))
    curl = np.clip(grip + noise, -0.25, 1.0)  # (n, 4) per finger
    pip_curl = np.clip(curl + rng.normal(scale=0.15, size=curl.shape), 0.0, 1.0)
    spread = rng.uniform(-0.2, 1.0, size=(n, 1)) * (1.0 - np.clip(curl, 0.0, 1.0))
    spread_dir = np.array([1.0, 0.2, -0.8, -1.3])  # index radial, ring/pinky ulnar
    for k, base in enumerate(FINGER_MCPS):
        angles[:, base, 0] = np.deg2rad(90.0) * curl[:, k]
        angles[:, base, 1] = np.deg2rad(18.0) * spread[:, 0] * spread_dir[k] + rng.normal(scale=np.deg2rad(3.0), size=n)
        angles[:, base, 2] = rng.normal(scale=np.deg2rad(3.0), size=n)
        angles[:, base + 1, 0] = np.deg2rad(105.0) * pip_curl[:, k]
        angles[:, base + 2, 0] = angles[:, base + 1, 0] * 2.0 / 3.0 + rng.normal(scale=np.deg2rad(5.0), size=n)
    # The thumb follows the grip loosely: opposition grows with it.
    thumb_curl = np.clip(grip[:, 0] + rng.normal(scale=0.35, size=n), -0.4, 1.0)
    cmc, mcp, ip = THUMB
    angles[:, cmc, 0] = np.deg2rad(40.0) * thumb_curl
    # Opposition brings the thumb out in front of the palm (palmar abduction) as it flexes.
    angles[:, cmc, 1] = np.deg2rad(20.0) * np.clip(thumb_curl, 0, 1) + rng.normal(scale=np.deg2rad(10.0), size=n)
    angles[:, cmc, 2] = np.deg2rad(25.0) * np.clip(thumb_curl, 0, 1) + rng.normal(scale=np.deg2rad(6.0), size=n)
    angles[:, mcp, 0] = np.deg2rad(45.0) * np.clip(thumb_curl + rng.normal(scale=0.2, size=n), -0.2, 1.0)
    angles[:, ip, 0] = np.deg2rad(50.0) * np.clip(thumb_curl + rng.normal(scale=0.3, size=n), -0.3, 1.0)
    return angles


def _uniform_poses(n: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1]
    angles = rng.uniform(size=(n, NUM_JOINTS, 3)) * (hi - lo) + lo
    for base in FINGER_MCPS:  # keep DIP tied to PIP even here: an anatomical constraint
        angles[:, base + 2, 0] = angles[:, base + 1, 0] * 2.0 / 3.0 + rng.normal(scale=np.deg2rad(6.0), size=n)
    return angles


def sample_poses(
    n: int, rng: np.random.Generator, mix: tuple[float, float, float] = (0.4, 0.45, 0.15)
) -> np.ndarray:
    """n poses (n, 21, 3) float32 radians, always within JOINT_LIMITS, shuffled.

    mix: fractions of (jittered gestures, synergy poses, uniform in-limit poses).
    """
    counts = rng.multinomial(n, np.asarray(mix) / np.sum(mix))
    parts = [
        _jittered_gestures(counts[0], rng),
        _synergy_poses(counts[1], rng),
        _uniform_poses(counts[2], rng),
    ]
    angles = clamp_to_limits(np.concatenate(parts))[rng.permutation(n)]
    return angles.astype(np.float32)


def sample_shapes(n: int, rng: np.random.Generator, num_shapes: int = 4, sigma: float = 0.5) -> np.ndarray:
    """n shape coefficient vectors (n, num_shapes) float32: N(0, sigma^2) clipped to [-1, 1]
    (the asset scales each component so +-1 is a plausible adult extreme)."""
    return np.clip(rng.normal(scale=sigma, size=(n, num_shapes)), -1.0, 1.0).astype(np.float32)


def _rot(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotations about a coordinate axis: angle (n,) -> (n, 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros((angle.shape[0], 3, 3))
    i, j = [k for k in range(3) if k != axis]
    R[:, axis, axis] = 1.0
    R[:, i, i], R[:, i, j], R[:, j, i], R[:, j, j] = c, -s, s, c
    return R


def sample_webcam_rotations(n: int, rng: np.random.Generator, back_fraction: float = 0.45) -> np.ndarray:
    """Wrist orientations (n, 3, 3) float32 as a webcam sees hands (camera frame: x right,
    y down, z forward). Identity = palm to the camera, fingers up, thumb on the image's right.

    Palm or back toward the camera (back_fraction), yaw about the hand's long axis up to 60 deg,
    tilt toward/away from the camera (sigma 25 deg, at most 60), and an in-image roll of sigma
    45 deg capped at 120 deg, so fingers point up to sideways and rarely down.
    """
    back = rng.uniform(size=n) < back_fraction
    face = _rot(1, np.where(back, np.pi, 0.0))  # show the back: turn about the finger axis
    yaw = _rot(1, rng.uniform(-1.0, 1.0, size=n) * np.deg2rad(60.0))
    tilt = _rot(0, np.clip(rng.normal(scale=np.deg2rad(25.0), size=n), -np.deg2rad(60.0), np.deg2rad(60.0)))
    roll = _rot(2, np.clip(rng.normal(scale=np.deg2rad(45.0), size=n), -np.deg2rad(120.0), np.deg2rad(120.0)))
    return (roll @ tilt @ yaw @ face).astype(np.float32)
