"""Checkerboard calibration (handviz.pipeline.calibration) and `handviz calibrate`, on synthetic
photos of a board seen by a camera of known K (tests/calib_boards.py)."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from calib_boards import (
    BOARD,
    SIZE,
    SQUARE_MM,
    TRUE_K,
    photos,
    random_poses,
    true_corners,
)

from handviz.cli import main
from handviz.logs import InputError
from handviz.pipeline import intrinsics
from handviz.pipeline.calibration import (
    MAX_RMS_PX,
    CheckerboardCalibrator,
    board_points,
    parse_board,
)
from handviz.pipeline.intrinsics import load_intrinsics, save_intrinsics


@pytest.fixture(scope="module")
def shots() -> list[np.ndarray]:
    """14 BGR photos: 12 views are needed, one of the 14 may be too like another."""
    return photos(14)


@pytest.fixture()
def shots_dir(tmp_path, shots):
    folder = tmp_path / "shots"
    folder.mkdir()
    for k, image in enumerate(shots):
        cv2.imwrite(str(folder / f"shot_{k}.png"), image)
    return folder


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """The per-camera default --out goes here, not into the user's config folder."""
    folder = tmp_path / "config"
    monkeypatch.setenv("HANDVIZ_CONFIG_DIR", str(folder))
    return folder


def calibrate(images: list[np.ndarray], **kwargs) -> CheckerboardCalibrator:
    calibrator = CheckerboardCalibrator(**kwargs)
    for image in images:
        calibrator.add_frame(image, rgb=False)
        if calibrator.ready:
            break
    return calibrator


def test_recovers_the_known_focal_length_and_principal_point(shots):
    calibrator = calibrate(shots)
    assert calibrator.ready and len(calibrator.views) == 12
    result = calibrator.solve()
    fx_error = abs(result.K[0, 0] / TRUE_K[0, 0] - 1)
    print(f"fx {result.K[0, 0]:.2f} px (true {TRUE_K[0, 0]:.0f}): {100 * fx_error:.3f} % off; "
          f"c = ({result.K[0, 2]:.2f}, {result.K[1, 2]:.2f}); RMS {result.rms_px:.3f} px")
    assert fx_error < 0.02 and abs(result.K[1, 1] / TRUE_K[1, 1] - 1) < 0.02
    assert np.allclose(result.K[:2, 2], TRUE_K[:2, 2], atol=3.0)
    assert result.rms_px < 0.5 and (result.width, result.height) == SIZE
    assert 54.0 < result.hfov_deg < 56.0  # the true camera's: 2 atan(320 / 615) = 54.98 deg


def test_corners_are_found_where_the_camera_put_them(shots):
    (rvec, tvec), image = random_poses(1)[0], shots[0]
    check = CheckerboardCalibrator().add_frame(image, rgb=False)
    truth = true_corners(rvec, tvec)
    error = min(np.abs(check.corners - truth).max(), np.abs(check.corners[::-1] - truth).max())
    assert check.found and check.kept and error < 0.5


def test_a_view_too_like_a_kept_one_is_dropped(shots):
    calibrator = CheckerboardCalibrator()
    assert calibrator.add_frame(shots[0], rgb=False).kept
    again = calibrator.add_frame(shots[0], rgb=False)
    nudged = calibrator.add_frame(np.roll(shots[0], 4, axis=1), rgb=False)  # the board 4 px to the right
    assert again.found and not again.kept and nudged.found and not nudged.kept
    assert "new position" in again.message and len(calibrator.views) == 1
    assert calibrator.add_frame(shots[1], rgb=False).kept  # a different pose is kept


def test_no_board_and_too_few_views_are_refused_clearly(shots):
    calibrator = CheckerboardCalibrator()
    blank = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    check = calibrator.add_frame(blank)
    assert not check.found and not check.kept and "no 9x6 board" in check.message
    with pytest.raises(InputError, match="too few views.*never found"):
        calibrator.solve()
    calibrator = calibrate(shots[:3])
    with pytest.raises(InputError, match="3 of 12"):
        calibrator.solve()
    with pytest.raises(InputError, match="frame size changed"):
        calibrator.add_frame(blank[:240])


def projected_views(K: np.ndarray, n: int = 12, noise_px: float = 0.0) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    obj = board_points(BOARD, SQUARE_MM)
    return [cv2.projectPoints(obj, r, t, K, None)[0].reshape(-1, 2) + rng.normal(0, noise_px, (len(obj), 2))
            for r, t in random_poses(n, seed=2, K=K)]


