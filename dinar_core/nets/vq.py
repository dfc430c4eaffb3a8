"""VQ autoencoder that compresses the 21-channel neural texture to a 6x64x64 latent (DINAR's ``VQModel``).

DINAR uses taming-transformers' VQ-GAN encoder/decoder with four changes, all reproduced here because the
released weights depend on them:

* GroupNorm with 16 groups (taming: 32), eps 1e-6;
* LeakyReLU (slope 0.01) instead of swish everywhere;
* after ``conv_out`` the decoder re-processes the RGB channels ``[-5:-2]`` (``rgb_proc``) and the two mask
  channels ``[-2:]`` (``segm_proc``), each with BatchNorm -> LeakyReLU -> 3x3 conv;
* ``encode`` stops before the quantiser: the diffusion model works on the continuous latent, and ``decode``
  quantises first.

Parameter names (``encoder.down.0.block.1.conv2.weight``, ``quantize.embedding.weight`` ...) equal DINAR's
``first_stage.compress_branch.*`` keys with that prefix stripped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dinar_core.nets.config import VQConfig  # noqa: F401  (re-exported: torch-free definition)

# The neural texture's channel layout (see dinar-architecture.md, section 11): RGB at [-5:-2], masks at [-2:].
RGB_SLICE = slice(-5, -2)
MASK_SLICE = slice(-2, None)


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """norm -> LeakyReLU -> conv3x3, twice, plus a 1x1 shortcut when the width changes.

    x: (B, C_in, H, W) -> (B, C_out, H, W). No timestep input (DINAR's VQ blocks are built with temb 0).
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = _norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.leaky_relu(self.norm1(x)))
        h = self.conv2(self.dropout(F.leaky_relu(self.norm2(h))))
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1-conv q/k/v/proj_out. x: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = _norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        hn = self.norm(x)
        # (B, HW, C) tokens; softmax(q k^T / sqrt(C)) v, as taming's bmm formulation.
        q = self.q(hn).reshape(b, c, h * w).transpose(1, 2)
        k = self.k(hn).reshape(b, c, h * w).transpose(1, 2)
        v = self.v(hn).reshape(b, c, h * w).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, HW, C)
        out = out.transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Stride-2 3x3 conv with asymmetric zero padding (right/bottom only). (B, C, H, W) -> (B, C, H/2, W/2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest x2 then 3x3 conv. (B, C, H, W) -> (B, C, 2H, 2W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One resolution level: ``block`` (residual blocks), ``attn`` (maybe empty), optional resampler."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()

    def run(self, h: torch.Tensor) -> torch.Tensor:
        for i, blk in enumerate(self.block):
            h = blk(h)
            if len(self.attn) > 0:
                h = self.attn[i](h)
        return h


class _Mid(nn.Module):
    def __init__(self, channels: int, groups: int, dropout: float):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, groups, dropout)
        self.attn_1 = AttnBlock(channels, groups)
        self.block_2 = ResnetBlock(channels, channels, groups, dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(h)))


