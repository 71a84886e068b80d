"""Weights files: save trained nets, and load them back for the runtime with clear errors.

Each stage is two files in one folder: NAME.safetensors (tensors; large weight matrices stored as
float16 to keep files small, upcast to float32 on load) and NAME.json (what rebuilds the nets:
each net's config(), plus training facts and validation metrics). Nothing here unpickles.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from handviz.diffusion.nets import CropEncoder, JointDenoiser, LatentDenoiser, MeshAutoencoder
from handviz.weights_check import WeightsError, check_weights_file

FORMAT_VERSION = 1
#: Floating tensors with at least this many elements are stored as float16 (buffers stay float32).
HALF_MIN_ELEMENTS = 4096

STAGE1 = "stage1"
MESH_AE = "mesh_ae"
MESH_LDM = "mesh_ldm"

_TRAIN_HINT = {
    STAGE1: "handviz train stage1",
    MESH_AE: "handviz train autoencoder",
    MESH_LDM: "handviz train mesh_ldm",
}
_CLASSES: dict[str, type[nn.Module]] = {
    "crop_encoder": CropEncoder,
    "joint_denoiser": JointDenoiser,
    "mesh_ae": MeshAutoencoder,
    "latent_denoiser": LatentDenoiser,
}
_FILE_MODELS = {STAGE1: ("crop_encoder", "joint_denoiser"), MESH_AE: ("mesh_ae",), MESH_LDM: ("latent_denoiser",)}


def _atomic_write(path: Path, write) -> None:
    """Write to a temporary name, then rename: readers see the old file or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.chmod(tmp, 0o644)  # safetensors creates files owner-only; weights are meant to be shared
    os.replace(tmp, path)


def state_tensors(modules: dict[str, nn.Module], half: bool = True) -> dict[str, torch.Tensor]:
    """Flatten named modules into one {prefix.name: tensor} dict (CPU, contiguous)."""
    out: dict[str, torch.Tensor] = {}
    for prefix, module in modules.items():
        params = {n for n, _ in module.named_parameters()}
        for name, t in module.state_dict().items():
            t = t.detach().cpu().contiguous()
            if half and name in params and t.is_floating_point() and t.numel() >= HALF_MIN_ELEMENTS:
                t = t.half()
            out[f"{prefix}.{name}"] = t
    return out


