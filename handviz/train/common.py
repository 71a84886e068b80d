"""Pieces every stage uses: run options, stage-1 batches (conditions, crops), and run records."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from handviz.diffusion.nets import crops_to_tensor
from handviz.features import JOINT_SCALE_MM
from handviz.logs import InputError
from handviz.train.augment import augment_crops
from handviz.train.data import HandData, build_conditions, jitter_keypoints
from handviz.train.loop import LoopConfig
from handviz.train.observations import ObservationConfig, augment_keypoint_rows

log = logging.getLogger(__name__)


@dataclass
class RunConfig:
    """Options shared by all stages (the CLI fills them)."""

    data: str = "data/synth"
    val_data: str | None = None
    out: str = "weights"
    batch: int = 256
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    max_samples: int | None = None
    #: Start from the nets in this weights folder (fine-tuning) instead of from scratch.
    init: str | None = None
    loop: LoopConfig = field(default_factory=LoopConfig)


@dataclass
class KeypointBatch:
    """Stage-1 inputs of one batch on the device.

    cond: (B, COND_DIM); joints: (B, 63) root-relative / JOINT_SCALE_MM; crops: (B, 3, S, S) in
    [0, 1] or None; has_crop: (B,) bool.
    """

    cond: torch.Tensor
    joints: torch.Tensor
    crops: torch.Tensor | None
    has_crop: torch.Tensor


def keypoint_batch(
    data: HandData, idx: np.ndarray, device: torch.device, rng: np.random.Generator | None = None,
    g: torch.Generator | None = None, jitter_prob: float = 0.0, jitter_frac: float = 0.0, augment: bool = False,
    observations: ObservationConfig | None = None, mean_factors: dict[str, float] | None = None,
) -> KeypointBatch:
    """Gather rows idx; with rng/g, jitter 2D keypoints and augment crops (training).

    observations: vary bone lengths (training only; keypoint-only rows: a render's MediaPipe
    keypoints belong to the hand it shows) and replace MediaPipe's 3D by simulated
    observations whose error size joins the condition (training and validation; validation
    draws them from a generator seeded by the rows, so every evaluation sees the same ones).
    """
    kp2d, K, kp_z, world = data.kp2d[idx], data.K[idx], data.kp_z[idx], data.world[idx]
    joints = data.joints[idx]
    error = None
    training = rng is not None
    cfg = observations if observations is None or training else replace(observations, bone_variation=False)
    if cfg is not None and (cfg.bone_variation or cfg.simulates):
        draw = rng if training else np.random.default_rng(int(idx[0]) if len(idx) else 0)
        cam = joints.astype(np.float64) * JOINT_SCALE_MM + data.root[idx][:, None]
        keypoint_only = ~np.isfinite(world).all(axis=(1, 2))  # rows MediaPipe did not label
        cam, kp2d, z_sim, w_sim, err = augment_keypoint_rows(cam, kp2d, K, draw, cfg, mean_factors, keypoint_only)
        joints = ((cam - cam[:, :1]) / JOINT_SCALE_MM).astype(np.float32)
        if cfg.simulates:
            kp_z, world, error = z_sim, w_sim, err
    if rng is not None and jitter_prob > 0:
        kp2d = jitter_keypoints(kp2d, rng, jitter_prob, jitter_frac)
    cond = build_conditions(kp2d, K, kp_z, world, error)
    has_crop = torch.zeros(len(idx), dtype=torch.bool, device=device)
    crops = None
    if data.crops is not None:
        has_crop = torch.from_numpy(data.has_crop[idx]).to(device)
        if bool(has_crop.any()):
            crops = crops_to_tensor(data.crops[idx], device)
            if augment and g is not None:
                crops = augment_crops(crops, g)
    return KeypointBatch(
        cond=torch.from_numpy(cond).to(device),
        joints=torch.from_numpy(np.ascontiguousarray(joints).reshape(len(idx), -1)).to(device),
        crops=crops, has_crop=has_crop,
    )


def image_features(crop_encoder, batch: KeypointBatch, keep: torch.Tensor, feat_dim: int) -> torch.Tensor:
    """(B, feat_dim): the encoder's features on rows where keep is True (zeros elsewhere; the
    denoiser swaps those rows for its null feature). Only kept crops go through the CNN."""
    B = batch.cond.shape[0]
    if batch.crops is None or not bool(keep.any()):
        return torch.zeros(B, feat_dim, device=batch.cond.device)
    feat = crop_encoder(batch.crops[keep])
    out = torch.zeros(B, feat.shape[1], device=feat.device, dtype=feat.dtype)
    return out.index_put((keep.nonzero().squeeze(1),), feat)


def image_keep_mask(batch: KeypointBatch, dropout: float, g: torch.Generator) -> torch.Tensor:
    """(B,) bool: rows that see their crop (has one, and survived condition dropout)."""
    drop = torch.rand(batch.has_crop.shape[0], generator=g, device=batch.has_crop.device) < dropout
    return batch.has_crop & ~drop


def joint_stats(joints: np.ndarray, floor: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coordinate mean and std (floored: the wrist is always 0) of (M, 21, 3) joints -> (63,), (63,)."""
    flat = joints.reshape(len(joints), -1).astype(np.float64)
    return (torch.tensor(flat.mean(0), dtype=torch.float32),
            torch.tensor(np.maximum(flat.std(0), floor), dtype=torch.float32))


def init_from_weights(weights_dir: str | Path, name: str, modules: dict[str, torch.nn.Module]) -> None:
    """Copy weights (and normalisation buffers) of weights_dir/name.* into same-shaped modules."""
    from handviz.diffusion.weights import load_weights

    loaded, _ = load_weights(weights_dir, name)
    for key, module in modules.items():
        if loaded[key].config() != module.config():
            raise InputError(f"{Path(weights_dir) / (name + '.json')}: '{key}' is {loaded[key].config()}, this run "
                             f"builds {module.config()}; match the size options or drop --init")
        module.load_state_dict(loaded[key].state_dict())


def file_digest(path: str | Path) -> str:
    """Short sha256 of a file: records which weights a later stage was trained on."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def data_record(cfg: RunConfig, train: HandData, val: HandData) -> dict:
    return {"data": str(cfg.data), "val_data": cfg.val_data, "train_samples": len(train),
            "val_samples": len(val), "train_shards": len(train.sources),
            "with_crops": int(train.has_crop.sum()) if train.has_crop is not None else 0}


def set_threads_for_world(world_size: int) -> None:
    """Share the machine's cores between torchrun ranks (torch defaults to all cores per process)."""
    import os

    if world_size > 1 and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
