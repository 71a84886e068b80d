"""The training loop all stages share: AdamW, warmup + cosine LR, gradient clipping, EMA weights,
periodic validation, checkpoints with resume, and data parallelism over torchrun ranks.

A stage supplies `step_fn(step) -> (loss, logs)` (it draws its own batch; see BatchOrder) and
`val_fn(ema_modules) -> metrics`; the loop does the rest. Only rank 0 validates and writes.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from handviz.train.checkpoint import (
    CheckpointError, has_checkpoint, load_checkpoint, read_checkpoint_state, save_checkpoint,
)
from handviz.train.distributed import DistContext, average_gradients, barrier, broadcast_modules, mean_over_ranks

log = logging.getLogger(__name__)


@dataclass
class LoopConfig:
    steps: int = 4000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.02
    grad_clip: float = 1.0
    ema_decay: float = 0.998
    val_every: int = 500
    ckpt_every: int = 500
    #: Stop early at this many minutes (the cosine schedule then follows the clock); None = steps only.
    time_budget_min: float | None = None


def step_rngs(seed: int, rank: int, step: int, device: torch.device) -> tuple[np.random.Generator, torch.Generator]:
    """Per-step generators, a pure function of (seed, rank, step): resuming needs no RNG state."""
    rng = np.random.default_rng([seed, rank, step])
    g = torch.Generator(device=device)
    g.manual_seed(int(rng.integers(2**62)))
    return rng, g


def lr_factor(progress: float, warmup_frac: float, min_ratio: float) -> float:
    """Linear warmup then cosine decay to min_ratio; progress in [0, 1]."""
    if progress < warmup_frac:
        return max(progress / warmup_frac, 1e-3)
    p = min((progress - warmup_frac) / max(1 - warmup_frac, 1e-8), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))


class EMA:
    """Exponential moving average of module weights (with the usual warmup of the decay)."""

    def __init__(self, modules: dict[str, nn.Module], decay: float) -> None:
        self.decay = decay
        self.shadow = {k: copy.deepcopy(m).eval().requires_grad_(False) for k, m in modules.items()}

    @torch.no_grad()
    def update(self, modules: dict[str, nn.Module], step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, m in modules.items():
            for ps, p in zip(self.shadow[k].parameters(), m.parameters()):
                ps.lerp_(p, 1 - d)
            for bs, b in zip(self.shadow[k].buffers(), m.buffers()):
                bs.copy_(b)


class Trainer:
    """Runs one stage. modules: the trainable nets by name (frozen helpers stay outside)."""

    def __init__(
        self, name: str, modules: dict[str, nn.Module], cfg: LoopConfig, out_dir: str | Path, ctx: DistContext,
        run_config: dict[str, Any], resume: bool = False,
    ) -> None:
        self.name, self.modules, self.cfg, self.ctx = name, modules, cfg, ctx
        self.run_config = run_config
        broadcast_modules(list(modules.values()), ctx)
        self.params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
        self.ema = EMA(modules, cfg.ema_decay)
        self.ckpt_stem = Path(out_dir) / "checkpoints" / name
        self.step = 0
        self.elapsed = 0.0
        self.history: list[dict[str, Any]] = []
        self.last_validated = -1
        if resume and has_checkpoint(self.ckpt_stem):
            if read_checkpoint_state(self.ckpt_stem).get("arch") != run_config.get("arch"):
                raise CheckpointError(
                    f"{self.ckpt_stem}.json: made for another architecture than {run_config.get('arch')}; "
                    "delete it or train without --resume"
                )
            doc = load_checkpoint(self.ckpt_stem, modules, self.ema.shadow, self.optimizer)
            self.step, self.elapsed, self.history = int(doc["step"]), float(doc["elapsed_s"]), doc["history"]
            if ctx.is_main:
                log.info("%s: resumed at step %d", name, self.step)

    def _progress(self, started: float) -> float:
        """Fraction of the run done (steps or clock, whichever is further), agreed by all ranks."""
        p = self.step / self.cfg.steps
        if self.cfg.time_budget_min:
            p = max(p, (self.elapsed + time.perf_counter() - started) / (60 * self.cfg.time_budget_min))
        if self.ctx.active and self.cfg.time_budget_min:
            t = torch.tensor([p], dtype=torch.float64, device=self.ctx.device)
            dist.broadcast(t, src=0)
            p = float(t)
        return p

    def _save(self, started: float) -> None:
        if self.ctx.is_main:
            state = {"step": self.step, "elapsed_s": self.elapsed + time.perf_counter() - started,
                     "history": self.history, **self.run_config}
            save_checkpoint(self.ckpt_stem, self.modules, self.ema.shadow, self.optimizer, state)

    def _validate(self, val_fn, logs: dict[str, float], started: float) -> None:
        self.last_validated = self.step  # on every rank: they must agree on when to meet at the barrier
        if self.ctx.is_main:
            for m in self.ema.shadow.values():
                m.eval()
            metrics = val_fn(self.ema.shadow)
            entry = {"step": self.step, "elapsed_s": round(self.elapsed + time.perf_counter() - started, 1),
                     **{f"train_{k}": round(v, 5) for k, v in logs.items()}, **metrics}
            self.history.append(entry)
            tqdm.write(f"[{self.name}] step {self.step}: " + ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
        barrier(self.ctx)

    def run(
        self, step_fn: Callable[[int], tuple[torch.Tensor, dict[str, float]]],
        val_fn: Callable[[dict[str, nn.Module]], dict[str, Any]],
    ) -> dict[str, Any]:
        """Train to cfg.steps (or the time budget); returns the final validation metrics."""
        cfg = self.cfg
        started = time.perf_counter()
        warmup = min(cfg.warmup_steps / max(cfg.steps, 1), 0.5)
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.name, disable=not self.ctx.is_main,
                   dynamic_ncols=True)
        logs: dict[str, float] = {}
        avg: dict[str, float] = {}
        for m in self.modules.values():
            m.train()
        while True:
            progress = self._progress(started)
            if progress >= 1.0:
                break
            lr = cfg.lr * lr_factor(progress, warmup, cfg.min_lr_ratio)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            loss, logs = step_fn(self.step)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            average_gradients(self.params, self.ctx)
            torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
            self.optimizer.step()
            self.ema.update(self.modules, self.step)
            self.step += 1
            avg = {k: 0.9 * avg.get(k, v) + 0.1 * v for k, v in logs.items()}
            bar.update(1)
            if self.step % 10 == 0:
                bar.set_postfix({k: f"{v:.4f}" for k, v in avg.items()}, refresh=False)
            if cfg.val_every and self.step % cfg.val_every == 0:
                self._validate(val_fn, mean_over_ranks(avg, self.ctx), started)
                for m in self.modules.values():
                    m.train()
            if cfg.ckpt_every and self.step % cfg.ckpt_every == 0:
                self._save(started)
        bar.close()
        if self.last_validated != self.step:
            self._validate(val_fn, mean_over_ranks(avg, self.ctx), started)
        self.elapsed += time.perf_counter() - started
        started = time.perf_counter()
        self._save(started)
        barrier(self.ctx)
        return self.history[-1] if self.history else {}

    @property
    def run_record(self) -> dict[str, Any]:
        """What goes into the weights JSON about this run."""
        return {"steps_done": self.step, "train_time_s": round(self.elapsed, 1), "loop": asdict(self.cfg),
                "world_size": self.ctx.world_size, "device": str(self.ctx.device), "history": self.history}
