"""Joint hypotheses made to agree with the 2D evidence and with MediaPipe's own 3D (numpy only).

Stage 1 draws N root-relative hands from the 2D keypoints' shape. What it does not use well on
real photos (measured in issue 10), and the cloud's make-up (issue 20), are applied here:

1. **The keypoint rays.** A joint seen at pixel (u, v) lies on the ray K^-1 (u, v, 1). Each
   hypothesis keeps its depths and has x, y put back on the rays (``snap_to_rays``), so every
   hypothesis projects onto the keypoints and what is left open is depth.
2. **MediaPipe's 3D as an observation.** Its world landmarks (aligned to the snapped mean) and
   its image-landmark z are two more measurements of each joint's depth; the three are averaged
   (``mediapipe_depths``, ``fuse_depths``), per digit favouring those that give it a hand's
   length on its rays. That average is the estimate.
3. **The cloud is doubt about the hand's shape.** Every hypothesis keeps the estimate's wrist,
   size and distance (where the hand is, which one image leaves open, is handviz.placement's
   interval, not spread). Some are blends of the depth sources on the rays (if one source, or a
   mix of them, is right for this photo, one of these is near it: the best of N); each of the
   others leans one digit toward or away from the camera by its joints' 90 % radius
   (``JointDoubt``), the digits in turn. That radius is predicted from what says the evidence is
   weak, over the digit's joints: MediaPipe's image z straying from the fused depth, how far
   MediaPipe's keypoints move on slightly changed copies of the photo (handviz.pipeline.augment),
   read against the hand's 2D extent, and the fused digit bent sideways at its hinge joints
   (``sideways_bend``), passing into another (``digit_overlap``) or shorter than a hand's
   (``digit_shortfall``). One digit per hypothesis,
   not every digit a little: the radius is the same, but a hypothesis strays only where it
   leans (dev set, 5 seeds: a leaning hypothesis 1.56x -> 1.30x the estimate's error, radii
   ranking the per-joint error at Pearson 0.38 -> 0.50; with the 2D signals read against the
   hand's extent, 0.53, and the per-photo error at Spearman 0.48, the 90 % ball holding the
   truth for 86 % of joints at 16.7 mm; weights/MODEL_CARD.md).

Shapes: joints (N, 21, 3) or (21, 3) in mm, camera frame (x right, y down, z forward); kp2d
(21, 2) px; K (3, 3).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from handviz.geometry import row_norms
from handviz.skeleton import LINKS, drawn_toward_prior, link_lengths, model_bone_lengths
from handviz.types import DIGIT_CHAINS

#: A joint may not be placed nearer the camera than this (mm): keeps a bad depth off the lens.
MIN_DEPTH_MM = 50.0
#: About a finger's thickness (mm): two digits' bones nearer than this pass through each other.
FINGER_THICKNESS_MM = 15.0


@dataclass(frozen=True)
class PosteriorConfig:
    """How the hypotheses are combined with the 2D keypoints and MediaPipe's 3D.

    The estimate. world_weight / image_z_weight: weights of MediaPipe's two depth observations
    (its world landmarks, aligned to our hand, and its image-landmark z) in the fused depths; our
    snapped hypotheses get the rest (dev set, 5 seeds: ours 0.5 beats 1/3, 10.49 against 10.61 mm).
    ray_tolerance: how far (a fraction of the hand's 2D size) the aligned world landmarks may pull
    a joint off its keypoint ray, sideways (0.02 against 0, 3 seeds: 10.64 against 10.81 mm). length_sd:
    per digit, weight each depth source also by how plausible the digit's length is with its
    depths on the rays, against the stage-1 samples' mean (`fuse_depths`; 0.15 against 0, 3 seeds:
    10.64 against 10.86 mm).

    The cloud: doubt about the hand's shape only (where the hand is, size against distance, is
    `distance_interval`). blend_fraction: the share of hypotheses that are blends of the depth
    sources, exactly on the keypoint rays, their differences scaled by blend_spread_scale (they
    carry the best of N). Each of the rest leans one digit toward or away from the camera by its
    joints' 90 % radius, `JointDoubt` (which on photos also uses MediaPipe's moves under
    test-time augmentation, `handviz.pipeline.augment`) times lean_profile: the share of that
    radius at the digit's base, its two middle joints and its tip (the base on the palm moves
    less, so the palm keeps its length; the tip, wrong most often, most). thumb_lean_share: the
    thumb's leans times this (on the dev set its radii fell short of its error most often: with
    the doubt read over each digit, at 1.3 its joints were inside their balls 77-81 % of the
    time, the other digits' 83-94 %).

    bone_prior_share: the fused hand's bones are then drawn toward an average adult's proportions
    by this share, in logs (`skeleton.drawn_toward_prior`), and the cloud with them: one photo's
    bones carry its keypoints' 2D error, a person's proportions vary far less.
    """

    world_weight: float = 1 / 3
    image_z_weight: float = 1 / 3
    ray_tolerance: float = 0.0
    length_sd: float = 0.0
    blend_fraction: float = 0.0
    blend_spread_scale: float = 1.0
    lean_profile: tuple[float, float, float, float] = (0.5, 1.0, 1.0, 1.0)
    thumb_lean_share: float = 1.0
    bone_prior_share: float = 0.0
    doubt: JointDoubt = field(default_factory=lambda: JointDoubt())

    def __post_init__(self) -> None:
        if min(self.world_weight, self.image_z_weight) < 0 or self.world_weight + self.image_z_weight > 1:
            raise ValueError(f"world_weight {self.world_weight} and image_z_weight {self.image_z_weight} must be "
                             "non-negative and sum to at most 1 (our own depth gets the rest)")
        if not 0 <= self.blend_fraction <= 1:
            raise ValueError(f"blend_fraction {self.blend_fraction} must lie in [0, 1]")
        if len(self.lean_profile) != _JOINTS_PER_DIGIT or min(self.lean_profile) < 0:
            raise ValueError(f"lean_profile {self.lean_profile} must be {_JOINTS_PER_DIGIT} non-negative shares "
                             "(a digit's base, its two middle joints, its tip)")

    @classmethod
    def from_dict(cls, d: dict | None) -> PosteriorConfig:
        """From cascade.json's "posterior" section; unknown keys are an error (a typo would be silent)."""
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown posterior settings {sorted(unknown)}; known: {sorted(known)}")
        if "doubt" in d:
            d["doubt"] = JointDoubt.from_dict(d["doubt"])
        if "lean_profile" in d:
            d["lean_profile"] = tuple(float(v) for v in d["lean_profile"])
        return cls(**d)


