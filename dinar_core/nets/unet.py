"""Denoising UNet of DINAR's latent diffusion (LDM's ``openaimodel.UNetModel`` without cross-attention).

The network predicts the noise ``eps`` of a 6x64x64 latent given the noisy latent and a 7-channel condition
(the known latent and the known-texel mask), concatenated to 13 input channels.

DINAR-specific details reproduced because the released weights depend on them:

* GroupNorm with 8 groups (LDM: 32), computed in float32;
* ``preproc_rgb`` (3x3 conv, 3->3) and ``preproc_segm`` (3x3 conv, 2->2) applied to channels ``[-5:-2]`` and
  ``[-2:]`` of the 13-channel input before the first block. In the latent these are the last four condition
  latent channels and the mask, not RGB: a quirk ported from the texture code, kept as is;
* timestep embedding ``[cos, sin]`` (cosine half first);
* attention with the "legacy" head layout: for head ``i`` the q, k, v channels are contiguous in ``qkv``.

Parameter names equal DINAR's ``model.*`` keys with ``model.`` stripped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dinar_core.nets.config import UNetConfig  # noqa: F401  (re-exported: torch-free definition)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding, cosine half first. t: (B,) (integer or fractional steps) -> (B, dim) float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm evaluated in float32 and cast back (keeps bf16/fp16 autocast numerically safe)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps).to(x.dtype)


def _norm(channels: int, groups: int) -> GroupNorm32:
    return GroupNorm32(groups, channels)


class _Resample(nn.Module):
    """2x up (nearest) or down (avg-pool / strided conv) with an optional conv; the conv is named ``conv`` (up)
    or ``op`` (down) as in LDM."""

    def __init__(self, channels: int, up: bool, use_conv: bool):
        super().__init__()
        self.up = up
        self.use_conv = use_conv
        if up and use_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        elif not up and use_conv:
            self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            return self.conv(x) if self.use_conv else x
        return self.op(x) if self.use_conv else F.avg_pool2d(x, kernel_size=2, stride=2)


class ResBlock(nn.Module):
    """Residual block with timestep conditioning; optionally resamples by 2 (``up`` / ``down``).

    x: (B, C_in, H, W), emb: (B, E) -> (B, C_out, H', W').
    """

    def __init__(self, channels: int, emb_channels: int, out_channels: int | None, groups: int, dropout: float,
                 use_scale_shift_norm: bool = False, up: bool = False, down: bool = False):
        super().__init__()
        out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(_norm(channels, groups), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.updown = up or down
        if self.updown:
            self.h_upd = _Resample(channels, up=up, use_conv=False)
            self.x_upd = _Resample(channels, up=up, use_conv=False)
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels)
        )
        self.out_layers = nn.Sequential(
            _norm(out_channels, groups), nn.SiLU(), nn.Dropout(p=dropout), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        )
        nn.init.zeros_(self.out_layers[3].weight)
        nn.init.zeros_(self.out_layers[3].bias)
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:
            # Resample between the activation and the conv (h) and on the identity path (x).
            h = self.in_layers[:-1](x)
            h = self.in_layers[-1](self.h_upd(h))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        e = self.emb_layers(emb).to(h.dtype)[:, :, None, None]  # (B, C_out or 2*C_out, 1, 1)
        if self.use_scale_shift_norm:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Multi-head spatial self-attention (legacy head layout). x: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, num_heads: int, num_head_channels: int, groups: int):
        super().__init__()
        if num_head_channels > 0:
            if channels % num_head_channels:
                raise ValueError(f"AttentionBlock: {channels} channels not divisible by head width {num_head_channels}")
            num_heads = channels // num_head_channels
        if channels % num_heads:
            raise ValueError(f"AttentionBlock: {channels} channels not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.norm = _norm(channels, groups)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        xf = x.reshape(b, c, -1)  # (B, C, T)
        qkv = self.qkv(self.norm(xf))  # (B, 3C, T)
        t = qkv.shape[-1]
        ch = c // self.num_heads
        # Legacy layout: per head, [q | k | v] are contiguous blocks of `ch` channels.
        q, k, v = qkv.reshape(b * self.num_heads, 3 * ch, t).split(ch, dim=1)  # each (B*H, ch, T)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # (B*H, T, ch)
        a = a.transpose(1, 2).reshape(b, c, t)
        return (xf + self.proj_out(a)).reshape(b, c, *spatial)


class EmbedSequential(nn.Sequential):
    """Sequential that passes the timestep embedding to the residual blocks."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class UNet(nn.Module):
    """eps-prediction UNet: ``forward(x_t, t, cond) -> eps``."""

    def __init__(self, cfg: UNetConfig | None = None):
        super().__init__()
        self.config = cfg = cfg or UNetConfig()
        g, mc, drop, ssn = cfg.norm_groups, cfg.model_channels, cfg.dropout, cfg.use_scale_shift_norm
        emb_dim = 4 * mc
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        def res(cin: int, cout: int | None = None, **kw) -> ResBlock:
            return ResBlock(cin, emb_dim, cout, g, drop, ssn, **kw)

        def attn(ch: int) -> AttentionBlock:
            return AttentionBlock(ch, cfg.num_heads, cfg.num_head_channels, g)

        self.input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(cfg.in_channels, mc, 3, padding=1))])
        if cfg.preproc_input:
            self.preproc_rgb = EmbedSequential(nn.Conv2d(3, 3, 3, padding=1))
            self.preproc_segm = EmbedSequential(nn.Conv2d(2, 2, 3, padding=1))
        skip_chans = [mc]
        ch, ds = mc, 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [res(ch, mult * mc)]
                ch = mult * mc
                if ds in cfg.attention_resolutions:
                    layers.append(attn(ch))
                self.input_blocks.append(EmbedSequential(*layers))
                skip_chans.append(ch)
            if level != len(cfg.channel_mult) - 1:
                down = res(ch, ch, down=True) if cfg.resblock_updown else _Resample(ch, up=False, use_conv=cfg.conv_resample)
                self.input_blocks.append(EmbedSequential(down))
                skip_chans.append(ch)
                ds *= 2
        self.middle_block = EmbedSequential(res(ch), attn(ch), res(ch))
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(cfg.channel_mult))[::-1]:
            for i in range(cfg.num_res_blocks + 1):
                layers = [res(ch + skip_chans.pop(), mc * mult)]
                ch = mc * mult
                if ds in cfg.attention_resolutions:
                    layers.append(attn(ch))
                if level and i == cfg.num_res_blocks:
                    up = res(ch, ch, up=True) if cfg.resblock_updown else _Resample(ch, up=True, use_conv=cfg.conv_resample)
                    layers.append(up)
                    ds //= 2
                self.output_blocks.append(EmbedSequential(*layers))
        self.out = nn.Sequential(_norm(ch, g), nn.SiLU(), nn.Conv2d(mc, cfg.out_channels, 3, padding=1))
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x_t: (B, C_x, H, W) noisy latent; t: (B,) int64 steps; cond: (B, in_channels - C_x, H, W)
        -> eps: (B, out_channels, H, W) in x_t's dtype."""
        cfg = self.config
        if x_t.ndim != 4 or cond.ndim != 4 or x_t.shape[0] != cond.shape[0] or x_t.shape[-2:] != cond.shape[-2:]:
            raise ValueError(f"UNet: x_t {tuple(x_t.shape)} and cond {tuple(cond.shape)} must be (B, C, H, W) alike")
        if x_t.shape[1] + cond.shape[1] != cfg.in_channels:
            raise ValueError(
                f"UNet: x_t ({x_t.shape[1]} ch) + cond ({cond.shape[1]} ch) must have {cfg.in_channels} channels"
            )
        f = cfg.downsample_factor
        if x_t.shape[-1] % f or x_t.shape[-2] % f:
            raise ValueError(f"UNet: spatial size {tuple(x_t.shape[-2:])} must be divisible by {f}")
        if t.ndim == 0:
            t = t.expand(x_t.shape[0])
        if t.shape != (x_t.shape[0],):
            raise ValueError(f"UNet: t must be (B,) = ({x_t.shape[0]},), got {tuple(t.shape)}")
        emb = self.time_embed(timestep_embedding(t, cfg.model_channels))  # (B, 4*mc)
        h = torch.cat([x_t, cond], dim=1).float()  # (B, 13, H, W)
        if cfg.preproc_input:
            # DINAR overwrites h[:, -5:-2] and h[:, -2:] in place; the slices are disjoint, so this is the same.
            h = torch.cat([h[:, :-5], self.preproc_rgb(h[:, -5:-2], emb), self.preproc_segm(h[:, -2:], emb)], dim=1)
        skips = []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h).to(x_t.dtype)
