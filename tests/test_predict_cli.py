"""`handviz predict`: JSON lines in the DESIGN.md format; bad inputs reported, the rest processed;
nothing readable at all refused before the model loads; folders walked with --recursive."""

import json

import cv2
import numpy as np
import pytest

from handviz.cli import main
from handviz.commands.predict import expand_inputs
from handviz.geometry import project
from handviz.hand.asset import load_hand_asset


def test_predict_writes_lines_and_reports_bad_inputs(tmp_path, demo_photo, capsys):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 200, np.uint8))
    out = tmp_path / "r.jsonl"
    code = main(["predict", str(demo_photo), str(corrupt), str(blank), str(tmp_path / "missing.png"),
                 "--out", str(out), "--hypotheses", "8", "--obj-dir", str(tmp_path / "objs")])
    assert code == 1
    err = capsys.readouterr().err
    assert "corrupt.jpg" in err and "missing.png" in err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [ln["image"] for ln in lines] == [str(demo_photo), str(blank)]
    assert lines[1]["hands"] == []
    hands = lines[0]["hands"]
    assert len(hands) >= 1
    photo_h, photo_w = cv2.imread(str(demo_photo)).shape[:2]
    assert (lines[0]["width"], lines[0]["height"]) == (photo_w, photo_h)
    assert (lines[1]["width"], lines[1]["height"]) == (160, 120)
    K = np.array(lines[0]["K"])  # the intrinsics the camera-frame joints were placed with
    assert K.shape == (3, 3) and K[0, 0] == K[1, 1] > 0 and K[2, 2] == 1
    assert K[0, 2] == pytest.approx((photo_w - 1) / 2, abs=1) and K[1, 2] == pytest.approx((photo_h - 1) / 2, abs=1)
    for h in hands:
        assert h["handedness"] in ("Left", "Right") and 0 < h["score"] <= 1
        kp = np.array(h["keypoints_2d"])
        joints = np.array(h["joints_3d"])
        hyps = np.array(h["joint_hypotheses"])
        assert kp.shape == (21, 2) and joints.shape == (21, 3) and hyps.shape == (8, 21, 3)
        assert np.all((kp >= 0) & (kp <= [photo_w, photo_h]))  # MediaPipe's keypoints, in pixels
        # The 3D joints, in the camera frame of the line's own K, project onto the keypoints: median
        # under 3 % and every joint under 5 % of the hand's 2D size (measured on the demo photos:
        # median 1.1-1.3 %, worst 2.2-2.4 %).
        off = np.linalg.norm(project(joints, K) - kp, axis=-1)
        size = np.linalg.norm(np.ptp(kp, axis=0))
        assert np.median(off) < 0.03 * size and off.max() < 0.05 * size, off / size
        assert np.all(joints[:, 2] > 0) and 50 < np.linalg.norm(joints[9] - joints[0]) < 140  # a hand, in front
        np.testing.assert_allclose(hyps.mean(axis=0), joints, atol=0.05)  # the estimate is the cloud's mean
        assert np.ptp(hyps - hyps[:, :1], axis=0).max() > 5.0  # hypotheses that differ in shape
        spread, radius = np.array(h["joint_spread"]), np.array(h["joint_radius_90"])
        assert spread.shape == radius.shape == (21,) and np.all(spread >= 0) and np.all(radius[1:] > 0)
        near, far = h["distance_mm"]
        assert 0 < near < far
        world = np.array(h["mediapipe_world_3d"])
        assert world.shape == (21, 3) and 50 < np.linalg.norm(world[9] - world[0]) < 140  # MediaPipe's, in mm
    objs = sorted((tmp_path / "objs").glob("*.obj"))
    assert len(objs) == len(hands)
    n_vertices = sum(line.startswith("v ") for line in objs[0].read_text().splitlines())
    assert n_vertices == len(load_hand_asset().vertices)


def test_predict_with_missing_weights_says_what_to_do(tmp_path, demo_photo, capsys):
    code = main(["--weights", str(tmp_path / "nowhere"), "predict", str(demo_photo), "--out", str(tmp_path / "r.jsonl")])
    assert code == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "train" in err


def _count_model_loads(monkeypatch) -> list[int]:
    """Cascade.from_weights replaced by a counter that fails: a run that gets that far is a bug."""
    from handviz.cascade import Cascade

    loads: list[int] = []

    def load(cls, *args, **kwargs):
        loads.append(1)
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(Cascade, "from_weights", classmethod(load))
    return loads