@dataclass(frozen=True)
class JointDoubt:
    """Each joint's 90 % radius (mm): how far its 3D error may reach, linear in the evidence
    that the photo is hard. The 2D signals are measured against the hand's 2D extent (the
    keypoints' bounding-box diagonal, `hand_extent_px`): the same wobble is a larger share of a
    closed or foreshortened hand, and a share needs no focal length or distance to turn pixels
    into millimetres.

    - image_z_relative: how far MediaPipe's image-landmark depth disagrees with the fused depth
      (wrist-relative), over the hand's 2D extent at its depth;
    - tta_keypoints_relative: how far MediaPipe's 2D keypoints move when the photo is rotated by
      +-8 degrees, shrunk to 0.85 or mirrored (mean distance from their mean), over the hand's
      2D extent;
    - sideways_bend: how far the estimate's digit bends sideways at its inner joints
      (`sideways_bend`, a sine): those joints are hinges, so a finger bent about the palm's normal
      is one whose depths on the keypoint rays are wrong;
    - overlap: how far the estimate's digit passes into another (`digit_overlap`), which fingers
      do not do either;
    - shortfall: how much shorter the estimate's digit is than an average adult's on a hand of
      its size (`digit_shortfall`): keypoints bunched up on a curled or hidden digit, depths
      that do not make up its length;
    - tta_lost: the share of the photo's changed copies on which MediaPipe did not find the hand
      again, or called it the other hand (one number for the whole hand): a hand MediaPipe
      cannot hold on to is one it reads badly (dev set's mirrored 256-px crops, seeds 0-2, the
      line refitted: per-joint Pearson 0.552 -> 0.564, per-photo Spearman 0.580 -> 0.605, AUSE
      1.08 -> 0.92 mm; the full frames within 0.005).

    The bend, the overlap and the shortfall read our own estimate for what no hand does (dev set, seeds 0-2, the doubt
    refitted: per-joint Pearson 0.573 -> 0.600 -> 0.607 on the photos, 0.517 -> 0.532 -> 0.551
    on mirrored 256-px crops; the line's Pearson fitted on four cameras and scored on the other
    four 0.38 -> 0.45 with the bend; stop 37, the shortfall, on the dev set regenerated with
    every photo labelled: per-photo Spearman 0.619 -> 0.652 on the photos, 0.553 -> 0.565 on
    mirrored crops; weights/MODEL_CARD.md).

    Each signal is averaged over the digit's four joints first (`digit_means`): a leaning
    hypothesis leans a whole digit, and one joint's wobble says as much about its neighbours as
    about itself (dev set, seeds 0-2, the doubt refitted: per-joint Pearson 0.454 -> 0.483 on
    256-px crops, 0.470 -> 0.491 on mirrored crops, the 90 % ball 81.7 -> 84.5 % and 81.9 ->
    83.6 % at a smaller radius; weights/MODEL_CARD.md). How far MediaPipe's world landmarks move
    on the changed copies then adds nothing (its fitted weight 0.025).

    Fitted by least squares on the dev set to the estimate's per-joint error and scaled so that
    the 90 % ball holds the truth about 85-90 % of the time (handviz.eval.doubt_fit). Without
    test-time augmentation (live video) the keypoints' moves and the share lost are unknown, and
    the other four signals have their own fit (the fields ending in _without_tta).
    """

    base_mm: float = 5.0
    image_z_relative: float = 20.0
    tta_keypoints_relative: float = 0.0
    sideways_bend: float = 0.0
    overlap: float = 0.0
    shortfall: float = 0.0
    tta_lost: float = 0.0
    base_mm_without_tta: float = 8.0
    image_z_relative_without_tta: float = 20.0
    sideways_bend_without_tta: float = 0.0
    overlap_without_tta: float = 0.0
    shortfall_without_tta: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> JointDoubt:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown doubt settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**d)

    def expected_error(self, image_z_gap: np.ndarray, tta_keypoints: np.ndarray | None,
                       bend: np.ndarray, overlap: np.ndarray, shortfall: np.ndarray,
                       tta_lost: float = 0.0) -> np.ndarray:
        """(21,) mm radii from (21,) per-joint signals: the image-z gap and the keypoints' moves
        as shares of the hand's 2D extent (None when the photo was not augmented), the digit's
        sideways bend (`sideways_bend`), its overlap with another digit (`digit_overlap`) and its
        shortfall from a hand's length (`digit_shortfall`), each averaged over its digit; and the
        share of the changed copies where MediaPipe lost the hand (one number for the hand)."""
        if tta_keypoints is None:
            gap, bend, overlap, shortfall = digit_means(np.array([image_z_gap, bend, overlap, shortfall], np.float64))
            return self.base_mm_without_tta + self.image_z_relative_without_tta * gap + \
                self.sideways_bend_without_tta * bend + self.overlap_without_tta * overlap + \
                self.shortfall_without_tta * shortfall
        gap, tta, bend, overlap, shortfall = digit_means(np.array([image_z_gap, tta_keypoints, bend, overlap,
                                                                   shortfall], np.float64))
        return self.base_mm + self.image_z_relative * gap + self.tta_keypoints_relative * tta + \
            self.sideways_bend * bend + self.overlap * overlap + self.shortfall * shortfall + \
            self.tta_lost * tta_lost


