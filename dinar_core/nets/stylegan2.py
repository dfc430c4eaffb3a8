"""DINAR's first-stage StyleGAN2 networks: the image encoder, the neural-texture generator and the discriminator.

* ``Encoder``: a StyleGAN2-discriminator-shaped network that maps the masked photo, its person mask and a noise
  plane, (B, 5, 512, 512), to one global style vector (B, 512).
* ``Generator``: StyleGAN2 synthesis network without the mapping MLP: that style vector (used at every layer)
  -> the 16-channel neural texture (B, 16, 256, 256), with per-layer noise injection.
* ``Discriminator``: the StyleGAN2 discriminator (B, 3, 512, 512) -> logits (B, 1), used by DINAR's per-avatar
  texture finetuning.

Module and parameter names equal DINAR's (``convs.1.conv2.1.weight``, ``to_rgbs.0.upsample.kernel``,
``noises.noise_0`` ...) so that its checkpoint loads with strict key matching. All sizes are config fields; the
defaults are DINAR's (configs/eval.yaml, configs/finetune_avatar.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dinar_core.nets.config import (DiscriminatorConfig, EncoderConfig, GeneratorConfig,  # noqa: F401
                                    _log2, stylegan2_channels)  # re-exported: torch-free definitions
from dinar_core.nets.ops import (
    ConstantInput,
    ConvLayer,
    EqualLinear,
    FusedLeakyReLU,
    ModulatedConv2d,
    NoiseInjection,
    ResBlock,
    Upsample,
)


def _check_image(name: str, x: torch.Tensor, channels: int, size: int | None = None) -> None:
    ok = x.ndim == 4 and x.shape[1] == channels and (size is None or tuple(x.shape[2:]) == (size, size))
    if not ok:
        want = f"(B, {channels}, {size or 'H'}, {size or 'W'})"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)}")


# --------------------------------------------------------------------------------------------------- encoder


def _downsampling_trunk(size: int, in_channels: int, channels, first_kernel: int, blur_kernel,
                        lr_mul: float) -> tuple[nn.Sequential, int]:
    """ConvLayer(in -> C(size)) then one ResBlock per halving down to 4x4; returns (trunk, channels at 4x4)."""
    layers: list[nn.Module] = [ConvLayer(in_channels, channels(size), first_kernel, blur_kernel=blur_kernel,
                                         lr_mul=lr_mul)]
    width = channels(size)
    for log in range(_log2(size, "image size"), 2, -1):
        out = channels(2 ** (log - 1))
        layers.append(ResBlock(width, out, blur_kernel, lr_mul=lr_mul))
        width = out
    return nn.Sequential(*layers), width


class Encoder(nn.Module):
    """Photo + person mask (+ noise plane) -> one global style vector.

    State-dict keys: ``convs.{0..n}.*``, ``final_conv.{0,1}.*``, ``final_linear.{0,1}.*`` (DINAR's
    ``first_stage.encoder.*`` without the prefix).
    """

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        super().__init__()
        self.config = config
        c = config
        self.convs, width = _downsampling_trunk(c.image_size, c.image_channels + 2, c.channels, c.first_kernel,
                                                c.blur_kernel, c.lr_mul)
        top = c.channels(4)
        self.final_conv = ConvLayer(width, top, 3, blur_kernel=c.blur_kernel, lr_mul=c.lr_mul)
        self.final_linear = nn.Sequential(
            EqualLinear(top * 4 * 4, top, activate=True, lr_mul=c.lr_mul),
            EqualLinear(top, c.style_dim, lr_mul=c.lr_mul),
        )

    def forward(self, image: torch.Tensor, segm: torch.Tensor, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Encode a masked photo.

        image: (B, 3, S, S) in [-1, 1] (DINAR: the person on black, ``to_tanh(rgb * mask)``);
        segm: (B, 1, S, S) binary person mask; noise: (B, 1, S, S) standard normal plane, drawn here (from
        `generator` if given) when None, as DINAR draws a fresh one at every call.
        Returns the style vector (B, style_dim).
        """
        c = self.config
        _check_image("Encoder image", image, c.image_channels, c.image_size)
        _check_image("Encoder segm", segm, 1, c.image_size)
        b = image.shape[0]
        if segm.shape[0] != b:
            raise ValueError(f"Encoder: image batch {b} != segm batch {segm.shape[0]}")
        if noise is None:
            noise = torch.randn((b, 1, c.image_size, c.image_size), generator=generator,
                                device=generator.device if generator is not None else image.device)
        _check_image("Encoder noise", noise, 1, c.image_size)
        x = torch.cat([image, segm.to(image.dtype), noise.to(image.device, image.dtype)], dim=1)  # (B, C+2, S, S)
        x = self.final_conv(self.convs(x))  # (B, C4, 4, 4)
        return self.final_linear(x.reshape(b, -1))  # (B, style_dim)


# ------------------------------------------------------------------------------------------------- generator