def test_a_poor_fit_or_an_implausible_focal_length_is_refused():
    noisy = CheckerboardCalibrator(min_change=0.0)
    for corners in projected_views(TRUE_K, noise_px=3.0):
        noisy.add_corners(corners, SIZE)
    with pytest.raises(InputError, match=f"RMS reprojection error .* over {MAX_RMS_PX}"):
        noisy.solve()
    fisheye = TRUE_K.copy()
    fisheye[0, 0] = fisheye[1, 1] = 80.0  # a 152-degree field of view at 640 px
    wide = CheckerboardCalibrator(min_change=0.0)
    for corners in projected_views(fisheye):
        wide.add_corners(corners, SIZE)
    with pytest.raises(InputError, match="field of view"):
        wide.solve()


def test_board_option_parsing():
    assert parse_board("9x6") == (9, 6) and parse_board("7X5") == (7, 5)
    for bad in ("9", "x6", "9x6x2", "2x6", "axb"):
        with pytest.raises(InputError, match="--board"):
            parse_board(bad)


def test_saving_is_atomic_and_old_files_still_load(tmp_path, monkeypatch):
    path = tmp_path / "cam.json"
    save_intrinsics(path, TRUE_K, 640, 480, {"rms_px": 0.3, "views": 12, "camera": "camera 0"})
    loaded = load_intrinsics(path)
    assert np.array_equal(loaded.K, TRUE_K) and (loaded.width, loaded.height) == (640, 480)
    before = path.read_text()

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(intrinsics.os, "replace", full_disk)
    with pytest.raises(OSError):
        save_intrinsics(path, TRUE_K * 2, 640, 480)
    assert path.read_text() == before and os.listdir(tmp_path) == ["cam.json"]  # no temporary left
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"fx": 500, "fy": 500, "cx": 320, "cy": 240}))
    assert load_intrinsics(old).K[0, 0] == 500 and load_intrinsics(old).width is None


def test_cli_writes_a_file_load_intrinsics_reads_back(shots_dir, tmp_path, capsys):
    out = tmp_path / "cam.json"
    assert main(["calibrate", "--images", str(shots_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    K = load_intrinsics(out).K
    assert np.array_equal(K, np.array(data["K"])) and abs(K[0, 0] / TRUE_K[0, 0] - 1) < 0.02
    assert data["width"] == 640 and data["views"] == 12 and data["rms_px"] < 0.5 and len(data["dist"]) == 5
    assert data["camera"] == "images shots" and data["board"] == "9x6"
    assert str(out) in printed and f"focal length {(K[0, 0] + K[1, 1]) / 2:.1f} px" in printed
    assert "field of view 55.0 deg" in printed and "RMS reprojection error" in printed


def test_cli_default_out_is_per_camera_in_the_config_folder(shots_dir, config_dir):
    assert main(["calibrate", "--images", str(shots_dir / "shot_*.png")]) == 0
    assert load_intrinsics(config_dir / "intrinsics" / "images-shots.json").width == 640


def test_cli_reads_a_video(shots, tmp_path):
    video = tmp_path / "board.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    for image in shots:
        writer.write(image)
    writer.release()
    out = tmp_path / "cam.json"
    assert main(["calibrate", "--video", str(video), "--out", str(out)]) == 0
    assert abs(load_intrinsics(out).K[0, 0] / TRUE_K[0, 0] - 1) < 0.02


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, shots_dir, capsys):
    out = tmp_path / "cam.json"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["calibrate", "--images", str(empty), "--out", str(out)]) == 2
    assert "no images found" in capsys.readouterr().err
    blank = tmp_path / "blank"
    blank.mkdir()
    cv2.imwrite(str(blank / "a.png"), np.full((480, 640, 3), 128, np.uint8))
    assert main(["calibrate", "--images", str(blank), "--out", str(out)]) == 2
    assert "never found" in capsys.readouterr().err
    assert main(["calibrate", "--images", str(shots_dir / "shot_[0-5].png"), "--out", str(out)]) == 2
    assert "--views 6" in capsys.readouterr().err
    assert main(["calibrate", "--camera", "97", "--out", str(out)]) == 2
    assert "camera 97" in capsys.readouterr().err
    assert main(["calibrate", "--images", str(shots_dir), "--board", "9", "--out", str(out)]) == 2
    assert not out.exists()