def hand_extent_px(kp2d: np.ndarray) -> float:
    """The keypoints' bounding-box diagonal (px): the hand's size as the image shows it."""
    kp = np.asarray(kp2d, np.float64)
    return float(np.linalg.norm(kp.max(axis=0) - kp.min(axis=0)))


def normalized_rays(kp2d: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 21, 2) px -> (..., 21, 2) normalised image coordinates ((u - cx) / fx, (v - cy) / fy)."""
    K = np.asarray(K, np.float64)
    return (np.asarray(kp2d, np.float64) - K[:2, 2]) / K.diagonal()[:2]


def root_translations(joints_rel: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Translations t (N, 3) putting each (N, 21, 3) hand's joints closest to its rays (N, 21, 2).

    Per joint: x (Z + tz) = X + tx and y (Z + tz) = Y + ty, linear in t (the same least squares
    as handviz.features.solve_root_translation, batched through the 3x3 normal equations).
    """
    X = np.asarray(joints_rel, np.float64)
    if np.ndim(rays) == 2:  # one set of rays for every hand: one linear map serves them all
        return X.reshape(*X.shape[:-2], -1) @ _translation_map(np.asarray(rays, np.float64))
    r = np.broadcast_to(rays, X.shape[:-1] + (2,))
    x, y = r[..., 0], r[..., 1]
    n = X.shape[-2]
    # A rows: [1, 0, -x] and [0, 1, -y]; b: x Z - X and y Z - Y.
    AtA = np.zeros(X.shape[:-2] + (3, 3))
    AtA[..., 0, 0] = n
    AtA[..., 1, 1] = n
    AtA[..., 0, 2] = AtA[..., 2, 0] = -x.sum(-1)
    AtA[..., 1, 2] = AtA[..., 2, 1] = -y.sum(-1)
    AtA[..., 2, 2] = (x**2 + y**2).sum(-1)
    bx = x * X[..., 2] - X[..., 0]
    by = y * X[..., 2] - X[..., 1]
    Atb = np.stack([bx.sum(-1), by.sum(-1), -(x * bx + y * by).sum(-1)], axis=-1)
    return np.linalg.solve(AtA, Atb[..., None])[..., 0]


def _depth_shift(rays: np.ndarray) -> np.ndarray:
    """(J, 3) weights w with tz = (w * joints_rel).sum() for every hand (J, 3) on the rays (J, 2).

    root_translations' normal equations solved for tz first (their Schur complement): tz =
    sum(dx X + dy Y - (x dx + y dy) Z) / sum(dx^2 + dy^2), d the rays less their mean. With the
    rays fixed it is linear in the joints, so N hands cost one product instead of N solves.
    """
    n = len(rays)
    centred = rays - rays.sum(axis=0) / n
    spread = float((centred * centred).sum())
    if spread <= 1e-18:
        raise np.linalg.LinAlgError("the keypoint rays do not spread: no root translation")
    w = np.empty((n, 3))
    w[:, :2] = centred
    w[:, 2] = -(rays * centred).sum(axis=1)
    return w / spread


def _translation_map(rays: np.ndarray) -> np.ndarray:
    """(3 J, 3) matrix M with t = joints_rel.ravel() @ M for every hand (J, 3) on the rays (J, 2):
    tz from _depth_shift, then the other two normal equations, tx = mean(x Z - X) + mean(x) tz
    and ty = mean(y Z - Y) + mean(y) tz."""
    n = len(rays)
    w = _depth_shift(rays)
    mx, my = rays.sum(axis=0) / n
    M = np.empty((n, 3, 3))
    M[..., 0], M[..., 1], M[..., 2] = mx * w, my * w, w
    M[:, 0, 0] -= 1.0 / n
    M[:, 1, 1] -= 1.0 / n
    M[:, 2, :2] += rays / n
    return M.reshape(3 * n, 3)


