"""MediaPipe's 2D error, fitted on render->MediaPipe residuals, for the fast keypoint-only mode.

Residuals (MediaPipe minus projected truth) are divided by the hand's 2D size, so one model
serves every distance. A full 42x42 covariance keeps the joints' correlated errors; a scale
drawn from the residuals' empirical magnitude spread keeps the heavy tail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from handviz.paths import assets_dir


def noise_model_path() -> Path:
    return assets_dir() / "data" / "mediapipe_noise.npz"


def hand_size_px(kp2d: np.ndarray) -> np.ndarray:
    """(B, 21, 2) -> (B,) RMS distance of the keypoints from their centroid."""
    c = kp2d - kp2d.mean(axis=-2, keepdims=True)
    return np.sqrt((c**2).sum(-1).mean(-1))


@dataclass
class NoiseModel:
    mean: np.ndarray  # (42,)
    cov: np.ndarray  # (42, 42)
    scale_quantiles: np.ndarray  # (Q,) magnitude multipliers, empirical quantiles
    n_fit: int
    _chol: np.ndarray | None = field(default=None, repr=False, compare=False)
    _modes: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def apply(self, kp2d_gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add MediaPipe-like noise to (B, 21, 2) projected keypoints."""
        b = kp2d_gt.shape[0]
        L = np.linalg.cholesky(self.cov + 1e-9 * np.eye(42))
        z = rng.standard_normal((b, 42)) @ L.T
        s = np.interp(rng.random(b), np.linspace(0, 1, len(self.scale_quantiles)), self.scale_quantiles)
        r = (self.mean + z * s[:, None]).reshape(b, 21, 2)
        return (kp2d_gt + r * hand_size_px(kp2d_gt)[:, None, None]).astype(np.float32)

    def offsets(self, kp2d: np.ndarray, n: int, rng: np.random.Generator, modes: int = 0) -> np.ndarray:
        """n zero-mean draws of MediaPipe's 2D error for one detected hand: (n, 21, 2) px.

        kp2d: (21, 2) the detection's keypoints (they set the hand's size). Zero-mean, because
        the detection is what we observed: the draws say how far the truth may lie from it.
        modes > 0 draws only along the covariance's leading principal modes (whole fingers
        shifting together), rescaled to the full covariance's total variance: each draw is then
        a plausible hand rather than per-joint roughness, so the best of N draws comes nearer the
        truth while the cloud keeps its size (issue 10). 0 uses the full covariance.
        """
        z = rng.standard_normal((n, 42)) @ self._draw_matrix(modes)
        s = np.interp(rng.random(n), np.linspace(0, 1, len(self.scale_quantiles)), self.scale_quantiles)
        size = float(hand_size_px(np.asarray(kp2d, np.float64)[None])[0])
        return (z * s[:, None]).reshape(n, 21, 2) * size

    def _draw_matrix(self, modes: int) -> np.ndarray:
        """(42, 42) M with standard-normal z @ M distributed as the (mode-limited) noise."""
        if modes <= 0 or modes >= 42:
            if self._chol is None:
                self._chol = np.linalg.cholesky(self.cov + 1e-9 * np.eye(42))
            return self._chol.T
        if modes not in self._modes:
            variances, vectors = np.linalg.eigh(self.cov)
            top = np.argsort(variances)[::-1][:modes]
            keep = np.sqrt(variances.sum() / variances[top].sum())
            matrix = np.zeros((42, 42))
            matrix[:modes] = (np.sqrt(np.maximum(variances[top], 0.0)) * keep)[:, None] * vectors[:, top].T
            self._modes[modes] = matrix
        return self._modes[modes]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, mean=self.mean, cov=self.cov, scale_quantiles=self.scale_quantiles,
                 n_fit=np.array(self.n_fit))


def fit_noise_model(kp2d_mp: np.ndarray, kp2d_gt: np.ndarray) -> NoiseModel:
    """Fit on detected samples: kp2d_mp, kp2d_gt (B, 21, 2) pixels."""
    r = ((kp2d_mp - kp2d_gt) / hand_size_px(kp2d_gt)[:, None, None]).reshape(len(kp2d_gt), 42)
    keep = np.all(np.isfinite(r), axis=1)
    r = r[keep]
    if len(r) < 50:
        raise ValueError(f"need at least 50 detected samples to fit the noise model, got {len(r)}")
    mean = r.mean(0)
    centred = r - mean
    mag = np.sqrt((centred**2).mean(1))
    rel = mag / np.sqrt((mag**2).mean())
    # Whitened directions carry the covariance; magnitudes carry the tail (E[s^2] = 1).
    cov = np.cov((centred / rel[:, None]).T)
    return NoiseModel(mean=mean.astype(np.float64), cov=cov,
                      scale_quantiles=np.quantile(rel, np.linspace(0, 1, 101)), n_fit=len(r))


def load_noise_model(path: Path | None = None) -> NoiseModel:
    path = Path(path or noise_model_path())
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: fit it from rendered data with `handviz data fit-noise DATA_DIR`")
    with np.load(path, allow_pickle=False) as z:
        return NoiseModel(mean=z["mean"], cov=z["cov"], scale_quantiles=z["scale_quantiles"],
                          n_fit=int(z["n_fit"]))
