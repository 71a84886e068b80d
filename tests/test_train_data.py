"""Training data: shard reading, filtering, batch order, conditions and crop augmentation.

Also home of `write_fake_shards`, the tiny learnable stand-in for synthetic shards that the
other test_train*/test_diffusion* files import.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from handviz.features import JOINT_SCALE_MM, keypoint_condition
from handviz.train.augment import augment_crops
from handviz.train.data import (
    BatchOrder, DataError, build_conditions, jitter_keypoints, list_shard_files, load_hand_data, load_train_val,
)

FAKE_VERTS = 40


def write_fake_shards(
    out_dir: Path, n_shards: int = 2, per_shard: int = 64, num_verts: int = FAKE_VERTS, crops: bool = True,
    fast: bool = False, seed: int = 0, detect_rate: float = 0.9,
) -> Path:
    """Shards shaped like handviz.data.synth's: a 6-parameter 'hand' in front of a camera.

    Joints and mesh are fixed linear maps of 9 features of the parameters, three of them
    nonlinear (so the mesh has 6 degrees of freedom that PCA needs 9 dimensions for); the crop's
    colour encodes the parameters (so the image helps); kp_z/mp_world are NaN when fast.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    model = np.random.default_rng(12345)
    base_j = model.normal(size=(21, 3)) * 40
    base_j[0] = 0
    A = model.normal(size=(21, 3, 9)) * 8
    A[0] = 0
    base_v = model.normal(size=(num_verts, 3)) * 40
    Bv = model.normal(size=(num_verts, 3, 9)) * 8
    rng = np.random.default_rng(seed)
    for s in range(n_shards):
        n = per_shard
        p = rng.normal(size=(n, 6))
        feats = np.concatenate([p, 2 * np.sin(2 * p[:, :1]), 2 * np.cos(2 * p[:, 1:2]), p[:, 2:3] * p[:, 3:4]], 1)
        rel_j = base_j + np.einsum("jcp,np->njc", A, feats)
        rel_v = base_v + np.einsum("vcp,np->nvc", Bv, feats)
        root = np.stack([rng.uniform(-50, 50, n), rng.uniform(-50, 50, n), rng.uniform(400, 600, n)], 1)[:, None]
        joints, verts = rel_j + root, rel_v + root
        K = np.tile(np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]]), (n, 1, 1))
        kp2d = joints[..., :2] / joints[..., 2:] * 300.0 + np.array([160.0, 120.0]) + rng.normal(size=(n, 21, 2))
        arrays = {
            "kp2d": kp2d, "detected": rng.random(n) < detect_rate,
            "kp_z": (joints[..., 2] - joints[:, :1, 2]) * 300.0 / root[..., 2],
            "mp_world": rel_j + rng.normal(size=rel_j.shape) * 3,
            "joints": joints, "verts": verts, "K": K, "image_size": np.tile([320, 240], (n, 1)),
            "pose": p, "shape": np.zeros((n, 2)),
        }
        if fast:
            arrays["kp_z"] = np.full((n, 21), np.nan)
            arrays["mp_world"] = np.full((n, 21, 3), np.nan)
        arrays = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in arrays.items()}
        if crops and not fast:
            colour = np.clip(128 + 40 * p[:, :3], 0, 255)
            crop = colour[:, None, None, :] + rng.normal(size=(n, 64, 64, 3)) * 10
            arrays["crop"] = crop.clip(0, 255).astype(np.uint8)
        np.savez(out_dir / f"shard_{s:05d}.npz", **arrays)
    return out_dir


def test_load_filters_undetected_and_makes_root_relative_targets(tmp_path: Path) -> None:
    d = write_fake_shards(tmp_path / "d", n_shards=2, per_shard=40)
    raw = [np.load(p) for p in list_shard_files(d)]
    data = load_hand_data(list_shard_files(d), ("keypoints", "crops", "verts"))
    detected = np.concatenate([r["detected"] for r in raw])
    assert len(data) == detected.sum()
    joints = np.concatenate([r["joints"] for r in raw])[detected]
    verts = np.concatenate([r["verts"] for r in raw])[detected]
    np.testing.assert_allclose(data.joints * JOINT_SCALE_MM, joints - joints[:, :1], atol=1e-3)
    np.testing.assert_allclose(data.verts * JOINT_SCALE_MM, verts - joints[:, :1], atol=1e-3)
    assert data.crops.shape == (len(data), 64, 64, 3) and data.has_crop.all()
    assert data.num_verts == FAKE_VERTS
    # the autoencoder keeps undetected rows: ground truth is all it needs
    assert len(load_hand_data(list_shard_files(d), ("verts",), require_detection=False)) == 80


