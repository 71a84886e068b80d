"""Joint hypotheses made to agree with the 2D evidence and with MediaPipe's own 3D (numpy only).

Stage 1 draws N root-relative hands from the 2D keypoints' shape. Two things it does not use
well on real photos (measured in issue 10) are applied here, after sampling:

1. **The keypoint rays.** A joint seen at pixel (u, v) lies on the ray K^-1 (u, v, 1). Each
   hypothesis keeps its depths and has x, y put back on the rays (``snap_to_rays``), so every
   hypothesis projects onto the keypoints and the remaining spread is where one image really is
   ambiguous: depth. The rays themselves are jittered by MediaPipe's 2D noise model, so the
   cloud also carries the keypoints' own uncertainty.
2. **MediaPipe's world landmarks as an observation.** They are aligned to the snapped mean and
   averaged with it in depth (``fuse_with_mediapipe``); where the two disagree the cloud is
   widened along their difference, so the spread ranks the error instead of only the sampler's
   noise.

Shapes: joints (N, 21, 3) or (21, 3) in mm, camera frame (x right, y down, z forward); kp2d
(21, 2) px; K (3, 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A joint may not be placed nearer the camera than this (mm): keeps a bad depth off the lens.
MIN_DEPTH_MM = 50.0


@dataclass(frozen=True)
class PosteriorConfig:
    """How the hypotheses are combined with the 2D keypoints and MediaPipe's 3D.

    mediapipe_weight: weight of MediaPipe's aligned world landmarks in the fused depths (0 keeps
    the snapped hypotheses alone). disagreement_scale: the cloud's extra standard deviation along
    (MediaPipe - snapped mean), as a multiple of that difference. keypoint_noise_scale: multiple
    of MediaPipe's fitted 2D noise used to jitter each hypothesis' rays (0: no jitter).
    """

    snap: bool = True
    mediapipe_weight: float = 0.5
    disagreement_scale: float = 0.5
    keypoint_noise_scale: float = 1.0

    @classmethod
    def from_dict(cls, d: dict | None) -> PosteriorConfig:
        """From cascade.json's "posterior" section; unknown keys are an error (a typo would be silent)."""
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown posterior settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


def normalized_rays(kp2d: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 21, 2) px -> (..., 21, 2) normalised image coordinates ((u - cx) / fx, (v - cy) / fy)."""
    K = np.asarray(K, np.float64)
    kp = np.asarray(kp2d, np.float64)
    return np.stack([(kp[..., 0] - K[0, 2]) / K[0, 0], (kp[..., 1] - K[1, 2]) / K[1, 1]], axis=-1)


def root_translations(joints_rel: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Translations t (N, 3) putting each (N, 21, 3) hand's joints closest to its rays (N, 21, 2).

    Per joint: x (Z + tz) = X + tx and y (Z + tz) = Y + ty, linear in t (the same least squares
    as handviz.features.solve_root_translation, batched through the 3x3 normal equations).
    """
    X = np.asarray(joints_rel, np.float64)
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


def on_rays(depths: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 21, 3) at the given depths (..., 21) on the rays (..., 21, 2)."""
    z = np.maximum(np.asarray(depths, np.float64), MIN_DEPTH_MM)
    return np.concatenate([rays * z[..., None], z[..., None]], axis=-1)


def snap_to_rays(joints_rel: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Place each hand in the camera, then move every joint onto its ray at the depth it had.

    joints_rel: (N, 21, 3) root-relative; rays: (21, 2) or (N, 21, 2). Returns (N, 21, 3) camera
    frame. A hand that already projects onto the rays is returned placed but unchanged.
    """
    t = root_translations(joints_rel, rays)
    return on_rays(joints_rel[..., 2] + t[..., None, 2], rays)


