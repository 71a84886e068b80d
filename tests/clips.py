"""Short test clips made from the bundled demo photo (no files shipped for them)."""

from __future__ import annotations

from pathlib import Path

from handviz.pipeline.sources import demo_dir


def make_zoom_clip(path: Path, frames: int = 90, size: tuple[int, int] = (640, 480)) -> Path:
    """The thumbs-up photo zooming out to a third of its size and back in, as an MJPG clip."""
    import cv2

    from handviz.pipeline.letterbox import letterbox

    photo = letterbox(cv2.imread(str(demo_dir() / "thumb_up.jpg")), size)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    for k in range(frames):
        scale = 1.0 - (2.0 / 3.0) * (1 - abs(1 - 2 * k / (frames - 1)))  # 1 -> 1/3 -> 1
        M = cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), 0.0, scale)
        writer.write(cv2.warpAffine(photo, M, size))
    writer.release()
    return path


def close_crop(image, keypoints_2d, margin: float, size: int = 256):
    """(crop, A): image cut to a size x size square `margin` x the keypoints' box around them, as
    a dataset's close crop, and the 2x3 map A from image pixels to crop pixels."""
    import cv2
    import numpy as np

    lo, hi = keypoints_2d.min(axis=0), keypoints_2d.max(axis=0)
    side = margin * float((hi - lo).max())
    scale = size / side
    corner = (lo + hi) / 2 - side / 2
    A = np.array([[scale, 0, -corner[0] * scale], [0, scale, -corner[1] * scale]])
    return cv2.warpAffine(image, A, (size, size), flags=cv2.INTER_AREA), A
