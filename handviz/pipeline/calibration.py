"""Measure a camera's intrinsics K from views of a printed checkerboard (OpenCV's calibration).

K decides how far away each hand is placed (handviz.pipeline.intrinsics), and the 60-degree guess
is only a guess: webcams range over 55-90 degrees. Frames come in one by one (the CLI's camera,
video or photos, the app's live feed); a view is kept only when the board's inner corners are all
found and the board has moved since every kept view (a board held still adds no information, and
20 copies of one pose would let `cv2.calibrateCamera` fit the noise). With enough views,
`solve()` returns K, the distortion, the RMS reprojection error and the image size, or refuses
with an InputError saying what to do. numpy and cv2 only: the app runs it on a worker thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from handviz.logs import InputError

#: Inner corners (columns, rows) of OpenCV's sample board (a 10 x 7 squares print).
BOARD_DEFAULT = (9, 6)
#: Side of one printed square, millimetres (only the board's scale depends on it, not K).
SQUARE_MM_DEFAULT = 25.0
#: Views kept before solving: OpenCV's tutorial uses 10-20; 12 tilted views pin fx within ~1 %.
VIEWS_DEFAULT = 12
#: Fewest views `--views` may ask for: fewer leave focal length and tilt poorly separated.
VIEWS_MIN = 5
#: A view is new when its corners moved, on average, this share of the image diagonal away from
#: those of every kept view (5 %: 40 px at 640x480, a hand's move; sensor noise is < 1 px).
MIN_VIEW_CHANGE = 0.05
#: Worst RMS reprojection error accepted (px): a good webcam calibration is 0.2-0.8 px; above
#: 1.5 px a corner was misplaced (blur, a bent print) and K is not to be trusted.
MAX_RMS_PX = 1.5
#: Horizontal fields of view a camera may have (degrees): outside, the solve went wrong.
FOV_RANGE_DEG = (10.0, 150.0)
#: Most fx and fy may differ (pixels are square to within a few % on every webcam).
MAX_ASPECT_ERROR = 0.1
#: cornerSubPix: search window (half size, px) and stop rule, as in OpenCV's tutorial.
_SUBPIX_WINDOW = (11, 11)
_SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.001)


def parse_board(text: str) -> tuple[int, int]:
    """"9x6" -> (9, 6) inner corners; InputError for anything else."""
    try:
        cols, rows = (int(part) for part in text.lower().replace("*", "x").split("x"))
    except ValueError:
        raise InputError(f"--board {text!r}: give the inner corners as COLSxROWS, e.g. 9x6") from None
    if cols < 3 or rows < 3:
        raise InputError(f"--board {text}: a board needs at least 3x3 inner corners")
    return cols, rows


def board_points(board: tuple[int, int], square_mm: float) -> np.ndarray:
    """The inner corners on the board's plane, (cols * rows, 3) float32 mm, z = 0, in the order
    cv2.findChessboardCorners reports them (row by row)."""
    cols, rows = board
    grid = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2)
    return np.hstack([grid * float(square_mm), np.zeros((len(grid), 1))]).astype(np.float32)


def to_gray(image: np.ndarray, rgb: bool = True) -> np.ndarray:
    """(H, W) uint8 from an (H, W), (H, W, 3) RGB or BGR, or (H, W, 4) image."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY if rgb else cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY if rgb else cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")


def find_corners(gray: np.ndarray, board: tuple[int, int], fast: bool = False) -> np.ndarray | None:
    """The board's inner corners refined to sub-pixel, (cols * rows, 2) float32 px, or None.

    fast adds CALIB_CB_FAST_CHECK: a frame without a board is rejected in a few ms instead of
    the full search's 50-500 ms (the app's live feed is mostly such frames).
    """
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH + cv2.CALIB_CB_NORMALIZE_IMAGE
    if fast:
        flags += cv2.CALIB_CB_FAST_CHECK
    found, corners = cv2.findChessboardCorners(gray, board, flags=flags)
    if not found or corners is None or len(corners) != board[0] * board[1]:
        return None
    corners = cv2.cornerSubPix(gray, corners, _SUBPIX_WINDOW, (-1, -1), _SUBPIX_CRITERIA)
    return corners.reshape(-1, 2).astype(np.float32)


