"""The round-trip metrics: PSNR and SSIM over a mask."""

import math

import torch

from dinar_core.texture.metrics import masked_psnr, masked_ssim


def _images(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(1, 3, 64, 64, generator=g)
    mask = torch.zeros(1, 1, 64, 64, dtype=torch.bool)
    mask[..., 16:48, 16:48] = True
    return a, mask, g


def test_psnr_counts_the_masked_pixels_only():
    a, mask, _ = _images()
    b = a.clone()
    b[..., mask[0, 0]] += 0.1  # error 0.1 inside
    b[..., ~mask[0, 0]] = 0.0  # anything outside
    assert math.isclose(masked_psnr(b, a, mask), 20.0, abs_tol=1e-3)  # 10 log10(1 / 0.01)
    assert masked_psnr(a, a, mask) == float("inf")


def test_ssim_is_one_for_equal_content_whatever_lies_outside_the_mask():
    a, mask, g = _images()
    b = torch.where(mask, a, torch.rand(a.shape, generator=g))
    assert abs(masked_ssim(b, a, mask) - 1.0) < 1e-5
    assert masked_ssim(b, a) < 0.5  # unmasked, the outside counts


def test_ssim_drops_with_noise_inside_the_mask():
    a, mask, g = _images()
    mild = (a + 0.05 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    strong = (a + 0.3 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    s_mild, s_strong = masked_ssim(mild, a, mask), masked_ssim(strong, a, mask)
    assert 1.0 > s_mild > s_strong > 0.0, (s_mild, s_strong)
