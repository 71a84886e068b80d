"""Diffusion models of the cascade: schedule, nets, sampling, weights files (torch only, no Qt)."""

from handviz.diffusion.nets import CropEncoder, JointDenoiser, LatentDenoiser, MeshAutoencoder, crops_to_tensor
from handviz.diffusion.sampling import sample_joints, sample_mesh_latents
from handviz.diffusion.schedule import DDIMSchedule
from handviz.diffusion.weights import WeightsError, load_mesh_models, load_stage1

__all__ = [
    "CropEncoder", "DDIMSchedule", "JointDenoiser", "LatentDenoiser", "MeshAutoencoder", "WeightsError",
    "crops_to_tensor", "load_mesh_models", "load_stage1", "sample_joints", "sample_mesh_latents",
]
