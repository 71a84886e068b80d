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