def on_rays(depths: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 21, 3) at the given depths (..., 21) on the rays (..., 21, 2)."""
    z = np.maximum(np.asarray(depths, np.float64), MIN_DEPTH_MM)
    rays = np.asarray(rays, np.float64)
    lifted = np.empty(rays.shape[:-1] + (3,))  # (x, y, 1): one product
    lifted[..., :2], lifted[..., 2] = rays, 1.0
    return lifted * z[..., None]


def snap_to_rays(joints_rel: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Place each hand in the camera, then move every joint onto its ray at the depth it had.

    joints_rel: (N, 21, 3) root-relative; rays: (21, 2) or (N, 21, 2). Returns (N, 21, 3) camera
    frame. A hand that already projects onto the rays is returned placed but unchanged.
    """
    X = np.asarray(joints_rel, np.float64)
    if np.ndim(rays) == 2:  # only tz is needed: one product (see _depth_shift)
        rays = np.asarray(rays, np.float64)
        return on_rays(X[..., 2] + (X.reshape(*X.shape[:-2], -1) @ _depth_shift(rays).ravel())[..., None], rays)
    return on_rays(X[..., 2] + root_translations(X, rays)[..., None, 2], rays)


def similarity_align(src: np.ndarray, dst: np.ndarray, scale: bool = True) -> np.ndarray:
    """src (21, 3) moved by the similarity (or rigid motion) that best maps it onto dst (21, 3)."""
    a, b = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ma, mb = a.sum(axis=0) / len(a), b.sum(axis=0) / len(b)  # the mean, without np.mean's wrapper
    a0, b0 = a - ma, b - mb
    U, S, Vt = np.linalg.svd(a0.T @ b0)
    R = U @ Vt  # row-vector convention: a0 @ R ~ b0
    if _det3(R) < 0:  # a reflection: flip the weakest axis
        U[:, 2] *= -1.0
        S[2] *= -1.0
        R = U @ Vt
    s = float(S.sum() / max((a0**2).sum(), 1e-12)) if scale else 1.0
    return s * a0 @ R + mb


def _det3(m: np.ndarray) -> float:
    """The determinant of a 3x3 matrix, in Python floats (np.linalg.det costs more than the sum)."""
    (a, b, c), (d, e, f), (g, h, i) = m.tolist()
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def align_world(mediapipe_world: np.ndarray | None, snapped_mean: np.ndarray) -> np.ndarray | None:
    """MediaPipe's world landmarks moved onto our snapped mean by a similarity (their size comes
    from a fixed hand model, ours from the sampler); None when missing or not finite."""
    if mediapipe_world is None or not np.isfinite(mediapipe_world).all():
        return None
    return similarity_align(np.asarray(mediapipe_world, np.float64), snapped_mean)


def mediapipe_depths(snapped_mean: np.ndarray, world_aligned: np.ndarray | None,
                     keypoints_z: np.ndarray | None, fx: float) -> dict[str, np.ndarray]:
    """MediaPipe's two depth observations of our hand, each (21,) mm in the camera frame.

    "world": its world landmarks as `align_world` placed them. "image_z": its image-landmark z (pixels,
    wrist-relative), turned into mm with our wrist depth over the focal length; under weak
    perspective that factor is mm per pixel, so a wrong focal guess does not change it. A source
    that is missing or not finite is left out.
    """
    out: dict[str, np.ndarray] = {}
    if world_aligned is not None:
        out["world"] = world_aligned[:, 2]
    if keypoints_z is not None and np.isfinite(keypoints_z).all():
        z = np.asarray(keypoints_z, np.float64)
        out["image_z"] = snapped_mean[0, 2] + (z - z[0]) * snapped_mean[0, 2] / fx
    return out


def finger_depth_modes(hand: np.ndarray) -> np.ndarray:
    """Depth modes (M, 21) of a camera-frame hand (21, 3): the few ways one image leaves it open.

    Per finger, a ramp growing with the distance along the finger from its base joint (the finger
    leaning toward or away from the camera about its base); for the palm, depth growing with x
    and with y (its tilt). Each is 0 at the wrist: they shape the wrist-relative hand.
    """
    X = np.asarray(hand, np.float64)
    modes = []
    for chain in DIGIT_CHAINS:
        along = np.linalg.norm(np.diff(X[list(chain)], axis=0), axis=1)
        mode = np.zeros(len(X))
        mode[list(chain)] = np.concatenate([[0.0], np.cumsum(along)])
        modes.append(mode)
    modes += [X[:, 0] - X[0, 0], X[:, 1] - X[0, 1]]
    return np.array(modes)


