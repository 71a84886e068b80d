"""Real datasets -> training shards, and the hand fit that gives them our mesh.

FreiHAND/HO3D come from the tiny fixtures (tests/fixtures/*_mini) with their joints replaced by
posed hands of our own model (in a temporary copy), so a fitted mesh can be checked against
the mesh that made the joints. The fixture images are flat grey: MediaPipe finds nothing there,
which must give detected=False rows. A real demo photo checks the detected path and mirroring.
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from test_datasets_real import FREIHAND, ho3d_root  # noqa: F401  (ho3d_root is a fixture)

from handviz.data import joint_orders as JO
from handviz.geometry import project
from handviz.data.real_sample import Sample
from handviz.data.real_to_shards import ImportConfig, import_samples, open_dataset, register_import, run_import
from handviz.data.shards import list_shards, load_shards, read_shard
from handviz.hand.articulation import within_limits
from handviz.hand.fit import FitConfig, fit_hand_to_joints, kabsch_rotation, rot6d_to_rotmat
from handviz.hand.kinematics import pose_hand
from handviz.hand.pose_prior import sample_poses, sample_shapes, sample_webcam_rotations
from handviz.logs import InputError
from handviz.paths import assets_dir
from handviz.train.data import DataError, load_hand_data

NUM_VERTS = 1609


def posed_hands(n: int, seed: int, depth_mm: float = 600.0) -> tuple[np.ndarray, np.ndarray]:
    """(verts (n, V, 3), joints (n, 21, 3)) of random hands of our model in front of the camera."""
    rng = np.random.default_rng(seed)
    angles = sample_poses(max(n, 32), rng)[:n]  # sample_poses needs a batch that draws every mix part
    verts, joints = pose_hand(angles, sample_shapes(n, rng), sample_webcam_rotations(n, rng))
    shift = np.concatenate([rng.uniform(-50, 50, (n, 2)), np.full((n, 1), depth_mm)], axis=1)[:, None]
    return verts + shift, joints + shift


# ---------------------------------------------------------------- the fit


def test_kabsch_and_6d_rotations():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 3, 3)))
    R = q * np.sign(np.linalg.det(q))[:, None, None]  # proper rotations
    P = rng.normal(size=(5, 3))
    np.testing.assert_allclose(kabsch_rotation(P, P @ R.transpose(0, 2, 1) + 7.0), R, atol=1e-9)
    r6 = torch.as_tensor(R[:, :, :2].transpose(0, 2, 1).reshape(4, 6))
    np.testing.assert_allclose(rot6d_to_rotmat(r6).numpy(), R, atol=1e-9)


def test_fit_recovers_synthetic_hands():
    verts, joints = posed_hands(16, seed=3)
    fit = fit_hand_to_joints(joints)
    assert fit.verts.shape == (16, NUM_VERTS, 3) and fit.joints.shape == (16, 21, 3)
    assert fit.error_mm.mean() < 8.0, f"mean joint fit error {fit.error_mm.mean():.2f} mm"
    assert np.linalg.norm(fit.verts - verts, axis=-1).mean() < 8.0
    np.testing.assert_allclose(np.linalg.norm(fit.joints - joints, axis=-1).mean(-1), fit.error_mm, atol=1e-3)
    assert within_limits(fit.angles, tol=1e-5).all() and np.abs(fit.shape).max() <= 1.0
    np.testing.assert_allclose(fit.global_rot @ fit.global_rot.transpose(0, 2, 1), np.tile(np.eye(3), (16, 1, 1)),
                               atol=1e-5)
    # a few iterations are not enough: the error comes from the optimisation, not the start
    assert fit_hand_to_joints(joints, cfg=FitConfig(iterations=3)).error_mm.mean() > 2 * fit.error_mm.mean()


def test_fit_refuses_bad_targets():
    with pytest.raises(ValueError, match=r"\(B, 21, 3\)"):
        fit_hand_to_joints(np.zeros((2, 20, 3)))
    bad = posed_hands(1, seed=0)[1]
    bad[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_hand_to_joints(bad)


# ---------------------------------------------------------------- FreiHAND


FREI_VERTS, FREI_JOINTS = posed_hands(2, seed=11)  # labels 0 and 1 of the training split


@pytest.fixture(scope="module")
def freihand_root(tmp_path_factory) -> Path:
    """freihand_mini with training joints (metres) of posed hands of our model."""
    root = tmp_path_factory.mktemp("frei") / "FreiHAND"
    shutil.copytree(FREIHAND, root)
    (root / "training_xyz.json").write_text(json.dumps((FREI_JOINTS / 1000.0).tolist()), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def freihand_shards(freihand_root, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("frei_shards")
    stats = import_samples(open_dataset("freihand", freihand_root), out, ImportConfig(shard_size=3), progress=False)
    return out, stats


def test_freihand_shards_hold_what_training_reads(freihand_shards):
    out, stats = freihand_shards
    assert [p.name for p in list_shards(out)] == ["shard_00000.npz", "shard_00001.npz"]
    assert stats["samples"] == 4 and stats["mediapipe_runs"] == 4 and stats["skipped_existing"] == 0
    d = load_shards(out)
    assert d["sample_id"].tolist() == ["00000000", "00000001", "00000002", "00000003"]
    shapes = {"kp2d": (4, 21, 2), "kp_z": (4, 21), "mp_world": (4, 21, 3), "joints": (4, 21, 3), "K": (4, 3, 3),
              "image_size": (4, 2), "crop": (4, 64, 64, 3), "mp_score": (4,), "mp_right": (4,), "detected": (4,),
              "kp2d_gt": (4, 21, 2)}
    assert {k: d[k].shape for k in shapes} == shapes
    assert d["crop"].dtype == np.uint8 and d["detected"].dtype == bool
    # flat grey images: no hand found, no crash, NaN MediaPipe fields
    assert not d["detected"].any() and np.isnan(d["kp2d"]).all() and stats["detected"] == 0
    # image i uses label i % 2, in mm, and the truth re-projects through the stored K
    np.testing.assert_allclose(d["joints"], FREI_JOINTS[[0, 1, 0, 1]], atol=1e-3)
    np.testing.assert_allclose(d["kp2d_gt"], project(d["joints"], d["K"][:, None]), atol=1e-3)
    assert (d["image_size"] == [32, 32]).all() and "verts" not in d
    assert (d["crop"][:, 32, 32] == [[40] * 3, [80] * 3, [120] * 3, [160] * 3]).all()  # crop of each own image


def test_training_loader_reads_imported_shards(freihand_shards):
    files = list_shards(freihand_shards[0])
    joints = load_hand_data(files, ("joints", "crops"), require_detection=False)
    assert len(joints) == 4 and joints.has_crop.all()
    with pytest.raises(DataError, match="no usable samples"):  # nothing was detected on grey images
        load_hand_data(files, ("keypoints",))


def test_resume_skips_complete_shards_and_adds_the_mesh_later(freihand_root, freihand_shards, tmp_path):
    out = tmp_path / "shards"
    shutil.copytree(freihand_shards[0], out)
    samples = open_dataset("freihand", freihand_root)
    before = {p.name: p.stat().st_mtime_ns for p in list_shards(out)}
    again = import_samples(samples, out, ImportConfig(shard_size=3), progress=False)
    assert again["samples"] == 0 and again["skipped_existing"] == 4
    assert before == {p.name: p.stat().st_mtime_ns for p in list_shards(out)}

    meshed = import_samples(samples, out, ImportConfig(shard_size=3, fit_mesh=True), progress=False)
    assert meshed["mediapipe_runs"] == 0 and meshed["fitted"] == 4 and meshed["poor_fits"] == 0
    d = load_shards(out)
    assert d["verts"].shape == (4, NUM_VERTS, 3) and (d["fit_error_mm"] < 8.0).all()
    assert np.linalg.norm(d["verts"] - FREI_VERTS[[0, 1, 0, 1]], axis=-1).mean() < 8.0
    assert d["pose"].shape == (4, 21, 3) and d["shape"].shape == (4, 4) and d["global_rot"].shape == (4, 3, 3)
    mesh_data = load_hand_data(list_shards(out), ("joints", "verts"), require_detection=False)
    assert mesh_data.num_verts == NUM_VERTS and len(mesh_data) == 4

    (out / "shard_00001.npz").unlink()  # as if the run had stopped there
    (out / "shard_00000.tmp.npz").write_bytes(b"half a shard")
    redo = import_samples(samples, out, ImportConfig(shard_size=3, fit_mesh=True), progress=False)
    assert redo["mediapipe_runs"] == 1 and redo["skipped_existing"] == 3
    assert read_shard(out / "shard_00001.npz")["sample_id"].tolist() == ["00000003"]
    shorter = import_samples(samples, out, ImportConfig(shard_size=3, fit_mesh=True), limit=2, progress=False)
    assert shorter["mediapipe_runs"] == 2, "a shard holding other samples is re-made"


# ---------------------------------------------------------------- HO3D


HO3D_VERTS, HO3D_JOINTS = posed_hands(2, seed=12)


def test_ho3d_import_with_fitted_mesh(ho3d_root, tmp_path):  # noqa: F811
    for frame, joints_mm in enumerate(HO3D_JOINTS):
        gl_metres = JO.from_mediapipe(joints_mm, "ho3d") / 1000.0 * np.array([1.0, -1.0, -1.0])
        meta = {"handJoints3D": gl_metres, "camMat": np.array([[600.0, 0, 16], [0, 600.0, 16], [0, 0, 1]])}
        (ho3d_root / "train" / "SEQA" / "meta" / f"{frame:04d}.pkl").write_bytes(pickle.dumps(meta, protocol=2))
    out = tmp_path / "ho3d_shards"
    stats = import_samples(open_dataset("ho3d", ho3d_root), out, ImportConfig(fit_mesh=True), progress=False)
    assert stats["samples"] == 2 and stats["fitted"] == 2 and stats["poor_fits"] == 0
    d = load_shards(out)
    assert d["sample_id"].tolist() == ["SEQA/0000", "SEQA/0001"] and not d["detected"].any()
    np.testing.assert_allclose(d["joints"], HO3D_JOINTS, atol=1e-3)  # OpenCV frame, mm, MediaPipe order
    assert np.linalg.norm(d["verts"] - HO3D_VERTS, axis=-1).mean() < 8.0
    data = load_hand_data(list_shards(out), ("joints", "verts"), require_detection=False)
    assert data.verts.shape == (2, NUM_VERTS, 3)
    with pytest.raises(InputError, match="no 3D joints"):
        import_samples(open_dataset("ho3d", ho3d_root, "evaluation"), tmp_path / "eval", progress=False)
    assert not list_shards(tmp_path / "eval")


# ---------------------------------------------------------------- a real photo: detections, mirroring


def test_detections_mirroring_and_wrong_hand_rejection(tmp_path):
    """thumb_up.jpg shows a left hand. Labelled 'Left', it must come out exactly like its
    mirror image labelled 'Right'; a label far from where MediaPipe looks must be rejected."""
    from handviz.pipeline.detector import HandDetector

    photo = assets_dir() / "demo" / "thumb_up.jpg"
    rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    H, W = rgb.shape[:2]
    with HandDetector(max_hands=1, static=True) as detector:
        det = detector.detect(rgb)[0]
    K = np.array([[500.0, 0.0, 330.0], [0.0, 500.0, 250.0], [0.0, 0.0, 1.0]])
    z = 450.0 + det.keypoints_z * 450.0 / 500.0
    left_joints = np.stack([(det.keypoints_2d[:, 0] - K[0, 2]) / K[0, 0] * z,
                            (det.keypoints_2d[:, 1] - K[1, 2]) / K[1, 1] * z, z], axis=1)
    mirror_png = tmp_path / "mirror.png"
    cv2.imwrite(str(mirror_png), cv2.cvtColor(np.ascontiguousarray(rgb[:, ::-1]), cv2.COLOR_RGB2BGR))
    K_mirror = K.copy()
    K_mirror[0, 2] = W - 1 - K[0, 2]
    right_joints = left_joints * [-1.0, 1.0, 1.0]
    samples = [
        Sample("freihand", "training", "left", photo, K, left_joints, handedness="Left"),
        Sample("freihand", "training", "right", mirror_png, K_mirror, right_joints, handedness="Right"),
        Sample("freihand", "training", "elsewhere", photo, K, left_joints + [300.0, 0, 0], handedness="Left"),
    ]
    out = tmp_path / "shards"
    stats = import_samples(samples, out, ImportConfig(shard_size=2), progress=False)
    assert stats["mirrored"] == 2 and stats["detected"] == 2 and stats["rejected"] == 1
    d = load_shards(out)
    assert d["detected"].tolist() == [True, True, False] and d["mirrored"].tolist() == [True, False, True]
    assert d["mp_right"][:2].all(), "mirrored in, the left hand is a right hand"
    for key in ("joints", "K", "kp2d", "kp_z", "mp_world", "crop", "kp2d_gt"):
        np.testing.assert_allclose(d[key][0], d[key][1], atol=1e-4, err_msg=key)
    size = np.sqrt(((d["kp2d"][0] - d["kp2d"][0].mean(0)) ** 2).sum(-1).mean())
    assert np.linalg.norm(d["kp2d"][0] - d["kp2d_gt"][0], axis=-1).mean() < 0.15 * size
    assert np.isnan(d["kp2d"][2]).all() and (d["image_size"] == [W, H]).all()
    data = load_hand_data(list_shards(out), ("keypoints", "crops"))
    assert len(data) == 2 and data.kp2d.shape == (2, 21, 2) and np.isfinite(data.world).all()


# ---------------------------------------------------------------- the command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="handviz data")
    register_import(parser.add_subparsers(dest="data_command", required=True))
    return parser


def test_command_imports_and_reports(freihand_root, tmp_path, capsys):
    out = tmp_path / "cli"
    args = _parser().parse_args(["import", "--freihand", str(freihand_root), "--out", str(out), "--limit", "2",
                                 "--fit-mesh", "--json"])
    assert run_import(args) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["samples"] == 2 and stats["fitted"] == 2 and len(list_shards(out)) == 1
    with pytest.raises(InputError, match="not a FreiHAND folder"):
        run_import(_parser().parse_args(["import", "--freihand", str(tmp_path), "--out", str(out)]))
    with pytest.raises(SystemExit):  # exactly one dataset
        _parser().parse_args(["import", "--out", str(out)])
