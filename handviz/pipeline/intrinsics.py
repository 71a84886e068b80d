"""Camera intrinsics K (3, 3): a field-of-view guess, a user focal length, or a calibration file.

The root translation of each hand is solved from its 2D keypoints and K, so K decides where the
mesh lands in depth. The joints are also put on their keypoint rays (handviz.posterior), so a
focal length much shorter than the camera's bends the hand by false perspective; still photos of
unknown origin therefore get `still_image_intrinsics`, which keeps the hand at a plausible distance.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handviz.data.noise_model import hand_size_px
from handviz.logs import InputError
from handviz.types import Detection

#: Horizontal field of view assumed for an uncalibrated webcam (typical laptop cameras: 55-70 deg).
DEFAULT_FOV_DEG = 60.0

#: Nearest a hand is assumed to be in a still photo of unknown origin (mm). A hand that fills a
#: 60-degree frame would be ~20 cm from the lens; in a photo that is far more often a crop or a
#: zoom (a longer focal length), and a too-short focal bends the hand by false perspective.
STILL_MIN_HAND_DEPTH_MM = 400.0


def default_intrinsics(width: int, height: int, fov_deg: float = DEFAULT_FOV_DEG,
                       focal_px: float | None = None) -> np.ndarray:
    """K (3, 3) float64 with the principal point at the image centre.

    focal_px, when given, wins; otherwise f = (width / 2) / tan(fov_deg / 2) (square pixels).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if focal_px is None:
        if not 1.0 <= fov_deg <= 179.0:
            raise ValueError(f"fov_deg must be within [1, 179], got {fov_deg}")
        focal_px = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    if focal_px <= 0:
        raise ValueError(f"focal length must be positive, got {focal_px}")
    return np.array([[focal_px, 0.0, (width - 1) / 2.0],
                     [0.0, focal_px, (height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])


def _pixels_per_mm(keypoints_2d: np.ndarray, world_mm: np.ndarray) -> float | None:
    """The hand's image scale: the RMS size of its keypoints over that of MediaPipe's metric world
    landmarks (x, y only: the world frame is camera-aligned); None when either is degenerate."""
    kp = np.asarray(keypoints_2d, np.float64)
    xy = np.asarray(world_mm, np.float64)[:, :2]
    if not (np.all(np.isfinite(kp)) and np.all(np.isfinite(xy))):
        return None
    size_px, size_mm = float(hand_size_px(kp[None])[0]), float(hand_size_px(xy[None])[0])
    return size_px / size_mm if size_mm > 1e-6 and size_px > 0 else None


def still_image_intrinsics(width: int, height: int, detections: Sequence[Detection],
                           min_depth_mm: float = STILL_MIN_HAND_DEPTH_MM) -> np.ndarray:
    """K for a photo of unknown origin: the 60-degree guess, with the focal length made long
    enough that every detected hand sits at least min_depth_mm from the camera.

    Under weak perspective a hand of s px per mm is f / s mm away, so f >= min_depth_mm x s.
    Measured (issue 10): real photos whose camera is narrower than the guess (InterHand, a
    15-degree camera) 10.72 -> 10.36 mm PA-MPJPE; synthetic hands really 11-82 cm from a
    40-70-degree camera lose 0.06 mm (0.10 mm those nearer than 30 cm). Video keeps the plain
    guess (a camera's full frame, and a focal length that changed per frame would make the depth
    jitter).
    """
    K = default_intrinsics(width, height)
    scales = [s for det in detections if (s := _pixels_per_mm(det.keypoints_2d, det.world_3d))]
    if scales:
        K[0, 0] = K[1, 1] = max(K[0, 0], min_depth_mm * max(scales))
    return K


@dataclass(frozen=True)
class Calibration:
    """K as calibrated, and the image size it was calibrated at (None: use as is at any size)."""

    K: np.ndarray  # (3, 3)
    width: int | None = None
    height: int | None = None

    def for_size(self, width: int, height: int) -> np.ndarray:
        """K rescaled to a frame of width x height (a camera delivering a different resolution)."""
        if self.width and self.height:
            return rescale_intrinsics(self.K, (self.width, self.height), (width, height))
        return np.array(self.K, dtype=np.float64, copy=True)


def rescale_intrinsics(K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """K (3, 3) of a from_size (width, height) image, for that image resized to to_size."""
    out = np.array(K, dtype=np.float64, copy=True)
    out[0, :] *= to_size[0] / from_size[0]
    out[1, :] *= to_size[1] / from_size[1]
    return out


def load_intrinsics(path: str | Path) -> Calibration:
    """Read a calibration JSON: either {"K": [[fx,0,cx],[0,fy,cy],[0,0,1]]} or
    {"fx":..,"fy":..,"cx":..,"cy":..}, each optionally with "width" and "height" (pixels).

    OpenCV's `camera_matrix` key is accepted as a synonym of "K". Other keys are a record of how
    the file was made (`save_intrinsics`: "dist", "rms_px", "views", "camera", ...) and are not
    read. Raises InputError naming the file and what is wrong with it.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: intrinsics file not found; pass a JSON file with fx, fy, cx, cy") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON intrinsics file ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with K or fx/fy/cx/cy")
    matrix = data.get("K", data.get("camera_matrix"))
    try:
        if matrix is not None:
            K = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
        elif all(k in data for k in ("fx", "fy", "cx", "cy")):
            K = np.array([[float(data["fx"]), 0.0, float(data["cx"])],
                          [0.0, float(data["fy"]), float(data["cy"])],
                          [0.0, 0.0, 1.0]])
        else:
            raise InputError(f"{path}: needs a 3x3 \"K\" or the keys fx, fy, cx, cy")
        width = int(data["width"]) if "width" in data else None
        height = int(data["height"]) if "height" in data else None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: intrinsics values are not numbers of the right shape ({exc})") from None
    if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0):
        raise InputError(f"{path}: focal lengths must be positive finite numbers")
    return Calibration(K=K, width=width, height=height)


def save_intrinsics(path: str | Path, K: np.ndarray, width: int, height: int,
                    extra: Mapping[str, object] | None = None) -> Path:
    """Write K and the image size as `load_intrinsics` reads them, plus `extra` keys (how it was
    measured). Written to a temporary file beside `path` and renamed over it, so a full disk or a
    crash leaves the earlier file whole. Returns the path written."""
    path = Path(path)
    data: dict[str, object] = {"K": np.asarray(K, np.float64).reshape(3, 3).tolist(),
                               "width": int(width), "height": int(height)}
    data.update(extra or {})
    text = json.dumps(data, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class IntrinsicsChoice:
    """What the user picked: a calibration file wins, then a focal length, then the FOV guess."""

    calibration: Calibration | None = None
    focal_px: float | None = None
    fov_deg: float = DEFAULT_FOV_DEG

    def K_for(self, width: int, height: int) -> np.ndarray:
        """K (3, 3) for a frame of this size."""
        if self.calibration is not None:
            return self.calibration.for_size(width, height)
        return default_intrinsics(width, height, fov_deg=self.fov_deg, focal_px=self.focal_px)
