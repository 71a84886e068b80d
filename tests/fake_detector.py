"""A stand-in for MediaPipe in tests about the window and the controller, not about detection."""

import numpy as np

from handviz.types import Detection


class FakeDetector:
    """One right hand in the middle of every frame (fast, deterministic)."""

    def detect(self, rgb):
        h, w = rgb.shape[:2]
        kp = np.stack([np.linspace(0.4, 0.6, 21) * w, np.linspace(0.7, 0.3, 21) * h], axis=1).astype(np.float32)
        world = np.stack([np.linspace(-30, 30, 21), np.linspace(40, -60, 21), np.zeros(21)], axis=1)
        return [Detection(kp, world.astype(np.float32), "Right", 0.95)]

    def close(self):
        pass
