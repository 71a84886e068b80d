"""Real-dataset loaders, joint orders, submission files and evaluation, on tiny fixtures.

Fixtures (tests/fixtures/*_mini, made by make_real_dataset_fixtures.py) follow the published
layouts. HO3D's meta pickles are written here into tmp_path: none is committed.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from handviz.data import joint_orders as JO
from handviz.data.freihand import FreiHandDataset
from handviz.data.ho3d import HO3DDataset, opengl_to_opencv, read_meta
from handviz.eval import submission as S
from handviz.eval.real_eval import evaluate_on_samples
from handviz.types import HandJoint

FIXTURES = Path(__file__).parent / "fixtures"
FREIHAND = FIXTURES / "freihand_mini"
HO3D = FIXTURES / "ho3d_mini"
SHARED_3D = Path(__file__).resolve().parents[2] / "shared" / "data" / "hands3d"


def freihand_xyz_mm(label: int) -> np.ndarray:
    """The fixture's joints (see make_real_dataset_fixtures.py), in mm."""
    j = np.arange(21, dtype=np.float64)
    return np.stack([j + 100.0 * label, 2.0 * (j % 5), 500.0 + (j // 5)], axis=1)


# ---------------------------------------------------------------- joint orders

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
# MediaPipe names as (finger, level): level 1 = base joint .. 4 = tip.
MEDIAPIPE_NAMES = [("wrist", 0)] + [(f, lvl) for f in FINGERS for lvl in (1, 2, 3, 4)]
# HO3D: MANO's joints (index, middle, pinky, ring, thumb; base -> tip), then the 5 tips.
HO3D_NAMES = (
    [("wrist", 0)]
    + [(f, lvl) for f in ("index", "middle", "pinky", "ring", "thumb") for lvl in (1, 2, 3)]
    + [(f, 4) for f in FINGERS]
)
INTERHAND_NAMES = [(f, lvl) for f in FINGERS for lvl in (4, 3, 2, 1)] + [("wrist", 0)]
RHD_NAMES = [("wrist", 0)] + [(f, lvl) for f in FINGERS for lvl in (4, 3, 2, 1)]


def test_mediapipe_names_follow_handjoint():
    assert [m.name.split("_")[0].lower() for m in HandJoint][1:5] == ["thumb"] * 4
    assert [MEDIAPIPE_NAMES[j] for j in (HandJoint.INDEX_MCP, HandJoint.PINKY_TIP)] == [("index", 1), ("pinky", 4)]


@pytest.mark.parametrize(
    "dataset,names",
    [("freihand", MEDIAPIPE_NAMES), ("ho3d", HO3D_NAMES), ("interhand", INTERHAND_NAMES), ("rhd", RHD_NAMES)],
)
def test_orders_map_documented_names_to_mediapipe(dataset, names):
    named = np.array([[i, 0] for i in range(21)])  # tag each dataset joint with its index
    mapped = JO.to_mediapipe(named, dataset)[:, 0]
    assert [names[i] for i in mapped] == MEDIAPIPE_NAMES
    np.testing.assert_array_equal(JO.from_mediapipe(JO.to_mediapipe(named, dataset), dataset), named)


def test_split_two_hands_and_errors():
    joints = np.arange(42 * 3, dtype=float).reshape(42, 3)
    ih = JO.split_two_hands(joints, "interhand")
    np.testing.assert_array_equal(ih["Right"][0], joints[20])  # right wrist is InterHand joint 20
    np.testing.assert_array_equal(ih["Left"][0], joints[41])
    rhd = JO.split_two_hands(joints, "rhd")
    np.testing.assert_array_equal(rhd["Left"][4], joints[1])  # left thumb tip
    np.testing.assert_array_equal(rhd["Right"][0], joints[21])
    with pytest.raises(ValueError, match="unknown joint order"):
        JO.to_mediapipe(joints[:21], "coco")
    with pytest.raises(ValueError, match="21"):
        JO.to_mediapipe(joints, "rhd")


def _phalanx_ratio(mp_joints: np.ndarray) -> float:
    """Mean proximal (MCP->PIP) over distal (DIP->TIP) phalanx length, index to pinky: > 1 on real hands."""
    ratios = []
    for base in (5, 9, 13, 17):
        proximal = np.linalg.norm(mp_joints[base + 1] - mp_joints[base])
        distal = np.linalg.norm(mp_joints[base + 3] - mp_joints[base + 2])
        ratios.append(proximal / distal)
    return float(np.mean(ratios))


@pytest.mark.skipif(not SHARED_3D.is_dir(), reason="needs ../shared/data/hands3d (not shipped)")
def test_orders_on_real_rhd_and_interhand_annotations():
    rhd = json.loads((SHARED_3D / "rhd" / "test_rhd.json").read_text())
    for ann in rhd["annotations"]:
        mp = JO.to_mediapipe(np.asarray(ann["joint_cam"]), "rhd")
        assert _phalanx_ratio(mp) > 1.2
        assert 50.0 < np.linalg.norm(mp[9] - mp[0]) < 120.0  # wrist -> middle MCP
    ih = json.loads((SHARED_3D / "interhand2.6m" / "test_interhand2.6m_joint_3d.json").read_text())
    checked = 0
    for capture in ih.values():
        for frame in capture.values():
            world = np.asarray(frame["world_coord"])
            valid = np.asarray(frame["joint_valid"]).reshape(-1)
            for hand, start in JO.TWO_HAND_OFFSETS["interhand"].items():
                if valid[start : start + 21].all():
                    mp = JO.split_two_hands(world, "interhand")[hand]
                    assert _phalanx_ratio(mp) > 1.2
                    checked += 1
    assert checked > 0


# ---------------------------------------------------------------- FreiHAND


def test_freihand_evaluation_units_order_and_images():
    ds = FreiHandDataset(FREIHAND, "evaluation")
    assert len(ds) == 2
    s = ds[1]
    assert s.dataset == "freihand" and s.sample_id == "00000001" and s.handedness == "Right"
    np.testing.assert_allclose(s.joints_mm, freihand_xyz_mm(1), atol=1e-3)  # metres -> mm, same order
    np.testing.assert_allclose(s.joints_mm[HandJoint.INDEX_TIP], [108.0, 6.0, 501.0], atol=1e-3)
    np.testing.assert_allclose(s.root_mm, [100.0, 0.0, 500.0], atol=1e-3)
    np.testing.assert_allclose(s.verts_mm, freihand_xyz_mm(1)[[0, 4, 8, 12, 16]] + 0.5, atol=1e-3)
    np.testing.assert_allclose(s.K, [[100, 0, 16], [0, 100, 16], [0, 0, 1]])
    rgb = s.load_rgb()
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8
    assert abs(int(rgb.mean()) - 80) <= 2  # image 1 is grey 80


def test_freihand_training_versions_share_labels():
    ds = FreiHandDataset(FREIHAND, "training", with_verts=False)
    assert len(ds) == 4 and ds.versions == (0, 1)
    s = ds[3]  # image 3 = version 1 of label 1
    assert s.sample_id == "00000003" and s.verts_mm is None
    np.testing.assert_allclose(s.joints_mm, freihand_xyz_mm(1), atol=1e-3)
    assert abs(int(s.load_rgb().mean()) - 160) <= 2
    only_v1 = FreiHandDataset(FREIHAND, "training", versions=[1])
    assert len(only_v1) == 2
    assert only_v1[0].sample_id == "00000002"
    np.testing.assert_allclose(only_v1[0].joints_mm, freihand_xyz_mm(0), atol=1e-3)
    assert [x.sample_id for x in only_v1] == ["00000002", "00000003"]
    with pytest.raises(ValueError, match="versions"):
        FreiHandDataset(FREIHAND, "training", versions=[2])
    with pytest.raises(IndexError):
        ds[4]


def test_freihand_bad_folders_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a FreiHAND folder"):
        FreiHandDataset(tmp_path, "evaluation")
    with pytest.raises(ValueError, match="split"):
        FreiHandDataset(FREIHAND, "test")
    broken = tmp_path / "fh"
    shutil.copytree(FREIHAND, broken)
    (broken / "evaluation_xyz.json").write_text(json.dumps([freihand_xyz_mm(0).tolist()]))  # 1 entry, K has 2
    with pytest.raises(ValueError, match="evaluation_xyz.json"):
        FreiHandDataset(broken, "evaluation")
    (broken / "evaluation_xyz.json").write_text("{not json")
    with pytest.raises(ValueError, match="evaluation_xyz.json"):
        FreiHandDataset(broken, "evaluation")
    (broken / "evaluation_xyz.json").unlink()
    assert FreiHandDataset(broken, "evaluation")[0].joints_mm is None  # the v2 release without eval labels


# ---------------------------------------------------------------- HO3D

HO3D_TRAIN_MP_MM = [freihand_xyz_mm(0), freihand_xyz_mm(1)]  # OpenCV frame, mm, MediaPipe order
HO3D_K = np.array([[614.6, 0.0, 320.0], [0.0, 614.1, 240.0], [0.0, 0.0, 1.0]])


def _write_pickle(path: Path, obj: object, protocol: int = 2) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


@pytest.fixture()
def ho3d_root(tmp_path) -> Path:
    """The fixture tree plus meta pickles in HO3D's format: OpenGL camera, metres, HO3D order."""
    root = tmp_path / "HO3D_v2"
    shutil.copytree(HO3D, root)
    for frame, mp_mm in enumerate(HO3D_TRAIN_MP_MM):
        # reorder by joint names, not by the module under test
        ho3d_order = mp_mm[[MEDIAPIPE_NAMES.index(name) for name in HO3D_NAMES]]
        ho3d_gl_m = ho3d_order / 1000.0 * np.array([1.0, -1.0, -1.0])
        meta = {"handJoints3D": ho3d_gl_m, "camMat": HO3D_K, "handPose": np.zeros(48), "objName": "021_bleach_cleanser"}
        _write_pickle(root / "train" / "SEQA" / "meta" / f"{frame:04d}.pkl", meta)
    eval_meta = {
        "handJoints3D": np.array([0.01, 0.02, -0.5]),
        "handBoundingBox": [10, 20, 110, 140],
        "camMat": HO3D_K,
    }
    _write_pickle(root / "evaluation" / "SEQB" / "meta" / "0000.pkl", eval_meta, protocol=4)
    return root


def test_ho3d_train_joints_camera_and_order(ho3d_root):
    ds = HO3DDataset(ho3d_root, "train")
    assert len(ds) == 2
    s = ds[1]
    assert s.sample_id == "SEQA/0001" and s.dataset == "ho3d" and s.verts_mm is None
    np.testing.assert_allclose(s.joints_mm, HO3D_TRAIN_MP_MM[1], atol=1e-9)
    np.testing.assert_allclose(s.root_mm, [100.0, 0.0, 500.0], atol=1e-9)
    np.testing.assert_allclose(s.K, HO3D_K)
    assert abs(int(s.load_rgb().mean()) - 120) <= 1
    # the converted joints are in front of the camera and project like HO3D's own OpenGL projection
    raw = read_meta(ho3d_root, "train", "SEQA", "0001")["handJoints3D"]
    assert np.all(raw[:, 2] < 0) and np.all(s.joints_mm[:, 2] > 0)
    uv_ours = (s.joints_mm @ HO3D_K.T)[:, :2] / (s.joints_mm @ HO3D_K.T)[:, 2:]
    flipped = raw * np.array([1.0, -1.0, -1.0])  # HO3D's project_3D_points coordinate change
    uv_ho3d = (flipped @ HO3D_K.T)[:, :2] / (flipped @ HO3D_K.T)[:, 2:]
    np.testing.assert_allclose(uv_ours, JO.to_mediapipe(uv_ho3d, "ho3d"), atol=1e-9)


def test_opengl_to_opencv_flips_y_and_z():
    np.testing.assert_allclose(opengl_to_opencv(np.array([0.01, 0.02, -0.5])), [0.01, -0.02, 0.5])


def test_ho3d_evaluation_gives_root_and_box_only(ho3d_root):
    s = HO3DDataset(ho3d_root, "evaluation")[0]
    assert s.joints_mm is None
    np.testing.assert_allclose(s.root_mm, [10.0, -20.0, 500.0])
    np.testing.assert_allclose(s.bbox_xyxy, [10, 20, 110, 140])


def test_ho3d_v3_jpg_images(ho3d_root):
    rgb = ho3d_root / "train" / "SEQA" / "rgb"
    os.rename(rgb / "0001.png", rgb / "0001.jpg")
    assert HO3DDataset(ho3d_root, "train")[1].image_path.name == "0001.jpg"
    (rgb / "0001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="image missing"):
        HO3DDataset(ho3d_root, "train")[1]


class _Sneaky:
    def __reduce__(self):
        return (os.getcwd, ())


def test_ho3d_meta_reader_refuses_anything_but_arrays(ho3d_root):
    _write_pickle(ho3d_root / "train" / "SEQA" / "meta" / "0000.pkl", {"handJoints3D": _Sneaky()})
    with pytest.raises(ValueError, match="refusing to load posix.getcwd|refusing to load os.getcwd"):
        read_meta(ho3d_root, "train", "SEQA", "0000")
    with pytest.raises(ValueError, match="plain HO3D name"):
        read_meta(ho3d_root, "train", "..", "0000")
    with pytest.raises(FileNotFoundError, match="meta file missing"):
        read_meta(ho3d_root, "train", "SEQA", "0099")


def test_ho3d_bad_lists(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.txt"):
        HO3DDataset(tmp_path, "train")
    (tmp_path / "train.txt").write_text("SEQA-0000\n")
    with pytest.raises(ValueError, match="train.txt:1"):
        HO3DDataset(tmp_path, "train")


# ---------------------------------------------------------------- submission files


def _predictions(n: int = 2):
    joints = [freihand_xyz_mm(i) for i in range(n)]
    verts = [freihand_xyz_mm(i)[:7] + 1.0 for i in range(n)]
    return joints, verts


def test_freihand_pred_json_format(tmp_path):
    joints, verts = _predictions()
    path = tmp_path / "pred.json"
    assert S.write_pred_json(path, joints, verts, "freihand", expected_count=2) == 0
    pred = json.loads(path.read_text())
    assert len(pred) == 2 and len(pred[0]) == 2 and len(pred[1]) == 2
    np.testing.assert_allclose(pred[0][1], freihand_xyz_mm(1) / 1000.0)  # metres, same order, OpenCV
    assert np.array(pred[1][0]).shape == (7, 3)
    back_j, back_v = S.read_pred_json(path, "freihand")
    np.testing.assert_allclose(back_j[1], joints[1], atol=1e-3)
    np.testing.assert_allclose(back_v[0], verts[0], atol=1e-3)
    with zipfile.ZipFile(S.zip_submission(path)) as zf:
        assert zf.namelist() == ["pred.json"]


def test_ho3d_pred_json_is_opengl_metres_ho3d_order(tmp_path):
    joints, verts = _predictions()
    path = tmp_path / "pred.json"
    S.write_pred_json(path, joints, verts, "ho3d")
    xyz = np.array(json.loads(path.read_text())[0][0])
    assert np.all(xyz[:, 2] < 0)  # HO3D's own check for the OpenGL frame
    np.testing.assert_allclose(xyz[16], joints[0][HandJoint.THUMB_TIP] / 1000.0 * [1, -1, -1])
    np.testing.assert_allclose(xyz[1], joints[0][HandJoint.INDEX_MCP] / 1000.0 * [1, -1, -1])
    back_j, back_v = S.read_pred_json(path, "ho3d")
    np.testing.assert_allclose(back_j[0], joints[0], atol=1e-3)
    np.testing.assert_allclose(back_v[1], verts[1], atol=1e-3)


def test_submission_refuses_bad_input_and_fills_missing(tmp_path):
    joints, verts = _predictions(3)
    path = tmp_path / "pred.json"
    joints[1] = None
    with pytest.raises(ValueError, match="entry 1"):
        S.write_pred_json(path, joints, verts, "freihand")
    assert not path.exists()
    assert S.write_pred_json(path, joints, verts, "freihand", missing="zeros") == 1
    pred = json.loads(path.read_text())
    assert np.array(pred[0][1]).shape == (21, 3) and not np.any(pred[0][1])
    assert np.array(pred[1][1]).shape == (7, 3)
    relative = [freihand_xyz_mm(0) - freihand_xyz_mm(0)[0]]
    with pytest.raises(ValueError, match="absolute camera-frame"):
        S.write_pred_json(path, relative, verts[:1], "ho3d")
    with pytest.raises(ValueError, match="expects 3960"):
        S.write_pred_json(path, relative, verts[:1], "freihand", expected_count=S.FREIHAND_EVAL_SIZE)
    with pytest.raises(ValueError, match="dataset"):
        S.write_pred_json(path, relative, verts[:1], "interhand")


# ---------------------------------------------------------------- evaluation on samples


def _oracle(samples_by_grey: dict[int, object], verts_rows=None, drop_grey=None, hyps: int = 0):
    """A predict_fn that recognises each fixture image by its grey level and answers with its truth."""

    def predict(image_rgb, K):
        grey = int(round(image_rgb.mean() / 40.0)) * 40
        if grey == drop_grey:
            return None, None
        s = samples_by_grey[grey]
        joints = s.joints_mm - s.joints_mm[0]  # root-relative
        verts = None if s.verts_mm is None else s.verts_mm - s.joints_mm[0]
        if verts is not None and verts_rows is not None:
            verts = verts[verts_rows]
        if not hyps:
            return joints, verts
        rng = np.random.default_rng(grey)
        cloud = joints[None] + rng.normal(size=(hyps, 21, 3)) * 3.0
        cloud[0] = joints
        return joints, verts, cloud

    return predict


def _freihand_eval():
    ds = FreiHandDataset(FREIHAND, "evaluation")
    return ds, {40 * (i + 1): ds[i] for i in range(len(ds))}


def test_evaluate_perfect_predictions():
    ds, by_grey = _freihand_eval()
    report = evaluate_on_samples(_oracle(by_grey), ds)
    assert report["num_samples"] == 2 and report["num_evaluated"] == 2 and report["num_no_detection"] == 0
    assert report["detection_rate"] == 1.0
    assert report["mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert report["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert report["pa_mpvpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert report["f_at_5mm"] == pytest.approx(1.0) and report["f_at_15mm"] == pytest.approx(1.0)
    assert report["auc_rr_0_50"] == pytest.approx(1.0)
    assert report["best_of_n_pa_mpjpe_mm"] is None and report["calibration"] is None
    json.dumps(report)  # JSON-ready


def test_evaluate_other_mesh_topology_and_missed_detection():
    ds, by_grey = _freihand_eval()
    # 3 of the 5 fixture vertices: gt vertices 4 and 5 lie 4.58 and 9.17 mm from the nearest
    report = evaluate_on_samples(_oracle(by_grey, verts_rows=[0, 1, 2], drop_grey=80), ds)
    assert report["num_evaluated"] == 1 and report["num_no_detection"] == 1
    assert report["detection_rate"] == 0.5
    assert report["pa_mpvpe_mm"] is None  # other topology: no vertex correspondence
    assert report["f_at_5mm"] == pytest.approx(2 * 0.8 / 1.8)  # precision 1, recall 4/5
    assert report["f_at_15mm"] == pytest.approx(1.0)
    assert report["per_sample"][1] == {"sample_id": "00000001", "detected": False}


def test_evaluate_hypotheses_and_unlabelled_split(ho3d_root):
    ds, by_grey = _freihand_eval()
    report = evaluate_on_samples(_oracle(by_grey, hyps=8), ds)
    assert report["best_of_n_pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert set(report["calibration"]) == {"spearman", "coverage_1x", "coverage_2x", "interval_coverage_90"}

    def never_called(image_rgb, K):
        raise AssertionError("unlabelled samples must not be predicted")

    ho3d_eval = evaluate_on_samples(never_called, HO3DDataset(ho3d_root, "evaluation"))
    assert ho3d_eval["num_no_ground_truth"] == 1 and ho3d_eval["pa_mpjpe_mm"] is None

    with pytest.raises(TypeError, match="predict_fn must return"):
        evaluate_on_samples(lambda image, K: None, ds)