class VQEncoder(nn.Module):
    """Texture (B, in_channels, R, R) -> (B, z_channels, R/f, R/f), f = 2**(levels-1)."""

    def __init__(self, cfg: VQConfig):
        super().__init__()
        g = cfg.norm_groups
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.base_channels, 3, padding=1)
        in_mult = (1,) + tuple(cfg.channel_mult)
        res = cfg.resolution
        self.down = nn.ModuleList()
        block_in = cfg.base_channels
        for lvl, mult in enumerate(cfg.channel_mult):
            level = _Level()
            block_in = cfg.base_channels * in_mult[lvl]
            block_out = cfg.base_channels * mult
            for _ in range(cfg.num_res_blocks):
                level.block.append(ResnetBlock(block_in, block_out, g, cfg.dropout))
                block_in = block_out
                if res in cfg.attn_resolutions:
                    level.attn.append(AttnBlock(block_in, g))
            if lvl != len(cfg.channel_mult) - 1:
                level.downsample = Downsample(block_in)
                res //= 2
            self.down.append(level)
        self.mid = _Mid(block_in, g, cfg.dropout)
        self.norm_out = _norm(block_in, g)
        self.conv_out = nn.Conv2d(block_in, cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level.run(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.leaky_relu(self.norm_out(h)))


class VQDecoder(nn.Module):
    """Latent (B, z_channels, r, r) -> texture (B, out_channels, r*f, r*f) with DINAR's RGB and mask heads."""

    def __init__(self, cfg: VQConfig):
        super().__init__()
        g = cfg.norm_groups
        n = len(cfg.channel_mult)
        block_in = cfg.base_channels * cfg.channel_mult[-1]
        res = cfg.resolution // cfg.downsample_factor
        self.conv_in = nn.Conv2d(cfg.z_channels, block_in, 3, padding=1)
        self.mid = _Mid(block_in, g, cfg.dropout)
        levels: list[_Level] = []
        for lvl in reversed(range(n)):
            level = _Level()
            block_out = cfg.base_channels * cfg.channel_mult[lvl]
            for _ in range(cfg.num_res_blocks + 1):
                level.block.append(ResnetBlock(block_in, block_out, g, cfg.dropout))
                block_in = block_out
                if res in cfg.attn_resolutions:
                    level.attn.append(AttnBlock(block_in, g))
            if lvl != 0:
                level.upsample = Upsample(block_in)
                res *= 2
            levels.insert(0, level)  # stored by level index (0 = full resolution), run from coarse to fine
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(block_in, g)
        self.conv_out = nn.Conv2d(block_in, cfg.out_channels, 3, padding=1)
        # Index 1 of each head is the (parameter-free) activation, so the keys are rgb_proc.0 / rgb_proc.2.
        self.rgb_proc = nn.Sequential(nn.BatchNorm2d(3), nn.LeakyReLU(), nn.Conv2d(3, 3, 3, padding=1))
        self.segm_proc = nn.Sequential(nn.BatchNorm2d(2), nn.LeakyReLU(), nn.Conv2d(2, 2, 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level.run(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        h = self.conv_out(F.leaky_relu(self.norm_out(h)))
        # DINAR overwrites these channels in place; concatenation gives the same values without in-place ops.
        return torch.cat([h[:, :-5], self.rgb_proc(h[:, RGB_SLICE]), self.segm_proc(h[:, MASK_SLICE])], dim=1)


@dataclass(frozen=True)
class Quantized:
    """Output of the vector quantiser.

    Attributes:
        latent: (B, D, H, W) nearest codebook vectors (straight-through: gradients flow to the input).
        indices: (B, H, W) int64 codebook indices.
        loss: () codebook + commitment loss, taming's legacy weighting (beta on the codebook term).
    """

    latent: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor


class VectorQuantizer(nn.Module):
    """Nearest-neighbour codebook lookup (taming's ``VectorQuantizer2`` with ``legacy=True``, beta 0.25)."""

    def __init__(self, n_embed: int, embed_dim: int, beta: float = 0.25, chunk: int = 4096):
        super().__init__()
        self.embedding = nn.Embedding(n_embed, embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)
        self.beta = beta
        self.chunk = chunk  # rows per distance block: bounds the (rows, n_embed) distance matrix in memory

    def forward(self, z: torch.Tensor) -> Quantized:
        """z: (B, D, H, W) -> Quantized."""
        b, d, h, w = z.shape
        if d != self.embedding.embedding_dim:
            raise ValueError(f"VectorQuantizer: expected {self.embedding.embedding_dim} channels, got shape {tuple(z.shape)}")
        zf = z.permute(0, 2, 3, 1).reshape(-1, d)  # (B*H*W, D)
        codes = self.embedding.weight  # (N, D)
        code_sq = (codes**2).sum(dim=1)  # (N,)
        idx = []
        for s in range(0, zf.shape[0], self.chunk):
            part = zf[s : s + self.chunk]
            # |z|^2 + |e|^2 - 2 z.e (the same expansion as taming, so ties resolve the same way)
            dist = (part**2).sum(dim=1, keepdim=True) + code_sq - 2 * part @ codes.t()
            idx.append(dist.argmin(dim=1))
        indices = torch.cat(idx)  # (B*H*W,)
        zq = self.embedding(indices).view(b, h, w, d).permute(0, 3, 1, 2)  # (B, D, H, W)
        loss = torch.mean((zq.detach() - z) ** 2) + self.beta * torch.mean((zq - z.detach()) ** 2)
        zq = z + (zq - z).detach()
        return Quantized(latent=zq.contiguous(), indices=indices.view(b, h, w), loss=loss)


class VQModel(nn.Module):
    """The texture autoencoder: ``encode`` (continuous latent) and ``decode`` (quantise, then decode)."""

    def __init__(self, cfg: VQConfig | None = None):
        super().__init__()
        self.config = cfg = cfg or VQConfig()
        self.encoder = VQEncoder(cfg)
        self.decoder = VQDecoder(cfg)
        self.quantize = VectorQuantizer(cfg.n_embed, cfg.embed_dim)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, R, R) neural texture -> (B, embed_dim, R/f, R/f) pre-quantisation latent."""
        cfg = self.config
        f = cfg.downsample_factor
        if x.ndim != 4 or x.shape[1] != cfg.in_channels or x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(
                f"VQModel.encode: expected (B, {cfg.in_channels}, H, W) with H, W divisible by {f}, got {tuple(x.shape)}"
            )
        return self.quant_conv(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, embed_dim, r, r) continuous latent -> (B, out_channels, r*f, r*f) texture (quantised first)."""
        if z.ndim != 4 or z.shape[1] != self.config.embed_dim:
            raise ValueError(f"VQModel.decode: expected (B, {self.config.embed_dim}, h, w), got {tuple(z.shape)}")
        return self.decode_quantized(self.quantize(z).latent)

    def decode_quantized(self, zq: torch.Tensor) -> torch.Tensor:
        """zq: (B, embed_dim, r, r) already-quantised latent -> (B, out_channels, r*f, r*f)."""
        return self.decoder(self.post_quant_conv(zq))


def scale_latents(vq: VQModel, factor: float) -> VQModel:
    """A copy of `vq` whose latents are `factor` times `vq`'s and which decodes them as `vq` decodes the unscaled
    ones (LDM's ``scale_by_std`` folded into the weights): ``quant_conv`` and the codebook times `factor`,
    ``post_quant_conv``'s weight divided by it. Exact up to rounding: the nearest code of factor * z in the scaled
    codebook is factor times the nearest code of z. So a diffusion model trained on the scaled latents needs no
    scale at inference, and DINAR's layout (``scale_factor`` 1.0) holds it as is."""
    import copy

    if not factor > 0:
        raise ValueError(f"scale_latents: the factor must be positive, got {factor}")
    out = copy.deepcopy(vq)
    with torch.no_grad():
        out.quant_conv.weight.mul_(factor)
        if out.quant_conv.bias is not None:
            out.quant_conv.bias.mul_(factor)
        out.quantize.embedding.weight.mul_(factor)
        out.post_quant_conv.weight.div_(factor)
    return out