class StyledConv(nn.Module):
    """ModulatedConv2d (``conv``) -> NoiseInjection (``noise``) -> FusedLeakyReLU (``activate``)."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, upsample: bool, blur_kernel):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation to the output channels, plus ``bias`` (1, C, 1, 1); adds the
    2x ``upsample``d previous output (skip architecture)."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, upsample: bool, blur_kernel):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + self.upsample(skip)


class Generator(nn.Module):
    """Style vector -> neural texture (StyleGAN2 synthesis network, skip outputs, one style for every layer).

    State-dict keys: ``input.input``, ``conv1.*``, ``to_rgb1.*``, ``convs.{i}.*``, ``to_rgbs.{i}.*`` and the stored
    noise planes ``noises.noise_{i}`` (1, 1, r, r) (DINAR's ``first_stage.generator.*`` without the prefix).
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        c = config
        top = c.channels(4)
        self.input = ConstantInput(top)
        self.conv1 = StyledConv(top, top, c.style_dim, upsample=False, blur_kernel=c.blur_kernel)
        self.to_rgb1 = ToRGB(top, c.output_channels, c.style_dim, upsample=False, blur_kernel=c.blur_kernel)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(c.num_noise_layers):
            r = c.noise_resolution(i)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        width = top
        for log in range(3, _log2(c.texture_size, "texture_size") + 1):
            out = c.channels(2 ** log)
            self.convs.append(StyledConv(width, out, c.style_dim, upsample=True, blur_kernel=c.blur_kernel))
            self.convs.append(StyledConv(out, out, c.style_dim, upsample=False, blur_kernel=c.blur_kernel))
            self.to_rgbs.append(ToRGB(out, c.output_channels, c.style_dim, upsample=True, blur_kernel=c.blur_kernel))
            width = out

    def stored_noise(self) -> list[torch.Tensor]:
        """The checkpoint's fixed noise planes, ``[(1, 1, r_i, r_i)]``."""
        return [getattr(self.noises, f"noise_{i}") for i in range(self.config.num_noise_layers)]

    def draw_noise(self, batch: int, generator: torch.Generator | None = None,
                   device: torch.device | None = None) -> list[torch.Tensor]:
        """Fresh standard-normal noise planes ``[(B, 1, r_i, r_i)]``, from `generator` when given (reproducible)."""
        dev = generator.device if generator is not None else device
        return [torch.randn((batch, 1, r, r), generator=generator, device=dev)
                for r in map(self.config.noise_resolution, range(self.config.num_noise_layers))]

    def forward(self, style: torch.Tensor, randomize_noise: bool = True, generator: torch.Generator | None = None,
                noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Synthesise the neural texture.

        style: (B, style_dim). Noise: explicit `noise` list if given; else the stored ``noises.noise_i`` when
        `randomize_noise` is False (deterministic); else fresh noise from `generator` (or the global RNG), as
        DINAR does at inference (``randomize_noise=True``).
        Returns (B, output_channels, T, T).
        """
        c = self.config
        if style.ndim != 2 or style.shape[1] != c.style_dim:
            raise ValueError(f"Generator: expected style (B, {c.style_dim}), got {tuple(style.shape)}")
        b = style.shape[0]
        if noise is None:
            noise = self.draw_noise(b, generator, style.device) if randomize_noise else self.stored_noise()
        if len(noise) != c.num_noise_layers:
            raise ValueError(f"Generator: expected {c.num_noise_layers} noise planes, got {len(noise)}")
        noise = [n.to(style.device) for n in noise]
        x = self.input(b)  # (B, C4, 4, 4)
        x = self.conv1(x, style, noise[0])
        skip = self.to_rgb1(x, style)  # (B, out, 4, 4)
        for k, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * k](x, style, noise[2 * k + 1])  # upsample x2
            x = self.convs[2 * k + 1](x, style, noise[2 * k + 2])
            skip = to_rgb(x, style, skip)  # (B, out, r, r)
        return skip


# --------------------------------------------------------------------------------------------- discriminator


@dataclass
class DiscriminatorOutput:
    """logits: (B, 1) realness scores; activations: the trunk's feature maps, one per ``convs`` entry, then the
    ``final_conv`` output (DINAR returns ``activations[activation_layer]`` of this list)."""

    logits: torch.Tensor
    activations: list[torch.Tensor]


class Discriminator(nn.Module):
    """Image -> realness logit. State-dict keys: ``convs.*``, ``final_conv.*``, ``final_linear.{0,1}.*``."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.config = config
        c = config
        self.convs, width = _downsampling_trunk(c.image_size, c.in_channels, c.channels, c.first_kernel,
                                                c.blur_kernel, 1.0)
        top = c.channels(4)
        self.final_conv = ConvLayer(width + int(c.std_features), top, 3, blur_kernel=c.blur_kernel)
        self.final_linear = nn.Sequential(EqualLinear(top * 4 * 4, top, activate=True), EqualLinear(top, 1))

    def run(self, image: torch.Tensor) -> DiscriminatorOutput:
        """image: (B, C, S, S) in [-1, 1] -> logits (B, 1) and the intermediate activations."""
        c = self.config
        _check_image("Discriminator image", image, c.in_channels, c.image_size)
        acts: list[torch.Tensor] = []
        x = image
        for layer in self.convs:
            x = layer(x)
            acts.append(x)
        if c.std_features:
            x = torch.cat([x, _minibatch_stddev(x, c.stddev_group)], dim=1)
        x = self.final_conv(x)  # (B, C4, 4, 4)
        acts.append(x)
        return DiscriminatorOutput(logits=self.final_linear(x.reshape(x.shape[0], -1)), activations=acts)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image: (B, C, S, S) in [-1, 1] -> logits (B, 1)."""
        return self.run(image).logits


def _minibatch_stddev(x: torch.Tensor, group: int) -> torch.Tensor:
    """StyleGAN2's minibatch standard deviation: x (B, C, H, W) -> (B, 1, H, W), the std over groups of
    ``min(B, group)`` samples, averaged over channels and pixels."""
    b, ch, h, w = x.shape
    g = min(b, group)
    if b % g:
        raise ValueError(f"minibatch stddev: batch {b} is not divisible by the group size {g}")
    y = x.reshape(g, -1, 1, ch, h, w)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8)  # (B/g, 1, C, H, W)
    y = y.mean(dim=(2, 3, 4), keepdim=True).squeeze(2)  # (B/g, 1, 1, 1)
    return y.repeat(g, 1, h, w)  # (B, 1, H, W)
