"""Training objectives of the diffusion stages.

x0-prediction MSE at random timesteps keeps k-step DDIM working. On its own it makes the
one-step output from pure noise collapse to the conditional mean (x_T says nothing about x0, so
the MSE-optimal answer ignores it) and all N hypotheses coincide. The energy score at t = T-1,
a strictly proper scoring rule for distributions, is minimised only when f(noise, c) is
distributed like p(x | c): the one-step samples then spread as much as the data do.
"""

from __future__ import annotations

import torch


def _norm(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((x * x).sum(-1) + 1e-12)


def energy_score(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean energy score of m >= 2 samples per item. samples: (B, m, D); target: (B, D) -> scalar.

    ES = mean_i ||s_i - x|| - 1/2 mean_{i != j} ||s_i - s_j|| (Gneiting & Raftery 2007).
    """
    m = samples.shape[1]
    if m < 2:
        raise ValueError(f"energy_score needs at least 2 samples per item, got {m}")
    fit = _norm(samples - target[:, None]).mean(dim=1)
    i, j = torch.triu_indices(m, m, offset=1, device=samples.device)
    spread = _norm(samples[:, i] - samples[:, j]).mean(dim=1)
    return (fit - 0.5 * spread).mean()


def x0_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of an x0 prediction. pred, target: same shape."""
    return (pred - target).pow(2).mean()


def joint_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance per joint. pred, target: (..., 21, 3) broadcastable -> scalar."""
    return _norm(pred - target).mean()
