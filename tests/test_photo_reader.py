"""Still photos: a hand that fills the frame is read again with a border, in the photo's pixels."""

import cv2
import numpy as np
import pytest
from clips import close_crop

from handviz.pipeline.photo_reader import (
    BORDER_SHARE,
    CANVAS_PHOTO_SIDE,
    FRAME_FILL_SHARE,
    Canvas,
    PhotoReader,
)
from handviz.types import Detection


class BoxDetector:
    """Finds the bright square in an image, as MediaPipe finds a hand, unless it is too close to the
    image's edge (fills the frame): keypoints spread over the square, in the image's own pixels."""

    def __init__(self, min_margin: int = 20, hands_when_bordered: int | None = None) -> None:
        self.min_margin = min_margin
        self.hands_when_bordered = hands_when_bordered
        self.seen: list[tuple[int, int]] = []  # (height, width) of every image it was given

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        self.seen.append(rgb.shape[:2])
        ys, xs = np.nonzero(rgb[..., 0] > 200)
        if len(xs) == 0:
            return []
        x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
        h, w = rgb.shape[:2]
        if min(x0, y0, w - 1 - x1, h - 1 - y1) < self.min_margin:
            return []  # the "hand" fills the frame: not found
        t = np.linspace(0.0, 1.0, 21, dtype=np.float32)
        kp = np.stack([x0 + t * (x1 - x0), y0 + t * (y1 - y0)], axis=1).astype(np.float32)
        found = [Detection(kp, np.zeros((21, 3), np.float32), "Right", 0.9, keypoints_z=np.full(21, 7.0, np.float32))]
        if self.hands_when_bordered is not None and len(self.seen) > 1:
            found = found * self.hands_when_bordered
        return found


def _photo(size: int, x0: int, x1: int) -> np.ndarray:
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[x0:x1, x0:x1] = 255
    return rgb


def test_a_hand_that_fills_the_frame_is_found_with_a_border_in_the_photos_pixels() -> None:
    rgb = _photo(100, 5, 95)  # 5 px from every edge: the plain reading finds nothing
    detector = BoxDetector()
    assert detector.detect(rgb) == []
    reader = PhotoReader(detector)
    found = reader.detect(rgb)
    assert reader.canvas == Canvas(1.0, round(BORDER_SHARE * 100))
    assert len(found) == 1
    kp = found[0].keypoints_2d
    assert kp.dtype == np.float32
    np.testing.assert_allclose(kp[0], [5, 5], atol=1e-4)  # back in the photo's pixels, not the canvas's
    np.testing.assert_allclose(kp[-1], [94, 94], atol=1e-4)


def test_a_small_hand_is_read_once_and_a_large_one_again() -> None:
    small = _photo(400, 150, 250)  # spans 0.25 of the photo
    detector = BoxDetector()
    reader = PhotoReader(detector)
    assert len(reader.detect(small)) == 1 and reader.canvas is None
    assert detector.seen == [(400, 400)]
    large = _photo(400, 60, 340)  # spans 0.70 (>= FRAME_FILL_SHARE): found, and read again with a border
    assert 280 / 400 >= FRAME_FILL_SHARE
    detector.seen.clear()
    found = reader.detect(large)
    assert detector.seen == [(400, 400), (800, 800)]
    assert reader.canvas == Canvas(1.0, 200)
    np.testing.assert_allclose(found[0].keypoints_2d[0], [60, 60], atol=1e-4)


def test_the_first_reading_is_kept_when_the_border_finds_fewer_hands() -> None:
    detector = BoxDetector(hands_when_bordered=0)
    reader = PhotoReader(detector)
    found = reader.detect(_photo(400, 60, 340))
    assert len(found) == 1 and reader.canvas is None


def test_changed_copies_are_copies_of_the_bordered_photo() -> None:
    rgb = cv2.GaussianBlur(_photo(100, 8, 92), (3, 3), 0)
    detector = BoxDetector(min_margin=10)
    reader = PhotoReader(detector)
    found = reader.detect(rgb)
    assert reader.canvas == Canvas(1.0, 50) and len(found) == 1
    detector.seen.clear()
    reader.augment(rgb, found)
    assert detector.seen == [(200, 200)] * 4  # the bordered photo rotated twice, shrunk, mirrored
    tta = found[0].tta_keypoints_2d
    assert tta is not None and len(tta) >= 3  # found again (in the photo's pixels, near the photo's own)
    assert found[0].tta_found_share == len(tta) / 4
    assert np.abs(tta - found[0].keypoints_2d).max() < 15


def test_a_large_photo_is_shrunk_before_its_border_is_added() -> None:
    """A phone photo is not bordered at full size: the canvas's longer side is 2 x CANVAS_PHOTO_SIDE,
    and the keypoints (and their z) come back in the photo's pixels."""
    rgb = _photo(3000, 40, 2960)
    detector = BoxDetector()
    reader = PhotoReader(detector)
    found = reader.detect(rgb)
    scale = CANVAS_PHOTO_SIDE / 3000
    assert reader.canvas == Canvas(scale, round(BORDER_SHARE * CANVAS_PHOTO_SIDE))
    assert detector.seen == [(3000, 3000), (2 * CANVAS_PHOTO_SIDE, 2 * CANVAS_PHOTO_SIDE)]
    np.testing.assert_allclose(found[0].keypoints_2d[[0, -1]], [[40, 40], [2959, 2959]], atol=1.5 / scale)
    np.testing.assert_allclose(found[0].keypoints_z, 7.0 / scale, rtol=1e-5)


@pytest.mark.parametrize(("name", "margin"), [("thumbs_up_large.png", 1.3), ("two_thumbs_up.jpg", 1.1)])
def test_mediapipe_finds_a_hand_in_a_close_crop_only_with_the_border(name: str, margin: float) -> None:
    """Real MediaPipe on a close crop (1.1-1.3x the hand's box) of a bundled photo: it finds no hand in
    the crop as it is, and the hand it found in the whole photo once the border is added."""
    from handviz.paths import assets_dir
    from handviz.pipeline.detector import HandDetector

    rgb = cv2.cvtColor(cv2.imread(str(assets_dir() / "demo" / name)), cv2.COLOR_BGR2RGB)
    with HandDetector(max_hands=2, static=True) as detector:
        whole = max(detector.detect(rgb), key=lambda d: np.ptp(d.keypoints_2d, axis=0).max())
        crop, A = close_crop(rgb, whole.keypoints_2d, margin)
        assert detector.detect(crop) == []
        found = PhotoReader(detector).detect(crop)
    expected = np.c_[whole.keypoints_2d, np.ones(21)] @ A.T
    errors = [float(np.linalg.norm(d.keypoints_2d - expected, axis=1).mean()) for d in found]
    assert min(errors) < 0.05 * 256  # the same hand, within 5 % of the crop
