"""Stage 2a: the mesh autoencoder, trained on ground-truth meshes only.

It starts as the PCA-d reconstruction of the training meshes and learns a nonlinear
correction inside the top-pca_dim PCA subspace. Loss: mean per-vertex distance +
joint_weight * distance of the regressed joints (fingertips matter more than the palm's vertex count suggests). The decoder is trained
on slightly noised latents so that the latents the diffusion produces decode smoothly.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from handviz.diffusion.nets import MeshAutoencoder, count_parameters
from handviz.diffusion.weights import MESH_AE, save_weights
from handviz.eval import metrics as M
from handviz.features import JOINT_SCALE_MM
from handviz.train.common import RunConfig, data_record, init_from_weights, set_threads_for_world
from handviz.train.data import BatchOrder, DataError, HandData, load_train_val
from handviz.train.distributed import setup_distributed
from handviz.train.loop import Trainer, step_rngs
from handviz.train.losses import joint_distance

log = logging.getLogger(__name__)


@dataclass
class AutoencoderConfig(RunConfig):
    latent_dim: int = 48
    pca_dim: int = 128
    hidden: int = 256
    latent_noise: float = 0.01
    joint_weight: float = 1.0
    pca_samples: int = 20000
    #: 'auto': the hand asset's regressor when it fits the data's vertex count, else one fitted on the data.
    regressor: str = "auto"


def fit_joint_regressor(verts: np.ndarray, joints: np.ndarray, k: int = 32, ridge: float = 1e-4) -> np.ndarray:
    """Linear map mesh -> joints fitted on sample pairs: each joint is an affine combination
    (weights sum to 1, so it moves with the mesh) of its k nearest vertices.

    verts: (M, V, 3); joints: (M, 21, 3), same frame -> (21, V) float32.
    """
    verts = np.asarray(verts, np.float64)
    joints = np.asarray(joints, np.float64)
    M_, V, _ = verts.shape
    R = np.zeros((joints.shape[1], V), np.float32)
    dist = np.linalg.norm(verts[:, None] - joints[:, :, None], axis=-1).mean(axis=0)  # (21, V)
    for j in range(joints.shape[1]):
        nn_idx = np.argsort(dist[j])[: min(k, V)]
        A = verts[:, nn_idx].transpose(0, 2, 1).reshape(-1, len(nn_idx))  # (3M, k)
        b = joints[:, j].reshape(-1)
        w_sum = 1e3  # heavy row: weights sum to one
        A = np.vstack([A, np.full((1, len(nn_idx)), w_sum), np.sqrt(ridge) * np.eye(len(nn_idx))])
        b = np.concatenate([b, [w_sum], np.sqrt(ridge) * np.full(len(nn_idx), 1.0 / len(nn_idx))])
        w, *_ = np.linalg.lstsq(A, b, rcond=None)
        R[j, nn_idx] = w
    return R


def choose_regressor(train: HandData, mode: str) -> tuple[np.ndarray, str]:
    """The (21, V) regressor and where it came from."""
    V = train.num_verts
    if mode == "auto":
        try:
            from handviz.hand.asset import load_hand_asset

            reg = load_hand_asset().joint_regressor
            if reg is not None and reg.shape == (21, V):
                return reg.astype(np.float32), "hand asset (assets/hand/joint_regressor.npz)"
        except Exception as exc:  # any asset trouble: the data can still give a regressor
            log.info("hand asset regressor unavailable (%s); fitting one on the data", exc)
    elif mode != "fit":
        raise ValueError(f"regressor must be 'auto' or 'fit', not {mode!r}")
    n = min(len(train), 4000)
    return fit_joint_regressor(train.verts[:n], train.joints[:n]), f"fitted on {n} training meshes"


@torch.no_grad()
def evaluate_autoencoder(ae: MeshAutoencoder, val: HandData, chunk: int = 512) -> dict[str, float]:
    """Reconstruction errors on validation meshes (mm, root-relative)."""
    dev = ae.pca_mean.device
    rec, gts = [], []
    for s in range(0, len(val), chunk):
        v = torch.from_numpy(val.verts[s:s + chunk]).to(dev)
        rec.append(ae.decode(ae.encode(v)).cpu().numpy())
        gts.append(val.verts[s:s + chunk])
    rec_mm = np.concatenate(rec) * JOINT_SCALE_MM
    gt_mm = np.concatenate(gts) * JOINT_SCALE_MM
    err = np.linalg.norm(rec_mm - gt_mm, axis=-1)
    R = ae.joint_regressor.cpu().numpy()
    j_rec = np.einsum("jv,bvc->bjc", R, rec_mm)
    return {
        "mpvpe_mm": round(float(err.mean()), 4),
        "pa_mpvpe_mm": round(float(M.pa_mpvpe(rec_mm, gt_mm).mean()), 4),
        "max_vertex_mm": round(float(err.max(axis=1).mean()), 4),
        "joint_mm": round(float(np.linalg.norm(j_rec - val.joints * JOINT_SCALE_MM, axis=-1).mean()), 4),
    }


@torch.no_grad()
def set_latent_stats(ae: MeshAutoencoder, verts: np.ndarray, chunk: int = 1024) -> None:
    """Normalise the latent to zero mean / unit std over the training meshes."""
    dev = ae.pca_mean.device
    z = torch.cat([ae.encode_raw(torch.from_numpy(verts[s:s + chunk]).to(dev)) for s in range(0, len(verts), chunk)])
    ae.latent_mean.copy_(z.mean(0))
    ae.latent_std.copy_(z.std(0).clamp_min(1e-4))


def train_autoencoder(cfg: AutoencoderConfig) -> dict[str, Any]:
    """Train the mesh AE and write OUT/mesh_ae.safetensors + mesh_ae.json. Returns val metrics."""
    ctx = setup_distributed(cfg.device)
    set_threads_for_world(ctx.world_size)
    torch.manual_seed(cfg.seed)
    train, val = load_train_val(cfg.data, cfg.val_data, ("verts",), require_detection=False,
                                max_samples=cfg.max_samples, seed=cfg.seed)
    pick = np.random.default_rng(cfg.seed).permutation(len(train))[: cfg.pca_samples]
    pca_dim = min(cfg.pca_dim, len(pick), 3 * train.num_verts)
    if pca_dim < cfg.latent_dim:
        raise DataError(f"{cfg.data}: {len(pick)} meshes of {train.num_verts} vertices cannot support a "
                        f"{cfg.latent_dim}-d latent; use more data or a smaller --latent-dim")
    ae = MeshAutoencoder(train.num_verts, cfg.latent_dim, pca_dim, cfg.hidden)
    if cfg.init:  # fine-tune: the loaded basis, whitening and regressor stay
        init_from_weights(cfg.init, MESH_AE, {"mesh_ae": ae})
        explained, reg_source, start = None, f"loaded with {cfg.init}", "init"
        reg = ae.joint_regressor.numpy()
    else:
        explained = ae.init_pca(torch.from_numpy(train.verts[pick]))
        reg, reg_source = choose_regressor(train, cfg.regressor)
        ae.joint_regressor.copy_(torch.from_numpy(reg))
        start = f"pca{cfg.latent_dim}"
    ae = ae.to(ctx.device)
    baseline = {f"{start}_{k}": v for k, v in evaluate_autoencoder(ae, val).items()}
    gt_reg = np.einsum("jv,bvc->bjc", reg, val.verts) - val.joints
    baseline["regressor_on_gt_mm"] = round(float(np.linalg.norm(gt_reg, axis=-1).mean() * JOINT_SCALE_MM), 4)
    if ctx.is_main:
        log.info("mesh AE: V=%d, PCA baseline %s", train.num_verts, baseline)
    arch = {"mesh_ae": ae.config()}
    trainer = Trainer(MESH_AE, {"mesh_ae": ae}, cfg.loop, cfg.out, ctx, {"arch": arch}, resume=cfg.resume)
    order = BatchOrder(len(train), cfg.batch, cfg.seed, ctx.rank, ctx.world_size)
    R = ae.joint_regressor

    def step_fn(step: int):
        _, g = step_rngs(cfg.seed, ctx.rank, step, ctx.device)
        v = torch.from_numpy(train.verts[order.indices(step)]).to(ctx.device)
        z = ae.encode_raw(v)
        z = z + cfg.latent_noise * torch.randn(z.shape, generator=g, device=z.device)
        rec = ae.decode_raw(z)
        vert_err = joint_distance(rec, v)
        joint_err = joint_distance(torch.einsum("jv,bvc->bjc", R, rec), torch.einsum("jv,bvc->bjc", R, v))
        loss = vert_err + cfg.joint_weight * joint_err
        return loss, {"loss": loss.item(), "vert_mm": vert_err.item() * JOINT_SCALE_MM,
                      "joint_mm": joint_err.item() * JOINT_SCALE_MM}

    t0 = time.perf_counter()
    metrics = trainer.run(step_fn, lambda ema: evaluate_autoencoder(ema["mesh_ae"], val))
    if ctx.is_main:
        final_ae = trainer.ema.shadow["mesh_ae"]
        set_latent_stats(final_ae, train.verts)
        metrics = {**evaluate_autoencoder(final_ae, val), **baseline}
        if explained is not None:
            metrics["pca_explained_variance_at_latent"] = round(float(explained[: cfg.latent_dim].sum()), 6)
        save_weights(cfg.out, MESH_AE, {"mesh_ae": final_ae}, {
            "params": count_parameters(final_ae), "val_metrics": metrics, "joint_regressor_source": reg_source,
            "train_config": asdict(cfg), **data_record(cfg, train, val), **trainer.run_record,
            "wall_time_s": round(time.perf_counter() - t0, 1),
        })
    return metrics
