"""The cascade: MediaPipe detections in, aggregated 3D hand estimates out.

The single door between the app/CLI and the models: it loads the weights, mirrors left hands
into the right-hand models and back, runs stage 1 (N joint hypotheses), moves them onto the 2D
keypoints' rays and fuses MediaPipe's own 3D (handviz.posterior), runs stage 2 (one mesh latent
per hypothesis) in one batched pass, aggregates, and places the hand in the camera by solving its
root translation from the 2D keypoints and the intrinsics.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from handviz.diffusion.frozen import (
    FrozenJointDenoiser,
    FrozenLatentDenoiser,
    FrozenMeshDecoder,
)
from handviz.diffusion.sampling import mean_mesh_latent, sample_joints
from handviz.diffusion.weights import check_cascade_compatible, load_mesh_models, load_stage1
from handviz.features import JOINT_SCALE_MM, OBSERVATION_COND_DIM, keypoint_condition, solve_root_translation
from handviz.limits import HYPOTHESES_DEFAULT, HYPOTHESES_MAX, HYPOTHESES_MIN, check_in_range
from handviz.paths import weights_dir as resolve_weights_dir
from handviz.placement import adult_size_factor, distance_interval
from handviz.posterior import PosteriorConfig, posterior_hypotheses
from handviz.types import Detection, HandEstimate

log = logging.getLogger(__name__)

#: Reach of each joint's correction over the template mesh, in mm. 10 mm keeps R W well
#: conditioned (condition number 2.4 on the shipped hand; 40 at 20 mm, 600 at 30 mm).
MESH_PULL_SIGMA_MM = 10.0


def mesh_pull_matrix(template_mm: np.ndarray, regressor: np.ndarray) -> torch.Tensor:
    """(V, 21) matrix P such that verts + P (target - R verts) has exactly the target joints.

    template_mm: (V, 3) the open hand's rest mesh; regressor R: (21, V). Each vertex follows the
    joints near it on the template (a Gaussian of the distance, normalised over the joints, like
    skinning weights W); P = W (R W)^-1 makes the regressed joints meet the target in one linear
    step. Made once per cascade; a pose moves vertices with their joints, so the rest-pose weights
    serve every pose.
    """
    verts = torch.from_numpy(np.asarray(template_mm, np.float64))
    R = torch.from_numpy(np.asarray(regressor, np.float64))
    w = torch.softmax(-torch.cdist(verts, R @ verts) ** 2 / (2 * MESH_PULL_SIGMA_MM**2), dim=-1)
    return (w @ torch.linalg.inv(R @ w)).float()


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class _Batch:
    """Per-hand model inputs, already mirrored to right hands."""

    cond: torch.Tensor  # (B, COND_DIM)
    crops: torch.Tensor | None  # (B, 3, S, S) float in [0, 1]
    kp2d: np.ndarray  # (B, 21, 2) px (mirrored for left hands)
    world: np.ndarray  # (B, 21, 3) mm MediaPipe world landmarks (mirrored for left hands)
    kp_z: np.ndarray  # (B, 21) MediaPipe image-landmark z, px (NaN when unknown)
    mirrored: np.ndarray  # (B,) bool
    tta_kp: list[np.ndarray | None]  # per hand (M, 21, 2) px: MediaPipe on changed copies (mirrored)
    tta_found: list[float | None]  # per hand: the share of the changed copies where MediaPipe found it


class Cascade:
    """Stage 1 (joint diffusion) + stage 2 (mesh latent diffusion) with one-step DDIM by default."""

    def __init__(self, crop_encoder, joint_denoiser, mesh_ae, latent_denoiser, faces: np.ndarray,
                 device: torch.device, config: dict | None = None, template_mm: np.ndarray | None = None) -> None:
        self.crop_encoder = crop_encoder
        self.joint_denoiser = joint_denoiser
        self.mesh_ae = mesh_ae
        self.latent_denoiser = latent_denoiser
        self.faces = faces
        self._device = device
        self.config = config or {}
        #: Whether image features are used when predict() is not told (the shipped default).
        #: Whether the crop encoder ever saw a crop: a stage 1 trained on keypoint-only rows
        #: (the shipped one since issue 10) has an untrained encoder, so crops are never used.
        self.has_image_features = int(self.config.get("stage1", {}).get("with_crops", 1)) > 0
        self.use_image_default = bool(self.config.get("use_image_default", True)) and self.has_image_features
        #: Whether stage 1 sees MediaPipe's world landmarks and z. On real photos it is better
        #: without them (issue 10: the net learned render-only corrections); they are fused after
        #: sampling instead (see handviz.posterior).
        self.condition_on_mediapipe_3d = bool(self.config.get("condition_on_mediapipe_3d", False))
        #: A stage 1 trained with simulated MediaPipe 3D (handviz.train.observations) takes its
        #: expected error as an input: how far to trust MediaPipe's world landmarks and z.
        self.takes_observation_error = getattr(joint_denoiser, "cond_dim", None) == OBSERVATION_COND_DIM
        self.observation_error_mm = float(self.config.get("observation_error_mm", 15.0))
        self.posterior = PosteriorConfig.from_dict(self.config.get("posterior"))
        #: Pulls the stage-2 mesh onto the fused joints (None: no template).
        self._pull: torch.Tensor | None = None
        if template_mm is not None:
            regressor = mesh_ae.joint_regressor.detach().cpu().numpy()
            self._pull = mesh_pull_matrix(template_mm, regressor).to(device)
        #: The pull's two products as (3, .) x (., 21) and (3, 21) x (21, V): a (V, 3) operand,
        #: three columns wide, is 4x slower on CPU.
        self._pull_t = None if self._pull is None else self._pull.T.contiguous()
        self._regressor_t = mesh_ae.joint_regressor.T.contiguous()
        #: The same matrix for numpy code that moves the joints after predict (handviz.temporal).
        self.mesh_pull: np.ndarray | None = None if self._pull is None else self._pull.cpu().numpy()
        self._rng = np.random.default_rng()
        #: The nets and their inference twins (see _inference_nets).
        self._frozen: tuple = ()

    @classmethod
    def from_weights(cls, weights_dir: str | os.PathLike | None = None, device: str | None = None,
                     cpu_threads: int | None = 1) -> Cascade:
        """Load stage1/mesh_ae/mesh_ldm safetensors from weights_dir (see handviz.paths.weights_dir).

        On CPU the cascade's small matrices run best on one thread (measured: N=32 in ~4 ms on
        one thread, with 10x worse p90 on two while MediaPipe shares the cores), so by default
        torch is limited to one; pass cpu_threads=None to keep torch's own setting.
        """
        from handviz.hand.asset import load_hand_asset

        wdir = resolve_weights_dir(weights_dir)
        dev = pick_device(device)
        if dev.type == "cpu" and cpu_threads:
            torch.set_num_threads(cpu_threads)
        enc, den, cfg1 = load_stage1(wdir, dev)
        ae, ldm, cfg2 = load_mesh_models(wdir, dev)
        check_cascade_compatible(enc, ldm, wdir)
        cfg = {"stage1": cfg1, **cfg2}
        asset = load_hand_asset()
        default_path = Path(wdir) / "cascade.json"
        if default_path.exists():
            import json

            from handviz.weights_check import WeightsError

            try:
                cfg.update(json.loads(default_path.read_text()))
                return cls(enc, den, ae, ldm, asset.faces, dev, cfg, asset.vertices)
            except (json.JSONDecodeError, ValueError, TypeError) as exc:
                raise WeightsError(f"{default_path}: not a valid cascade settings file ({exc}); restore it "
                                   "from the release or delete it for the defaults") from exc
        return cls(enc, den, ae, ldm, asset.faces, dev, cfg, asset.vertices)

    @property
    def device(self) -> str:
        return self._device.type

    def _inference_nets(self) -> tuple[FrozenJointDenoiser, FrozenLatentDenoiser, FrozenMeshDecoder]:
        """The nets' inference twins (handviz.diffusion.frozen: the same ops without nn.Module's
        per-layer cost), made once and remade if a net was swapped."""
        nets = (self.joint_denoiser, self.latent_denoiser, self.mesh_ae)
        if len(self._frozen) != 6 or any(a is not b for a, b in zip(nets, self._frozen)):
            twins = FrozenJointDenoiser(nets[0]), FrozenLatentDenoiser(nets[1]), FrozenMeshDecoder(nets[2])
            self._frozen = (*nets, *twins)
        return self._frozen[3:]

    def _inputs(self, detections: list[Detection], K: np.ndarray, use_image: bool) -> _Batch:
        cx = float(K[0, 2])
        kps, zs, worlds, crops, mirrored, tta_kps = [], [], [], [], [], []
        for d in detections:
            left = d.handedness == "Left"
            kp = np.asarray(d.keypoints_2d, np.float32).copy()
            world = np.asarray(d.world_3d, np.float32).copy()
            tta_kp = None if d.tta_keypoints_2d is None else np.array(d.tta_keypoints_2d, np.float32)
            crop = d.crop
            if left:  # mirror about the principal point: exactly x -> -x in the camera frame
                kp[:, 0] = 2 * cx - kp[:, 0]
                world[:, 0] = -world[:, 0]
                crop = None if crop is None else crop[:, ::-1]
                if tta_kp is not None:
                    tta_kp[..., 0] = 2 * cx - tta_kp[..., 0]
            tta_kps.append(tta_kp)
            kps.append(kp)
            zs.append(d.keypoints_z if d.keypoints_z is not None else np.full(21, np.nan, np.float32))
            worlds.append(world)
            crops.append(crop)
            mirrored.append(left)
        kp2d, world, kp_z = np.stack(kps), np.stack(worlds), np.stack(zs).astype(np.float32)
        Kb = np.repeat(np.asarray(K, np.float32)[None], len(kps), axis=0)
        if self.takes_observation_error:
            error = np.full(len(kps), self.observation_error_mm, np.float32)
            cond = keypoint_condition(kp2d, Kb, kp_z, world, error)
        elif self.condition_on_mediapipe_3d:
            cond = keypoint_condition(kp2d, Kb, kp_z, world)
        else:
            cond = keypoint_condition(kp2d, Kb)
        crop_t = None
        if use_image and all(c is not None for c in crops):
            arr = np.ascontiguousarray(np.stack(crops))
            crop_t = torch.from_numpy(arr).to(self._device).permute(0, 3, 1, 2).float() / 255.0
        return _Batch(torch.from_numpy(cond).to(self._device), crop_t, kp2d, world, kp_z, np.array(mirrored),
                      tta_kps, [d.tta_found_share for d in detections])

    def _posterior(self, joints: torch.Tensor, batch: _Batch, K: np.ndarray, n: int,
                   seed: int | None, signals: list[dict] | None = None, bone_prior: bool = True) -> torch.Tensor:
        """Stage-1 samples (B, N, 63) -> hypotheses on the keypoint rays, fused with MediaPipe's 3D
        (handviz.posterior), at the estimate's size and distance."""
        rng = np.random.default_rng(seed) if seed is not None else self._rng
        hyps = joints.reshape(joints.shape[0], n, 21, 3).float().cpu().numpy() * JOINT_SCALE_MM
        cfg = self.posterior if bone_prior else dataclasses.replace(self.posterior, bone_prior_share=0.0)
        out = [posterior_hypotheses(hyps[i], batch.kp2d[i], K, batch.world[i], cfg, batch.kp_z[i],
                                    batch.tta_kp[i], rng,
                                    signals=None if signals is None else signals[i],
                                    tta_found_share=batch.tta_found[i])
               for i in range(len(hyps))]
        out = (np.stack(out) / JOINT_SCALE_MM).reshape(joints.shape).astype(np.float32)  # torch's .to(), cheaper
        return torch.from_numpy(out).to(joints)

    @torch.inference_mode()
    def predict(self, detections: list[Detection], K: np.ndarray, n_hypotheses: int = HYPOTHESES_DEFAULT,
                ddim_steps: int = 1, use_image: bool | None = None,
                seed: int | None = None, doubt_signals: list[dict] | None = None,
                bone_prior: bool = True) -> list[HandEstimate]:
        """Estimate every detected hand. K: (3, 3) intrinsics of the image the detections came from.
        doubt_signals: a list that, when given, gets one dict per hand with the doubt's inputs
        (handviz.posterior.posterior_hypotheses' `signals`). bone_prior: draw each hand's bones
        toward an adult's proportions (`PosteriorConfig.bone_prior_share`), a single image's only
        word on them; False where a temporal model learns the person's skeleton over the frames
        (handviz.temporal), which does that job better (dev set's videos: per-frame Spearman of the
        radius and the error 0.43 with both, 0.48 with the skeleton alone, PA-MPJPE 9.81 / 9.85 mm)."""
        if not detections:
            return []
        check_in_range("n_hypotheses", n_hypotheses, HYPOTHESES_MIN, HYPOTHESES_MAX)
        use_image = (self.use_image_default if use_image is None else use_image) and self.has_image_features
        batch = self._inputs(detections, K, use_image)
        gen = None
        if seed is not None:
            gen = torch.Generator(device=self._device).manual_seed(seed)
        stage1, stage2, decoder = self._inference_nets()
        feat = self.crop_encoder(batch.crops) if batch.crops is not None else None
        joints = sample_joints(stage1, batch.cond, feat, n_hypotheses, ddim_steps, gen)
        if doubt_signals is not None:
            doubt_signals[:] = [{} for _ in detections]
        joints = self._posterior(joints, batch, np.asarray(K, np.float64), n_hypotheses, seed, doubt_signals,
                                 bone_prior)
        mean = joints.mean(dim=1, keepdim=True)  # (B, 1, 63): the aggregate hand
        # Stage 2's per-hand part without an image feature is kept per timestep with its twin (see
        # mean_mesh_latent): the cascade never changes its weights. The mean's mean is itself.
        latents = mean_mesh_latent(stage2, mean, feat, ddim_steps, stage2.null_image_modulations)
        verts = decoder.decode_mean(latents)  # (B, V, 3): the mesh of the aggregate hand
        if self._pull is not None:  # the mesh must sit on the keypoints too, not 1-2 mm beside them
            # regress_joints and the pull, each as (B, 3, .) x (., .): see _pull_t
            regressed = torch.matmul(verts.transpose(1, 2), self._regressor_t.to(verts.dtype))
            residual = mean.reshape(-1, 21, 3).transpose(1, 2) - regressed
            verts = verts + torch.matmul(residual, self._pull_t.to(verts.dtype)).transpose(1, 2)
        hyps = joints.reshape(joints.shape[0], n_hypotheses, 21, 3).float().cpu().numpy() * JOINT_SCALE_MM
        verts = verts.float().cpu().numpy() * JOINT_SCALE_MM
        return [self._finish(d, batch.kp2d[i], batch.mirrored[i], hyps[i], verts[i], K)
                for i, d in enumerate(detections)]

    @staticmethod
    def _finish(det: Detection, kp2d: np.ndarray, mirrored: bool, hyps: np.ndarray, verts: np.ndarray,
                K: np.ndarray) -> HandEstimate:
        """Aggregate, place in the camera (root translation from 2D + K), mirror back if left."""
        mean = hyps.sum(axis=0) / len(hyps)  # np.mean's value, without its wrapper's cost
        t = solve_root_translation(mean, kp2d, np.asarray(K, np.float32))
        joints, hyps_cam, verts_cam = mean + t, hyps + t, verts + t
        # One image fixes the hand's shape and direction, not its size: place it at an adult's,
        # scaled about the camera. The hypotheses keep their depth deviations (the expected error
        # is in millimetres of a real hand), so they stay on their rays.
        size = adult_size_factor(joints)
        hyps_cam = joints * size + (hyps_cam - joints)
        joints, verts_cam = joints * size, verts_cam * size
        if mirrored:  # x -> -x, in place: these arrays are new (a product with (-1, 1, 1) costs 3x)
            for points in (joints, hyps_cam, verts_cam):
                points[..., 0] *= -1.0
        return HandEstimate.from_hypotheses(
            joints, hyps_cam, handedness=det.handedness, score=det.score,
            keypoints_2d=np.asarray(det.keypoints_2d, np.float32), vertices=verts_cam.astype(np.float32),
            mediapipe_world_3d=np.asarray(det.world_3d, np.float32), distance_mm=distance_interval(joints),
            track=det.track,
        )
