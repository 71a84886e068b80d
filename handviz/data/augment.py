"""Camera-like degradations of a composited render: blur, motion blur, noise, exposure, JPEG."""

from __future__ import annotations

import cv2
import numpy as np


def composite(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Alpha-blend an (H, W, 4) render over an (H, W, 3) background; both uint8."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgba[..., :3].astype(np.float32) * a + background.astype(np.float32) * (1 - a)
    return out.astype(np.uint8)


def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply a random mix of webcam-like artefacts to an (H, W, 3) uint8 image."""
    out = img.astype(np.float32)
    gain, gamma = rng.uniform(0.7, 1.3), rng.uniform(0.8, 1.25)
    out = 255.0 * np.clip(out * gain / 255.0, 0, 1) ** gamma
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.3, 1.5)))
    if rng.random() < 0.25:  # motion blur along a random direction
        k = int(rng.integers(3, 8))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        kernel /= max(kernel.sum(), 1e-6)
        out = cv2.filter2D(out, -1, kernel)
    out = out + rng.normal(0, rng.uniform(0, 8), out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 95))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out