def similarity_align(src: np.ndarray, dst: np.ndarray, scale: bool = True) -> np.ndarray:
    """src (21, 3) moved by the similarity (or rigid motion) that best maps it onto dst (21, 3)."""
    a, b = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ma, mb = a.mean(0), b.mean(0)
    a0, b0 = a - ma, b - mb
    U, S, Vt = np.linalg.svd(a0.T @ b0)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.diag([1.0, 1.0, d])
    R = U @ D @ Vt  # row-vector convention: a0 @ R ~ b0
    s = float((S * np.diag(D)).sum() / max((a0**2).sum(), 1e-12)) if scale else 1.0
    return s * a0 @ R + mb


def fuse_with_mediapipe(snapped_mean: np.ndarray, mediapipe_world: np.ndarray, rays: np.ndarray,
                        weight: float) -> tuple[np.ndarray, np.ndarray]:
    """The fused hand on the rays, and MediaPipe's landmarks aligned to the snapped mean.

    snapped_mean: (21, 3) camera frame; mediapipe_world: (21, 3) mm, any origin. MediaPipe's hand
    is aligned to ours by a similarity (its size comes from a fixed hand model, ours from the
    sampler), then the two depths are averaged per joint and put on the rays.
    """
    aligned = similarity_align(mediapipe_world, snapped_mean)
    depth = (1.0 - weight) * snapped_mean[:, 2] + weight * aligned[:, 2]
    return on_rays(depth, rays), aligned


def posterior_hypotheses(hyps_rel: np.ndarray, kp2d: np.ndarray, K: np.ndarray,
                         mediapipe_world: np.ndarray | None, cfg: PosteriorConfig,
                         ray_noise_px: np.ndarray | None = None) -> np.ndarray:
    """Stage-1 hypotheses (N, 21, 3) root-relative -> posterior hypotheses (N, 21, 3) root-relative.

    ray_noise_px: (N, 21, 2) pixel offsets for each hypothesis' keypoints (MediaPipe's 2D noise),
    or None. mediapipe_world: None or non-finite skips the fusion. The output's mean is the
    fused estimate; its spread is the sampler's depth spread plus cfg.disagreement_scale x the
    MediaPipe disagreement, so it is wide where the two sources of 3D differ.
    """
    hyps = np.asarray(hyps_rel, np.float64)
    if not cfg.snap:
        return hyps.copy()
    rays = normalized_rays(kp2d, K)
    snapped = snap_to_rays(hyps, rays)
    mean = snapped.mean(axis=0)
    depth_dev = snapped[..., 2] - mean[None, :, 2]  # (N, 21): the sampler's own depth spread
    centre_depth = mean[:, 2]
    have_mp = mediapipe_world is not None and np.all(np.isfinite(mediapipe_world))
    if have_mp and cfg.mediapipe_weight > 0:
        fused, aligned = fuse_with_mediapipe(mean, np.asarray(mediapipe_world, np.float64), rays,
                                             cfg.mediapipe_weight)
        centre_depth = fused[:, 2]
        gap = aligned[:, 2] - mean[:, 2]  # (21,) how far MediaPipe's depth is from ours
        n = hyps.shape[0]
        # Evenly spaced normal quantiles: a deterministic, symmetric spread along the disagreement.
        from scipy.special import ndtri

        xi = ndtri((np.arange(n) + 0.5) / n) if n > 1 else np.zeros(1)
        depth_dev = depth_dev + cfg.disagreement_scale * xi[:, None] * gap[None, :]
    noisy_rays = rays[None] if ray_noise_px is None else normalized_rays(
        np.asarray(kp2d, np.float64)[None] + ray_noise_px, K)
    cam = on_rays(centre_depth[None] + depth_dev, noisy_rays)
    rel = cam - cam[:, :1]
    # The cloud's mean is the noise-free fused hand, exactly on the keypoint rays: the jitter and
    # the disagreement widen the cloud, they must not move the estimate.
    centre = on_rays(centre_depth, rays)
    return rel - rel.mean(axis=0) + (centre - centre[:1])
