"""DINAR's neural renderer: a rasterised UV map + neural texture -> RGB image and person mask.

The texture is first refined by two 3x3 conv layers, sampled at the rasterised UVs (``grid_sample``), and
concatenated with learned features of the raw UV map and of the coverage mask. A pix2pixHD-style U-Net with skip
connections (``model``) turns that into 16 feature channels, from which ``rgb_head`` (tanh) and ``segm_head``
(sigmoid) predict the colour and the soft mask. With ``hardsegm`` the mask is forced to 1 wherever the body
covers the pixel, and the colour is composited over the background.

Parameter names equal DINAR's ``renderers.pix2pix.Renderer`` (``ntex_preproc.0.weight``,
``model.resblocks.0.conv_block.1.weight`` ...), so ``first_stage.renderer.*`` loads with strict key matching.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dinar_core.nets.config import RendererConfig  # noqa: F401  (re-exported: torch-free definition)
from dinar_core.nets.ops import EqualConv2d, FusedLeakyReLU

# DINAR's segm_head always predicts 3 channels (only the first is used as the person mask).
SEGM_HEAD_CHANNELS = 3


@dataclass
class RendererPrediction:
    """The network's raw prediction. foreground: (B, 3, H, W) in [-1, 1] colour; segm: (B, 1, H, W) in [0, 1]
    soft mask (with ``hardsegm``: forced to 1 on the body)."""

    foreground: torch.Tensor
    segm: torch.Tensor


@dataclass
class RenderOutput:
    """rgb: (B, 3, H, W) in [-1, 1], the person composited over the background;
    segm: (B, 1, H, W) in [0, 1], the alpha used for that compositing (DINAR's ``fake_segm``);
    foreground: (B, 3, H, W) in [-1, 1], the predicted colour before compositing."""

    rgb: torch.Tensor
    segm: torch.Tensor
    foreground: torch.Tensor


def transparency(segm: torch.Tensor, threshold: float, exponential: bool) -> torch.Tensor:
    """Alpha from a soft mask with a threshold (DINAR's video maker: threshold 0.5, exponential).

    segm: (B, 1, H, W) in [0, 1]. Exponential: ``(1 - exp(20 (t - s))) * (1 + exp(70 (s - t - 0.2)))`` clipped to
    [0, 1]: 0 at ``s <= t``, a quick fade-in just above t, and 1 well above it. Otherwise a hard cut
    (``s < t`` -> 0). A threshold of 0 leaves the mask unchanged.
    """
    if threshold == 0:
        return segm
    if exponential:
        fade = 1 - torch.exp((threshold - segm) * 20.0)
        boost = 1 + torch.exp((segm - threshold - 0.2) * 70.0)
        return (fade * boost).clamp(0.0, 1.0)
    return torch.where(segm < threshold, torch.zeros_like(segm), segm)


def composite(foreground: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor | None) -> torch.Tensor:
    """foreground: (B, 3, H, W) in [-1, 1]; alpha: (B, 1, H, W); background: (B or 1, 3, H, W) in [0, 1]
    (DINAR's convention: white = ones) or None for black. Returns (B, 3, H, W) in [-1, 1]."""
    fg = (foreground + 1) / 2
    out = fg * alpha if background is None else fg * alpha + background.to(fg.dtype) * (1 - alpha)
    return out * 2 - 1


def _norm(kind: str, channels: int) -> nn.Module:
    # DINAR passes affine=True to both kinds; instance norm keeps no running statistics.
    return nn.BatchNorm2d(channels, affine=True) if kind == "batch" else nn.InstanceNorm2d(channels, affine=True)


def _conv_norm_act(in_ch: int, out_ch: int, norm: str) -> list[nn.Module]:
    return [EqualConv2d(in_ch, out_ch, 3, 1, 1, bias=False), _norm(norm, out_ch), FusedLeakyReLU(out_ch)]


class ResnetBlock(nn.Module):
    """``x + conv_block(x)`` with reflection padding; ``conv_block`` indices 1, 2, 3, 5, 6 hold parameters."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), EqualConv2d(dim, dim, 3), nn.BatchNorm2d(dim), FusedLeakyReLU(dim),
            nn.ReflectionPad2d(1), EqualConv2d(dim, dim, 3), nn.BatchNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class SkipUNet(nn.Module):
    """pix2pixHD global generator with U-Net skips (DINAR's ``GlobalGeneratorSkip``):
    (B, in, H, W) -> (B, out, H, W); H and W divisible by ``2**n_downsampling``."""

    def __init__(self, in_channels: int, out_channels: int, ngf: int, n_downsampling: int, n_blocks: int):
        super().__init__()
        self.n_downsampling = n_downsampling
        self.start = nn.Sequential(nn.ReflectionPad2d(3), EqualConv2d(in_channels, ngf, 7), nn.BatchNorm2d(ngf),
                                   FusedLeakyReLU(ngf))
        self.downsamples = nn.ModuleList(
            nn.Sequential(EqualConv2d(ngf * 2 ** i, ngf * 2 ** (i + 1), 3, stride=2, padding=1),
                          nn.BatchNorm2d(ngf * 2 ** (i + 1)), FusedLeakyReLU(ngf * 2 ** (i + 1)))
            for i in range(n_downsampling)
        )
        bottom = ngf * 2 ** n_downsampling
        self.resblocks = nn.Sequential(*[ResnetBlock(bottom) for _ in range(n_blocks)])
        ups = []
        for i in range(n_downsampling):
            width = ngf * 2 ** (n_downsampling - i)  # channels of x and of the skip at this level
            ups.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"),
                                     EqualConv2d(2 * width, width // 2, 3, padding=1),
                                     nn.BatchNorm2d(width // 2), FusedLeakyReLU(width // 2)))
        self.upsamples = nn.ModuleList(ups)
        self.final = nn.Sequential(nn.ReflectionPad2d(3), EqualConv2d(ngf, out_channels, 7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.start(x)
        skips = []
        for down in self.downsamples:
            x = down(x)
            skips.append(x)
        x = self.resblocks(x)
        for up, skip in zip(self.upsamples, reversed(skips)):
            # the skip is concatenated *before* upsampling: both are at the same (coarse) resolution here
            x = up(torch.cat([x, skip], dim=1))
        return self.final(x)


def sample_texture(texture: torch.Tensor, uv: torch.Tensor, uv_mask: torch.Tensor) -> torch.Tensor:
    """Texture lookup at rasterised UVs, zero off the body.

    texture: (B, C, T, T); uv: (B, 2, H, W) with (u, v) in [-1, 1] (u -> texture column, v -> row; background
    -10, i.e. outside); uv_mask: (B, 1, H, W). Returns (B, C, H, W) (bilinear, ``align_corners=True``).
    """
    sampled = F.grid_sample(texture, uv.permute(0, 2, 3, 1).to(texture.dtype), mode="bilinear",
                            padding_mode="zeros", align_corners=True)
    return sampled * uv_mask.to(sampled.dtype)


class NeuralRenderer(nn.Module):
    """Neural texture + rasterised UV map -> RGB image and mask. Call ``.eval()`` for inference (batch norm
    running statistics, as DINAR)."""

    def __init__(self, config: RendererConfig = RendererConfig()):
        super().__init__()
        self.config = config
        c = config
        n = c.in_channels_ntex
        self.ntex_preproc = nn.Sequential(*_conv_norm_act(n, n, c.normalization), *_conv_norm_act(n, n, c.normalization))
        self.uv_preproc = nn.Sequential(*_conv_norm_act(2, 8, c.normalization), *_conv_norm_act(8, 8, c.normalization))
        self.uv_mask_preproc = nn.Sequential(*_conv_norm_act(1, 4, c.normalization),
                                             *_conv_norm_act(4, 4, c.normalization))
        self.model = SkipUNet(n + 8 + 4, c.n_out, c.ngf, c.n_downsampling, c.n_blocks)

        def head(n_hidden_convs: int, out: int, act: nn.Module) -> nn.Sequential:
            layers: list[nn.Module] = [_norm(c.normalization, c.n_out), FusedLeakyReLU(c.n_out)]
            for _ in range(n_hidden_convs):
                layers += _conv_norm_act(c.n_out, c.n_out, c.normalization)
            return nn.Sequential(*layers, EqualConv2d(c.n_out, out, 3, 1, 1, bias=True), act)

        self.rgb_head = head(2, 3, nn.Tanh())
        self.segm_head = head(4, SEGM_HEAD_CHANNELS, nn.Sigmoid())

    def _check(self, ntexture: torch.Tensor, uv: torch.Tensor, uv_mask: torch.Tensor,
               background: torch.Tensor | None) -> None:
        c = self.config
        if ntexture.ndim != 4 or ntexture.shape[1] != c.in_channels_ntex:
            raise ValueError(f"NeuralRenderer: expected ntexture (B, {c.in_channels_ntex}, T, T), got "
                             f"{tuple(ntexture.shape)}")
        b = ntexture.shape[0]
        if uv.ndim != 4 or uv.shape[:2] != (b, 2):
            raise ValueError(f"NeuralRenderer: expected uv ({b}, 2, H, W), got {tuple(uv.shape)}")
        h, w = uv.shape[2:]
        if tuple(uv_mask.shape) != (b, 1, h, w):
            raise ValueError(f"NeuralRenderer: expected uv_mask ({b}, 1, {h}, {w}), got {tuple(uv_mask.shape)}")
        step = 2 ** c.n_downsampling
        if h % step or w % step:
            raise ValueError(f"NeuralRenderer: image size {h}x{w} must be divisible by 2**n_downsampling = {step}")
        if background is not None and (background.ndim != 4 or background.shape[0] not in (1, b)
                                       or tuple(background.shape[1:]) != (3, h, w)):
            raise ValueError(f"NeuralRenderer: expected background ({b} or 1, 3, {h}, {w}), got "
                             f"{tuple(background.shape)}")

    def predict(self, ntexture: torch.Tensor, uv: torch.Tensor, uv_mask: torch.Tensor) -> RendererPrediction:
        """Network part only (no compositing); inputs as in ``forward``."""
        self._check(ntexture, uv, uv_mask, None)
        tex = self.ntex_preproc(ntexture)  # (B, N, T, T)
        nrender = sample_texture(tex, uv, uv_mask)  # (B, N, H, W)
        x = torch.cat([nrender, self.uv_preproc(uv.to(tex.dtype)), self.uv_mask_preproc(uv_mask.to(tex.dtype))], 1)
        feats = self.model(x)  # (B, n_out, H, W)
        rgb = self.rgb_head(feats)
        segm = self.segm_head(feats)[:, :1]
        if self.config.hardsegm:
            segm = (segm + uv_mask.to(segm.dtype)).clamp(0.0, 1.0)
        return RendererPrediction(foreground=rgb, segm=segm)

    def forward(self, ntexture: torch.Tensor, uv: torch.Tensor, uv_mask: torch.Tensor,
                background: torch.Tensor | None = None, segm_threshold: float | None = None) -> RenderOutput:
        """Render.

        ntexture: (B, C, T, T) neural texture; uv: (B, 2, H, W) in [-1, 1], background pixels -10;
        uv_mask: (B, 1, H, W) 1 where the body covers the pixel; background: (B or 1, 3, H, W) in [0, 1], white
        when None; segm_threshold: overrides the config's (DINAR's video maker uses 0.5).
        """
        self._check(ntexture, uv, uv_mask, background)
        pred = self.predict(ntexture, uv, uv_mask)
        if background is None:
            background = torch.ones(1, 3, *uv.shape[2:], dtype=pred.foreground.dtype, device=pred.foreground.device)
        threshold = self.config.segm_threshold if segm_threshold is None else segm_threshold
        alpha = transparency(pred.segm, threshold, self.config.exponential_transparency)
        return RenderOutput(rgb=composite(pred.foreground, alpha, background), segm=alpha, foreground=pred.foreground)
