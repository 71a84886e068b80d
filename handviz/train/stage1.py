"""Stage 1: crop encoder + joint denoiser, trained together.

Loss = x0-MSE at t ~ U{0..T-2} (k-step DDIM) + es_weight * energy score of es_draws one-step
samples from pure noise at t = T-1 (the runtime's one step, made a true sampler). The crop
feature is dropped (swapped for the learned null feature) with probability image_dropout, so
one net serves hands with and without a crop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from handviz.diffusion.nets import CropEncoder, JointDenoiser, count_parameters
from handviz.diffusion.sampling import sample_joints
from handviz.diffusion.weights import STAGE1, save_weights
from handviz.eval import metrics as M
from handviz.features import COND_DIM, JOINT_SCALE_MM, OBSERVATION_COND_DIM
from handviz.limits import HYPOTHESES_DEFAULT
from handviz.train.common import (
    KeypointBatch,
    RunConfig,
    data_record,
    image_features,
    image_keep_mask,
    init_from_weights,
    joint_stats,
    keypoint_batch,
    set_threads_for_world,
)
from handviz.train.data import BatchOrder, HandData, MixedBatchOrder, load_train_val
from handviz.train.distributed import setup_distributed
from handviz.train.loop import Trainer, step_rngs
from handviz.train.observations import ObservationConfig, proportion_factors
from handviz.train.losses import energy_score, x0_mse

log = logging.getLogger(__name__)


@dataclass
class Stage1Config(RunConfig):
    hidden: int = 256
    blocks: int = 3
    enc_width: int = 16
    feat_dim: int = 128
    beta_schedule: str = "cosine"
    image_dropout: float = 0.3
    es_weight: float = 1.0
    es_draws: int = 2
    kp_jitter_prob: float = 0.5
    kp_jitter_frac: float = 0.02
    augment: bool = True
    val_hypotheses: int = HYPOTHESES_DEFAULT
    #: Vary bone lengths around the published proportions (handviz.train.observations).
    bone_variation: bool = False
    bone_sd: float = 0.06
    #: Share of rows given simulated MediaPipe 3D with an error size drawn from
    #: [observation_error_min_mm, observation_error_max_mm]; > 0 adds that size to the condition.
    observation_prob: float = 0.0
    observation_error_min_mm: float = 2.0
    observation_error_max_mm: float = 35.0
    #: Share of each batch drawn from rows MediaPipe labelled on renders (None: rows drawn alike).
    mediapipe_share: float | None = None

    def observations(self) -> ObservationConfig:
        return ObservationConfig(bone_variation=self.bone_variation, bone_sd=self.bone_sd,
                                 observation_prob=self.observation_prob,
                                 error_range_mm=(self.observation_error_min_mm, self.observation_error_max_mm))


def make_stage1_nets(cfg: Stage1Config) -> tuple[CropEncoder, JointDenoiser]:
    enc = CropEncoder(width=cfg.enc_width, feat_dim=cfg.feat_dim)
    cond_dim = OBSERVATION_COND_DIM if cfg.observation_prob > 0 else COND_DIM
    den = JointDenoiser(cond_dim=cond_dim, img_dim=cfg.feat_dim, hidden=cfg.hidden, blocks=cfg.blocks,
                        beta_schedule=cfg.beta_schedule)
    return enc, den


def stage1_mean_factors(cfg: Stage1Config) -> dict[str, float] | None:
    """Per-finger factors towards the published proportions (None when bones are not varied)."""
    if not cfg.bone_variation:
        return None
    from handviz.hand.asset import load_hand_asset

    return proportion_factors(load_hand_asset().rest_joints)


def stage1_loss(
    enc: CropEncoder, den: JointDenoiser, batch: KeypointBatch, g: torch.Generator, cfg: Stage1Config
) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE over random timesteps + energy score of the one-step samples; see the module docstring."""
    B, dev = batch.cond.shape[0], batch.cond.device
    T = den.schedule.num_train_timesteps
    keep = image_keep_mask(batch, cfg.image_dropout, g)
    feat = image_features(enc, batch, keep, den.img_dim)
    x0 = den.normalize(batch.joints)

    t = torch.randint(0, T - 1, (B,), generator=g, device=dev)
    noise = torch.randn(x0.shape, generator=g, device=dev)
    x_t = den.schedule.add_noise(x0, noise, t)
    mse = x0_mse(den(x_t[:, None], t, batch.cond, feat, keep)[:, 0], x0)

    z = torch.randn(B, cfg.es_draws, x0.shape[1], generator=g, device=dev)
    samples = den(z, torch.full((B,), T - 1, device=dev, dtype=torch.long), batch.cond, feat, keep)
    es = energy_score(samples, x0)
    loss = mse + cfg.es_weight * es
    return loss, {"loss": loss.item(), "mse": mse.item(), "es": es.item()}


def hypothesis_metrics(hyps_mm: np.ndarray, gt_mm: np.ndarray) -> dict[str, float]:
    """Accuracy and calibration of N hypotheses. hyps_mm: (B, N, 21, 3); gt_mm: (B, 21, 3), root-relative mm.

    calibration_ratio = E|h - gt| / E|h - h'| per joint: 1 when the truth behaves like one more
    hypothesis (what the energy score aims for), > 1 overconfident, < 1 underconfident.
    """
    mean = hyps_mm.mean(axis=1)
    err_mean = M.mpjpe(mean, gt_mm)
    per_hyp = M.per_hypothesis_error(hyps_mm, gt_mm, metric="mpjpe")
    spread = M.spread(hyps_mm).mean(axis=1)
    n2 = hyps_mm.shape[1] // 2 * 2
    pairwise = float(np.linalg.norm(hyps_mm[:, 0:n2:2] - hyps_mm[:, 1:n2:2], axis=-1).mean()) if n2 else 0.0
    return {
        "mpjpe_mean_mm": float(err_mean.mean()),
        "pa_mpjpe_mean_mm": float(M.pa_mpjpe(mean, gt_mm).mean()),
        "mpjpe_hyp_mm": float(per_hyp.mean()),
        "best_of_n_mm": float(per_hyp.min(axis=1).mean()),
        "spread_mm": float(spread.mean()),
        "spread_error_spearman": float(M.spearman(spread, err_mean)),
        "calibration_ratio": float(per_hyp.mean() / max(pairwise, 1e-6)),  # huge when collapsed
    }