def save_weights(out_dir: str | os.PathLike, name: str, modules: dict[str, nn.Module], meta: dict[str, Any]) -> Path:
    """Write out_dir/name.safetensors and out_dir/name.json (each atomically). Returns the .safetensors path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = state_tensors(modules)
    config = {
        "format": f"handviz.{name}",
        "format_version": FORMAT_VERSION,
        "models": {k: m.config() for k, m in modules.items()},
        "stored_dtype": f"float16 for parameters with >= {HALF_MIN_ELEMENTS} elements, else float32",
        **meta,
    }
    st_path = out / f"{name}.safetensors"
    _atomic_write(st_path, lambda p: save_file(tensors, str(p), metadata={"format": config["format"]}))
    _atomic_write(out / f"{name}.json", lambda p: p.write_text(json.dumps(config, indent=2, sort_keys=False)))
    return st_path


def _read_config(weights_dir: Path, name: str) -> dict[str, Any]:
    path = weights_dir / f"{name}.json"
    hint = f"train it with `{_TRAIN_HINT[name]} --out {weights_dir}` or point --weights at a folder that has it"
    if not path.is_file():
        raise WeightsError(f"{path}: not found; {hint}.")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: not readable JSON ({exc}); restore the file or {hint}.") from exc
    if not isinstance(config, dict) or config.get("format") != f"handviz.{name}":
        raise WeightsError(f"{path}: not a handviz {name} config (format field); {hint}.")
    if config.get("format_version") != FORMAT_VERSION:
        raise WeightsError(
            f"{path}: format_version {config.get('format_version')} but this handviz reads {FORMAT_VERSION}; {hint}."
        )
    return config


def _build(config: dict[str, Any], key: str, config_path: Path, hint: str) -> nn.Module:
    cfg = config.get("models", {}).get(key)
    if not isinstance(cfg, dict):
        raise WeightsError(f"{config_path}: no config for '{key}'; {hint}.")
    try:
        return _CLASSES[key](**cfg)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{config_path}: bad config for '{key}' ({exc}); {hint}.") from exc


def load_weights(
    weights_dir: str | os.PathLike, name: str, device: torch.device | str = "cpu"
) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """Rebuild the nets of one weights file, fill them, validate every shape, move to device, eval mode.

    Returns ({model key: module}, config dict). Raises WeightsError (an InputError) naming the file
    and the fix: missing, damaged, or made for another config.
    """
    wdir = Path(weights_dir)
    config = _read_config(wdir, name)
    st_path = wdir / f"{name}.safetensors"
    hint = f"re-train with `{_TRAIN_HINT[name]} --out {wdir}` (the .safetensors and .json must come from one run)"
    modules = {key: _build(config, key, wdir / f"{name}.json", hint) for key in _FILE_MODELS[name]}
    expected = {f"{key}.{k}": v for key, m in modules.items() for k, v in m.state_dict().items()}
    check_weights_file(st_path, {k: tuple(v.shape) for k, v in expected.items()})  # header only
    try:
        tensors = load_file(str(st_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{st_path}: corrupt safetensors file ({exc}); {hint}.") from exc
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{st_path}: non-finite values in {bad[:3]}; {hint}.")
    for key, module in modules.items():
        prefix = key + "."
        state = {k[len(prefix):]: v.to(expected[k].dtype) for k, v in tensors.items() if k.startswith(prefix)}
        module.load_state_dict(state, strict=True)
        modules[key] = module.to(device).eval().requires_grad_(False)
    return modules, config


def load_stage1(
    weights_dir: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[CropEncoder, JointDenoiser, dict[str, Any]]:
    """-> (crop_encoder: CropEncoder, joint_denoiser: JointDenoiser, config: dict), in eval mode."""
    modules, config = load_weights(weights_dir, STAGE1, device)
    enc, den = modules["crop_encoder"], modules["joint_denoiser"]
    if enc.feat_dim != den.img_dim:
        raise WeightsError(
            f"{Path(weights_dir) / 'stage1.json'}: crop feature {enc.feat_dim} != denoiser image input "
            f"{den.img_dim}; re-train with `{_TRAIN_HINT[STAGE1]}`."
        )
    return enc, den, config


def load_mesh_models(
    weights_dir: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[MeshAutoencoder, LatentDenoiser, dict[str, Any]]:
    """-> (mesh_ae: MeshAutoencoder, latent_denoiser: LatentDenoiser, config: {"mesh_ae": .., "mesh_ldm": ..})."""
    ae_modules, ae_cfg = load_weights(weights_dir, MESH_AE, device)
    ldm_modules, ldm_cfg = load_weights(weights_dir, MESH_LDM, device)
    ae, ldm = ae_modules["mesh_ae"], ldm_modules["latent_denoiser"]
    if ae.latent_dim != ldm.latent_dim:
        raise WeightsError(
            f"{Path(weights_dir) / 'mesh_ldm.safetensors'}: latent size {ldm.latent_dim} but mesh_ae has "
            f"{ae.latent_dim}; the LDM was trained on another autoencoder: re-train with "
            f"`{_TRAIN_HINT[MESH_LDM]} --out {weights_dir}`."
        )
    return ae, ldm, {"mesh_ae": ae_cfg, "mesh_ldm": ldm_cfg}


def check_cascade_compatible(
    crop_encoder: CropEncoder, latent_denoiser: LatentDenoiser, weights_dir: str | os.PathLike
) -> None:
    """The LDM reads the stage-1 crop feature: its sizes must agree (raises WeightsError)."""
    if crop_encoder.feat_dim != latent_denoiser.img_dim:
        raise WeightsError(
            f"{Path(weights_dir) / 'mesh_ldm.safetensors'}: image input {latent_denoiser.img_dim} but stage1's "
            f"crop feature is {crop_encoder.feat_dim}; re-train with `{_TRAIN_HINT[MESH_LDM]} --out {weights_dir}`."
        )
