"""Inference-only twins of the cascade's networks, with every tensor looked up once.

On CPU the cascade's layers are small: a 256-wide layer for one hand takes a few microseconds,
and nn.Module's machinery around it (parameter lookups through ``__getattr__``, ``__call__``'s
hook checks) takes ~5 us more, which over the ~25 layers of a predict was ~0.15 ms of ~3.4. The
twins run the same torch ops in the same order on the same tensors, so their outputs are
bit-identical to the modules' (tests/test_diffusion.py). They hold references to the modules'
tensors (but for stage 1's fused FiLM layers, a copy): replaced modules do not show through, and
the cascade, which never changes its weights, remakes them when a module is swapped.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from handviz.diffusion.nets import (
    JointDenoiser,
    LatentDenoiser,
    MeshAutoencoder,
    Modulation,
    _ConditionedMLP,
    image_context,
    timestep_embedding,
)

#: A linear layer's (weight, bias).
Linear = tuple[torch.Tensor, torch.Tensor | None]


def _linear(layer: nn.Linear) -> Linear:
    return layer.weight, layer.bias


class FrozenMLP:
    """_ConditionedMLP's modulation and forward. Its modulation holds each block's (1 + scale,
    shift), not (scale, shift): the gain is made once, where the cascade keeps a modulation.

    fuse_films: make the blocks' FiLM layers one layer (a copy of their weights, the same numbers
    bit for bit: each output is the same row's product) for a modulation made on every call.
    """

    def __init__(self, mlp: _ConditionedMLP, fuse_films: bool = False) -> None:
        self.inp = _linear(mlp.inp)
        self.ctx = _linear(mlp.ctx[0]), _linear(mlp.ctx[2])  # Linear, SiLU, Linear
        self.films = [_linear(block.film) for block in mlp.blocks]
        if fuse_films:
            self.films = [(torch.cat([w for w, _ in self.films]), torch.cat([b for _, b in self.films]))]
        self.blocks = [(_linear(block.fc1), _linear(block.fc2), block.norm.normalized_shape, block.norm.eps)
                       for block in mlp.blocks]
        norm = mlp.out_norm
        self.out_norm = norm.normalized_shape, norm.weight, norm.bias, norm.eps
        self.out = _linear(mlp.out)

    def modulation(self, ctx: torch.Tensor) -> Modulation:
        c = F.linear(F.silu(F.linear(ctx, *self.ctx[0])), *self.ctx[1])
        s = F.silu(c)  # the module makes it once per block: the same values
        hidden = c.shape[-1]  # each block's scale, then its shift
        parts = [p for film in self.films for p in F.linear(s, *film).unsqueeze(1).split(hidden, dim=-1)]
        return c, [(1 + scale, shift) for scale, shift in zip(parts[::2], parts[1::2])]

    def __call__(self, x: torch.Tensor, modulation: Modulation) -> torch.Tensor:
        offset, films = modulation
        h = F.linear(x, *self.inp) + offset.unsqueeze(1)
        for (fc1, fc2, shape, eps), (gain, shift) in zip(self.blocks, films):
            y = F.layer_norm(h, shape, None, None, eps) * gain + shift
            h = h + F.linear(F.silu(F.linear(y, *fc1)), *fc2)
        return F.linear(F.layer_norm(h, *self.out_norm), *self.out)


class _FrozenDenoiser:
    """What both denoisers share: the schedule, the t embedding and the learned 'no image' feature."""

    def __init__(self, den: JointDenoiser | LatentDenoiser, fuse_films: bool = False) -> None:
        self.schedule, self.temb_dim = den.schedule, den.temb_dim
        self.null_image = den.null_image
        self.mlp = FrozenMLP(den.mlp, fuse_films)
        self._embeddings: dict[tuple, torch.Tensor] = {}

    def image_context(self, img_feat: torch.Tensor | None, img_keep: torch.Tensor | None,
                      batch: int) -> torch.Tensor:
        """_Denoiser.image_context."""
        return image_context(self.null_image, img_feat, img_keep, batch)

    def timestep_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """nets.timestep_embedding(t, temb_dim), kept per timesteps (a sampler uses a few)."""
        key = (t.device, *t.tolist())
        emb = self._embeddings.get(key)
        if emb is None:
            if len(self._embeddings) > 64:
                self._embeddings.clear()
            emb = self._embeddings[key] = timestep_embedding(t, self.temb_dim)
        return emb


class FrozenJointDenoiser(_FrozenDenoiser):
    """JointDenoiser's forward and denormalize (what sampling.sample_joints calls)."""

    def __init__(self, den: JointDenoiser) -> None:
        super().__init__(den, fuse_films=True)  # its modulation is made on every call
        self.x_mean, self.x_std = den.x_mean, den.x_std

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, img_feat: torch.Tensor | None = None,
                 img_keep: torch.Tensor | None = None) -> torch.Tensor:
        ctx = torch.cat([cond, self.image_context(img_feat, img_keep, cond.shape[0]), self.timestep_embedding(t)],
                        dim=-1)
        return self.mlp(x_t, self.mlp.modulation(ctx))

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.x_std + self.x_mean


