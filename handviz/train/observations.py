"""Stage-1 training rows made closer to real hands and to what MediaPipe reports (issue 10).

Applied per batch to the ground truth, so the shards stay as they were written:

1. **Bone lengths that vary like adults' do** (`vary_bone_lengths`). The open hand model has one
   set of proportions; real fingers differ by 5-11 % (SD of finger length over its mean, 51
   adults: Chatzioglou, Pinar and Govsa 2024) and single bones by more. Each finger is scaled
   towards the published finger/middle-finger ratios, then varied by the published finger SD and
   an independent per-bone part, and the 2D keypoints are re-projected (keeping the row's
   MediaPipe-like 2D error), so stage 1 cannot lean on one skeleton.
2. **MediaPipe's 3D as an observation** (`simulate_observations`). Its world landmarks and
   image-landmark z are made from the truth plus an error whose size (RMS over the joints, mm)
   is drawn per row and handed to the net as one more input, so the net learns how much to trust
   them at each size instead of learning render-only corrections of MediaPipe's real output on
   renders. At run time the size is a setting (cascade.json `observation_error_mm`).

Shapes: joints (B, 21, 3) mm camera frame, MediaPipe order; kp2d (B, 21, 2) px; K (B, 3, 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handviz.data.noise_model import hand_size_px
from handviz.eval.no_truth import FINGER_CHAINS, PUBLISHED_FINGER_MM, PUBLISHED_FINGER_SD_MM, finger_lengths
from handviz.geometry import project
from handviz.types import JOINT_PARENTS as PARENTS


@dataclass(frozen=True)
class ObservationConfig:
    """What `augment_keypoint_rows` does to a batch (all off by default: the shipped recipe before issue 10).

    bone_variation: vary bone lengths (see `vary_bone_lengths`); bone_sd: the per-bone part of
    it, on top of the published finger SD. published_proportions: scale each finger to the
    published finger/middle ratio first. observation_prob: share of rows that get simulated
    world landmarks and z (the rest have none, as when MediaPipe's 3D is left out);
    error_range_mm: the RMS error drawn per row, uniform; depth_factor: the error's depth (z)
    component over its x/y one (one image says least about depth); z_correlation: how much the
    image-z error shares the world error (one network makes both).
    """

    bone_variation: bool = False
    bone_sd: float = 0.06
    published_proportions: bool = True
    observation_prob: float = 0.0
    error_range_mm: tuple[float, float] = (2.0, 35.0)
    depth_factor: float = 2.0
    z_correlation: float = 0.5

    @property
    def simulates(self) -> bool:
        return self.observation_prob > 0


#: Joint index -> finger name, for joints whose incoming bone lies in that finger (MCP onwards).
FINGER_OF_JOINT = {j: name for name, chain in FINGER_CHAINS.items() for j in chain[1:]}


def proportion_factors(rest_joints: np.ndarray) -> dict[str, float]:
    """Per finger, the length factor that gives the rest hand the published finger/middle ratios."""
    lengths = finger_lengths(rest_joints)
    mid_pub = PUBLISHED_FINGER_MM["middle"]
    return {name: (PUBLISHED_FINGER_MM[name] / mid_pub) / (lengths[name] / lengths["middle"])
            for name in FINGER_CHAINS}


def vary_bone_lengths(joints: np.ndarray, rng: np.random.Generator, bone_sd: float,
                      mean_factors: dict[str, float] | None = None, finger_spread: float = 1.0) -> np.ndarray:
    """(B, 21, 3) -> (B, 21, 3): every bone rescaled about its parent joint, the wrist fixed.

    A finger's bones share its mean factor and one draw of finger_spread x the published finger
    SD; every bone (palm bones too) also gets an independent factor 1 + N(0, bone_sd).
    Directions are kept.
    """
    J = np.asarray(joints, np.float64)
    B = J.shape[0]
    names = list(FINGER_CHAINS)
    finger_draw = {n: 1.0 + rng.standard_normal(B) * finger_spread * PUBLISHED_FINGER_SD_MM[n] / PUBLISHED_FINGER_MM[n]
                   for n in names}
    bone_draw = np.clip(1.0 + rng.standard_normal((B, 21)) * bone_sd, 0.6, 1.4)
    out = J.copy()
    for j in range(1, 21):
        p = PARENTS[j]
        scale = bone_draw[:, j]
        if j in FINGER_OF_JOINT:
            name = FINGER_OF_JOINT[j]
            scale = scale * finger_draw[name] * (mean_factors or {}).get(name, 1.0)
        out[:, j] = out[:, p] + (J[:, j] - J[:, p]) * scale[:, None]
    return out


def reproject_with_error(new_joints: np.ndarray, old_joints: np.ndarray, kp2d: np.ndarray,
                         K: np.ndarray) -> np.ndarray:
    """Keypoints of new_joints carrying the row's 2D error (kp2d minus the old joints' projection),
    rescaled with the hand's 2D size (the noise model's error is a fraction of it)."""
    old = project(old_joints, K[:, None]).reshape(kp2d.shape)
    new = project(new_joints, K[:, None]).reshape(kp2d.shape)
    ratio = hand_size_px(new) / np.maximum(hand_size_px(old), 1e-6)
    return (new + (kp2d - old) * ratio[:, None, None]).astype(np.float32)


def chain_errors(B: int, rng: np.random.Generator, depth_factor: float) -> np.ndarray:
    """(B, 21, 3) root-relative errors with unit RMS over the joints: each bone adds a random
    step to its parent's error (a wrong bone direction moves everything after it), z x depth_factor."""
    steps = rng.standard_normal((B, 21, 3)) * np.array([1.0, 1.0, depth_factor])
    err = np.zeros((B, 21, 3))
    for j in range(1, 21):
        err[:, j] = err[:, PARENTS[j]] + steps[:, j]
    rms = np.sqrt((err[:, 1:] ** 2).sum(-1).mean(-1))
    return err / np.maximum(rms, 1e-9)[:, None, None]


