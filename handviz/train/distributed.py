"""Data-parallel training under `torchrun --nproc_per_node=K` (gloo on CPU, nccl on CUDA).

Gradients are averaged with one flat all-reduce per step instead of wrapping the nets in
DistributedDataParallel: some parameters legitimately get no gradient in a step (the crop
encoder when a batch has no crops, the null image feature when every crop is kept), which DDP
only tolerates with its slower find_unused_parameters mode. Missing gradients count as zero.
Without torchrun (no WORLD_SIZE in the environment) everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def resolve_device(requested: str | None) -> torch.device:
    """'auto'/None -> cuda when available, else cpu."""
    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def setup_distributed(device: str | None = None) -> DistContext:
    """Join the torchrun process group when launched by torchrun; otherwise a single process."""
    dev = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(0, 1, dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    rank = dist.get_rank()
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    return DistContext(rank, dist.get_world_size(), dev)


def broadcast_modules(modules: list[nn.Module], ctx: DistContext) -> None:
    """Give every rank rank 0's parameters and buffers."""
    if not ctx.active:
        return
    for module in modules:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(params: list[nn.Parameter], ctx: DistContext) -> None:
    """Mean of every parameter's gradient over ranks, in one flat all-reduce."""
    if not ctx.active:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def mean_over_ranks(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Average scalar logs over ranks (for the progress bar)."""
    if not ctx.active or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, t.tolist())}


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def teardown(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