#: Each digit's joints from the wrist, (5, 5), and the digit of each of those 20 joints.
_JOINTS_PER_DIGIT = len(DIGIT_CHAINS[0])
_DIGIT_PATHS = np.array([[0, *chain] for chain in DIGIT_CHAINS])
_DIGIT_JOINTS = _DIGIT_PATHS[:, 1:].ravel()
#: Each digit's bones from the wrist as (parent, child) joints, (5, 4) each: gathers, not np.diff.
_BONE_PARENTS, _BONE_CHILDREN = _DIGIT_PATHS[:, :-1], _DIGIT_PATHS[:, 1:]
#: A digit's (5, 5) pairs other than itself, for digit_overlap.
_OTHER_DIGIT = ~np.eye(len(DIGIT_CHAINS), dtype=bool)
_DIGIT_OF_JOINT = np.repeat(np.arange(len(DIGIT_CHAINS)), _DIGIT_PATHS.shape[1] - 1)
#: Each digit's bones in skeleton.LINKS' order, (5, 4): wrist -> base -> ... -> tip.
_DIGIT_LINKS = np.array([[k for k, (_, child) in enumerate(LINKS) if child in chain] for chain in DIGIT_CHAINS])


def _bone_points() -> np.ndarray:
    """(P, 21) weights of the joints: where digit_overlap reads each digit's three bones (every
    fifth of their length, P = 5 digits x 3 bones x 6 points), less their mean point."""
    steps = np.linspace(0.0, 1.0, 6)
    w = np.zeros((len(DIGIT_CHAINS), _JOINTS_PER_DIGIT - 1, len(steps), 21))
    for d, chain in enumerate(DIGIT_CHAINS):
        for b, (start, end) in enumerate(itertools.pairwise(chain)):
            w[d, b, :, start] += 1.0 - steps
            w[d, b, :, end] += steps
    w = w.reshape(-1, 21)
    return w - w.mean(axis=0)


#: digit_overlap's points as one product with the joints.
_BONE_POINTS = _bone_points()
#: How far each joint of the 21 moves in a blend, as a share of its draw: a digit's base on the
#: palm half as far as its other joints, so the palm keeps its length across the hypotheses (dev
#: set: palm length max/min over one photo's blends 1.26 -> 1.23, best-of-32 9.61 -> 9.56 mm).
#: The leaning hypotheses have their own shares, PosteriorConfig.lean_profile.
_BASE_SHARE_OF_JOINT = np.where(np.isin(np.arange(21), [chain[0] for chain in DIGIT_CHAINS]), 0.5, 1.0)


def wrist_to_tip_lengths(hands: np.ndarray) -> np.ndarray:
    """(..., 21, 3) -> (..., 5) mm: each digit's length from the wrist along its joints (the palm
    bone included, unlike the anthropometric finger lengths of handviz.eval.no_truth)."""
    h = np.asarray(hands, np.float64)
    bones = row_norms(h.take(_BONE_CHILDREN, axis=-2) - h.take(_BONE_PARENTS, axis=-2))  # (..., 5, 4)
    return bones[..., 0] + bones[..., 1] + bones[..., 2] + bones[..., 3]  # np.sum's order, 3x faster


def fuse_depths(sources: dict[str, tuple[float, np.ndarray]], rays: np.ndarray, target_lengths: np.ndarray,
                length_sd: float) -> np.ndarray:
    """The weighted mean (21,) of depth sources, name -> (weight, (21,) depths on the rays (21, 2)).

    With length_sd > 0, per digit each source's weight is multiplied by how plausible that digit's
    length is with its depths on the rays, a Gaussian in its relative difference from
    target_lengths (5,) with that SD: the rays fix x and y, so a wrong depth shows itself as a
    finger too long or too short. The wrist keeps the plain weights.
    """
    w = np.array([weight for weight, _ in sources.values()], np.float64)
    z = np.array([depths for _, depths in sources.values()], np.float64)  # (S, 21)
    fused = (w[:, None] * z).sum(axis=0) / w.sum()
    if length_sd <= 0:
        return fused
    misfit = 0.5 * ((wrist_to_tip_lengths(on_rays(z, rays)) / target_lengths - 1.0) / length_sd) ** 2  # (S, 5)
    # (S, 20): per digit's joints; the likeliest source keeps its weight
    wd = w[:, None] * np.exp(-(misfit - misfit.min(axis=0)))[:, _DIGIT_OF_JOINT]
    fused[_DIGIT_JOINTS] = (wd * z[:, _DIGIT_JOINTS]).sum(axis=0) / wd.sum(axis=0)
    return fused


def tta_keypoint_spread(keypoints_2d: np.ndarray, tta_keypoints: np.ndarray | None) -> np.ndarray | None:
    """How far MediaPipe moves each joint when the photo is slightly changed, (21,) or None: its 2D
    keypoints (21, 2) and those found on the changed photos, mapped back (M, 21, 2), as the mean
    distance from their mean over the hand's 2D extent (`hand_extent_px`). None where no copy was
    read; zeros where copies were read and none found the hand (that loss is `tta_lost`'s to say,
    on the line with the changed copies)."""
    if tta_keypoints is None:
        return None
    kp = np.concatenate([np.asarray(keypoints_2d, np.float64)[None], np.asarray(tta_keypoints, np.float64)])
    return np.linalg.norm(kp - kp.mean(axis=0), axis=-1).mean(axis=0) / max(hand_extent_px(keypoints_2d), 1.0)


