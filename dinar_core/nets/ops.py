"""StyleGAN2 building blocks in pure PyTorch (no CUDA extensions), with DINAR's parameter names.

DINAR builds its encoder, texture generator, discriminator and renderer from rosinality-style StyleGAN2 modules
whose fused CUDA kernels (``upfirdn2d``, ``fused_bias_act``) are JIT-compiled at import. The same maths is
written here with ordinary tensor ops, so it runs on any device:

* ``upfirdn2d``: zero-insertion upsampling, padding, FIR filtering (true convolution) and decimation;
* ``Blur`` / ``Upsample``: that filter with a normalised separable kernel held in a ``kernel`` buffer;
* ``fused_leaky_relu``: ``leaky_relu(x + bias, 0.2) * sqrt(2)``;
* ``EqualConv2d`` / ``EqualLinear``: equalised learning rate (weights stored as N(0,1)/lr_mul, rescaled by
  ``lr_mul / sqrt(fan_in)`` at every call);
* ``ModulatedConv2d``: per-sample style modulation and demodulation of the convolution weights.

Attribute names (``weight``, ``bias``, ``kernel``, ``modulation``, ``blur``, ``noise``, ``activate``, ``input``)
are those of DINAR's checkpoint, because the state_dict keys are built from them.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# The 4-tap binomial low-pass filter of StyleGAN2 (and DINAR's default ``blur_kernel``), defined torch-free.
from dinar_core.nets.config import DEFAULT_BLUR  # noqa: F401
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # keeps the activations' second moment after the leaky ReLU


def make_blur_kernel(taps: Sequence[float], gain: float = 1.0) -> torch.Tensor:
    """A 2D FIR kernel from 1D taps (outer product), normalised to sum `gain`.

    taps: (K,) 1D taps, or a (K, K) nested sequence used as is before normalisation.
    Returns: (K, K) float32. Upsampling by `f` uses ``gain = f**2`` so the zero-inserted signal keeps its mean.
    """
    k = torch.as_tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = k[:, None] * k[None, :]
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"blur kernel must be 1D or square 2D, got shape {tuple(k.shape)}")
    return k / k.sum() * gain


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with a FIR kernel, decimate (StyleGAN2's ``upfirdn2d``).

    x: (B, C, H, W); kernel: (kh, kw), applied as a true convolution (flipped), to every channel alike.
    up / down: integer factors on both axes; pad: (before, after) on both axes, negative values crop.
    Returns (B, C, Ho, Wo), ``Ho = (H * up + pad[0] + pad[1] - kh) // down + 1``.
    The zero-inserted signal has length ``H * up`` (``up - 1`` zeros after every sample, the last included).
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects x of shape (B, C, H, W), got {tuple(x.shape)}")
    if kernel.ndim != 2:
        raise ValueError(f"upfirdn2d expects a 2D kernel, got shape {tuple(kernel.shape)}")
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    p0, p1 = pad
    if p0 or p1:
        x = F.pad(x, (p0, p1, p0, p1))  # negative values crop (constant mode allows it)
    # conv2d is a correlation: flip the kernel to get a convolution; one filter per channel (depthwise).
    weight = torch.flip(kernel, (0, 1)).to(dtype=x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, stride=down, groups=c)


class Blur(nn.Module):
    """FIR low-pass filter with fixed padding; ``kernel`` buffer (K, K) as in DINAR's checkpoint."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_blur_kernel(taps, gain=upsample_factor ** 2))
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H + pad0 + pad1 - K + 1, ...)."""
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x (or `factor`) FIR upsampling: (B, C, H, W) -> (B, C, H*f, W*f); ``kernel`` buffer (K, K)."""

    def __init__(self, taps: Sequence[float] = DEFAULT_BLUR, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_blur_kernel(taps, gain=factor ** 2))
        p = len(taps) - factor
        # centres the filter so that the output has exactly H * factor samples
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float = LRELU_SLOPE,
                     scale: float = LRELU_GAIN) -> torch.Tensor:
    """``leaky_relu(x + bias) * scale``; x: (B, C, ...) and bias: (C,) added on dim 1."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """Bias + scaled leaky ReLU with its own ``bias`` (C,) parameter."""

    def __init__(self, channels: int, negative_slope: float = LRELU_SLOPE, scale: float = LRELU_GAIN):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate: ``weight`` (O, I, k, k) ~ N(0, 1) / lr_mul, used times
    ``lr_mul / sqrt(I * k * k)``; optional ``bias`` (O,) used times ``lr_mul``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_channels,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_channels * kernel_size ** 2)
        self.lr_mul = lr_mul
        self.stride = stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        return F.conv2d(x, self.weight * self.scale, bias=bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, kernel_size={k}, stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate, optionally followed by the fused leaky ReLU (which then uses
    this layer's ``bias``). weight: (out, in); bias: (out,)."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in) -> (B, out)."""
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activate:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias=bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, activate={self.activate}"


