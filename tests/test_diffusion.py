"""Schedule math, net shapes, batched sampling, and why the energy score is there."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from handviz.diffusion.nets import CropEncoder, JointDenoiser, LatentDenoiser, MeshAutoencoder, crops_to_tensor
from handviz.diffusion.sampling import mean_mesh_latent, sample_joints, sample_mesh_latents
from handviz.diffusion.schedule import DDIMSchedule
from handviz.features import COND_DIM
from handviz.train.losses import energy_score


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny nets run fastest on one thread, and the test machine's cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_joint_denoiser(**kw) -> JointDenoiser:
    return JointDenoiser(img_dim=16, hidden=32, blocks=1, **kw)


@pytest.mark.parametrize("beta_schedule", ["cosine", "scaled_linear"])
def test_add_noise_ends(beta_schedule: str) -> None:
    s = DDIMSchedule(1000, beta_schedule)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(8, 63, generator=g), torch.randn(8, 63, generator=g)
    start = s.add_noise(x0, noise, torch.zeros(8, dtype=torch.long))
    a = s.alphas_cumprod
    # ~x0 at t=0: the change is bounded by the schedule's first step, a few percent of the noise
    bound = (1 - a[0].sqrt()) * x0.abs().max() + (1 - a[0]).sqrt() * noise.abs().max()
    assert (start - x0).abs().max() <= bound + 1e-6 and bound < 0.15
    assert torch.all(a[1:] < a[:-1]) and 0 < a[-1] < a[0] < 1
    if beta_schedule == "cosine":  # the one-step input really is pure noise
        end = s.add_noise(x0, noise, torch.full((8,), 999))
        assert torch.allclose(end, noise, atol=1e-3)


def test_timesteps_trailing_spacing() -> None:
    s = DDIMSchedule()
    assert s.timesteps == [999]
    s.set_timesteps(4)
    assert s.timesteps == [999, 749, 499, 249]
    assert s.inference_timesteps(2) == [999, 499]
    with pytest.raises(ValueError, match="num_inference_steps"):
        s.set_timesteps(0)
    with pytest.raises(ValueError, match="beta_schedule"):
        DDIMSchedule(beta_schedule="linear-ish")


def test_step_math() -> None:
    s = DDIMSchedule()
    x0, eps = torch.randn(4, 63), torch.randn(4, 63)
    x_t = s.add_noise(x0, eps, torch.full((4,), 999))
    # one step from T-1 lands exactly on the x0 prediction
    assert torch.equal(s.step(x_t, x0, 999, -1), x0)
    # with a perfect x0 prediction, DDIM (eta=0) moves along the same noise: x_t -> x_{t_prev}
    x_t = s.add_noise(x0, eps, torch.full((4,), 749))
    expected = s.add_noise(x0, eps, torch.full((4,), 499))
    assert torch.allclose(s.step(x_t, x0, 749, 499), expected, atol=1e-5)


def test_net_shapes_and_image_dropout() -> None:
    enc = CropEncoder(width=8, feat_dim=16)
    crops = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    images = crops_to_tensor(crops.numpy())
    assert images.shape == (3, 3, 64, 64) and 0 <= images.min() and images.max() <= 1
    mirrored = crops_to_tensor(crops.numpy()[:, :, ::-1])  # a left hand's crop, flipped in
    assert torch.equal(mirrored, images.flip(-1))
    feat = enc(images)
    assert feat.shape == (3, 16)
    den = tiny_joint_denoiser()
    for p in den.parameters():  # leave the zero init so the output depends on its inputs
        nn.init.normal_(p, std=0.2)
    x, t, cond = torch.randn(3, 5, 63), torch.full((3,), 10), torch.randn(3, COND_DIM)
    out = den(x, t, cond, feat)
    assert out.shape == (3, 5, 63)
    null = den(x, t, cond, None)
    keep = torch.tensor([True, False, True])
    mixed = den(x, t, cond, feat, keep)
    assert torch.allclose(mixed[keep], out[keep]) and torch.allclose(mixed[~keep], null[~keep])
    assert not torch.allclose(out[1], null[1])
    with pytest.raises(ValueError, match="RGB"):
        crops_to_tensor(torch.zeros(2, 64, 64))


def test_mesh_autoencoder_starts_as_pca() -> None:
    torch.manual_seed(0)
    V, d = 20, 6
    basis = torch.randn(d, V * 3)
    verts = (torch.randn(200, d) @ basis).reshape(200, V, 3) + torch.randn(V, 3)
    ae = MeshAutoencoder(V, latent_dim=d, pca_dim=8, hidden=16)
    explained = ae.init_pca(verts)
    assert explained[:d].sum() > 0.999
    z = ae.encode(verts)
    assert z.shape == (200, d)
    assert torch.allclose(ae.decode(z), verts, atol=1e-3)  # exact: data are rank d
    assert ae.decode(z.view(20, 10, d)).shape == (20, 10, V, 3)
    ae.joint_regressor.copy_(torch.full((21, V), 1.0 / V))
    j = ae.regress_joints(verts[:4])
    assert torch.allclose(j[:, 0], verts[:4].mean(1), atol=1e-5)
    with pytest.raises(ValueError, match="pca_dim"):
        MeshAutoencoder(V, latent_dim=8, pca_dim=4)


def test_sampling_is_one_batched_forward_per_step() -> None:
    den = tiny_joint_denoiser()
    calls = []
    den.register_forward_hook(lambda m, inp, out: calls.append(tuple(inp[0].shape)))
    cond = torch.randn(2, COND_DIM)
    out = sample_joints(den, cond, None, n_hypotheses=32)
    assert out.shape == (2, 32, 63) and calls == [(2, 32, 63)]
    calls.clear()
    sample_joints(den, cond, torch.randn(2, 16), n_hypotheses=8, steps=4)
    assert calls == [(2, 8, 63)] * 4
    a = sample_joints(den, cond, None, 4, generator=torch.Generator().manual_seed(3))
    b = sample_joints(den, cond, None, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    ldm = LatentDenoiser(latent_dim=8, img_dim=16, hidden=32, blocks=1)
    z = sample_mesh_latents(ldm, out, None, steps=2)
    assert z.shape == (2, 32, 8)
    # the aggregate mesh: one forward per step on the mean joints, from zero noise, repeatable
    calls = []
    ldm.register_forward_hook(lambda m, inp, out: calls.append(tuple(inp[2].shape)))
    m = mean_mesh_latent(ldm, out, None, steps=2)
    assert m.shape == (2, 1, 8) and calls == [(2, 1, 63)] * 2
    assert torch.equal(m, mean_mesh_latent(ldm, out, None, steps=2))
    shuffled = out[:, torch.randperm(32)]  # only the mean of the hypotheses matters
    assert torch.allclose(m, mean_mesh_latent(ldm, shuffled, None, steps=2), atol=1e-6)


def test_the_aggregate_mesh_keeps_its_per_hand_part_once_per_timestep_without_an_image() -> None:
    """Without an image feature, stage 2's context is the timestep alone: made once per timestep
    into the caller's dict, the latents are the same as when it is made on every call."""
    ldm = LatentDenoiser(latent_dim=8, img_dim=16, hidden=32, blocks=2)
    with torch.no_grad():  # FiLM starts at zero: give it a say, so a wrong context would show
        for p in ldm.parameters():
            p.add_(0.3 * torch.randn_like(p))
    joints = torch.randn(3, 16, 63)
    kept: dict = {}
    made = []
    ldm.mlp.ctx.register_forward_hook(lambda m, inp, out: made.append(out.shape))
    plain = mean_mesh_latent(ldm, joints, None, steps=3)
    assert len(made) == 3
    made.clear()
    first = mean_mesh_latent(ldm, joints, None, steps=3, null_image_modulations=kept)
    again = mean_mesh_latent(ldm, joints[:1], None, steps=3, null_image_modulations=kept)
    assert len(made) == 3 and sorted(kept) == sorted(int(t) for t in ldm.schedule.inference_timesteps(3))
    assert torch.allclose(first, plain, atol=1e-6) and torch.allclose(again, plain[:1], atol=1e-6)
    feat = torch.randn(3, 16)  # with an image feature nothing is kept: it differs per hand
    with_image = mean_mesh_latent(ldm, joints, feat, steps=3, null_image_modulations=kept)
    assert torch.allclose(with_image, mean_mesh_latent(ldm, joints, feat, steps=3), atol=1e-6)
    assert not torch.allclose(with_image, plain, atol=1e-3)


