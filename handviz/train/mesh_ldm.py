"""Stage 2b: the mesh latent denoiser, on top of frozen stage 1 and a frozen mesh autoencoder.

Each training hand is conditioned either on its ground-truth joints or (gt_fraction = 0.5) on a
fresh one-step stage-1 hypothesis for its keypoints, so the denoiser learns how meshes follow
joints across the whole hypothesis distribution it will meet at run time; the target is always
the ground-truth mesh latent. Loss: latent x0-MSE at random t + energy score of the one-step
samples + consistency_weight * distance between the decoded mesh's regressed joints and the
conditioning joints (reported in mm as consistency_mm).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handviz.diffusion.nets import LatentDenoiser, MeshAutoencoder, count_parameters
from handviz.diffusion.sampling import sample_joints, sample_mesh_latents
from handviz.diffusion.weights import MESH_AE, MESH_LDM, STAGE1, load_stage1, load_weights, save_weights
from handviz.eval import metrics as M
from handviz.features import JOINT_SCALE_MM, OBSERVATION_COND_DIM
from handviz.train.common import (
    RunConfig, data_record, file_digest, image_features, image_keep_mask, init_from_weights, joint_stats,
    keypoint_batch, set_threads_for_world,
)
from handviz.train.data import BatchOrder, DataError, HandData, load_train_val
from handviz.train.distributed import setup_distributed
from handviz.train.loop import Trainer, step_rngs
from handviz.train.losses import energy_score, joint_distance, x0_mse
from handviz.train.observations import ObservationConfig

log = logging.getLogger(__name__)


@dataclass
class MeshLDMConfig(RunConfig):
    #: Folder with stage1.* and mesh_ae.* (default: the --out folder).
    models: str | None = None
    hidden: int = 256
    blocks: int = 3
    beta_schedule: str = "cosine"
    image_dropout: float = 0.3
    gt_fraction: float = 0.5
    es_weight: float = 1.0
    es_draws: int = 2
    #: Measured on rendered shards, 2000 steps: weight 1 / 5 / 20 -> consistency 6.4 / 3.1 / 1.6 mm and
    #: mesh error given true joints 5.6 / 3.2 / 2.8 mm; the cascade's PA-MPVPE moves 9.9 -> 10.3 mm because
    #: the mesh now follows each hypothesis instead of drifting to the average hand.
    consistency_weight: float = 20.0
    kp_jitter_prob: float = 0.5
    kp_jitter_frac: float = 0.02
    augment: bool = True
    val_hypotheses: int = 8


def stage1_observations(den) -> ObservationConfig | None:
    """What a stage 1 trained with simulated MediaPipe 3D needs in its condition (None: nothing).

    Bone lengths stay as they are: the targets here are the shard's own meshes."""
    if den.cond_dim != OBSERVATION_COND_DIM:
        return None
    return ObservationConfig(observation_prob=1.0)


@torch.no_grad()
def encode_targets(ae: MeshAutoencoder, verts: np.ndarray, chunk: int = 1024) -> torch.Tensor:
    """Ground-truth latents (M, d) of (M, V, 3) meshes, computed once (the AE is frozen)."""
    dev = ae.pca_mean.device
    return torch.cat([ae.encode(torch.from_numpy(verts[s:s + chunk]).to(dev)) for s in range(0, len(verts), chunk)])