class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> [FusedLeakyReLU] (StyleGAN2's ``ConvLayer``; children indexed 0, 1, 2 as in
    DINAR's keys). With ``downsample`` the blur comes first and the convolution has stride 2.
    The convolution has a bias only when there is no activation (the activation carries the bias)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
                 blur_kernel: Sequence[float] = DEFAULT_BLUR, bias: bool = True, activate: bool = True,
                 lr_mul: float = 1.0):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                  bias=bias and not activate, lr_mul=lr_mul))
        if activate:
            # DINAR's layers all have bias=True when activated; the bias-free variant is a plain scaled lrelu.
            layers.append(FusedLeakyReLU(out_channels) if bias else _ScaledLeakyReLU())
        super().__init__(*layers)


class _ScaledLeakyReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, None)


class ResBlock(nn.Module):
    """Residual downsampling block of the StyleGAN2 discriminator (and DINAR's encoder):
    (B, I, H, W) -> (B, O, H/2, W/2), ``(conv2(conv1(x)) + skip(x)) / sqrt(2)``."""

    def __init__(self, in_channels: int, out_channels: int, blur_kernel: Sequence[float] = DEFAULT_BLUR,
                 lr_mul: float = 1.0):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, blur_kernel=blur_kernel, lr_mul=lr_mul)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, blur_kernel=blur_kernel, lr_mul=lr_mul)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, activate=False, bias=False,
                              blur_kernel=blur_kernel, lr_mul=lr_mul)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2.0)


def modulated_weight(weight: torch.Tensor, style: torch.Tensor, demodulate: bool, eps: float = 1e-8) -> torch.Tensor:
    """Per-sample convolution weights of StyleGAN2's modulated convolution.

    weight: (O, I, k, k), already multiplied by the equalised-lr scale; style: (B, I) per-input-channel scales.
    Returns (B, O, I, k, k): ``weight * style``, and with `demodulate` each output filter divided by its L2 norm
    (``rsqrt(sum + eps)``), so the output keeps unit variance for unit-variance input.
    """
    if weight.ndim != 4 or style.ndim != 2 or style.shape[1] != weight.shape[1]:
        raise ValueError(f"modulated_weight: expected weight (O, I, k, k) and style (B, I), got "
                         f"{tuple(weight.shape)} and {tuple(style.shape)}")
    w = weight[None] * style[:, None, :, None, None]  # (B, O, I, k, k)
    if demodulate:
        w = w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + eps)
    return w


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution: ``weight`` (1, O, I, k, k), ``modulation`` EqualLinear(style_dim -> I,
    bias 1), optional 2x upsampling (transposed conv + ``blur``).

    The computation modulates the input and demodulates the output instead of building per-sample weights; this
    is the same linear map (``conv(x * s, w) * d == conv(x, w * s * d)``) but runs one shared convolution for the
    whole batch, which is what makes it affordable on the CPU.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, blur_kernel: Sequence[float] = DEFAULT_BLUR):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.eps = 1e-8
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            # transposed conv gives 2H + k - 2 samples; this blur padding brings it back to 2H
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)

    def per_sample_weight(self, style: torch.Tensor) -> torch.Tensor:
        """style: (B, style_dim) -> modulated (and demodulated) weights (B, O, I, k, k)."""
        return modulated_weight(self.weight[0] * self.scale, self.modulation(style), self.demodulate, self.eps)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """x: (B, I, H, W), style: (B, style_dim) -> (B, O, H', W') with H' = 2H if upsampling else H."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ModulatedConv2d: expected x (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        s = self.modulation(style)  # (B, I)
        w = self.weight[0] * self.scale  # (O, I, k, k)
        x = x * s[:, :, None, None].to(x.dtype)
        if self.upsample:
            # conv_transpose2d takes (I, O, k, k)
            out = F.conv_transpose2d(x, w.transpose(0, 1).to(x.dtype), stride=2, padding=0)
        else:
            out = F.conv2d(x, w.to(x.dtype), padding=self.padding)
        if self.demodulate:
            d = torch.rsqrt((w[None] * s[:, None, :, None, None]).pow(2).sum(dim=(2, 3, 4)) + self.eps)  # (B, O)
            out = out * d[:, :, None, None].to(out.dtype)
        if self.upsample:
            # the per-channel blur commutes with the per-channel demodulation scale
            out = self.blur(out)
        return out

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"upsample={self.upsample}, demodulate={self.demodulate}")


class NoiseInjection(nn.Module):
    """Adds ``weight * noise``; ``weight`` (1,) starts at 0. noise: (B or 1, 1, H, W), broadcast on channels."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise.to(x.dtype)


class ConstantInput(nn.Module):
    """Learned constant ``input`` (1, C, size, size), repeated over the batch."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)
