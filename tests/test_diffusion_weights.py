"""Weights files: save -> load gives the same nets; bad files give one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from handviz.diffusion.nets import CropEncoder, JointDenoiser, LatentDenoiser, MeshAutoencoder
from handviz.diffusion.sampling import sample_joints
from handviz.diffusion.weights import (
    MESH_AE, MESH_LDM, STAGE1, WeightsError, check_cascade_compatible, load_mesh_models, load_stage1, save_weights,
)
from handviz.features import COND_DIM
from handviz.logs import InputError


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _randomised(module):
    torch.manual_seed(0)
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.copy_(torch.randn_like(t) * 0.1 + (1.0 if t.dim() == 1 and t.numel() == 63 else 0.0))
    return module.eval()


def _save_all(wdir: Path, hidden: int = 64, latent: int = 8):
    enc = _randomised(CropEncoder(width=8, feat_dim=16))
    den = _randomised(JointDenoiser(img_dim=16, hidden=hidden, blocks=1))
    ae = _randomised(MeshAutoencoder(num_verts=40, latent_dim=latent, pca_dim=16, hidden=32))
    ldm = _randomised(LatentDenoiser(latent_dim=latent, img_dim=16, hidden=32, blocks=1))
    save_weights(wdir, STAGE1, {"crop_encoder": enc, "joint_denoiser": den}, {"val_metrics": {"x": 1.0}})
    save_weights(wdir, MESH_AE, {"mesh_ae": ae}, {})
    save_weights(wdir, MESH_LDM, {"latent_denoiser": ldm}, {})
    return enc, den, ae, ldm


def test_round_trip_gives_the_same_outputs(tmp_path: Path) -> None:
    enc, den, ae, ldm = _save_all(tmp_path)
    enc2, den2, cfg = load_stage1(tmp_path)
    ae2, ldm2, mcfg = load_mesh_models(tmp_path)
    check_cascade_compatible(enc2, ldm2, tmp_path)
    assert cfg["val_metrics"] == {"x": 1.0} and set(mcfg) == {"mesh_ae", "mesh_ldm"}
    assert not any(p.requires_grad for p in den2.parameters()) and not den2.training
    # large matrices are stored as float16: compare against the same rounding of the originals
    for a, b in ((enc, enc2), (den, den2), (ae, ae2), (ldm, ldm2)):
        for (name, t), t2 in zip(a.state_dict().items(), b.state_dict().values()):
            assert t2.dtype == t.dtype, name
            half = t.is_floating_point() and t.numel() >= 4096 and name in dict(a.named_parameters())
            torch.testing.assert_close(t2, t.half().float() if half else t, rtol=0, atol=0)
    cond, img = torch.randn(2, COND_DIM), torch.rand(2, 3, 64, 64)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    with torch.no_grad():
        out1 = sample_joints(den, cond, enc(img), 8, generator=g1)
        out2 = sample_joints(den2, cond, enc2(img), 8, generator=g2)
    torch.testing.assert_close(out1, out2, atol=2e-2, rtol=0)
    # a second save -> load is exact
    save_weights(tmp_path / "again", STAGE1, {"crop_encoder": enc2, "joint_denoiser": den2}, {})
    enc3, den3, _ = load_stage1(tmp_path / "again")
    for t2, t3 in zip(den2.state_dict().values(), den3.state_dict().values()):
        assert torch.equal(t2, t3)


def test_missing_files_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"stage1\.json: not found; train it with `handviz train stage1"):
        load_stage1(tmp_path)
    _save_all(tmp_path)
    (tmp_path / "mesh_ldm.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"mesh_ldm\.safetensors: weights file not found"):
        load_mesh_models(tmp_path)
    assert issubclass(WeightsError, InputError)  # the CLI shows it as one line, exit status 2


def test_corrupt_files_are_named(tmp_path: Path) -> None:
    _save_all(tmp_path)
    st = tmp_path / "stage1.safetensors"
    data = st.read_bytes()
    st.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"stage1\.safetensors"):
        load_stage1(tmp_path)
    st.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match=r"stage1\.safetensors"):
        load_stage1(tmp_path)
    (tmp_path / "mesh_ae.json").write_text("{not json")
    with pytest.raises(WeightsError, match=r"mesh_ae\.json: not readable JSON"):
        load_mesh_models(tmp_path)


def test_nan_weights_are_rejected(tmp_path: Path) -> None:
    _save_all(tmp_path)
    st = tmp_path / "mesh_ldm.safetensors"
    tensors = load_file(str(st))
    key = next(k for k in tensors if k.endswith("weight"))
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, str(st))
    with pytest.raises(WeightsError, match="non-finite"):
        load_mesh_models(tmp_path)


def test_mismatched_config_and_weights(tmp_path: Path) -> None:
    _save_all(tmp_path)
    cfg_path = tmp_path / "stage1.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["models"]["joint_denoiser"]["hidden"] = 48
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match=r"stage1\.safetensors: tensor 'joint_denoiser\.\S+' is \(64"):
        load_stage1(tmp_path)
    cfg["models"]["joint_denoiser"]["no_such_option"] = 1
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="bad config for 'joint_denoiser'"):
        load_stage1(tmp_path)
    cfg["format"] = "something.else"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="not a handviz stage1 config"):
        load_stage1(tmp_path)


def test_ldm_from_another_autoencoder_is_refused(tmp_path: Path) -> None:
    _save_all(tmp_path)
    ldm = LatentDenoiser(latent_dim=12, img_dim=16, hidden=32, blocks=1)
    save_weights(tmp_path, MESH_LDM, {"latent_denoiser": ldm}, {})
    with pytest.raises(WeightsError, match="latent size 12 but mesh_ae has 8"):
        load_mesh_models(tmp_path)
    ldm = LatentDenoiser(latent_dim=8, img_dim=24, hidden=32, blocks=1)
    with pytest.raises(WeightsError, match="crop feature is 16"):
        check_cascade_compatible(CropEncoder(width=8, feat_dim=16), ldm, tmp_path)
