"""Resumable training checkpoints without pickle: tensors in safetensors, the rest in JSON.

STEM.safetensors holds model.*, ema.* and optim.<param index>.<state name> tensors; STEM.json
holds the step, elapsed time, optimizer hyper-parameters, architecture and history. The step is
written into both, so a crash between the two writes is detected instead of silently mixing
two checkpoints.
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

from handviz.logs import InputError


class CheckpointError(InputError):
    """A checkpoint that cannot be resumed; the message names the file and the fix."""


def _replace(tmp: Path, final: Path) -> None:
    os.chmod(tmp, 0o644)
    os.replace(tmp, final)


def save_checkpoint(
    stem: Path, modules: dict[str, nn.Module], ema: dict[str, nn.Module], optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
) -> None:
    """Write STEM.safetensors then STEM.json, each atomically. state must hold 'step' and be JSON-able."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for tag, group in (("model", modules), ("ema", ema)):
        for key, module in group.items():
            for name, t in module.state_dict().items():
                tensors[f"{tag}.{key}.{name}"] = t.detach().cpu().contiguous()
    opt = optimizer.state_dict()
    for pid, pstate in opt["state"].items():
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{name}"] = value.detach().cpu().reshape(-1).contiguous()
    st_tmp = stem.with_name(stem.name + ".safetensors.tmp")
    save_file(tensors, str(st_tmp), metadata={"step": str(state["step"])})
    _replace(st_tmp, stem.with_name(stem.name + ".safetensors"))
    doc = {**state, "param_groups": opt["param_groups"]}
    js_tmp = stem.with_name(stem.name + ".json.tmp")
    js_tmp.write_text(json.dumps(doc, indent=1))
    _replace(js_tmp, stem.with_name(stem.name + ".json"))


def has_checkpoint(stem: Path) -> bool:
    return stem.with_name(stem.name + ".json").is_file()


def read_checkpoint_state(stem: Path) -> dict[str, Any]:
    """The JSON half alone (cheap): lets a caller check the architecture before loading tensors."""
    js = stem.with_name(stem.name + ".json")
    try:
        return json.loads(js.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{js}: checkpoint unreadable ({exc}); delete it or train without --resume") from exc


def load_checkpoint(
    stem: Path, modules: dict[str, nn.Module], ema: dict[str, nn.Module], optimizer: torch.optim.Optimizer,
) -> dict[str, Any]:
    """Fill modules, EMA copies and optimizer from STEM.*; returns the JSON state."""
    js, st = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".safetensors")
    hint = "delete the checkpoint folder to start over, or train without --resume"
    try:
        doc = json.loads(js.read_text())
        tensors = load_file(str(st))
        from safetensors import safe_open

        with safe_open(str(st), framework="pt") as f:
            st_step = (f.metadata() or {}).get("step")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, SafetensorError) as exc:
        raise CheckpointError(f"{stem}: checkpoint unreadable ({exc}); {hint}") from exc
    if str(doc.get("step")) != st_step:
        raise CheckpointError(f"{st}: step {st_step} but {js.name} says {doc.get('step')} (interrupted save); {hint}")
    try:
        for tag, group in (("model", modules), ("ema", ema)):
            for key, module in group.items():
                prefix = f"{tag}.{key}."
                module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        opt_state: dict[int, dict[str, torch.Tensor]] = {}
        shapes = [p for g in optimizer.param_groups for p in g["params"]]
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, pid, name = k.split(".", 2)
                p = shapes[int(pid)]
                shape = () if name == "step" else p.shape
                opt_state.setdefault(int(pid), {})[name] = v.reshape(shape)
        optimizer.load_state_dict({"state": opt_state, "param_groups": doc["param_groups"]})
    except (RuntimeError, KeyError, ValueError, IndexError) as exc:
        first_line = str(exc).splitlines()[0]
        raise CheckpointError(f"{st}: does not fit the nets being trained ({first_line}); {hint}") from exc
    return doc
