"""Where frames come from: a camera, a video file, an image folder, or the bundled demo clip.

Every source hands out (H, W, 3) uint8 RGB images through `read()` and says when it is finished
(None). Anything that goes wrong — no camera, camera busy, camera unplugged mid-run, a file that
does not decode — is a `SourceError` with a message naming the source and what to do, so the
pipeline can report it instead of crashing.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path

import cv2
import numpy as np

from handviz.logs import InputError
from handviz.paths import assets_dir
from handviz.pipeline.letterbox import letterbox

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
#: Video files a folder walk opens (other non-image files in a folder are skipped with a note).
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
#: Frame rate assumed when a video file does not say (or says something absurd).
FALLBACK_VIDEO_FPS = 30.0
#: Consecutive failed camera reads after which the camera counts as gone (unplugged, taken).
CAMERA_MAX_FAILED_READS = 15
#: The demo clip: frames per second, and how long each photo stays on screen (seconds).
DEMO_FPS = 30.0
DEMO_SECONDS_PER_PHOTO = 2.0
#: The demo clip's one frame size (width, height), a webcam's.
DEMO_SIZE = (640, 480)


class SourceError(InputError):
    """A source cannot deliver frames; the message says which one and what to do."""


def demo_dir() -> Path:
    """The bundled demo photos (assets/demo/)."""
    return assets_dir() / "demo"


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    """OpenCV frame (gray, BGR or BGRA) -> (H, W, 3) uint8 RGB."""
    if bgr.dtype != np.uint8:
        bgr = cv2.convertScaleAbs(bgr, alpha=255.0 / max(1.0, float(bgr.max())))
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if bgr.shape[2] == 4:
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class Source(ABC):
    """A stream of RGB frames.

    `fps` is the rate a file-backed source should be played at (the capture thread paces it);
    None means the device paces itself (a camera's read blocks until the next frame).
    """

    name: str = "source"
    fps: float | None = None
    #: True for sources that never end by themselves and cannot be rewound (cameras).
    live: bool = False

    def __init__(self) -> None:
        #: Non-fatal problems met so far (skipped files), for the status bar and the log.
        self.warnings: list[str] = []

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """Next (H, W, 3) uint8 RGB frame, or None when the source has ended."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def _warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _device_node_missing(index: int) -> bool:
    """On Linux a camera is a /dev/videoN node: no node, no camera (answers without waiting)."""
    return sys.platform.startswith("linux") and not Path(f"/dev/video{index}").exists()


class CameraSource(Source):
    """A webcam through cv2.VideoCapture; asks for a small frame and a one-frame buffer (latency)."""

    live = True

    def __init__(self, index: int, width: int = 640, height: int = 480, open_timeout_s: float = 2.0) -> None:
        super().__init__()
        self.index = index
        self.name = f"camera {index}"
        if _device_node_missing(index):
            raise SourceError(f"camera {index}: not present (no /dev/video{index}); "
                              "plug a camera in or pass --source FILE|FOLDER|demo")
        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"camera {index}: could not be opened (not present, or no permission); "
                              "check the camera or pass --source FILE|FOLDER|demo")
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._first = self._first_frame(open_timeout_s)
        self._failures = 0

    def _first_frame(self, timeout_s: float) -> np.ndarray:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ok, bgr = self._cap.read()
            if ok and bgr is not None:
                return _to_rgb(bgr)
            time.sleep(0.05)
        self._cap.release()
        raise SourceError(f"camera {self.index}: opened but sends no frames (busy in another app?); "
                          "close the other app or pick another camera")

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        while True:
            if not self._cap.isOpened():
                raise SourceError(f"camera {self.index}: was closed")
            ok, bgr = self._cap.read()
            if ok and bgr is not None:
                self._failures = 0
                return _to_rgb(bgr)
            self._failures += 1
            if self._failures >= CAMERA_MAX_FAILED_READS:
                raise SourceError(f"camera {self.index}: stopped delivering frames (unplugged?); "
                                  "reconnect it and pick it again from the Camera menu")
            time.sleep(0.02)

    def close(self) -> None:
        self._cap.release()


class VideoSource(Source):
    """A video file, played at its own frame rate; `loop` rewinds at the end."""

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = self.path.name
        self.loop = loop
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"{self.path}: not a video this OpenCV build can decode; "
                              "try an .mp4/.avi file or an image folder")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 240.0 else FALLBACK_VIDEO_FPS
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            self._cap.release()
            raise SourceError(f"{self.path}: contains no readable frames (damaged or empty video)")
        self._first: np.ndarray | None = _to_rgb(bgr)
        self.frames_read = 0

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            self.frames_read += 1
            return frame
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            if not self.loop or self.frames_read == 0:
                return None
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                return None
        self.frames_read += 1
        return _to_rgb(bgr)

    def close(self) -> None:
        self._cap.release()