def sideways_bend(hand: np.ndarray) -> np.ndarray:
    """(21, 3) hand -> (21,): how far each digit bends sideways at its two inner joints (the
    fingers' PIP and DIP, the thumb's MCP and IP), each digit's value on its four joints, 0 at
    the wrist. Those joints are hinges that bend toward the palm; a bend about the palm's normal
    (the sine of the bend angle times its axis' share along that normal, averaged over the two
    joints) is a finger no hand makes, so a wrong depth on its rays shows itself this way."""
    X = np.asarray(hand, np.float64)
    (ax, ay, az), (bx, by, bz) = (X[DIGIT_CHAINS[1][0]] - X[0]).tolist(), (X[DIGIT_CHAINS[4][0]] - X[0]).tolist()
    nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx  # the palm's normal, in Python floats
    norm = max(math.sqrt(nx * nx + ny * ny + nz * nz), 1e-9)
    bones = X.take(_BONE_CHILDREN, axis=0) - X.take(_BONE_PARENTS, axis=0)  # (5, 4, 3): wrist -> ... -> tip
    bone_lengths = row_norms(bones)
    lengths = bone_lengths[:, 1:3] * bone_lengths[:, 2:4]
    # the bones on either side of the two inner joints: (before x after) . normal
    (b0, b1, b2), (a0, a1, a2) = bones[:, 1:3].transpose(2, 0, 1), bones[:, 2:4].transpose(2, 0, 1)
    turn = (b1 * a2 - b2 * a1) * (nx / norm) + (b2 * a0 - b0 * a2) * (ny / norm) + (b0 * a1 - b1 * a0) * (nz / norm)
    sines = np.abs(turn / np.maximum(lengths, 1e-9))  # (5, 2)
    out = np.zeros(len(X))
    out[_DIGIT_JOINTS] = np.repeat((sines[:, 0] + sines[:, 1]) / 2, _JOINTS_PER_DIGIT)
    return out


def digit_overlap(hand: np.ndarray) -> np.ndarray:
    """(21, 3) hand in mm -> (21,): how far each digit's bones come inside a finger's thickness of
    another digit's (0 when no nearer than FINGER_THICKNESS_MM, 1 when they meet), each digit's
    value on its four joints, 0 at the wrist. Fingers do not pass through each other, so one that
    does has a depth wrong on its rays, as where MediaPipe stacks an occluded finger onto its
    neighbour. The bones are read at every fifth of their length."""
    X = np.asarray(hand, np.float64)
    points = _BONE_POINTS @ X  # (P, 3), near the origin: no precision lost far from the camera
    sq = points * points
    sq = sq[:, 0] + sq[:, 1] + sq[:, 2]
    d2 = sq[:, None] + sq[None, :] - 2.0 * points @ points.T  # (P, P): every point against every other
    digits = len(DIGIT_CHAINS)
    per_digit = d2.shape[1] // digits  # two plain reductions: cheaper than one over axes (1, 3)
    nearest = d2.reshape(digits, per_digit, -1).min(axis=1).reshape(digits, digits, per_digit).min(axis=2)
    gaps = np.sqrt(np.maximum(nearest[_OTHER_DIGIT].reshape(digits, digits - 1), 0.0))
    closeness = np.minimum(np.maximum(1.0 - gaps.min(axis=1) / FINGER_THICKNESS_MM, 0.0), 1.0)  # np.clip, cheaper
    out = np.zeros(len(X))
    out[_DIGIT_JOINTS] = np.repeat(closeness, _JOINTS_PER_DIGIT)
    return out


def digit_shortfall(hand: np.ndarray) -> np.ndarray:
    """(21, 3) hand -> (21,): how much shorter each digit is than an average adult's would be on
    a hand of this size (the log of the ratio of its four bones' total to the open hand model's,
    the model scaled to all 20 bones' total, `skeleton.prior_bone_lengths`; 0 where not shorter),
    each digit's value on its four joints, 0 at the wrist. A digit comes out short where its
    keypoints bunch up (curled or hidden behind the others) and its depths on their rays do not
    make up the length: a digit no hand has, and the joints most often wrong."""
    lengths = link_lengths(hand)
    model = model_bone_lengths()
    ratio = (lengths[_DIGIT_LINKS].sum(axis=1) / model[_DIGIT_LINKS].sum(axis=1)) * (model.sum() / max(lengths.sum(), 1e-9))
    out = np.zeros(len(lengths) + 1)
    out[_DIGIT_JOINTS] = np.repeat(np.maximum(-np.log(np.maximum(ratio, 1e-9)), 0.0), _JOINTS_PER_DIGIT)
    return out


def digit_means(per_joint: np.ndarray) -> np.ndarray:
    """(..., 21) -> (..., 21): each digit's joints get the mean over that digit's four; the wrist
    keeps its own."""
    v = np.asarray(per_joint, np.float64)
    out = v.copy()
    digits = v[..., _DIGIT_JOINTS].reshape(*v.shape[:-1], len(DIGIT_CHAINS), _JOINTS_PER_DIGIT)
    out[..., _DIGIT_JOINTS] = np.repeat(digits.sum(axis=-1) / _JOINTS_PER_DIGIT, _JOINTS_PER_DIGIT, axis=-1)
    return out