@dataclass(frozen=True)
class ViewCheck:
    """What one frame gave: was the board found, was the view kept, and a line for the user."""

    found: bool
    kept: bool
    message: str
    corners: np.ndarray | None = None  # (cols * rows, 2) px when found


@dataclass(frozen=True)
class CameraCalibration:
    """A solved calibration: K (3, 3) px, OpenCV's distortion (k1, k2, p1, p2, k3), the RMS
    reprojection error (px) over `views` views, at `width` x `height`."""

    K: np.ndarray
    dist: np.ndarray
    rms_px: float
    width: int
    height: int
    views: int
    board: tuple[int, int] = BOARD_DEFAULT
    square_mm: float = SQUARE_MM_DEFAULT

    @property
    def focal_px(self) -> float:
        """Mean of fx and fy (px)."""
        return float((self.K[0, 0] + self.K[1, 1]) / 2.0)

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view (degrees)."""
        return math.degrees(2.0 * math.atan(self.width / (2.0 * float(self.K[0, 0]))))

    def summary(self) -> str:
        """One line for the user: focal length, field of view, RMS error."""
        return (f"focal length {self.focal_px:.1f} px (fx {self.K[0, 0]:.1f}, fy {self.K[1, 1]:.1f}) at "
                f"{self.width}x{self.height}, horizontal field of view {self.hfov_deg:.1f} deg, "
                f"RMS reprojection error {self.rms_px:.2f} px over {self.views} views")

    def file_extra(self, camera: str) -> dict[str, object]:
        """How it was measured, for the intrinsics file beside K, width and height."""
        return {"dist": [float(d) for d in np.ravel(self.dist)], "rms_px": round(float(self.rms_px), 4),
                "views": int(self.views), "board": f"{self.board[0]}x{self.board[1]}",
                "square_mm": float(self.square_mm), "camera": camera}


def _mean_shift(a: np.ndarray, b: np.ndarray) -> float:
    """Mean corner distance (px) between two views; the board may be reported in either order
    (a turned board reverses the corner list), so the smaller of the two readings."""
    return float(min(np.linalg.norm(a - b, axis=1).mean(), np.linalg.norm(a - b[::-1], axis=1).mean()))


class CheckerboardCalibrator:
    """Feed frames with `add_frame`; once `ready`, `solve()`.

    board: inner corners (cols, rows); square_mm: printed square side; views_needed: distinct
    views to collect; fast: CALIB_CB_FAST_CHECK (live feeds); min_change: see MIN_VIEW_CHANGE.
    """

    def __init__(self, board: tuple[int, int] = BOARD_DEFAULT, square_mm: float = SQUARE_MM_DEFAULT,
                 views_needed: int = VIEWS_DEFAULT, fast: bool = False,
                 min_change: float = MIN_VIEW_CHANGE) -> None:
        if not (square_mm > 0 and math.isfinite(square_mm)):
            raise InputError(f"--square-mm must be a positive number, got {square_mm:g}")
        if views_needed < VIEWS_MIN:
            raise InputError(f"--views must be at least {VIEWS_MIN}, got {views_needed}")
        self.board = (int(board[0]), int(board[1]))
        self.square_mm = float(square_mm)
        self.views_needed = int(views_needed)
        self.fast = fast
        self.min_change = float(min_change)
        self.size: tuple[int, int] | None = None  # (width, height) of the first frame
        self.views: list[np.ndarray] = []  # (cols * rows, 2) corners per kept view
        self.frames_seen = 0
        self.frames_found = 0

    @property
    def ready(self) -> bool:
        return len(self.views) >= self.views_needed

    def progress(self) -> str:
        """'8 / 12 views'."""
        return f"{len(self.views)} / {self.views_needed} views"

    def add_frame(self, image: np.ndarray, rgb: bool = True) -> ViewCheck:
        """Look for the board in image ((H, W, 3) RGB, or BGR with rgb=False, or gray) and keep the
        view when it is new. All frames must be of one size (K belongs to one resolution)."""
        gray = to_gray(image, rgb)
        corners = find_corners(gray, self.board, fast=self.fast)
        return self.add_corners(corners, (gray.shape[1], gray.shape[0]))

    def add_corners(self, corners: np.ndarray | None, size: tuple[int, int]) -> ViewCheck:
        """Keep corners ((cols * rows, 2) px, or None: no board) found in a frame of size (w, h)
        when the view differs enough from every kept one."""
        if self.size is None:
            self.size = (int(size[0]), int(size[1]))
        elif tuple(size) != self.size:
            raise InputError(f"frame size changed from {self.size[0]}x{self.size[1]} to {size[0]}x{size[1]}; "
                             "calibrate one camera at one resolution")
        self.frames_seen += 1
        if corners is None:
            return ViewCheck(False, False, f"{self.progress()} — no {self.board[0]}x{self.board[1]} board found")
        corners = np.asarray(corners, np.float32).reshape(-1, 2)
        self.frames_found += 1
        if self.ready:
            return ViewCheck(True, False, f"{self.progress()} — enough views", corners)
        needed = self.min_change * math.hypot(*self.size)
        if any(_mean_shift(corners, kept) < needed for kept in self.views):
            return ViewCheck(True, False, f"{self.progress()} — move the board to a new position", corners)
        self.views.append(corners)
        more = "" if self.ready else " — move the board to a new position"
        return ViewCheck(True, True, f"{self.progress()}{more}", corners)

    def solve(self) -> CameraCalibration:
        """cv2.calibrateCamera over the kept views. InputError when there are too few, when the
        RMS error is over MAX_RMS_PX, or when the focal length or principal point is implausible.

        k3 is held at 0 (CALIB_FIX_K3): a webcam's lens needs k1, k2, and a free k3 trades
        against the focal length when the views do not reach the image's corners.
        """
        if self.size is None or len(self.views) < self.views_needed:
            found = "" if self.frames_found else f"; the {self.board[0]}x{self.board[1]} board was never found " \
                "(check --board: inner corners, not squares)"
            raise InputError(f"too few views of the board: {len(self.views)} of {self.views_needed} needed{found}; "
                             "show the board at more positions and angles")
        width, height = self.size
        obj = board_points(self.board, self.square_mm)
        rms, K, dist, _rvecs, _tvecs = cv2.calibrateCamera(
            [obj] * len(self.views), [v.reshape(-1, 1, 2) for v in self.views], (width, height),
            None, None, flags=cv2.CALIB_FIX_K3)
        result = CameraCalibration(np.asarray(K, np.float64), np.ravel(dist).astype(np.float64), float(rms),
                                   width, height, len(self.views), self.board, self.square_mm)
        check_plausible(result)
        return result


def check_plausible(result: CameraCalibration) -> None:
    """InputError when the solve cannot be trusted: a high RMS error, a field of view no camera
    has, non-square pixels, or the principal point outside the image."""
    fx, fy, cx, cy = result.K[0, 0], result.K[1, 1], result.K[0, 2], result.K[1, 2]
    if not (np.all(np.isfinite(result.K)) and fx > 0 and fy > 0):
        raise InputError("calibration failed: the focal length came out non-positive; take views at more angles")
    if result.rms_px > MAX_RMS_PX:
        raise InputError(f"calibration rejected: RMS reprojection error {result.rms_px:.2f} px is over "
                         f"{MAX_RMS_PX} px (blurred views or a bent print?); hold the board flat and still")
    low, high = FOV_RANGE_DEG
    if not low <= result.hfov_deg <= high:
        raise InputError(f"calibration rejected: a {result.hfov_deg:.0f} deg field of view (focal {fx:.0f} px) "
                         f"is outside {low:.0f}-{high:.0f} deg; take views with the board tilted more")
    if abs(fx / fy - 1.0) > MAX_ASPECT_ERROR:
        raise InputError(f"calibration rejected: fx {fx:.0f} and fy {fy:.0f} px differ by more than "
                         f"{MAX_ASPECT_ERROR:.0%}; take views at more positions and angles")
    if not (0 < cx < result.width and 0 < cy < result.height):
        raise InputError(f"calibration rejected: the principal point ({cx:.0f}, {cy:.0f}) is outside the "
                         "image; take views that cover the whole image")
