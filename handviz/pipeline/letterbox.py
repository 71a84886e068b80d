"""One frame size for a source whose images differ in size (the bundled demo's photos): each image
is scaled to fit and centred on black. A session then holds one video size, the 3D view keeps
one field of view, and the intrinsics stay the same from photo to photo."""

from __future__ import annotations

import cv2
import numpy as np

from handviz.pipeline.sources import Source


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


class FixedSizeSource(Source):
    """Wraps a source so every frame it gives is `size` (width, height). A held image (the same
    array again) is letterboxed once."""

    def __init__(self, inner: Source, size: tuple[int, int]) -> None:
        super().__init__()
        self.inner = inner
        self.size = (int(size[0]), int(size[1]))
        self.name, self.fps, self.live = inner.name, inner.fps, inner.live
        self.warnings = inner.warnings  # the same list: the pipeline reads new warnings from it
        self._last_in: np.ndarray | None = None
        self._last_out: np.ndarray | None = None

    def read(self) -> np.ndarray | None:
        image = self.inner.read()
        if image is None:
            return None
        if image is not self._last_in:
            self._last_in, self._last_out = image, letterbox(image, self.size)
        return self._last_out

    def close(self) -> None:
        self.inner.close()
        self._last_in = self._last_out = None