class FrozenLatentDenoiser(_FrozenDenoiser):
    """LatentDenoiser's modulation and forward (what sampling.mean_mesh_latent calls).

    null_image_modulations: the dict for mean_mesh_latent's argument of that name, kept with the
    twin (its modulations hold gains, which the module's forward does not take)."""

    def __init__(self, den: LatentDenoiser) -> None:
        super().__init__(den)
        self.latent_dim = den.latent_dim
        self.joint_mean, self.joint_std = den.joint_mean, den.joint_std
        self.null_image_modulations: dict[int, Modulation] = {}

    def modulation(self, t: torch.Tensor, img_feat: torch.Tensor | None = None,
                   img_keep: torch.Tensor | None = None) -> Modulation:
        ctx = torch.cat([self.image_context(img_feat, img_keep, t.shape[0]), self.timestep_embedding(t)], dim=-1)
        return self.mlp.modulation(ctx)

    def __call__(self, z_t: torch.Tensor, t: torch.Tensor, joints: torch.Tensor, img_feat: torch.Tensor | None = None,
                 img_keep: torch.Tensor | None = None, modulation: Modulation | None = None) -> torch.Tensor:
        j = (joints - self.joint_mean) / self.joint_std
        if modulation is None:
            modulation = self.modulation(t, img_feat, img_keep)
        return self.mlp(torch.cat([z_t, j], dim=-1), modulation)


class FrozenMeshDecoder:
    """MeshAutoencoder.decode_mean."""

    def __init__(self, ae: MeshAutoencoder) -> None:
        layers = list(ae.dec_res)
        if not all(isinstance(m, nn.Linear if i % 2 == 0 else nn.SiLU) for i, m in enumerate(layers)):
            raise TypeError("the decoder's residual MLP must alternate Linear and SiLU layers")
        self.res = [_linear(m) for m in layers[::2]]
        self.lin = _linear(ae.dec_lin)
        self.latent_mean, self.latent_std = ae.latent_mean, ae.latent_std
        self.pca_scale, self.basis, self.pca_mean = ae.pca_scale, ae.basis, ae.pca_mean
        self.num_verts = ae.num_verts

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """(B, N, d) normalised latents -> (B, V, 3): the mean of their meshes."""
        raw = z * self.latent_std + self.latent_mean
        res = raw
        for i, layer in enumerate(self.res):
            res = F.linear(res if i == 0 else F.silu(res), *layer)
        c = (F.linear(raw, *self.lin) + res) * self.pca_scale
        c = c[:, 0] if c.shape[1] == 1 else c.mean(dim=1)  # one latent: its own mean
        return (c @ self.basis + self.pca_mean).reshape(z.shape[0], self.num_verts, 3)
