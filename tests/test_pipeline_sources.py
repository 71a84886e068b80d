"""Sources (folder, video, camera, demo) and intrinsics: frames out, clear errors, nothing crashes."""

import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from handviz.logs import InputError
from handviz.pipeline import sources
from handviz.pipeline.intrinsics import (
    Calibration,
    IntrinsicsChoice,
    default_intrinsics,
    load_intrinsics,
    still_image_intrinsics,
)
from handviz.types import Detection
from handviz.pipeline.sources import (
    CameraSource,
    ImageFolderSource,
    SourceError,
    VideoSource,
    demo_dir,
    list_cameras,
    open_source,
)


def _solid(bgr, w=64, h=48):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = bgr
    return img


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    cv2.imwrite(str(tmp_path / "frame_10.png"), _solid((0, 0, 255)))  # red in BGR
    cv2.imwrite(str(tmp_path / "frame_2.png"), _solid((255, 0, 0)))  # blue
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "frame_5.jpg").write_bytes(b"\xff\xd8 damaged jpeg")
    return tmp_path


def test_folder_plays_images_in_natural_order_and_skips_the_rest(folder):
    src = open_source(folder)
    first, second, end = src.read(), src.read(), src.read()
    assert first.shape == (48, 64, 3) and first.dtype == np.uint8
    assert tuple(first[0, 0]) == (0, 0, 255)  # frame_2 (blue) before frame_10, in RGB
    assert tuple(second[0, 0]) == (255, 0, 0)
    assert end is None
    assert any("notes.txt" in w for w in src.warnings)
    assert any("frame_5.jpg" in w and "not a readable image" in w for w in src.warnings)


def test_folder_loop_and_hold(folder):
    src = ImageFolderSource(folder, loop=True, hold_frames=2)
    colours = [tuple(src.read()[0, 0]) for _ in range(6)]
    blue, red = (0, 0, 255), (255, 0, 0)
    assert colours == [blue, blue, red, red, blue, blue]


def test_empty_or_missing_folder_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="no images"):
        open_source(tmp_path)
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(tmp_path / "missing")


def test_folder_of_only_damaged_images_fails_on_read(tmp_path):
    (tmp_path / "a.png").write_bytes(b"nope")
    src = open_source(tmp_path)
    with pytest.raises(SourceError, match="none of its 1 image"):
        src.read()


def test_video_file_frames_rgb_and_rate(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (64, 48))
    for _ in range(5):
        writer.write(_solid((0, 0, 255)))
    writer.release()
    src = open_source(path)
    assert isinstance(src, VideoSource) and src.fps == pytest.approx(12.0)
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    assert len(frames) == 5
    assert frames[0][24, 32, 0] > 200 and frames[0][24, 32, 2] < 60  # red stays red in RGB
    looping = VideoSource(path, loop=True)
    assert sum(looping.read() is not None for _ in range(12)) == 12
    src.close()
    looping.close()


