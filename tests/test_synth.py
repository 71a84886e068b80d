"""The synthetic engine: shards have the promised fields, MediaPipe labels sit on the hand,
the 3D truth re-projects, runs resume and repeat by seed."""

import numpy as np
import pytest

from handviz.geometry import project
from handviz.data.noise_model import fit_noise_model, hand_size_px
from handviz.data.shards import list_shards, load_shards
from handviz.data.synth import SynthConfig, synthesize


@pytest.fixture(scope="module")
def render_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    stats = synthesize(8, out, workers=1, seed=5, cfg=SynthConfig(shard_size=4), progress=False)
    assert stats["samples"] == 8
    return out


def test_shards_have_every_field(render_dir):
    assert len(list_shards(render_dir)) == 2
    d = load_shards(render_dir)
    n = 8
    assert d["joints"].shape == (n, 21, 3) and d["verts"].shape[0] == n and d["verts"].shape[2] == 3
    assert d["kp2d"].shape == (n, 21, 2) and d["mp_world"].shape == (n, 21, 3)
    assert d["crop"].shape == (n, 64, 64, 3) and d["crop"].dtype == np.uint8
    assert d["K"].shape == (n, 3, 3) and d["detected"].dtype == bool
    assert np.all(d["joints"][:, :, 2] > 100), "hands must lie in front of the camera"


def test_truth_reprojects_inside_the_image_and_mediapipe_sits_on_it(render_dir):
    d = load_shards(render_dir)
    kp_gt = project(d["joints"], d["K"][:, None])
    assert np.allclose(kp_gt, d["kp2d_gt"], atol=1e-3)
    w, h = d["image_size"][0]
    assert np.all((kp_gt[..., 0] > 0) & (kp_gt[..., 0] < w) & (kp_gt[..., 1] > 0) & (kp_gt[..., 1] < h))
    det = d["detected"]
    assert det.sum() >= 2, "MediaPipe should find synthetic hands"
    err = np.linalg.norm(d["kp2d"][det] - kp_gt[det], axis=-1).mean(-1)
    assert np.median(err / hand_size_px(kp_gt[det])) < 0.35  # a hand elsewhere would be > 1


def test_resume_keeps_complete_shards(render_dir):
    before = {p.name: p.stat().st_mtime_ns for p in list_shards(render_dir)}
    stats = synthesize(8, render_dir, workers=1, seed=5, cfg=SynthConfig(shard_size=4), progress=False)
    assert stats["samples"] == 0 and stats["skipped_existing"] == 8
    assert before == {p.name: p.stat().st_mtime_ns for p in list_shards(render_dir)}


def test_same_seed_same_truth(tmp_path):
    a = synthesize(3, tmp_path / "a", seed=9, cfg=SynthConfig(shard_size=3, mode="keypoints"), progress=False)
    b = synthesize(3, tmp_path / "b", seed=9, cfg=SynthConfig(shard_size=3, mode="keypoints"), progress=False)
    assert a["samples"] == b["samples"] == 3
    da, db = load_shards(tmp_path / "a"), load_shards(tmp_path / "b")
    assert np.array_equal(da["joints"], db["joints"]) and np.array_equal(da["kp2d"], db["kp2d"])
    dc = load_shards(tmp_path / "a")
    synthesize(3, tmp_path / "c", seed=10, cfg=SynthConfig(shard_size=3, mode="keypoints"), progress=False)
    assert not np.array_equal(dc["joints"], load_shards(tmp_path / "c")["joints"])


def test_noise_model_reproduces_its_residual_scale():
    rng = np.random.default_rng(0)
    gt = rng.uniform(50, 250, (400, 21, 2))
    noisy = gt + rng.normal(0, 3.0, gt.shape)
    model = fit_noise_model(noisy, gt)
    again = model.apply(gt, np.random.default_rng(1))
    fitted = np.std(again - gt)
    assert 2.4 < fitted < 3.6


def test_mode_limited_keypoint_noise_keeps_the_variance_in_fewer_directions():
    from handviz.data.noise_model import load_noise_model

    model = load_noise_model()
    kp = np.random.default_rng(0).uniform(100, 300, (21, 2))
    full = model.offsets(kp, 4000, np.random.default_rng(1)).reshape(4000, 42)
    few = model.offsets(kp, 4000, np.random.default_rng(1), modes=6).reshape(4000, 42)
    assert np.linalg.matrix_rank(few[:200], tol=1e-6 * np.abs(few).max()) == 6
    assert np.linalg.matrix_rank(full[:200], tol=1e-6 * np.abs(full).max()) == 42
    total_full, total_few = (full**2).sum(1).mean(), (few**2).sum(1).mean()
    assert abs(total_few / total_full - 1.0) < 0.1  # the cloud keeps its size
