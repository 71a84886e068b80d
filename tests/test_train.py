"""Training loops on tiny fake shards: losses fall, files appear and load, resume is exact,
the CLI wires it, and two processes train in data parallel."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file
from test_train_data import FAKE_VERTS, write_fake_shards

from handviz.diffusion.weights import load_mesh_models, load_stage1
from handviz.logs import InputError
from handviz.train.autoencoder import AutoencoderConfig, fit_joint_regressor, train_autoencoder
from handviz.train.checkpoint import CheckpointError
from handviz.train.loop import LoopConfig, lr_factor
from handviz.train.mesh_ldm import MeshLDMConfig, train_mesh_ldm
from handviz.train.stage1 import Stage1Config, train_stage1

TINY_STAGE1 = dict(hidden=32, blocks=1, enc_width=8, feat_dim=16, val_hypotheses=8)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_fake_shards(tmp_path_factory.mktemp("data") / "d", n_shards=3, per_shard=96)


def _stage1_cfg(data: Path, out: Path, steps: int, **kw) -> Stage1Config:
    loop = LoopConfig(steps=steps, lr=3e-3, warmup_steps=5, val_every=kw.pop("val_every", steps),
                      ckpt_every=kw.pop("ckpt_every", steps))
    return Stage1Config(data=str(data), out=str(out), batch=48, loop=loop, **TINY_STAGE1, **kw)


def test_lr_schedule() -> None:
    assert lr_factor(0.0, 0.1, 0.02) < 0.01
    assert lr_factor(0.1, 0.1, 0.02) == pytest.approx(1.0)
    assert lr_factor(1.0, 0.1, 0.02) == pytest.approx(0.02)
    assert lr_factor(0.3, 0.1, 0.02) > lr_factor(0.6, 0.1, 0.02)


def test_stage1_trains_writes_and_loads(shards: Path, tmp_path: Path) -> None:
    metrics = train_stage1(_stage1_cfg(shards, tmp_path, 120, val_every=40))
    cfg = json.loads((tmp_path / "stage1.json").read_text())
    hist = cfg["history"]
    assert [h["step"] for h in hist] == [40, 80, 120]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["img_mpjpe_mean_mm"] < hist[0]["img_mpjpe_mean_mm"]
    assert metrics["img_spread_mm"] > 0.5 and "noimg_spread_error_spearman" in metrics
    assert "ddim4_img_mpjpe_mean_mm" in metrics
    assert cfg["train_samples"] > 0 and cfg["steps_done"] == 120 and cfg["models"]["joint_denoiser"]["hidden"] == 32
    enc, den, loaded = load_stage1(tmp_path)
    assert loaded["val_metrics"] == metrics
    assert (tmp_path / "checkpoints" / "stage1.safetensors").is_file()


def test_resume_continues_exactly(shards: Path, tmp_path: Path, monkeypatch) -> None:
    import handviz.train.stage1 as stage1

    straight = tmp_path / "straight"
    train_stage1(_stage1_cfg(shards, straight, 12, ckpt_every=6))
    real_loss, calls = stage1.stage1_loss, []

    def interrupted_after_six_steps(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(stage1, "stage1_loss", interrupted_after_six_steps)
    split = tmp_path / "split"
    with pytest.raises(KeyboardInterrupt):
        train_stage1(_stage1_cfg(shards, split, 12, ckpt_every=6))
    assert not (split / "stage1.safetensors").exists()
    assert json.loads((split / "checkpoints" / "stage1.json").read_text())["step"] == 6
    monkeypatch.setattr(stage1, "stage1_loss", real_loss)
    train_stage1(_stage1_cfg(shards, split, 12, ckpt_every=6, resume=True))
    a = load_file(str(straight / "checkpoints" / "stage1.safetensors"))
    b = load_file(str(split / "checkpoints" / "stage1.safetensors"))
    assert a.keys() == b.keys()
    for k in a:  # model, EMA and optimizer state: bit for bit
        assert torch.equal(a[k], b[k]), k


def test_resume_refuses_another_architecture(shards: Path, tmp_path: Path) -> None:
    train_stage1(_stage1_cfg(shards, tmp_path, 4))
    cfg = _stage1_cfg(shards, tmp_path, 8, resume=True)
    cfg.hidden = 48
    with pytest.raises(CheckpointError, match="another architecture"):
        train_stage1(cfg)


def test_fine_tuning_starts_from_the_given_weights(shards: Path, tmp_path: Path) -> None:
    train_stage1(_stage1_cfg(shards, tmp_path / "a", 4))
    other = write_fake_shards(tmp_path / "kp_only", n_shards=2, per_shard=64, fast=True, seed=5)
    train_stage1(_stage1_cfg(other, tmp_path / "b", 2, init=str(tmp_path / "a")))
    _, den_a, _ = load_stage1(tmp_path / "a")
    _, den_b, cfg_b = load_stage1(tmp_path / "b")
    assert torch.equal(den_a.x_mean, den_b.x_mean)  # the pre-trained normalisation is kept
    assert cfg_b["train_config"]["init"] == str(tmp_path / "a")
    wrong = _stage1_cfg(other, tmp_path / "c", 2, init=str(tmp_path / "a"))
    wrong.hidden = 48
    with pytest.raises(InputError, match="drop --init"):
        train_stage1(wrong)


def test_autoencoder_beats_its_pca_start_and_ldm_trains(shards: Path, tmp_path: Path) -> None:
    ae_cfg = AutoencoderConfig(data=str(shards), out=str(tmp_path), batch=64, latent_dim=6, pca_dim=9, hidden=64,
                               regressor="fit", loop=LoopConfig(steps=300, lr=2e-3, warmup_steps=5, val_every=300))
    m = train_autoencoder(ae_cfg)
    assert m["mpvpe_mm"] < 0.8 * m["pca6_mpvpe_mm"]  # 6 nonlinear dofs: PCA-6 cannot, the MLP can
    assert m["regressor_on_gt_mm"] < 1.0
    train_stage1(_stage1_cfg(shards, tmp_path, 20))
    ldm_cfg = MeshLDMConfig(data=str(shards), out=str(tmp_path), batch=48, hidden=32, blocks=1, val_hypotheses=4,
                            loop=LoopConfig(steps=60, lr=3e-3, warmup_steps=5, val_every=30))
    m = train_mesh_ldm(ldm_cfg)
    doc = json.loads((tmp_path / "mesh_ldm.json").read_text())
    assert doc["history"][-1]["train_loss"] < doc["history"][0]["train_loss"]
    for key in ("consistency_mm", "gtjoints_consistency_mm", "cascade_mpvpe_mm", "vertex_spread_mm"):
        assert np.isfinite(m[key])
    assert set(doc["trained_with"]) == {"stage1", "mesh_ae"}
    ae, ldm, _ = load_mesh_models(tmp_path)
    assert ae.num_verts == FAKE_VERTS and ldm.latent_dim == 6


def test_stage1_with_simulated_observations_feeds_the_ldm_and_the_cascade(shards: Path, tmp_path: Path) -> None:
    """A stage 1 trained with MediaPipe-like 3D takes its error size as input everywhere it runs:
    validation, the mesh LDM's training, and the cascade (from cascade.json's observation_error_mm)."""
    from handviz.cascade import Cascade
    from handviz.features import OBSERVATION_COND_DIM, OBSERVATION_ERROR_SCALE_MM
    from handviz.geometry import project
    from handviz.types import Detection

    m = train_stage1(_stage1_cfg(shards, tmp_path, 30, bone_variation=True, observation_prob=0.75))
    assert np.isfinite(m["noimg_mpjpe_mean_mm"])
    enc, den, _ = load_stage1(tmp_path)
    assert den.cond_dim == OBSERVATION_COND_DIM
    train_autoencoder(AutoencoderConfig(data=str(shards), out=str(tmp_path), batch=64, latent_dim=6, pca_dim=9,
                                        hidden=32, loop=LoopConfig(steps=5, lr=1e-3, warmup_steps=1, val_every=5)))
    train_mesh_ldm(MeshLDMConfig(data=str(shards), out=str(tmp_path), batch=48, hidden=32, blocks=1, val_hypotheses=4,
                                 loop=LoopConfig(steps=6, lr=1e-3, warmup_steps=1, val_every=6)))
    ae, ldm, _ = load_mesh_models(tmp_path)
    cascade = Cascade(enc, den, ae, ldm, np.zeros((0, 3), np.int64), torch.device("cpu"),
                      {"use_image_default": False, "observation_error_mm": 12.0})
    assert cascade.takes_observation_error
    K = np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]])
    joints = np.random.default_rng(0).normal(0, 30, (21, 3)) + [0, 0, 500]
    det = Detection(keypoints_2d=project(joints, K).astype(np.float32), world_3d=(joints - joints.mean(0)).astype(np.float32),
                    handedness="Right", score=1.0, keypoints_z=np.zeros(21, np.float32))
    batch = cascade._inputs([det], K, use_image=False)
    assert batch.cond.shape == (1, OBSERVATION_COND_DIM)
    assert float(batch.cond[0, -1]) == pytest.approx(12.0 / OBSERVATION_ERROR_SCALE_MM)
    assert float(batch.cond[0, 63:-1].abs().sum()) > 0  # MediaPipe's world landmarks are in it
    (est,) = cascade.predict([det], K, n_hypotheses=4, seed=0)
    assert np.isfinite(est.joints_3d).all() and est.vertices.shape == (FAKE_VERTS, 3)


def test_fitted_regressor_recovers_a_linear_map() -> None:
    rng = np.random.default_rng(0)
    verts = rng.normal(size=(300, 50, 3))
    true = np.zeros((21, 50))
    for j in range(21):
        idx = rng.choice(50, 3, replace=False)
        true[j, idx] = rng.dirichlet(np.ones(3))
    joints = np.einsum("jv,mvc->mjc", true, verts)
    R = fit_joint_regressor(verts, joints, k=50)
    np.testing.assert_allclose(R.sum(1), 1.0, atol=1e-3)
    np.testing.assert_allclose(np.einsum("jv,mvc->mjc", R, verts), joints, atol=1e-2)


def test_cli_trains_a_stage(shards: Path, tmp_path: Path, capsys) -> None:
    from handviz.cli import main

    code = main(["train", "stage1", "--data", str(shards), "--out", str(tmp_path), "--steps", "3",
                 "--batch", "16", "--hidden", "32", "--val-every", "3", "--threads", "1", "--json"])
    assert code == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")][-1]
    assert json.loads(line)["stage"] == "stage1"
    assert (tmp_path / "stage1.safetensors").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import handviz.train.stage1 as stage1
    from handviz.train.distributed import setup_distributed, teardown

    class RecordingTrainer(stage1.Trainer):
        """Writes a digest of this rank's live weights after training."""

        def run(self, *args, **kwargs):
            result = super().run(*args, **kwargs)
            digest = sum(float(p.double().sum()) for m in self.modules.values() for p in m.parameters())
            Path(out, f"rank{rank}.txt").write_text(repr(digest))
            return result

    stage1.Trainer = RecordingTrainer
    ctx = setup_distributed("cpu")
    try:
        train_stage1(_stage1_cfg(Path(data), Path(out), 6, ckpt_every=3))
    finally:
        teardown(ctx)


def test_two_process_data_parallel_smoke(shards: Path, tmp_path: Path) -> None:
    procs = mp.spawn(_ddp_worker, args=(2, _free_port(), str(shards), str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + 240
    while not procs.join(timeout=5):  # raises if a worker failed
        if time.monotonic() > deadline:
            for p in procs.processes:
                p.terminate()
            pytest.fail("2-process training did not finish in 240 s (a collective deadlock?)")
    assert (tmp_path / "stage1.safetensors").is_file()
    doc = json.loads((tmp_path / "stage1.json").read_text())
    assert doc["world_size"] == 2 and doc["steps_done"] == 6
    # each rank trained on its own half of every batch, yet the averaged gradients kept them equal
    assert (tmp_path / "rank0.txt").read_text() == (tmp_path / "rank1.txt").read_text()
