"""The looping clip the soak plays by default: the bundled demo photos written as a video."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from handviz.logs import InputError


def make_loop_video(path: str | Path, size: tuple[int, int] = (640, 480), fps: float = 30.0,
                    frames_per_photo: int = 60) -> Path:
    """Write the bundled demo photos as an MJPG AVI clip of `size` (w, h) at `fps`.

    Each photo is letterboxed and held frames_per_photo frames while it drifts a few pixels in a
    slow circle, so consecutive frames differ as a camera's do and MediaPipe tracks rather than
    re-detects a still. Returns the path; raises InputError when OpenCV cannot write it.
    """
    import cv2

    from handviz.pipeline.letterbox import letterbox
    from handviz.pipeline.sources import demo_dir, list_images

    path = Path(path)
    photos, _ = list_images(demo_dir())
    if not photos:
        raise InputError(f"{demo_dir()}: the bundled demo photos are missing; reinstall handviz")
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (w, h))
    if not writer.isOpened():
        raise InputError(f"{path}: OpenCV cannot write an MJPG video here; pass --video FILE")
    try:
        for photo in photos:
            bgr = cv2.imread(str(photo), cv2.IMREAD_COLOR)
            if bgr is None:
                continue
            boxed = letterbox(bgr, size)
            for k in range(frames_per_photo):
                angle = 2 * math.pi * k / frames_per_photo
                shift = np.float32([[1, 0, 6 * math.cos(angle)], [0, 1, 6 * math.sin(angle)]])
                writer.write(cv2.warpAffine(boxed, shift, (w, h), borderMode=cv2.BORDER_CONSTANT))
    finally:
        writer.release()
    return path
