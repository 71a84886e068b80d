"""The synthetic engine: pose the open hand, render it, run MediaPipe on the render, keep both.

Each sample stores what MediaPipe really said about a render together with the exact 3D
truth, so the models learn MediaPipe's real errors. Shards are deterministic by (seed, index)
and written atomically, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from handviz.data.augment import composite, degrade
from handviz.data.backgrounds import random_background
from handviz.data.camera import intrinsics_from_fov
from handviz.geometry import project
from handviz.data.shards import shard_is_complete, shard_path, write_shard
from handviz.features import CROP_SIZE, crop_hand

log = logging.getLogger(__name__)

#: A hand's wrist-to-middle-tip length is ~180 mm; its projected size picks the depth.
_HAND_LENGTH_MM = 180.0


@dataclass
class SynthConfig:
    width: int = 320
    height: int = 240
    fov_range_deg: tuple[float, float] = (40.0, 70.0)
    hand_px_range: tuple[float, float] = (70.0, 200.0)  # projected hand length, pixels
    shard_size: int = 200
    mode: str = "render"  # "render" (render + MediaPipe) or "keypoints" (projection + noise model)


@dataclass
class Scene:
    """Everything sampled for a batch of hands before rendering (camera frame, mm)."""

    angles: np.ndarray  # (B, 21, 3)
    shape: np.ndarray  # (B, S)
    global_rot: np.ndarray  # (B, 3, 3)
    K: np.ndarray  # (B, 3, 3)
    joints: np.ndarray  # (B, 21, 3)
    verts: np.ndarray  # (B, V, 3)


def sample_scenes(n: int, rng: np.random.Generator, cfg: SynthConfig) -> Scene:
    """Sample pose, shape, wrist orientation and camera; place each hand inside the image."""
    from handviz.hand.kinematics import pose_hand
    from handviz.hand.pose_prior import sample_poses, sample_shapes, sample_webcam_rotations

    angles = sample_poses(n, rng)
    shape = sample_shapes(n, rng)
    rot = sample_webcam_rotations(n, rng)
    verts, joints = pose_hand(angles, shape, rot)
    fov = rng.uniform(*cfg.fov_range_deg, size=n)
    K = np.stack([intrinsics_from_fov(cfg.width, cfg.height, f) for f in fov])
    f = K[:, 1, 1]
    depth = f * _HAND_LENGTH_MM / rng.uniform(*cfg.hand_px_range, size=n)
    u = rng.uniform(0.35, 0.65, n) * cfg.width
    v = rng.uniform(0.35, 0.65, n) * cfg.height
    centre_ray = np.stack([(u - K[:, 0, 2]) / f, (v - K[:, 1, 2]) / f, np.ones(n)], axis=1)
    t = centre_ray * depth[:, None] - joints.mean(axis=1)
    return Scene(angles=angles.astype(np.float32), shape=shape.astype(np.float32),
                 global_rot=rot.astype(np.float32), K=K.astype(np.float32),
                 joints=(joints + t[:, None]).astype(np.float32),
                 verts=(verts + t[:, None]).astype(np.float32))


def _common_arrays(scene: Scene, cfg: SynthConfig) -> dict[str, np.ndarray]:
    n = len(scene.K)
    return {
        "joints": scene.joints, "verts": scene.verts, "K": scene.K,
        "kp2d_gt": project(scene.joints, scene.K[:, None]).reshape(n, 21, 2),
        "image_size": np.tile(np.array([cfg.width, cfg.height], np.int32), (n, 1)),
        "pose": scene.angles, "shape": scene.shape, "global_rot": scene.global_rot,
    }


class _RenderLabeller:
    """Per-process renderer + MediaPipe, built once (both are slow to start)."""

    def __init__(self, cfg: SynthConfig) -> None:
        from handviz.data.render import HandRenderer
        from handviz.hand.asset import load_hand_asset
        from handviz.pipeline.detector import HandDetector

        asset = load_hand_asset()
        self.cfg = cfg
        self.renderer = HandRenderer(asset.faces, len(asset.vertices), cfg.width, cfg.height)
        self.detector = HandDetector(max_hands=1, static=True, model_complexity=1)

    def label(self, scene: Scene, rng: np.random.Generator,
              keep_images: bool = False) -> dict[str, np.ndarray]:
        """Render, degrade and run MediaPipe on every scene; keep_images adds (B, H, W, 3) images."""
        from handviz.data.render import random_appearance

        n, cfg = len(scene.K), self.cfg
        out = _common_arrays(scene, cfg)
        kp2d = np.full((n, 21, 2), np.nan, np.float32)
        kp_z = np.full((n, 21), np.nan, np.float32)
        world = np.full((n, 21, 3), np.nan, np.float32)
        score = np.zeros(n, np.float32)
        detected = np.zeros(n, bool)
        right = np.zeros(n, bool)
        crops = np.zeros((n, CROP_SIZE, CROP_SIZE, 3), np.uint8)
        images = []
        for i in range(n):
            rgba = self.renderer.render(scene.verts[i], scene.K[i], random_appearance(rng))
            image = degrade(composite(rgba, random_background(rng, cfg.height, cfg.width)), rng)
            if keep_images:
                images.append(image)
            dets = self.detector.detect(image)
            if dets:
                d = dets[0]
                kp2d[i], kp_z[i], world[i] = d.keypoints_2d, d.keypoints_z, d.world_3d
                score[i], detected[i], right[i] = d.score, True, d.handedness == "Right"
                crops[i] = d.crop
            else:  # keep the truth: the crop around the true keypoints still helps the encoder
                crops[i] = crop_hand(image, out["kp2d_gt"][i])
        out.update(kp2d=kp2d, kp_z=kp_z, mp_world=world, mp_score=score, detected=detected,
                   mp_right=right, crop=crops)
        if keep_images:
            out["image"] = np.stack(images)
        return out


def keypoint_only_arrays(scene: Scene, rng: np.random.Generator, cfg: SynthConfig) -> dict[str, np.ndarray]:
    """Fast mode: project the truth and add MediaPipe-like 2D noise (see noise_model.py)."""
    from handviz.data.noise_model import load_noise_model

    out = _common_arrays(scene, cfg)
    n = len(scene.K)
    kp2d = load_noise_model().apply(out["kp2d_gt"], rng)
    out.update(kp2d=kp2d, kp_z=np.full((n, 21), np.nan, np.float32),
               mp_world=np.full((n, 21, 3), np.nan, np.float32), mp_score=np.ones(n, np.float32),
               detected=np.ones(n, bool), mp_right=np.ones(n, bool))
    return out


_WORKER: _RenderLabeller | None = None


def _make_shard(job: tuple[int, int, int, SynthConfig, str]) -> tuple[int, int, int]:
    """Worker entry: build, label and write one shard; returns (index, samples, detected)."""
    global _WORKER
    index, n, seed, cfg, out_dir = job
    rng = np.random.default_rng([seed, index])
    scene = sample_scenes(n, rng, cfg)
    if cfg.mode == "render":
        if _WORKER is None:
            _WORKER = _RenderLabeller(cfg)
        arrays = _WORKER.label(scene, rng)
    else:
        arrays = keypoint_only_arrays(scene, rng, cfg)
    write_shard(shard_path(Path(out_dir), index), arrays)
    return index, n, int(arrays["detected"].sum())


def synthesize(n: int, out_dir: Path, workers: int = 1, seed: int = 0, cfg: SynthConfig | None = None,
               progress: bool = True) -> dict[str, float]:
    """Make n samples in out_dir (resuming: complete shards are kept). Returns run statistics."""
    import time

    cfg = cfg or SynthConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_shards = -(-n // cfg.shard_size)
    jobs = []
    for k in range(n_shards):
        size = min(cfg.shard_size, n - k * cfg.shard_size)
        if not shard_is_complete(shard_path(out_dir, k)):
            jobs.append((k, size, seed, cfg, str(out_dir)))
    todo = sum(j[1] for j in jobs)
    made = found = 0
    t0 = time.perf_counter()
    bar = tqdm(total=todo, unit="sample", disable=not progress, desc=f"synth {cfg.mode}")
    if workers <= 1:
        results = map(_make_shard, jobs)
        pool = None
    else:
        pool = get_context("spawn").Pool(workers, initializer=_quiet_worker)
        results = pool.imap_unordered(_make_shard, jobs)
    try:
        for _, size, det in results:
            made += size
            found += det
            bar.update(size)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    elapsed = time.perf_counter() - t0
    return {"samples": made, "skipped_existing": n - todo, "detected": found,
            "detection_rate": found / made if made else float("nan"),
            "seconds": elapsed, "samples_per_s": made / elapsed if elapsed > 0 else float("nan")}


def _quiet_worker() -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