def test_mixed_render_and_keypoint_only_shards(tmp_path: Path) -> None:
    d = tmp_path / "mix"
    write_fake_shards(d, n_shards=1, per_shard=20, seed=1)
    write_fake_shards(tmp_path / "fast", n_shards=1, per_shard=20, fast=True, seed=2)
    (tmp_path / "fast" / "shard_00000.npz").rename(d / "shard_00001.npz")
    data = load_hand_data(list_shard_files(d), ("keypoints", "crops"))
    n0 = int(np.load(d / "shard_00000.npz")["detected"].sum())
    assert data.has_crop[:n0].all() and not data.has_crop[n0:].any()
    assert (data.crops[n0:] == 0).all()
    cond = build_conditions(data.kp2d, data.K, data.kp_z, data.world)
    assert np.isfinite(cond).all()
    row = keypoint_condition(data.kp2d[:1], data.K[:1], data.kp_z[:1], data.world[:1])
    np.testing.assert_allclose(cond[:1], row, atol=1e-6)
    np.testing.assert_allclose(cond[-1:], keypoint_condition(data.kp2d[-1:], data.K[-1:]), atol=1e-6)


def test_bad_shards_name_the_file(tmp_path: Path) -> None:
    d = write_fake_shards(tmp_path / "d", n_shards=1, per_shard=8)
    bad = dict(np.load(d / "shard_00000.npz"))
    del bad["joints"]
    np.savez(d / "shard_00001.npz", **bad)
    with pytest.raises(DataError, match=r"shard_00001.npz: shard lacks \['joints'\]"):
        load_hand_data(list_shard_files(d), ("keypoints",))
    (d / "shard_00001.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="shard_00001.npz"):
        load_hand_data(list_shard_files(d), ("keypoints",))
    with pytest.raises(DataError, match="no .npz"):
        list_shard_files(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        list_shard_files(tmp_path / "nowhere")


def test_validation_split(tmp_path: Path) -> None:
    d = write_fake_shards(tmp_path / "d", n_shards=3, per_shard=16, detect_rate=1.0)
    train, val = load_train_val(d, None, ("keypoints",))
    assert (len(train), len(val)) == (32, 16)  # last shard held out
    one = write_fake_shards(tmp_path / "one", n_shards=1, per_shard=30, detect_rate=1.0)
    train, val = load_train_val(one, None, ("keypoints",))
    assert (len(train), len(val)) == (27, 3)


def test_batch_order_is_deterministic_and_rank_disjoint() -> None:
    a = BatchOrder(100, 10, seed=3, rank=0, world_size=2)
    b = BatchOrder(100, 10, seed=3, rank=1, world_size=2)
    epoch_a = np.concatenate([a.indices(s) for s in range(a.batches_per_epoch)])
    epoch_b = np.concatenate([b.indices(s) for s in range(b.batches_per_epoch)])
    assert len(set(epoch_a) & set(epoch_b)) == 0
    assert len(set(epoch_a) | set(epoch_b)) == 100
    np.testing.assert_array_equal(a.indices(7), BatchOrder(100, 10, seed=3, rank=0, world_size=2).indices(7))
    assert not np.array_equal(a.indices(0), a.indices(a.batches_per_epoch))  # reshuffled each epoch


def test_keypoint_jitter_and_crop_augmentation() -> None:
    rng = np.random.default_rng(0)
    kp = rng.uniform(50, 150, size=(64, 21, 2)).astype(np.float32)
    moved = jitter_keypoints(kp, rng, prob=0.5, max_frac=0.02)
    changed = np.abs(moved - kp).max(axis=(1, 2)) > 0
    assert 10 < changed.sum() < 54 and np.abs(moved - kp).max() < 0.02 * 100 * 6
    x = torch.rand(16, 3, 64, 64)
    a = augment_crops(x, torch.Generator().manual_seed(1))
    b = augment_crops(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and (a - x).abs().mean() > 0.01
