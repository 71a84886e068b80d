"""The cascade's networks: crop encoder, joint denoiser (stage 1), mesh autoencoder and latent
denoiser (stage 2).

All are small MLP/CNNs sized for a laptop CPU. The denoisers take the hypothesis axis N
explicitly, x_t: (B, N, D), while everything shared by one hand (keypoint condition, image
feature, timestep) is (B, ...) and is embedded once per hand, then broadcast over N: N hypotheses
cost one batched forward, and the per-hand part is paid once.

Units: joints and vertices are root-relative (wrist joint at 0) and divided by
handviz.features.JOINT_SCALE_MM. Each net keeps its normalisation statistics as buffers, so a
weights file is self-contained. Every net has `config()`: the constructor kwargs that rebuild it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from handviz.diffusion.schedule import DDIMSchedule
from handviz.features import COND_DIM, CROP_SIZE

NUM_JOINT_COORDS = 63
IMAGE_FEAT_DIM = 128


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps. t: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def crops_to_tensor(crops: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB (numpy or tensor) -> (B, 3, H, W) float32 in [0, 1] on `device`."""
    if not torch.is_tensor(crops):
        crops = np.ascontiguousarray(crops)  # mirrored views (negative strides) are fine too
    x = torch.as_tensor(crops, device=device)
    if x.dim() != 4 or x.shape[-1] != 3:
        raise ValueError(f"crops must be (B, H, W, 3) RGB, got shape {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


class _ConvGN(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        super().__init__(conv, nn.GroupNorm(math.gcd(8, cout), cout), nn.SiLU())


class CropEncoder(nn.Module):
    """Small CNN: (B, 3, 64, 64) RGB in [0, 1] -> (B, feat_dim) hand-appearance feature.

    GroupNorm instead of BatchNorm: the same numbers in train and eval, at any batch size (the
    live path runs B=1).
    """

    def __init__(self, width: int = 16, feat_dim: int = IMAGE_FEAT_DIM, image_size: int = CROP_SIZE) -> None:
        super().__init__()
        self.width, self.feat_dim, self.image_size = width, feat_dim, image_size
        self.stem = _ConvGN(3, width, 2)
        chans = [width, 2 * width, 4 * width, 8 * width]
        self.down = nn.ModuleList(_ConvGN(a, b, 2) for a, b in zip(chans[:-1], chans[1:]))
        self.refine = nn.ModuleList(_ConvGN(c, c, 1) for c in chans[1:])
        self.head = nn.Linear(chans[-1], feat_dim)

    def config(self) -> dict:
        return {"width": self.width, "feat_dim": self.feat_dim, "image_size": self.image_size}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem((images - 0.5) / 0.25)
        for down, refine in zip(self.down, self.refine):
            x = down(x)
            x = x + refine(x)
        return self.head(x.mean(dim=(2, 3)))


class _FiLMBlock(nn.Module):
    """Pre-norm residual MLP block whose normalisation is modulated by the per-hand context."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.film = nn.Linear(hidden, 2 * hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        for layer in (self.film, self.fc2):  # identity block at init
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def modulation(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, hidden) context -> (scale, shift), each (B, 1, hidden)."""
        scale, shift = self.film(ctx).unsqueeze(1).chunk(2, dim=-1)
        return scale, shift

    def forward(self, h: torch.Tensor, modulation: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        scale, shift = modulation
        y = self.norm(h) * (1 + scale) + shift
        return h + self.fc2(F.silu(self.fc1(y)))


#: What the per-hand context becomes inside a _ConditionedMLP: the input offset (B, hidden) and
#: each block's (scale, shift). It depends on the context only, so a caller whose context does not
#: change (stage 2 without an image feature, at a fixed timestep) can make it once and keep it.
Modulation = tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]


class _ConditionedMLP(nn.Module):
    """Per-hypothesis input (B, N, in_dim) + per-hand context (B, ctx_dim) -> (B, N, out_dim)."""

    def __init__(self, in_dim: int, ctx_dim: int, out_dim: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, hidden)
        self.ctx = nn.Sequential(nn.Linear(ctx_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(_FiLMBlock(hidden) for _ in range(blocks))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, out_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def modulation(self, ctx: torch.Tensor) -> Modulation:
        c = self.ctx(ctx)
        return c, [block.modulation(F.silu(c)) for block in self.blocks]

    def forward(self, x: torch.Tensor, ctx: torch.Tensor | None = None,
                modulation: Modulation | None = None) -> torch.Tensor:
        """ctx (B, ctx_dim), or its `modulation` made before."""
        offset, films = modulation if modulation is not None else self.modulation(ctx)
        h = self.inp(x) + offset.unsqueeze(1)
        for block, film in zip(self.blocks, films):
            h = block(h, film)
        return self.out(self.out_norm(h))


def image_context(null_image: torch.Tensor, img_feat: torch.Tensor | None, img_keep: torch.Tensor | None,
                  batch: int) -> torch.Tensor:
    """(B, img_dim): img_feat where img_keep (all when None), null_image elsewhere (all when
    img_feat is None); shared by the denoisers and their inference twins (diffusion/frozen.py)."""
    null = null_image.expand(batch, -1)
    if img_feat is None:
        return null
    if img_keep is None:
        return img_feat
    return torch.where(img_keep[:, None], img_feat, null)


class _Denoiser(nn.Module):
    """What both denoisers share: the schedule, the t embedding and the learned 'no image' feature."""

    def __init__(self, img_dim: int, temb_dim: int, num_train_timesteps: int, beta_schedule: str) -> None:
        super().__init__()
        self.img_dim, self.temb_dim = img_dim, temb_dim
        self.schedule = DDIMSchedule(num_train_timesteps, beta_schedule)
        self.null_image = nn.Parameter(torch.randn(img_dim) * 0.02)

    def image_context(
        self, img_feat: torch.Tensor | None, img_keep: torch.Tensor | None, batch: int
    ) -> torch.Tensor:
        """(B, img_dim): the image feature where kept, the learned null feature elsewhere.

        img_feat: (B, img_dim) or None (no crop: null for all); img_keep: (B,) bool or None (all kept).
        """
        return image_context(self.null_image, img_feat, img_keep, batch)


class JointDenoiser(_Denoiser):
    """Stage 1: x_t (B, N, 63) normalised joints + t (B,) + keypoint condition (B, 126)
    [+ image feature (B, 128)] -> x0 prediction (B, N, 63), normalised.

    Normalised joints = (root-relative joints / JOINT_SCALE_MM - x_mean) / x_std (buffers set
    from the training data); `denormalize` undoes it.
    """

    def __init__(
        self,
        cond_dim: int = COND_DIM,
        img_dim: int = IMAGE_FEAT_DIM,
        hidden: int = 256,
        blocks: int = 3,
        temb_dim: int = 64,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "cosine",
    ) -> None:
        super().__init__(img_dim, temb_dim, num_train_timesteps, beta_schedule)
        self.cond_dim, self.hidden, self.blocks = cond_dim, hidden, blocks
        self.mlp = _ConditionedMLP(NUM_JOINT_COORDS, cond_dim + img_dim + temb_dim, NUM_JOINT_COORDS, hidden, blocks)
        self.register_buffer("x_mean", torch.zeros(NUM_JOINT_COORDS))
        self.register_buffer("x_std", torch.ones(NUM_JOINT_COORDS))

    def config(self) -> dict:
        return {
            "cond_dim": self.cond_dim, "img_dim": self.img_dim, "hidden": self.hidden, "blocks": self.blocks,
            "temb_dim": self.temb_dim, **self.schedule.config(),
        }

    def normalize(self, joints: torch.Tensor) -> torch.Tensor:
        return (joints - self.x_mean) / self.x_std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.x_std + self.x_mean

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        img_feat: torch.Tensor | None = None,
        img_keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B = cond.shape[0]
        ctx = torch.cat(
            [cond, self.image_context(img_feat, img_keep, B), timestep_embedding(t, self.temb_dim)], dim=-1
        )
        return self.mlp(x_t, ctx)


class LatentDenoiser(_Denoiser):
    """Stage 2: z_t (B, N, d) + t (B,) + one joint hypothesis per row (B, N, 63) [+ image feature
    (B, 128)] -> z0 prediction (B, N, d), in the autoencoder's normalised latent space.

    Joint hypotheses come in root-relative / JOINT_SCALE_MM units; the net normalises them with
    its own buffers (joint_mean, joint_std).
    """

    def __init__(
        self,
        latent_dim: int = 48,
        img_dim: int = IMAGE_FEAT_DIM,
        hidden: int = 256,
        blocks: int = 3,
        temb_dim: int = 64,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "cosine",
    ) -> None:
        super().__init__(img_dim, temb_dim, num_train_timesteps, beta_schedule)
        self.latent_dim, self.hidden, self.blocks = latent_dim, hidden, blocks
        self.mlp = _ConditionedMLP(latent_dim + NUM_JOINT_COORDS, img_dim + temb_dim, latent_dim, hidden, blocks)
        self.register_buffer("joint_mean", torch.zeros(NUM_JOINT_COORDS))
        self.register_buffer("joint_std", torch.ones(NUM_JOINT_COORDS))

    def config(self) -> dict:
        return {
            "latent_dim": self.latent_dim, "img_dim": self.img_dim, "hidden": self.hidden, "blocks": self.blocks,
            "temb_dim": self.temb_dim, **self.schedule.config(),
        }

    def modulation(self, t: torch.Tensor, img_feat: torch.Tensor | None = None,
                   img_keep: torch.Tensor | None = None) -> Modulation:
        """The per-hand part of the forward pass (it does not see the joints or z_t)."""
        ctx = torch.cat([self.image_context(img_feat, img_keep, t.shape[0]), timestep_embedding(t, self.temb_dim)],
                        dim=-1)
        return self.mlp.modulation(ctx)

    def forward(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        joints: torch.Tensor,
        img_feat: torch.Tensor | None = None,
        img_keep: torch.Tensor | None = None,
        modulation: Modulation | None = None,
    ) -> torch.Tensor:
        """modulation: `self.modulation(t, img_feat, img_keep)`, when the caller kept it."""
        j = (joints - self.joint_mean) / self.joint_std
        if modulation is None:
            modulation = self.modulation(t, img_feat, img_keep)
        return self.mlp(torch.cat([z_t, j], dim=-1), modulation=modulation)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    nn.init.zeros_(layers[-1].weight)  # residual branch starts at zero: the AE starts as PCA
    nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


class MeshAutoencoder(nn.Module):
    """Root-relative hand mesh (B, V, 3) <-> normalised latent (B, d).

    A fixed PCA basis (pca_dim components, from init_pca) spans the meshes; the encoder maps the
    whitened PCA coefficients to the d-dim latent and the decoder maps back, each as a linear map
    plus a zero-initialised nonlinear residual MLP, so training starts from the PCA-d
    reconstruction and improves on it (down to the PCA-pca_dim floor). `latent_mean` and
    `latent_std` (set after training) make the latent roughly N(0, I), which is what the latent
    diffusion expects. `joint_regressor` (21, V) maps a mesh to its 21 joints.
    """

    def __init__(self, num_verts: int, latent_dim: int = 48, pca_dim: int = 128, hidden: int = 256) -> None:
        super().__init__()
        if not latent_dim <= pca_dim <= 3 * num_verts:
            raise ValueError(f"need latent_dim ({latent_dim}) <= pca_dim ({pca_dim}) <= 3 x vertices ({3 * num_verts})")
        self.num_verts, self.latent_dim, self.pca_dim, self.hidden = num_verts, latent_dim, pca_dim, hidden
        D = 3 * num_verts
        self.register_buffer("pca_mean", torch.zeros(D))
        self.register_buffer("pca_scale", torch.ones(pca_dim))
        self.register_buffer("basis", torch.zeros(pca_dim, D))
        self.enc_lin = nn.Linear(pca_dim, latent_dim)
        self.enc_res = _mlp([pca_dim, hidden, hidden, latent_dim])
        self.dec_lin = nn.Linear(latent_dim, pca_dim)
        self.dec_res = _mlp([latent_dim, hidden, hidden, pca_dim])
        with torch.no_grad():
            eye = torch.eye(pca_dim, latent_dim)
            self.enc_lin.weight.copy_(eye.T)
            self.dec_lin.weight.copy_(eye)
            self.enc_lin.bias.zero_()
            self.dec_lin.bias.zero_()
        self.register_buffer("latent_mean", torch.zeros(latent_dim))
        self.register_buffer("latent_std", torch.ones(latent_dim))
        self.register_buffer("joint_regressor", torch.zeros(21, num_verts))

    def config(self) -> dict:
        return {"num_verts": self.num_verts, "latent_dim": self.latent_dim, "pca_dim": self.pca_dim,
                "hidden": self.hidden}

    @torch.no_grad()
    def init_pca(self, verts: torch.Tensor) -> torch.Tensor:
        """Set mean, basis and whitening from sample meshes (M, V, 3); returns the explained-variance
        fraction of each component (pca_dim,)."""
        X = verts.reshape(verts.shape[0], -1).float()
        mean = X.mean(0)
        q = min(self.pca_dim + 16, *X.shape)
        U, S, Vh = torch.svd_lowrank(X - mean, q=q, niter=4)
        k = self.pca_dim
        if Vh.shape[1] < k:
            raise ValueError(f"a {k}-component PCA needs at least {k} sample meshes, got {X.shape[0]}")
        self.pca_mean.copy_(mean)
        self.basis.copy_(Vh[:, :k].T)
        self.pca_scale.copy_((S[:k] / math.sqrt(max(X.shape[0] - 1, 1))).clamp_min(1e-6))
        total = (X - mean).pow(2).sum()
        return (S[:k] ** 2 / total).cpu()

    def encode_raw(self, verts: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) -> un-normalised latent (B, d)."""
        c = (verts.reshape(*verts.shape[:-2], -1) - self.pca_mean) @ self.basis.T / self.pca_scale
        return self.enc_lin(c) + self.enc_res(c)

    def _coefficients(self, z: torch.Tensor) -> torch.Tensor:
        """Un-normalised latent (..., d) -> PCA coefficients (..., pca_dim)."""
        return (self.dec_lin(z) + self.dec_res(z)) * self.pca_scale

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Un-normalised latent (..., d) -> (..., V, 3)."""
        c = self._coefficients(z)
        return (c @ self.basis + self.pca_mean).reshape(*z.shape[:-1], self.num_verts, 3)

    def encode(self, verts: torch.Tensor) -> torch.Tensor:
        """(..., V, 3) root-relative mesh / JOINT_SCALE_MM -> (..., d) normalised latent."""
        return (self.encode_raw(verts) - self.latent_mean) / self.latent_std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(..., d) normalised latent -> (..., V, 3) root-relative mesh / JOINT_SCALE_MM."""
        return self.decode_raw(z * self.latent_std + self.latent_mean)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of the decoded meshes over hypotheses: (B, N, d) normalised -> (B, V, 3).

        The decoder ends in a linear PCA basis, so averaging the coefficients first gives exactly
        the mean of the N decoded meshes with one basis product instead of N.
        """
        c = self._coefficients(z * self.latent_std + self.latent_mean).mean(dim=1)
        return (c @ self.basis + self.pca_mean).reshape(z.shape[0], self.num_verts, 3)

    def regress_joints(self, verts: torch.Tensor) -> torch.Tensor:
        """(..., V, 3) -> (..., 21, 3) with the stored joint regressor."""
        return torch.einsum("jv,...vc->...jc", self.joint_regressor, verts)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