def simulate_observations(joints: np.ndarray, K: np.ndarray, error_mm: np.ndarray, rng: np.random.Generator,
                          cfg: ObservationConfig) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe-like (world (B, 21, 3) mm wrist-relative, image z (B, 21) px) made from the truth.

    error_mm: (B,) RMS error of the world landmarks over the joints. The world landmarks also
    get their own size (x U(0.85, 1.15): MediaPipe's comes from its hand model); the image z is
    the truth's depth relative to the wrist in pixels (weak perspective at the wrist's depth) with
    an error partly shared with the world landmarks' and its own scale (x U(0.8, 1.2)).
    """
    J = np.asarray(joints, np.float64)
    B = J.shape[0]
    rel = J - J[:, :1]
    e_world = chain_errors(B, rng, cfg.depth_factor)
    world = (rel + e_world * error_mm[:, None, None]) * rng.uniform(0.85, 1.15, (B, 1, 1))
    rho = cfg.z_correlation
    e_own = chain_errors(B, rng, cfg.depth_factor)[..., 2]
    e_z = rho * e_world[..., 2] + np.sqrt(1.0 - rho**2) * e_own
    z_mm = rel[..., 2] + e_z / cfg.depth_factor * error_mm[:, None] * rng.uniform(0.75, 1.5, (B, 1))
    fx = np.asarray(K, np.float64)[:, 0, 0]
    z_px = z_mm * (fx / np.maximum(J[:, 0, 2], 1.0))[:, None] * rng.uniform(0.8, 1.2, (B, 1))
    return world.astype(np.float32), z_px.astype(np.float32)


def augment_keypoint_rows(joints_cam: np.ndarray, kp2d: np.ndarray, K: np.ndarray, rng: np.random.Generator,
                          cfg: ObservationConfig, mean_factors: dict[str, float] | None = None,
                          vary_rows: np.ndarray | None = None):
    """One batch: (joints_cam, kp2d, kp_z, world, error_mm) after the configured changes.

    vary_rows: (B,) bool, the rows whose bones may change (None: all). Rows whose keypoints
    MediaPipe found on a render keep their hand: their 2D error belongs to that image.
    Rows without a simulated observation get NaN world/z (left out of the condition) and error 0.
    """
    J = np.asarray(joints_cam, np.float64)
    kp2d = np.array(kp2d, np.float32, copy=True)
    if cfg.bone_variation:
        rows = np.ones(len(J), bool) if vary_rows is None else np.asarray(vary_rows, bool)
        if rows.any():
            J = J.copy()
            varied = vary_bone_lengths(J[rows], rng, cfg.bone_sd, mean_factors if cfg.published_proportions else None)
            kp2d[rows] = reproject_with_error(varied, J[rows], kp2d[rows], K[rows])
            J[rows] = varied
    B = J.shape[0]
    world = np.full((B, 21, 3), np.nan, np.float32)
    kp_z = np.full((B, 21), np.nan, np.float32)
    error = np.zeros(B, np.float32)
    if cfg.simulates:
        seen = rng.random(B) < cfg.observation_prob
        if seen.any():
            error[seen] = rng.uniform(*cfg.error_range_mm, int(seen.sum()))
            world[seen], kp_z[seen] = simulate_observations(J[seen], K[seen], error[seen], rng, cfg)
    return J.astype(np.float32), kp2d, kp_z, world, error
