"""`handviz predict`: JSON lines in the DESIGN.md format; bad inputs reported, the rest processed."""

import json

import cv2
import numpy as np

from handviz.cli import main


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
    h = hands[0]
    assert h["handedness"] in ("Left", "Right")
    assert np.array(h["keypoints_2d"]).shape == (21, 2)
    assert np.array(h["joints_3d"]).shape == (21, 3)
    assert np.array(h["joint_hypotheses"]).shape == (8, 21, 3)
    assert np.array(h["joint_spread"]).shape == (21,)
    assert np.array(h["mediapipe_world_3d"]).shape == (21, 3)
    assert lines[0]["width"] > 0 and lines[0]["height"] > 0
    K = np.array(lines[0]["K"])  # the intrinsics the camera-frame joints were placed with
    assert K.shape == (3, 3) and K[0, 0] > 0 and K[2, 2] == 1
    objs = list((tmp_path / "objs").glob("*.obj"))
    assert len(objs) == len(hands)


def test_predict_with_missing_weights_says_what_to_do(tmp_path, demo_photo, capsys):
    code = main(["--weights", str(tmp_path / "nowhere"), "predict", str(demo_photo), "--out", str(tmp_path / "r.jsonl")])
    assert code == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "train" in err
