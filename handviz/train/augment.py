"""Appearance augmentation of hand crops, batched in torch (no per-image Python loop).

Synthetic renders are cleaner than webcam frames; these perturbations (crop placement, colour,
grey, blur, sensor noise, occluding patches) keep the crop encoder from relying on render-only
cues. Geometry stays put apart from a small shift/zoom, the same slack MediaPipe's crop box has.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _uniform(g: torch.Generator, lo: float, hi: float, shape, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g, device=device)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = 2
    k = torch.exp(-(torch.arange(-r, r + 1, device=x.device, dtype=x.dtype) ** 2) / (2 * sigma**2))
    k = k / k.sum()
    C = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


def augment_crops(images: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """images: (B, 3, H, W) float in [0, 1] -> augmented copy, same shape and range."""
    B, _, H, W = images.shape
    dev = images.device

    def u(lo, hi, shape=(B,)):
        return _uniform(g, lo, hi, shape, dev)

    def coin(p):
        return torch.rand(B, generator=g, device=dev) < p

    theta = torch.zeros(B, 2, 3, device=dev)
    zoom = u(0.9, 1.1)
    theta[:, 0, 0] = zoom
    theta[:, 1, 1] = zoom
    theta[:, :, 2] = u(-0.05, 0.05, (B, 2))
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    x = F.grid_sample(images, grid, padding_mode="border", align_corners=False)

    x = x * u(0.6, 1.4)[:, None, None, None]  # brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(0.6, 1.4)[:, None, None, None] + mean  # contrast
    luma = (x * torch.tensor([0.299, 0.587, 0.114], device=dev).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = luma + (x - luma) * u(0.4, 1.5)[:, None, None, None]  # saturation
    x = x * u(0.85, 1.15, (B, 3))[:, :, None, None]  # white balance
    x = torch.where(coin(0.1)[:, None, None, None], luma.expand_as(x), x)  # greyscale

    blur = coin(0.25)
    if blur.any():
        x[blur] = _gaussian_blur(x[blur], float(u(0.5, 1.4, (1,))))
    x = x + torch.randn(x.shape, generator=g, device=dev) * (u(0.0, 0.05) * coin(0.5))[:, None, None, None]

    erase = coin(0.3)
    if erase.any():  # one random rectangle of random colour per erased crop
        ys = torch.linspace(0, 1, H, device=dev).view(1, H, 1)
        xs = torch.linspace(0, 1, W, device=dev).view(1, 1, W)
        cy, cx = u(0, 1)[:, None, None], u(0, 1)[:, None, None]
        hh, hw = u(0.08, 0.25)[:, None, None], u(0.08, 0.25)[:, None, None]
        box = ((ys - cy).abs() < hh) & ((xs - cx).abs() < hw) & erase[:, None, None]
        fill = u(0, 1, (B, 3))[:, :, None, None].expand_as(x)
        x = torch.where(box[:, None], fill, x)
    return x.clamp_(0.0, 1.0)