def posterior_hypotheses(hyps_rel: np.ndarray, kp2d: np.ndarray, K: np.ndarray,
                         mediapipe_world: np.ndarray | None, cfg: PosteriorConfig,
                         keypoints_z: np.ndarray | None = None, tta_keypoints: np.ndarray | None = None,
                         rng: np.random.Generator | None = None, signals: dict | None = None,
                         tta_found_share: float | None = None) -> np.ndarray:
    """Stage-1 hypotheses (N, 21, 3) root-relative -> posterior hypotheses (N, 21, 3) root-relative.

    mediapipe_world (21, 3) mm and keypoints_z (21,) px: MediaPipe's depth observations, None or
    non-finite to leave one out. tta_keypoints (M, 21, 2) px: MediaPipe's keypoints on slightly
    changed copies of the photo (handviz.pipeline.augment), or None; tta_found_share: the share
    of those copies where MediaPipe found the hand again (None: taken as all of them).

    The output's mean is the fused hand, on the keypoint rays (up to cfg.ray_tolerance), its
    bones then drawn toward an adult's proportions by cfg.bone_prior_share. The first
    round(cfg.blend_fraction x N) hypotheses are blends of the depth sources on the rays (see
    PosteriorConfig); each of the others leans one digit toward or away from the camera by its
    joints' 90 % radius (`JointDoubt` x cfg.lean_profile). All share the estimate's wrist, size
    and distance, on the keypoint rays (moved with the estimate when its bones are drawn): the
    cloud is doubt about shape.

    signals: a dict that, when given, receives the doubt's inputs per joint (the arguments of
    `JointDoubt.expected_error`: "image_z", "tta_keypoints", "sideways_bend", "overlap",
    "shortfall"; "tta_lost" per joint, the hand's one share repeated), for fitting it
    (handviz.eval.doubt_fit).
    """
    hyps = np.asarray(hyps_rel, np.float64)
    n = hyps.shape[0]
    rng = rng if rng is not None else np.random.default_rng(0)
    blends = round(cfg.blend_fraction * n)  # the first `blends` hypotheses are the source blends
    rays = normalized_rays(kp2d, K)
    snapped = snap_to_rays(hyps, rays)
    mean = snapped.sum(axis=0) / n  # np.mean's value, without its wrapper's cost
    fx = float(np.asarray(K)[0, 0])
    world = align_world(mediapipe_world, mean)  # once: both the depths and the pull use it
    observed = mediapipe_depths(mean, world, keypoints_z, fx)
    weights = {"world": cfg.world_weight, "image_z": cfg.image_z_weight}
    used = {k: v for k, v in observed.items() if weights[k] > 0}
    centre_depth = mean[:, 2]
    depth_dev = np.zeros((n, len(mean)))
    if used:
        sources = {"ours": (1.0 - sum(weights[k] for k in used), mean[:, 2])}
        sources.update({k: (weights[k], v) for k, v in used.items()})
        centre_depth = fuse_depths(sources, rays, wrist_to_tip_lengths(snapped).sum(axis=0) / n, cfg.length_sd)
        gaps = np.array([v - centre_depth for v in used.values()] + [mean[:, 2] - centre_depth])  # (S, 21)
        mix = rng.standard_normal((n, len(gaps))) / np.sqrt(len(gaps))
        depth_dev[:blends] = cfg.blend_spread_scale * mix[:blends] @ gaps
    pull = _world_pull(mean, rays, world, cfg)  # (21, 2): sideways, within tolerance
    centre = on_rays(centre_depth, rays + pull)  # the fused hand
    # The doubt: each joint's 90 % radius, from how far the image z strays (against the hand's
    # 2D extent at its depth), how MediaPipe moves under small changes of the photo, and how far
    # the fused digit bends sideways, passes into another or falls short of a hand's length.
    image_z = observed.get("image_z")
    z_gap = np.zeros(len(mean)) if image_z is None else np.abs((image_z - image_z[0]) - (centre_depth - centre_depth[0]))
    extent_mm = max(hand_extent_px(kp2d), 1.0) * float(centre[0, 2]) / fx  # the hand's 2D extent at its depth
    tta_kp = tta_keypoint_spread(kp2d, tta_keypoints)
    tta_lost = None if tta_kp is None else 1.0 - (1.0 if tta_found_share is None else float(tta_found_share))
    bend, overlap, shortfall = sideways_bend(centre), digit_overlap(centre), digit_shortfall(centre)
    if signals is not None:
        signals.update(image_z=z_gap / extent_mm, tta_keypoints=tta_kp, sideways_bend=bend, overlap=overlap,
                       shortfall=shortfall, tta_lost=None if tta_lost is None else np.full(len(mean), tta_lost))
    sigma = cfg.doubt.expected_error(z_gap / extent_mm, tta_kp, bend, overlap, shortfall, tta_lost or 0.0)  # (21,) mm
    lean = _digit_leans(rng, n, blends)[:, _DIGIT_OF_JOINT]  # (N - blends, 20)
    # Blends: wrist-relative, a digit's base on the palm moved half as far (the palm keeps its
    # length), centred on the estimate. Leans: one digit each, by its joints' 90 % radius (the
    # doubt times the joint's share along the digit); they alternate in sign, so their mean is
    # the estimate already. Every hypothesis keeps the estimate's wrist, so placed by the
    # estimate's root translation it lies on its rays.
    blend_dev = depth_dev[:blends]
    depth_dev[:blends] = _centred((blend_dev - blend_dev[:, :1]) * _BASE_SHARE_OF_JOINT)
    depth_dev[blends:, _DIGIT_JOINTS] = lean * sigma[_DIGIT_JOINTS] * _lean_shares(tuple(cfg.lean_profile),
                                                                                 cfg.thumb_lean_share)
    cam = on_rays(centre_depth[None] + depth_dev, rays[None] + pull)
    rel = cam - cam[:, :1]
    # The cloud's mean is the fused hand, its bones drawn toward an adult's proportions: the
    # doubt widens the cloud, it must not move the estimate.
    hand = drawn_toward_prior(centre, cfg.bone_prior_share)
    return rel - rel.sum(axis=0) / n + (hand - hand[:1])


