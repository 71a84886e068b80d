"""Synthetic photos of a checkerboard seen by a camera of known K (for the calibration tests).

The board is drawn flat, then mapped into each view by the homography K [r1 r2 t] of a random
pose (board tilted 15-40 degrees, 40-70 cm away): what a camera would see of a flat print.
"""

from __future__ import annotations

import cv2
import numpy as np

#: The camera the photos are taken with: 640x480, a 55-degree lens, principal point off-centre.
TRUE_K = np.array([[615.0, 0.0, 326.0], [0.0, 615.0, 232.0], [0.0, 0.0, 1.0]])
SIZE = (640, 480)
BOARD = (9, 6)
SQUARE_MM = 25.0
_PX = 24  # pixels per square in the flat drawing
_MARGIN = 24  # white border around the squares, px


def board_image(board: tuple[int, int] = BOARD) -> np.ndarray:
    """The flat print: (cols + 1) x (rows + 1) squares, black in the top-left corner, a white border."""
    cols, rows = board[0] + 1, board[1] + 1
    img = np.full((rows * _PX + 2 * _MARGIN, cols * _PX + 2 * _MARGIN), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            if (r + c) % 2 == 0:
                y, x = _MARGIN + r * _PX, _MARGIN + c * _PX
                img[y:y + _PX, x:x + _PX] = 0
    return img


def _print_to_plane() -> np.ndarray:
    """Homography: print pixel -> board plane (mm), inner corner (0, 0) at the origin. Square edges
    lie between pixels, so the first inner corner is at _MARGIN + _PX - 0.5 in pixel-centre terms."""
    s = SQUARE_MM / _PX
    o = _MARGIN + _PX - 0.5
    return np.array([[s, 0.0, -o * s], [0.0, s, -o * s], [0.0, 0.0, 1.0]])


def random_poses(n: int, seed: int = 0, K: np.ndarray = TRUE_K) -> list[tuple[np.ndarray, np.ndarray]]:
    """n (rvec, tvec) whose whole board projects inside the image with a 10 px margin."""
    rng = np.random.default_rng(seed)
    cols, rows = BOARD
    outline = np.array([[-SQUARE_MM, -SQUARE_MM, 0], [cols * SQUARE_MM, -SQUARE_MM, 0],
                        [cols * SQUARE_MM, rows * SQUARE_MM, 0], [-SQUARE_MM, rows * SQUARE_MM, 0]])
    centre = np.array([(cols - 1) * SQUARE_MM / 2, (rows - 1) * SQUARE_MM / 2, 0.0])
    poses = []
    while len(poses) < n:
        tilt = np.radians(rng.uniform(15, 40)) * rng.choice([-1, 1], 2) * rng.uniform(0.3, 1.0, 2)
        R = cv2.Rodrigues(np.array([tilt[0], tilt[1], np.radians(rng.uniform(-20, 20))]))[0]
        z = rng.uniform(400, 700)
        target = np.array([rng.uniform(-0.25, 0.25) * z, rng.uniform(-0.2, 0.2) * z, z])
        t = target - R @ centre
        rvec = cv2.Rodrigues(R)[0]
        uv = cv2.projectPoints(outline, rvec, t, K, None)[0].reshape(-1, 2)
        if (uv.min() > 10 and uv[:, 0].max() < SIZE[0] - 10 and uv[:, 1].max() < SIZE[1] - 10):
            poses.append((rvec, t))
    return poses


def render_view(rvec: np.ndarray, tvec: np.ndarray, K: np.ndarray = TRUE_K, noise_seed: int = 0) -> np.ndarray:
    """(480, 640, 3) uint8 BGR photo of the print at this pose on a grey wall: slightly blurred,
    with a webcam's sensor noise (sigma 2 grey levels)."""
    R = cv2.Rodrigues(rvec)[0]
    H = K @ np.column_stack([R[:, 0], R[:, 1], np.ravel(tvec)]) @ _print_to_plane()
    gray = cv2.warpPerspective(board_image(), H, SIZE, flags=cv2.INTER_LINEAR, borderValue=110)
    gray = cv2.GaussianBlur(gray, (3, 3), 0.7).astype(np.float32)
    gray += np.random.default_rng(noise_seed).normal(0.0, 2.0, gray.shape).astype(np.float32)
    return cv2.cvtColor(np.clip(gray, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def true_corners(rvec: np.ndarray, tvec: np.ndarray, K: np.ndarray = TRUE_K) -> np.ndarray:
    """The inner corners' true image positions, (cols * rows, 2) px."""
    from handviz.pipeline.calibration import board_points

    return cv2.projectPoints(board_points(BOARD, SQUARE_MM), rvec, tvec, K, None)[0].reshape(-1, 2)


def photos(n: int, seed: int = 0) -> list[np.ndarray]:
    """n (480, 640, 3) BGR photos of the board at random poses."""
    return [render_view(r, t, noise_seed=k) for k, (r, t) in enumerate(random_poses(n, seed))]
