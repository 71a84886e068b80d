"""Procedural backgrounds for synthetic renders: noise, gradients, colour fields, clutter.

Varied backgrounds keep MediaPipe (and our image encoder) from seeing a single grey wall.
"""

from __future__ import annotations

import cv2
import numpy as np


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    small = rng.random((max(2, cells), max(2, int(cells * w / h)), 3)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def random_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 RGB background of a randomly chosen kind."""
    kind = rng.integers(0, 5)
    base = rng.random(3).astype(np.float32)
    if kind == 0:  # flat colour field with a little noise
        img = np.broadcast_to(base, (h, w, 3)).copy()
    elif kind == 1:  # linear gradient between two colours
        other = rng.random(3).astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
        ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
        img = base * (1 - ramp[..., None]) + other * ramp[..., None]
    elif kind == 2:  # smooth multi-scale noise
        img = 0.6 * _smooth_noise(rng, h, w, int(rng.integers(2, 6))) + 0.4 * _smooth_noise(
            rng, h, w, int(rng.integers(8, 24)))
    elif kind == 3:  # clutter: random rectangles and circles
        img = np.broadcast_to(base, (h, w, 3)).copy()
        for _ in range(int(rng.integers(5, 25))):
            colour = tuple(float(c) for c in rng.random(3))
            if rng.random() < 0.5:
                p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                cv2.rectangle(img, p1, p2, colour, -1)
            else:
                centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                cv2.circle(img, centre, int(rng.integers(5, max(6, h // 3))), colour, -1)
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 4.0)))
    else:  # stripes / checker (indoor textures)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        period = rng.uniform(8, 60)
        angle = rng.uniform(0, np.pi)
        s = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * 2 * np.pi / period)
        if rng.random() < 0.5:
            s = s * np.sin((-np.sin(angle) * xx + np.cos(angle) * yy) * 2 * np.pi / period)
        other = rng.random(3).astype(np.float32)
        t = (s[..., None] > 0).astype(np.float32)
        img = base * t + other * (1 - t)
        img = cv2.GaussianBlur(img, (0, 0), 1.0)
    img = img + rng.normal(0, 0.02, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)