def mesh_ldm_loss(
    ldm: LatentDenoiser, enc, den, ae: MeshAutoencoder, data: HandData, z_all: torch.Tensor, idx: np.ndarray,
    rng: np.random.Generator, g: torch.Generator, cfg: MeshLDMConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    dev = z_all.device
    batch = keypoint_batch(data, idx, dev, rng, g, cfg.kp_jitter_prob, cfg.kp_jitter_frac, cfg.augment,
                           stage1_observations(den))
    B = len(idx)
    T = ldm.schedule.num_train_timesteps
    keep = image_keep_mask(batch, cfg.image_dropout, g)
    with torch.no_grad():
        feat = image_features(enc, batch, keep, enc.feat_dim)
        s1_img = den.image_context(feat, keep, B)  # stage 1 sees the crop exactly when stage 2 does
        hyp = sample_joints(den, batch.cond, s1_img, 1, 1, g)[:, 0]
        use_gt = torch.rand(B, generator=g, device=dev) < cfg.gt_fraction
        joints = torch.where(use_gt[:, None], batch.joints, hyp)  # (B, 63)
    z0 = z_all[torch.from_numpy(idx).to(dev)]

    t = torch.randint(0, T - 1, (B,), generator=g, device=dev)
    z_t = ldm.schedule.add_noise(z0, torch.randn(z0.shape, generator=g, device=dev), t)
    mse = x0_mse(ldm(z_t[:, None], t, joints[:, None], feat, keep)[:, 0], z0)

    noise = torch.randn(B, cfg.es_draws, z0.shape[1], generator=g, device=dev)
    t_last = torch.full((B,), T - 1, device=dev, dtype=torch.long)
    samples = ldm(noise, t_last, joints[:, None].expand(-1, cfg.es_draws, -1), feat, keep)
    es = energy_score(samples, z0)
    mesh_joints = ae.regress_joints(ae.decode(samples))  # (B, m, 21, 3)
    cons = joint_distance(mesh_joints, joints.view(B, 1, 21, 3))
    loss = mse + cfg.es_weight * es + cfg.consistency_weight * cons
    return loss, {"loss": loss.item(), "mse": mse.item(), "es": es.item(),
                  "consistency_mm": cons.item() * JOINT_SCALE_MM}


@torch.no_grad()
def evaluate_mesh_ldm(
    ldm: LatentDenoiser, enc, den, ae: MeshAutoencoder, val: HandData, n_hypotheses: int = 8, seed: int = 0,
    chunk: int = 128,
) -> dict[str, float]:
    """Mesh quality through the whole cascade (stage-1 hypotheses, crop when present) and with
    ground-truth joints as the condition. mm, root-relative."""
    dev = ae.pca_mean.device
    g = torch.Generator(device=dev).manual_seed(seed)
    acc: dict[str, list[np.ndarray]] = {k: [] for k in ("cascade_v", "cascade_pa", "cons", "gt_v", "gt_cons", "spread")}
    for s in range(0, len(val), chunk):
        idx = np.arange(s, min(s + chunk, len(val)))
        batch = keypoint_batch(val, idx, dev, observations=stage1_observations(den))
        feat = image_features(enc, batch, batch.has_crop, enc.feat_dim)
        keep = batch.has_crop
        B = len(idx)
        gt_v = val.verts[idx] * JOINT_SCALE_MM
        hyps = sample_joints(den, batch.cond, den.image_context(feat, keep, B), n_hypotheses, 1, g)
        ldm_img = ldm.image_context(feat, keep, B)
        z = sample_mesh_latents(ldm, hyps, ldm_img, 1, g)
        verts = ae.decode(z)  # (B, N, V, 3)
        mean_mesh = verts.mean(1).cpu().numpy() * JOINT_SCALE_MM
        acc["cascade_v"].append(np.linalg.norm(mean_mesh - gt_v, axis=-1).mean(1))
        acc["cascade_pa"].append(M.pa_mpvpe(mean_mesh, gt_v))
        cons = (ae.regress_joints(verts) - hyps.view(B, n_hypotheses, 21, 3)).norm(dim=-1).mean(dim=(1, 2))
        acc["cons"].append(cons.cpu().numpy() * JOINT_SCALE_MM)
        acc["spread"].append(M.spread(verts.cpu().numpy() * JOINT_SCALE_MM).mean(1))
        gt_j = batch.joints[:, None]
        zg = sample_mesh_latents(ldm, gt_j, ldm_img, 1, g)
        vg = ae.decode(zg)[:, 0]
        acc["gt_v"].append(np.linalg.norm(vg.cpu().numpy() * JOINT_SCALE_MM - gt_v, axis=-1).mean(1))
        acc["gt_cons"].append((ae.regress_joints(vg) - gt_j.view(B, 21, 3)).norm(dim=-1).mean(1).cpu().numpy()
                              * JOINT_SCALE_MM)
    mean = {k: float(np.concatenate(v).mean()) for k, v in acc.items()}
    return {
        "cascade_mpvpe_mm": round(mean["cascade_v"], 4), "cascade_pa_mpvpe_mm": round(mean["cascade_pa"], 4),
        "consistency_mm": round(mean["cons"], 4), "vertex_spread_mm": round(mean["spread"], 4),
        "gtjoints_mpvpe_mm": round(mean["gt_v"], 4), "gtjoints_consistency_mm": round(mean["gt_cons"], 4),
    }


def _load_frozen(models_dir: Path, device: torch.device):
    enc, den, _ = load_stage1(models_dir, device)
    ae = load_weights(models_dir, MESH_AE, device)[0]["mesh_ae"]
    return enc, den, ae


def train_mesh_ldm(cfg: MeshLDMConfig) -> dict[str, Any]:
    """Train the latent denoiser and write OUT/mesh_ldm.safetensors + mesh_ldm.json. Returns val metrics."""
    ctx = setup_distributed(cfg.device)
    set_threads_for_world(ctx.world_size)
    torch.manual_seed(cfg.seed)
    models_dir = Path(cfg.models or cfg.out)
    enc, den, ae = _load_frozen(models_dir, ctx.device)
    train, val = load_train_val(cfg.data, cfg.val_data, ("keypoints", "crops", "verts"),
                                max_samples=cfg.max_samples, seed=cfg.seed)
    if train.num_verts != ae.num_verts:
        raise DataError(f"{cfg.data}: meshes have {train.num_verts} vertices but {models_dir}/mesh_ae.safetensors "
                        f"was trained on {ae.num_verts}; re-train it with `handviz train autoencoder`")
    z_all = encode_targets(ae, train.verts)
    val_verts_only = val
    train.verts = None  # the latents replace them; frees most of the memory
    ldm = LatentDenoiser(ae.latent_dim, enc.feat_dim, cfg.hidden, cfg.blocks, beta_schedule=cfg.beta_schedule)
    if cfg.init:
        init_from_weights(cfg.init, MESH_LDM, {"latent_denoiser": ldm})
    else:
        ldm.joint_mean, ldm.joint_std = joint_stats(train.joints)
    ldm = ldm.to(ctx.device)
    arch = {"latent_denoiser": ldm.config()}
    trainer = Trainer(MESH_LDM, {"latent_denoiser": ldm}, cfg.loop, cfg.out, ctx, {"arch": arch},
                      resume=cfg.resume)
    order = BatchOrder(len(train), cfg.batch, cfg.seed, ctx.rank, ctx.world_size)

    def step_fn(step: int):
        rng, g = step_rngs(cfg.seed, ctx.rank, step, ctx.device)
        return mesh_ldm_loss(ldm, enc, den, ae, train, z_all, order.indices(step), rng, g, cfg)

    def val_fn(ema):
        return evaluate_mesh_ldm(ema["latent_denoiser"], enc, den, ae, val_verts_only, cfg.val_hypotheses, cfg.seed)

    t0 = time.perf_counter()
    metrics = trainer.run(step_fn, val_fn)
    if ctx.is_main:
        final = trainer.ema.shadow["latent_denoiser"]
        save_weights(cfg.out, MESH_LDM, {"latent_denoiser": final}, {
            "params": count_parameters(final), "val_metrics": metrics, "train_config": asdict(cfg),
            "trained_with": {
                "stage1": file_digest(models_dir / f"{STAGE1}.safetensors"),
                "mesh_ae": file_digest(models_dir / f"{MESH_AE}.safetensors"),
            },
            **data_record(cfg, train, val), **trainer.run_record, "wall_time_s": round(time.perf_counter() - t0, 1),
        })
    return metrics