@functools.lru_cache(maxsize=16)
def _lean_shares(lean_profile: tuple[float, ...], thumb_lean_share: float) -> np.ndarray:
    """(20,) each digit joint's share of its 90 % radius in a lean (PosteriorConfig.lean_profile,
    the thumb's times thumb_lean_share): made once per config, read-only."""
    profile = np.tile(np.asarray(lean_profile, np.float64), len(DIGIT_CHAINS))
    profile[_DIGIT_OF_JOINT == 0] *= thumb_lean_share
    profile.flags.writeable = False
    return profile


def _digit_leans(rng: np.random.Generator, n: int, first: int) -> np.ndarray:
    """(N - first, 5) of 0 and +-1 for the rows of N hypotheses from `first` on: each leans one
    digit (some two when N is small), the digits taken in turn (a random order), each digit's
    leans alternating toward and away from the camera. Each digit leans in just enough of the N
    hypotheses for `np.quantile`'s 90 % point to fall on its leans (4 of 32, 2 of 8), so its 90 %
    radius is the lean."""
    digits = len(DIGIT_CHAINS)
    out = np.zeros((n - first, digits))
    if n - first <= 0:
        return out
    row, turn, sign = _lean_slots(n, n - first)
    digit = rng.permutation(digits)[turn]
    first_sign = rng.choice(_SIGNS, size=digits)
    out[row, digit] = first_sign[digit] * sign
    return out


#: What _digit_leans draws each digit's first sign from.
_SIGNS = np.array([-1.0, 1.0])
_SIGNS.flags.writeable = False


@functools.lru_cache(maxsize=256)
def _lean_slots(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """_digit_leans' layout for m leaning rows of N, which needs no random draw (made once per
    N): each slot's row, its turn among the digits (which the random order maps to a digit), and
    its sign against the digit's first (+1, -1, ... as the digits come round again)."""
    digits = len(DIGIT_CHAINS)
    # np.quantile's 90 % point of n values lies at 0.9 (n - 1) in sorted order: above its floor,
    # or above the point itself where that puts 70 % of its weight on the leans.
    point = 0.9 * (n - 1)
    per_digit = n - math.floor(point) - (1 if point - math.floor(point) >= 0.7 else 0)
    slots = max(digits * per_digit, m)  # and every row leans one digit at least
    per_row = np.minimum(digits, slots // m + (np.arange(m) < slots % m))
    slot = np.arange(per_row.sum())  # consecutive slots of one row are distinct digits
    out = np.repeat(np.arange(m), per_row), slot % digits, np.where((slot // digits) % 2 == 0, 1.0, -1.0)
    for a in out:
        a.flags.writeable = False
    return out


def _centred(draws: np.ndarray) -> np.ndarray:
    """draws (m, ...) with their mean taken out and their size kept (x sqrt(m / (m - 1)))."""
    m = len(draws)
    if m < 2:
        return draws
    return (draws - draws.sum(axis=0) / m) * np.sqrt(m / (m - 1))


def _world_pull(snapped_mean: np.ndarray, rays: np.ndarray, world_aligned: np.ndarray | None,
                cfg: PosteriorConfig) -> np.ndarray:
    """Sideways offsets (21, 2) in normalised image coordinates: where averaging the snapped mean
    with MediaPipe's aligned world landmarks (in 3D, world_weight against the snapped share) would
    move each joint's image position, clipped to cfg.ray_tolerance x the hand's 2D size."""
    if cfg.ray_tolerance <= 0 or world_aligned is None:
        return np.zeros_like(rays)
    rest = 1.0 - cfg.world_weight - cfg.image_z_weight
    share = cfg.world_weight / max(cfg.world_weight + rest, 1e-9)
    fused = (1.0 - share) * snapped_mean + share * world_aligned
    offset = fused[:, :2] / np.maximum(fused[:, 2:], MIN_DEPTH_MM) - rays
    size = rays.max(axis=0) - rays.min(axis=0)
    limit = cfg.ray_tolerance * math.sqrt(size @ size)
    squared = offset * offset
    length = np.sqrt(squared[:, :1] + squared[:, 1:])  # np.linalg.norm's sums, without its cost
    return offset * np.minimum(1.0, limit / np.maximum(length, 1e-12))
