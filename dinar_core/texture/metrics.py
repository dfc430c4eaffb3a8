"""Image metrics for texture round trips: PSNR and SSIM restricted to a mask (the body)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check(a: Tensor, b: Tensor, mask: Tensor | None) -> None:
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"images must both be (B, C, H, W), got {tuple(a.shape)} and {tuple(b.shape)}")
    if mask is not None and (mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2:] != a.shape[-2:]):
        raise ValueError(f"mask must be (B, 1, H, W) matching the images, got {tuple(mask.shape)}")


def masked_psnr(a: Tensor, b: Tensor, mask: Tensor | None = None, peak: float = 1.0) -> float:
    """PSNR in dB over the masked pixels. a, b: (B, C, H, W) in [0, peak]; mask: (B, 1, H, W) bool/float."""
    _check(a, b, mask)
    err = (a.float() - b.float()) ** 2  # (B, C, H, W)
    if mask is not None:
        m = mask.float().expand_as(err)
        mse = float((err * m).sum() / m.sum().clamp_min(1))
    else:
        mse = float(err.mean())
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(peak * peak / mse)).item()


def _gaussian(size: int, sigma: float, device) -> Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def ssim_map(a: Tensor, b: Tensor, peak: float = 1.0, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel SSIM (Wang et al. 2004, Gaussian 11x11 window, sigma 1.5, K1 0.01, K2 0.03), averaged over
    channels. a, b: (B, C, H, W). Returns (B, 1, H, W) (reflect padding, so the map is full size)."""
    _check(a, b, None)
    C = a.shape[1]
    g = _gaussian(window, sigma, a.device)
    k = (g[:, None] * g[None, :]).expand(C, 1, window, window).contiguous()
    pad = window // 2

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), k, groups=C)

    a, b = a.float(), b.float()
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean(1, keepdim=True)


def masked_ssim(a: Tensor, b: Tensor, mask: Tensor | None = None, peak: float = 1.0) -> float:
    """Mean SSIM over the masked pixels (see :func:`ssim_map`). a, b: (B, C, H, W); mask: (B, 1, H, W).

    Both images are set to 0 outside the mask first, so the windows of pixels at the mask's edge compare what is
    inside it only: SSIM "on the body" is not charged for whatever lies beyond the body's outline (for a fitted body,
    background where the photo still shows the person; that silhouette error is measured by IoU, not here)."""
    _check(a, b, mask)
    if mask is None:
        return float(ssim_map(a, b, peak).mean())
    m = mask.float()
    s = ssim_map(a.float() * m, b.float() * m, peak)
    return float((s * m).sum() / m.sum().clamp_min(1))