def natural_key(path: Path) -> list[object]:
    """Sort frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files in natural order, other files skipped) directly inside `folder`."""
    images, others = [], []
    for p in folder.iterdir():
        if not p.is_file() or p.name.startswith("."):
            continue
        (images if p.suffix.lower() in IMAGE_SUFFIXES else others).append(p)
    return sorted(images, key=natural_key), sorted(others, key=natural_key)


class ImageFolderSource(Source):
    """Images of a folder (or a single image) in natural order, as a clip.

    Each image is shown for `hold_frames` frames at `fps`; `loop` starts over at the end.
    Non-image files and images that do not decode are skipped with a warning.
    """

    def __init__(self, path: str | Path, loop: bool = False, fps: float = 10.0, hold_frames: int = 1,
                 name: str | None = None, warn_skipped: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = name or self.path.name
        self.loop = loop
        self.fps = fps
        self.hold_frames = max(1, int(hold_frames))
        if self.path.is_file():
            self.files = [self.path]
        else:
            try:
                self.files, others = list_images(self.path)
            except OSError as exc:
                raise SourceError(f"{self.path}: cannot list the folder ({exc.strerror})") from None
            if self.files and others and warn_skipped:  # without images, the error below says it all
                shown = ", ".join(p.name for p in others[:3]) + (" ..." if len(others) > 3 else "")
                self._warn(f"{self.path}: skipped {len(others)} non-image file(s): {shown}")
        if not self.files:
            raise SourceError(f"{self.path}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        self._unreadable: set[Path] = set()
        self._pos = 0  # index into files of the image to show next
        self._held = 0  # frames the current image has been shown
        self._current: np.ndarray | None = None

    def _decode(self, path: Path) -> np.ndarray | None:
        bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if bgr is None or bgr.size == 0:
            if path not in self._unreadable:
                self._unreadable.add(path)
                self._warn(f"{path}: not a readable image; skipped")
            return None
        return _to_rgb(bgr)

    def read(self) -> np.ndarray | None:
        if self._current is not None and self._held < self.hold_frames:
            self._held += 1
            return self._current
        attempts = 0
        while attempts < len(self.files):
            if self._pos >= len(self.files):
                if not self.loop:
                    return None
                self._pos = 0
            path = self.files[self._pos]
            self._pos += 1
            attempts += 1
            if path in self._unreadable:
                continue
            image = self._decode(path)
            if image is not None:
                self._current, self._held = image, 1
                return image
        if len(self._unreadable) == len(self.files):
            raise SourceError(f"{self.path}: none of its {len(self.files)} image(s) could be read")
        return None

    def close(self) -> None:
        self._current = None


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


def demo_source() -> Source:
    """The bundled photos as a looping clip of one size, DEMO_SIZE (each held DEMO_SECONDS_PER_PHOTO
    at DEMO_FPS, letterboxed: the photos differ in size, a clip must not)."""
    folder = demo_dir()
    if not folder.is_dir():
        raise SourceError(f"{folder}: the bundled demo is missing from this installation; reinstall handviz")
    photos = ImageFolderSource(folder, loop=True, fps=DEMO_FPS, hold_frames=int(DEMO_FPS * DEMO_SECONDS_PER_PHOTO),
                               name="demo", warn_skipped=False)  # its LICENSE and README belong there
    return FixedSizeSource(photos, DEMO_SIZE)


def _is_demo_path(path: Path) -> bool:
    try:
        return path.resolve() == demo_dir().resolve()
    except OSError:
        return False


def open_source(spec: str | int | Path | None, loop: bool = False) -> Source:
    """Open what `--source` names: a camera index ("0"), "demo", a video file, an image folder or
    a single image. None means camera 0. `loop` makes files and folders start over at the end
    (the app does; `record` does not). Raises SourceError with a one-line reason.
    """
    if spec is None:
        spec = 0
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CameraSource(int(spec))
    if isinstance(spec, str) and spec.strip().lower() == "demo":
        return demo_source()
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder; pass a camera index, a video file, "
                          "an image folder or 'demo'")
    if path.is_dir():
        if _is_demo_path(path):
            return demo_source()
        return ImageFolderSource(path, loop=loop)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource(path, loop=loop)
    return VideoSource(path, loop=loop)


def list_cameras(max_index: int = 4) -> list[int]:
    """Indices of cameras that open and deliver a frame, probing 0..max_index-1.

    On Linux only existing /dev/videoN nodes are tried, so a machine without cameras answers at
    once; a camera busy in another app is left out.
    """
    found = []
    for index in range(max_index):
        if _device_node_missing(index):
            continue
        try:
            CameraSource(index, open_timeout_s=0.5).close()
        except SourceError:
            continue
        found.append(index)
    return found