def _fit_one_step_sampler(use_energy_score: bool, steps: int = 300) -> tuple[float, float]:
    """A 1-D toy: x | c ~ c + N(0, 0.5^2). Train f(noise, c) with x0-MSE from pure noise, or with
    the energy score; return (sample std, |sample mean - c|) at c = 1."""
    torch.manual_seed(0)
    f = nn.Sequential(nn.Linear(2, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 1))
    opt = torch.optim.Adam(f.parameters(), lr=3e-3)
    for _ in range(steps):
        c = torch.randint(-1, 2, (256, 1)).float()
        x = c + 0.5 * torch.randn(256, 1)
        z = torch.randn(256, 2, 1)
        pred = f(torch.cat([z, c[:, None].expand(-1, 2, -1)], dim=-1))  # (256, 2, 1)
        loss = energy_score(pred, x) if use_energy_score else (pred - x[:, None]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        z = torch.randn(4000, 1)
        s = f(torch.cat([z, torch.ones(4000, 1)], dim=-1))
    return float(s.std()), float((s.mean() - 1).abs())


def test_energy_score_gives_honest_spread_where_mse_collapses() -> None:
    std_mse, bias_mse = _fit_one_step_sampler(use_energy_score=False)
    std_es, bias_es = _fit_one_step_sampler(use_energy_score=True)
    assert std_mse < 0.05  # every hypothesis the same: the conditional mean
    assert 0.35 < std_es < 0.65  # the data's own spread, 0.5
    assert bias_mse < 0.1 and bias_es < 0.1


def test_energy_score_values() -> None:
    x = torch.zeros(1, 3)
    same = torch.zeros(1, 2, 3)
    assert float(energy_score(same, x)) == pytest.approx(0.0, abs=1e-5)
    apart = torch.tensor([[[1.0, 0, 0], [-1.0, 0, 0]]])
    assert float(energy_score(apart, x)) == pytest.approx(1.0 - 0.5 * 2.0, abs=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        energy_score(torch.zeros(1, 1, 3), x)


def test_frozen_twins_give_the_modules_outputs_bit_for_bit() -> None:
    """The cascade's inference twins (handviz.diffusion.frozen) run the modules' ops without
    nn.Module's per-layer cost: the same numbers, bit for bit, with or without an image feature,
    over several DDIM steps, with stage 2's per-hand part kept or made per call."""
    from handviz.diffusion.frozen import (
        FrozenJointDenoiser,
        FrozenLatentDenoiser,
        FrozenMeshDecoder,
    )

    torch.manual_seed(0)
    den, ldm = tiny_joint_denoiser(), LatentDenoiser(latent_dim=8, img_dim=16, hidden=32, blocks=2)
    ae = MeshAutoencoder(num_verts=50, latent_dim=8, pca_dim=16, hidden=32)
    with torch.no_grad():  # FiLM and the residual branches start at zero: give them a say
        for p in [*den.parameters(), *ldm.parameters(), *ae.parameters()]:
            p.add_(0.3 * torch.randn_like(p))
        ae.basis.normal_()
    cond, feat = torch.randn(2, COND_DIM), torch.randn(2, 16)
    for f in (None, feat):
        for steps in (1, 3):
            a = sample_joints(den, cond, f, 8, steps, torch.Generator().manual_seed(1))
            b = sample_joints(FrozenJointDenoiser(den), cond, f, 8, steps, torch.Generator().manual_seed(1))
            assert torch.equal(a, b)
            joints = torch.randn(2, 8, 63)
            frozen_ldm = FrozenLatentDenoiser(ldm)
            assert torch.equal(mean_mesh_latent(ldm, joints, f, steps), mean_mesh_latent(frozen_ldm, joints, f, steps))
            kept, kept_frozen = {}, {}
            for _ in range(2):  # the second time from the kept modulations
                assert torch.equal(mean_mesh_latent(ldm, joints, f, steps, kept),
                                   mean_mesh_latent(frozen_ldm, joints, f, steps, kept_frozen))
    z = torch.randn(2, 5, 8)
    assert torch.equal(ae.decode_mean(z), FrozenMeshDecoder(ae).decode_mean(z))