@pytest.mark.parametrize("names, message", [
    (["missing.png"], "{tmp}/missing.png: no such file or folder"),
    (["corrupt.jpg"], "{tmp}/corrupt.jpg: not a readable image (corrupt or unsupported)"),
    (["missing.png", "corrupt.jpg"], "none of the 2 inputs could be read: {tmp}/missing.png: no such file "
     "or folder; {tmp}/corrupt.jpg: not a readable image (corrupt or unsupported)"),
    (["only-bad"], "{tmp}/only-bad/corrupt.jpg: not a readable image (corrupt or unsupported)"),
])
def test_unreadable_inputs_fail_before_the_model_loads(tmp_path, monkeypatch, capsys, names, message):
    """issue 21: predict loaded the model, exited 1 and left an empty .jsonl; record refuses at once."""
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "only-bad").mkdir()
    (tmp_path / "only-bad" / "corrupt.jpg").write_bytes(b"\xff\xd8 truncated")
    loads = _count_model_loads(monkeypatch)
    out = tmp_path / "out" / "r.jsonl"
    code = main(["predict", *(str(tmp_path / n) for n in names), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["handviz: error: " + message.replace("{tmp}", str(tmp_path))]
    assert loads == [] and not (tmp_path / "out").exists()


def make_tree(root):
    """root: top.png, notes.txt, s2/b.png, s2/inner/c.mp4, s10/a.png, .hidden/d.png (empty files:
    listing does not decode)."""
    for rel in ("top.png", "notes.txt", "s2/b.png", "s2/inner/c.mp4", "s10/a.png", ".hidden/d.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


def test_recursive_walks_subfolders_in_natural_order(tmp_path):
    make_tree(tmp_path)
    paths, notes = expand_inputs([tmp_path], recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["top.png", "s2/b.png", "s2/inner/c.mp4", "s10/a.png"]
    assert notes == [f"{tmp_path}: skipped 1 file(s) that are not images or videos: notes.txt"]
    (tmp_path / "s2" / "loop").symlink_to(tmp_path)  # a link back up is walked once, not forever
    assert expand_inputs([tmp_path], recursive=True)[0] == paths


def test_without_recursive_the_subfolders_left_out_are_named(tmp_path):
    make_tree(tmp_path)
    paths, notes = expand_inputs([tmp_path])
    assert paths == [tmp_path / "top.png"]
    assert notes[-1] == f"{tmp_path}: left out 2 subfolder(s) (s2, s10); add --recursive to include them"


def test_a_folder_of_subfolders_says_so_and_how_to_include_them(tmp_path, monkeypatch, capsys):
    """issue 21: it said "is empty"."""
    for name in ("s10", "s2"):
        (tmp_path / "in" / name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "in" / name / "blank.png"), np.full((120, 160, 3), 200, np.uint8))
    loads = _count_model_loads(monkeypatch)
    out = tmp_path / "r.jsonl"
    assert main(["predict", str(tmp_path / "in"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"handviz: error: {tmp_path / 'in'}: holds no image or video itself, but 2 subfolder(s) "
                   "(s2, s10); add --recursive to include them"]
    assert loads == [] and not out.exists()
    monkeypatch.undo()
    assert main(["predict", str(tmp_path / "in"), "-r", "--hypotheses", "4", "--out", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [ln["image"] for ln in lines] == [str(tmp_path / "in" / s / "blank.png") for s in ("s2", "s10")]
    assert all(ln["hands"] == [] for ln in lines)


def test_the_readmes_placement_claims_hold_on_the_bundled_photos(tmp_path):
    """README: on the bundled photos every hand's joints reproject near its keypoints, within 3 % of
    the box diagonal at the median (1.3-2.3 % measured), the hand is placed at the typical adult
    length, 185 mm wrist to middle tip (wrists at 41-46 cm measured), inside its distance_mm."""
    from handviz.paths import assets_dir
    from handviz.placement import TYPICAL_HAND_LENGTH_MM
    from handviz.posterior import wrist_to_tip_lengths

    out = tmp_path / "r.jsonl"
    assert main(["predict", str(assets_dir() / "demo"), "--out", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 3 and all(len(ln["hands"]) >= 1 for ln in lines)
    for ln in lines:
        K = np.array(ln["K"])
        for h in ln["hands"]:
            kp, joints = np.array(h["keypoints_2d"]), np.array(h["joints_3d"])
            off = np.linalg.norm(project(joints, K) - kp, axis=-1)
            assert np.median(off) < 0.03 * np.linalg.norm(np.ptp(kp, axis=0)), ln["image"]
            assert wrist_to_tip_lengths(joints)[2] == pytest.approx(TYPICAL_HAND_LENGTH_MM, rel=1e-3)
            near, far = h["distance_mm"]
            assert 350 < near < np.linalg.norm(joints[0]) < far, ln["image"]
