"""DDIM noise schedule with x0-prediction: configure once, then step (diffusers' shape, ~40 lines).

The one-step path (k=1) is the default: sampling starts at t = T-1 from pure noise and the first
step lands on the model's x0 prediction. The cosine schedule drives alpha_bar(T-1) to ~0, so
pure noise really is the training-time input at that step.
"""

from __future__ import annotations

import math

import torch


class DDIMSchedule:
    """Deterministic (eta = 0) DDIM over `num_train_timesteps`, x0-prediction parameterisation."""

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "cosine") -> None:
        T = int(num_train_timesteps)
        if beta_schedule == "cosine":  # Nichol & Dhariwal 2021, betas clipped at 0.999
            f = [math.cos((i / T + 0.008) / 1.008 * math.pi / 2) ** 2 for i in range(T + 1)]
            betas = torch.tensor([min(1 - f[i + 1] / f[i], 0.999) for i in range(T)], dtype=torch.float64)
        elif beta_schedule == "scaled_linear":  # Stable Diffusion's
            betas = torch.linspace(0.00085**0.5, 0.012**0.5, T, dtype=torch.float64) ** 2
        else:
            raise ValueError(f"beta_schedule must be 'cosine' or 'scaled_linear', not {beta_schedule!r}")
        self.num_train_timesteps = T
        self.beta_schedule = beta_schedule
        self.alphas_cumprod = torch.cumprod(1 - betas, 0).float()
        self.set_timesteps(1)

    def config(self) -> dict:
        return {"num_train_timesteps": self.num_train_timesteps, "beta_schedule": self.beta_schedule}

    def set_timesteps(self, num_inference_steps: int = 1) -> None:
        """Trailing spacing: the first step always starts at T-1 (pure noise); k=1 is one step to x0."""
        self.timesteps = self.inference_timesteps(num_inference_steps)

    def inference_timesteps(self, num_inference_steps: int = 1) -> list[int]:
        """Pure version of set_timesteps (sampling functions use it and leave `self` alone)."""
        k, T = int(num_inference_steps), self.num_train_timesteps
        if not 1 <= k <= T:
            raise ValueError(f"num_inference_steps must be in 1..{T}, got {k}")
        return [int(round(T - i * T / k)) - 1 for i in range(k)]

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise. x0, noise: (B, ...); t: (B,) long."""
        a = self.alphas_cumprod.to(x0.device)[t].view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def step(self, x_t: torch.Tensor, x0_pred: torch.Tensor, t: int, t_prev: int) -> torch.Tensor:
        """One deterministic DDIM step t -> t_prev (t_prev < 0 means straight to x0)."""
        if t_prev < 0:
            return x0_pred
        a_t = float(self.alphas_cumprod[t])
        a_prev = float(self.alphas_cumprod[t_prev])
        eps = (x_t - a_t**0.5 * x0_pred) / (1 - a_t) ** 0.5
        return a_prev**0.5 * x0_pred + (1 - a_prev) ** 0.5 * eps