def test_damaged_video_is_a_source_error(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00" * 2048)
    with pytest.raises(SourceError, match="broken.mp4"):
        open_source(path)


def _no_capture(*args):
    raise AssertionError("cv2.VideoCapture was opened: probing a camera can wait seconds for a driver")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks /dev/videoN")
def test_missing_camera_is_a_quick_source_error(monkeypatch):
    """Quick by construction: no /dev/videoN node answers before OpenCV is asked to open it."""
    index = next(i for i in range(50, 100) if not Path(f"/dev/video{i}").exists())
    monkeypatch.setattr(cv2, "VideoCapture", _no_capture)
    with pytest.raises(SourceError, match=f"camera {index}: not present"):
        CameraSource(index)
    with pytest.raises(SourceError):
        open_source(str(index))


def test_camera_that_stops_delivering_is_reported(monkeypatch):
    """An unplugged camera: reads start failing mid-run -> SourceError, not an endless loop."""

    class DyingCapture:
        def __init__(self, *_):
            self.reads = 0

        def isOpened(self):  # noqa: N802 (cv2 name)
            return True

        def set(self, *_):
            return True

        def read(self):
            self.reads += 1
            return (True, _solid((0, 255, 0))) if self.reads <= 2 else (False, None)

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoCapture", DyingCapture)
    monkeypatch.setattr(sources, "_device_node_missing", lambda index: False)
    cam = CameraSource(0)
    assert cam.read() is not None and cam.read() is not None
    with pytest.raises(SourceError, match="stopped delivering frames"):
        cam.read()


def test_list_cameras_answers_quickly(monkeypatch):
    """Only existing /dev/videoN nodes are probed: a machine without them answers without asking
    OpenCV at all (each probe of an absent camera can take seconds)."""
    found = list_cameras()
    assert isinstance(found, list) and all(isinstance(i, int) for i in found)
    monkeypatch.setattr(sources, "_device_node_missing", lambda index: True)
    monkeypatch.setattr(cv2, "VideoCapture", _no_capture)
    assert list_cameras() == []


def test_demo_source_by_name_and_path():
    for spec in ("demo", str(demo_dir())):
        src = open_source(spec)
        assert src.name == "demo" and src.inner.loop and src.fps
        assert len(src.inner.files) == 3 and src.warnings == []
        img = src.read()
        assert img.ndim == 3 and img.shape[1] <= 1280


def test_demo_clip_has_one_frame_size():
    """Defect 3: the demo's photos differ in size; the clip made of them must not."""
    from handviz.pipeline.sources import DEMO_FPS, DEMO_SECONDS_PER_PHOTO, DEMO_SIZE

    with open_source("demo") as src:
        n = 3 * int(DEMO_FPS * DEMO_SECONDS_PER_PHOTO) + 1
        sizes = {src.read().shape for _ in range(n)}
    assert sizes == {(DEMO_SIZE[1], DEMO_SIZE[0], 3)}


def test_default_intrinsics_from_field_of_view():
    K = default_intrinsics(640, 480, fov_deg=60)
    assert K[0, 0] == pytest.approx(320 / math.tan(math.radians(30)))
    assert K[0, 0] == K[1, 1] and K[0, 2] == pytest.approx(319.5) and K[1, 2] == pytest.approx(239.5)
    assert default_intrinsics(640, 480, focal_px=500)[0, 0] == 500
    with pytest.raises(ValueError):
        default_intrinsics(0, 480)


def _hand_seen_at(px_per_mm: float, centre=(128.0, 128.0)) -> Detection:
    """A flat 90 x 120 mm hand whose keypoints are its world landmarks at px_per_mm."""
    rng = np.random.default_rng(0)
    world = np.c_[rng.uniform(-45, 45, (21, 2)) * [1, 4 / 3], rng.uniform(-20, 20, 21)]
    kp = world[:, :2] * px_per_mm + centre
    return Detection(keypoints_2d=kp.astype(np.float32), world_3d=world.astype(np.float32), handedness="Right", score=1.0)


def test_still_image_focal_keeps_a_frame_filling_hand_at_a_plausible_distance():
    guess = default_intrinsics(256, 256)[0, 0]  # 222 px: a hand filling the crop would be ~20 cm away
    big = still_image_intrinsics(256, 256, [_hand_seen_at(1.5)])
    assert big[0, 0] == pytest.approx(400 * 1.5, rel=1e-6) and big[1, 1] == big[0, 0] > guess
    assert big[0, 2] == default_intrinsics(256, 256)[0, 2]
    small = still_image_intrinsics(1280, 720, [_hand_seen_at(0.5, (600, 300))])  # already > 40 cm away
    assert np.array_equal(small, default_intrinsics(1280, 720))
    both = still_image_intrinsics(256, 256, [_hand_seen_at(0.5), _hand_seen_at(2.0)])
    assert both[0, 0] == pytest.approx(800, rel=1e-6)  # one K per photo: the nearest-looking hand decides
    unknown = _hand_seen_at(1.5)
    unknown.world_3d[:] = np.nan
    assert np.array_equal(still_image_intrinsics(256, 256, [unknown]), default_intrinsics(256, 256))
    assert np.array_equal(still_image_intrinsics(256, 256, []), default_intrinsics(256, 256))


def test_load_intrinsics_forms_and_scaling(tmp_path):
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"fx": 600, "fy": 610, "cx": 320, "cy": 240, "width": 640, "height": 480}))
    cal = load_intrinsics(a)
    K = cal.for_size(1280, 960)
    assert K[0, 0] == pytest.approx(1200) and K[1, 1] == pytest.approx(1220) and K[0, 2] == pytest.approx(640)
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"camera_matrix": [[500, 0, 100], [0, 500, 80], [0, 0, 1]]}))
    assert load_intrinsics(b).for_size(10, 10)[0, 2] == 100  # no size: used as is
    choice = IntrinsicsChoice(calibration=Calibration(np.diag([700.0, 700.0, 1.0])))
    assert choice.K_for(640, 480)[0, 0] == 700
    assert IntrinsicsChoice(focal_px=450).K_for(640, 480)[0, 0] == 450


@pytest.mark.parametrize("text, match", [
    ("{not json", "not a readable JSON"),
    (json.dumps({"fx": 1}), "needs a 3x3"),
    (json.dumps({"K": [1, 2, 3]}), "right shape"),
    (json.dumps({"fx": -5, "fy": 5, "cx": 0, "cy": 0}), "positive"),
])
def test_bad_intrinsics_files_name_the_file(tmp_path, text, match):
    path = tmp_path / "k.json"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as info:
        load_intrinsics(path)
    assert str(path) in str(info.value)
    with pytest.raises(InputError, match="not found"):
        load_intrinsics(tmp_path / "none.json")
