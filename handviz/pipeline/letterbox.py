"""One frame size for images that differ in size (the bundled demo's photos): each image is scaled
to fit and centred on black. A session then holds one video size, the 3D view keeps one field of
view, and the intrinsics stay the same from photo to photo. A pure image function: the source
that applies it to every frame, sources.FixedSizeSource, lives with the other sources."""

from __future__ import annotations

import cv2
import numpy as np


def letterbox(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """rgb (H, W, 3) scaled to fit size (width, height), aspect kept, centred on black."""
    w, h = size
    if rgb.shape[1] == w and rgb.shape[0] == h:
        return rgb
    scale = min(w / rgb.shape[1], h / rgb.shape[0])
    fitted = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
                        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((h, w, 3), np.uint8)
    x0, y0 = (w - fitted.shape[1]) // 2, (h - fitted.shape[0]) // 2
    out[y0:y0 + fitted.shape[0], x0:x0 + fitted.shape[1]] = fitted
    return out
