"""The session video: Motion-JPEG in AVI, written and read through OpenCV.

Why MJPG/AVI and not mp4v/MP4 (both encode in this opencv-contrib build): an MP4 is unreadable
until its index ("moov atom") is written on close, so a crash or a kill loses the whole video;
an AVI of JPEG frames stays readable up to its last complete frame, every frame decodes on its own
(exact seeking for replay), and encoding costs ~2 ms per 640x480 frame on one core. The price is
size (~30-70 kB per 640x480 frame at quality 85).

OpenCV's own AVI writer (CAP_OPENCV_MJPEG) is used rather than FFmpeg's: it is part of every
OpenCV build and hands each frame to the OS at once (FFmpeg's muxer buffers several frames).

cv2.VideoWriter never reports a failed write, so `VideoSink` watches the disk itself and raises
OSError(ENOSPC) when free space runs low, the file stops growing, or a size limit is reached.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

VIDEO_NAME = "video.avi"
#: Names a session's video may have (older or hand-made sessions may hold an MP4).
VIDEO_NAMES = (VIDEO_NAME, "video.mp4")
FOURCC = "MJPG"
JPEG_QUALITY = 85
#: Stop recording when the disk holding the video has less than this left (SQLite needs room too).
DEFAULT_MIN_FREE_BYTES = 32 * 1024 * 1024
#: Frames written without the file growing before we conclude the disk refuses data. Any JPEG
#: frame is >= ~600 bytes, so this many frames exceed any write buffer several times over.
STALL_FRAMES = 256
#: Reading ahead by up to this many frames is cheaper than a seek (~2 ms per frame skipped vs
#: ~20 ms per seek: OpenCV seeks back and decodes forward).
SEEK_AFTER_FRAMES = 8


def disk_full_error(path: Path, why: str) -> OSError:
    return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({why})", str(path))


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged process may still write in `folder`'s file system."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def scale_to(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """rgb (H, W, 3) resized to size (width, height): how a session keeps video for every frame
    when the source changes size mid-recording (one video, one size; the frame row keeps the real
    size, and the reader scales back), and how the app fits a frame to its view.

    Bilinear unless a side shrinks below half: every source pixel still weighs in down to half
    size, and OpenCV's area filter at a non-integer ratio costs ten times more (640x480 -> 417x313:
    1.6 against 0.14 ms, every frame in the default window); below half, bilinear would skip
    pixels (aliasing), so the area filter."""
    aliasing = size[0] < rgb.shape[1] / 2 or size[1] < rgb.shape[0] / 2
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if aliasing else cv2.INTER_LINEAR)


class VideoSink:
    """Append RGB frames of one fixed size to an MJPG AVI; `write` returns the frame's number.

    max_bytes: stop (ENOSPC) once the file reaches this size (None: no limit).
    min_free_bytes: stop when the disk has less than this free (0: only a stalled file stops it).
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int], *,
                 max_bytes: int | None = None, min_free_bytes: int = DEFAULT_MIN_FREE_BYTES) -> None:
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))  # (width, height)
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.count = 0
        self._last_size = 0
        self._frames_since_growth = 0
        self._check_room()
        self._writer = cv2.VideoWriter(str(self.path), cv2.CAP_OPENCV_MJPEG,
                                       cv2.VideoWriter_fourcc(*FOURCC), float(fps), self.size)
        if not self._writer.isOpened():
            raise OSError(errno.EIO, f"OpenCV cannot open an {FOURCC} video writer", str(self.path))
        self._writer.set(cv2.VIDEOWRITER_PROP_QUALITY, JPEG_QUALITY)

    def write(self, rgb: np.ndarray) -> int:
        """rgb: (H, W, 3) uint8 with (W, H) == size. Returns its frame number in the file."""
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            raise ValueError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, the video is {self.size[0]}x{self.size[1]}")
        self._check_room()
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.count += 1
        self._check_growth()
        return self.count - 1

    def _check_room(self) -> None:
        size = self.path.stat().st_size if self.path.exists() else 0
        if self.max_bytes is not None and size >= self.max_bytes:
            raise disk_full_error(self.path, f"video size limit of {self.max_bytes} bytes reached")
        if self.min_free_bytes > 0:
            left = free_bytes(self.path.parent)
            if left < self.min_free_bytes:
                raise disk_full_error(self.path, f"only {left // 1024} KiB left on the disk")

    def _check_growth(self) -> None:
        size = self.path.stat().st_size
        if size > self._last_size:
            self._last_size, self._frames_since_growth = size, 0
            return
        self._frames_since_growth += 1
        if self._frames_since_growth >= STALL_FRAMES:
            raise disk_full_error(self.path, f"the file stopped growing for {STALL_FRAMES} frames")

    def close(self) -> None:
        """Write the AVI index; safe to call twice."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class VideoFrames:
    """Random access to the frames of a session video, also one cut short by a crash.

    A finished AVI has an index and seeks exactly. One left by a crash has none: OpenCV then
    ignores seeks and silently returns the next frame, so we detect that and walk forward
    (rewinding by reopening). Frames past the end read as None. Not thread-safe.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._cap: cv2.VideoCapture | None = None
        self._next = 0
        self._end: int | None = None  # first frame number known not to be readable
        self._open()
        self.seekable = self._cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0

    def _open(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise OSError(errno.EIO, "not a video OpenCV can read (damaged or empty)", str(self.path))
        self._next = 0

    def read(self, k: int) -> np.ndarray | None:
        """Frame k as (H, W, 3) uint8 RGB, or None when the file does not reach it."""
        if k < 0 or (self._end is not None and k >= self._end):
            return None
        if not self.seekable:
            if k < self._next:
                self._open()
        elif k != self._next and not 0 <= self._next < k <= self._next + SEEK_AFTER_FRAMES:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, k)
            self._next = k
        while self._next < k:  # walk forward: no index, or a short skip
            if not self._cap.grab():
                return self._missing(self._next)
            self._next += 1
        ok, bgr = self._cap.read()
        if not ok:
            return self._missing(k)
        if self.seekable and int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) != k + 1:
            log.info("%s: seeking does not work (no index: the recording was cut short); "
                     "reading frames in order instead", self.path)
            self.seekable = False
            self._open()
            return self.read(k)
        self._next = k + 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _missing(self, k: int) -> None:
        """Frame k could not be read: without an index that is the end of the file; with one,
        only that frame (and the position is unknown, so the next read seeks)."""
        if self.seekable:
            self._next = -1
        else:
            self._end = k
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