@torch.no_grad()
def evaluate_stage1(
    enc: CropEncoder, den: JointDenoiser, val: HandData, n_hypotheses: int = HYPOTHESES_DEFAULT, steps: int = 1, seed: int = 0,
    chunk: int = 256, observations: ObservationConfig | None = None,
) -> dict[str, Any]:
    """Sample N hypotheses for every validation hand, with the crop ('img_*', rows that have one)
    and without ('noimg_*', all rows). Metrics in mm, root-relative."""
    dev = next(den.parameters()).device
    g = torch.Generator(device=dev).manual_seed(seed)
    out: dict[str, Any] = {}
    for mode in ("img", "noimg"):
        hyps, gts = [], []
        for s in range(0, len(val), chunk):
            idx = np.arange(s, min(s + chunk, len(val)))
            batch = keypoint_batch(val, idx, dev, observations=observations)
            if mode == "img":
                if batch.crops is None:
                    continue
                rows = batch.has_crop
                feat = enc(batch.crops[rows])
                cond, gt = batch.cond[rows], batch.joints[rows]
            else:
                feat, cond, gt = None, batch.cond, batch.joints
            if len(cond) == 0:
                continue
            hyps.append(sample_joints(den, cond, feat, n_hypotheses, steps, g).cpu().numpy())
            gts.append(gt.cpu().numpy())
        if hyps:
            h = np.concatenate(hyps).reshape(-1, n_hypotheses, 21, 3) * JOINT_SCALE_MM
            gt = np.concatenate(gts).reshape(-1, 21, 3) * JOINT_SCALE_MM
            out.update({f"{mode}_{k}": round(v, 4) for k, v in hypothesis_metrics(h, gt).items()})
    return out


def train_stage1(cfg: Stage1Config) -> dict[str, Any]:
    """Train stage 1 and write OUT/stage1.safetensors + stage1.json. Returns the final val metrics."""
    ctx = setup_distributed(cfg.device)
    set_threads_for_world(ctx.world_size)
    torch.manual_seed(cfg.seed)
    train, val = load_train_val(cfg.data, cfg.val_data, ("keypoints", "crops"), max_samples=cfg.max_samples,
                                seed=cfg.seed)
    enc, den = make_stage1_nets(cfg)
    if cfg.init:  # fine-tune: keep the loaded normalisation, the nets were trained with it
        init_from_weights(cfg.init, STAGE1, {"crop_encoder": enc, "joint_denoiser": den})
    else:
        den.x_mean, den.x_std = joint_stats(train.joints)
    enc, den = enc.to(ctx.device), den.to(ctx.device)
    arch = {"crop_encoder": enc.config(), "joint_denoiser": den.config()}
    trainer = Trainer(STAGE1, {"crop_encoder": enc, "joint_denoiser": den}, cfg.loop, cfg.out, ctx,
                      {"arch": arch}, resume=cfg.resume)
    if cfg.mediapipe_share is None:
        order = BatchOrder(len(train), cfg.batch, cfg.seed, ctx.rank, ctx.world_size)
    else:
        labelled = np.isfinite(train.world).all(axis=(1, 2))
        order = MixedBatchOrder(labelled, cfg.batch, cfg.mediapipe_share, cfg.seed, ctx.rank, ctx.world_size)
    if ctx.is_main:
        log.info("stage1: %d train / %d val hands, %d params", len(train), len(val),
                 count_parameters(enc) + count_parameters(den))

    observations, factors = cfg.observations(), stage1_mean_factors(cfg)

    def step_fn(step: int):
        rng, g = step_rngs(cfg.seed, ctx.rank, step, ctx.device)
        batch = keypoint_batch(train, order.indices(step), ctx.device, rng, g, cfg.kp_jitter_prob,
                               cfg.kp_jitter_frac, cfg.augment, observations, factors)
        return stage1_loss(enc, den, batch, g, cfg)

    def val_fn(ema):
        return evaluate_stage1(ema["crop_encoder"], ema["joint_denoiser"], val, cfg.val_hypotheses, seed=cfg.seed,
                               observations=observations)

    t0 = time.perf_counter()
    metrics = trainer.run(step_fn, val_fn)
    if ctx.is_main:
        ema = trainer.ema.shadow
        final = dict(metrics)
        final.update({f"ddim4_{k}": v for k, v in evaluate_stage1(
            ema["crop_encoder"], ema["joint_denoiser"], val, cfg.val_hypotheses, steps=4, seed=cfg.seed,
            observations=observations).items()
            if k.endswith(("mpjpe_mean_mm", "spread_mm"))})
        save_weights(cfg.out, STAGE1, ema, {
            "params": {k: count_parameters(m) for k, m in ema.items()},
            "val_metrics": final, "train_config": asdict(cfg), **data_record(cfg, train, val),
            **trainer.run_record, "wall_time_s": round(time.perf_counter() - t0, 1),
        })
        metrics = final
    return metrics
