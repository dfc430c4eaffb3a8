"""The networks' config dataclasses (sizes, defaults = DINAR's), torch-free so that `tasks.config` (and
`dinar status`, `dinar --help`) never import torch. Each network module re-exports its own config from here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from dinar_core.diffusion.config import ScheduleConfig

# 1D taps of StyleGAN2's anti-aliasing filter (re-exported by ``dinar_core.nets.ops``).
DEFAULT_BLUR = (1, 3, 3, 1)


def stylegan2_channels(resolution: int, channel_multiplier: int, channel_base: int = 128,
                       max_channels: int = 512) -> int:
    """Feature width at `resolution` in StyleGAN2's (and DINAR's) layout.

    ``min(base * cm, max)`` up to 32x32, then halving with every doubling of resolution from
    ``base * cm`` at 64x64 (not capped there, as in DINAR). base 128, cm 2 -> 4..64: 256, 128: 128, 256: 64, 512: 32.
    """
    top = channel_base * channel_multiplier
    if resolution <= 32:
        return min(top, max_channels)
    width = top * 64 // resolution
    if width < 1 or top * 64 % resolution:
        raise ValueError(f"channel_base*channel_multiplier={top} gives no integer width at resolution {resolution}")
    return width


def _log2(size: int, what: str, minimum: int = 8) -> int:
    log = int(math.log2(size)) if size > 0 else 0
    if size < minimum or 2 ** log != size:
        raise ValueError(f"{what} must be a power of two >= {minimum}, got {size}")
    return log


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes of the image -> style encoder; defaults are DINAR's (``generators.style_gan_v2.Encoder`` with
    image_size 512, channel_multiplier 2).

    Attributes:
        image_size: side of the square input image (power of two).
        image_channels: channels of the photo; a mask and a noise plane are appended (DINAR: 3 -> 5 inputs).
        style_dim: length of the output style vector (DINAR: 512).
        channel_multiplier: StyleGAN2 width multiplier (DINAR: 2).
        channel_base: width unit (StyleGAN2: 128; tiny tests use e.g. 8).
        max_channels: cap of the low-resolution widths (StyleGAN2: 512).
        first_kernel: kernel of the first 1-layer conv (DINAR's ``k_first``: 1).
        lr_mul: equalised-lr multiplier of every layer (DINAR: 0.01).
        blur_kernel: 1D taps of the anti-aliasing filter.
    """

    image_size: int = 512
    image_channels: int = 3
    style_dim: int = 512
    channel_multiplier: int = 2
    channel_base: int = 128
    max_channels: int = 512
    first_kernel: int = 1
    lr_mul: float = 0.01
    blur_kernel: tuple[int, ...] = DEFAULT_BLUR

    def __post_init__(self) -> None:
        _log2(self.image_size, "EncoderConfig.image_size")

    def channels(self, resolution: int) -> int:
        return stylegan2_channels(resolution, self.channel_multiplier, self.channel_base, self.max_channels)


@dataclass(frozen=True)
class GeneratorConfig:
    """Sizes of the style -> neural-texture generator; defaults are DINAR's (``generators.style_gan_v2.Generator``
    with texture_size 256, output_channels 16, channel_multiplier 2, no additive input).

    Attributes:
        texture_size: side of the output texture (power of two >= 8).
        output_channels: channels of the neural texture the generator makes (DINAR: 16).
        style_dim: length of the style vector (DINAR: 512).
        channel_multiplier / channel_base / max_channels: widths, as in ``EncoderConfig``.
        blur_kernel: 1D taps of the upsampling filter.
    """

    texture_size: int = 256
    output_channels: int = 16
    style_dim: int = 512
    channel_multiplier: int = 2
    channel_base: int = 128
    max_channels: int = 512
    blur_kernel: tuple[int, ...] = DEFAULT_BLUR

    def __post_init__(self) -> None:
        _log2(self.texture_size, "GeneratorConfig.texture_size")

    def channels(self, resolution: int) -> int:
        return stylegan2_channels(resolution, self.channel_multiplier, self.channel_base, self.max_channels)

    @property
    def num_noise_layers(self) -> int:
        """One noise plane per styled conv: 1 at 4x4 plus 2 per resolution from 8 up (DINAR: 13)."""
        return (_log2(self.texture_size, "texture_size") - 2) * 2 + 1

    def noise_resolution(self, index: int) -> int:
        return 2 ** ((index + 5) // 2)  # 4, 8, 8, 16, 16, ...


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Sizes of the StyleGAN2 discriminator; defaults are DINAR's finetuning discriminator
    (``discriminators.style_gan_v2.Discriminator`` with image_size 512, channel_multiplier 2).

    Attributes:
        image_size: side of the square input (power of two).
        in_channels: channels of the input image (3).
        channel_multiplier / channel_base / max_channels: widths, as in ``EncoderConfig``.
        first_kernel: kernel of the first conv (DINAR's ``k_first``: 1).
        std_features: append StyleGAN2's minibatch-stddev feature before ``final_conv`` (DINAR: off).
        stddev_group: group size of that feature.
        blur_kernel: 1D taps of the anti-aliasing filter.
    """

    image_size: int = 512
    in_channels: int = 3
    channel_multiplier: int = 2
    channel_base: int = 128
    max_channels: int = 512
    first_kernel: int = 1
    std_features: bool = False
    stddev_group: int = 4
    blur_kernel: tuple[int, ...] = DEFAULT_BLUR

    def __post_init__(self) -> None:
        _log2(self.image_size, "DiscriminatorConfig.image_size")

    def channels(self, resolution: int) -> int:
        return stylegan2_channels(resolution, self.channel_multiplier, self.channel_base, self.max_channels)


@dataclass(frozen=True)
class RendererConfig:
    """Sizes and options of the neural renderer; defaults are DINAR's (configs/eval.yaml ``renderer_config``
    with the ``renderers.pix2pix.Renderer`` defaults).

    Attributes:
        in_channels_ntex: channels of the neural texture (DINAR: 21).
        ngf: width of the U-Net's first level (DINAR: 64).
        n_downsampling: U-Net levels; the image side must be divisible by ``2**n_downsampling`` (DINAR: 3).
        n_blocks: residual blocks at the U-Net bottom (DINAR: 3).
        n_out: feature channels between the U-Net and the heads (DINAR: 16, fixed in its code).
        normalization: norm of the pre-processing layers and heads; the U-Net always uses batch norm, as DINAR's.
        hardsegm: force the mask to 1 where the rasterised body covers the pixel (DINAR: True).
        segm_threshold: mask values below it become transparent when compositing (DINAR: 0 = off; its video
            maker uses 0.5).
        exponential_transparency: with a threshold, fade the mask smoothly instead of cutting it (DINAR's
            default; its formula, see ``transparency``).
    """

    in_channels_ntex: int = 21
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 3
    n_out: int = 16
    normalization: Literal["batch", "instance"] = "batch"
    hardsegm: bool = True
    segm_threshold: float = 0.0
    exponential_transparency: bool = True

    def __post_init__(self) -> None:
        if self.normalization not in ("batch", "instance"):
            raise ValueError(f"RendererConfig.normalization must be 'batch' or 'instance', got {self.normalization!r}")
        if self.n_downsampling < 0 or self.n_blocks < 0:
            raise ValueError("RendererConfig: n_downsampling and n_blocks must be >= 0")


@dataclass(frozen=True)
class UNetConfig:
    """Sizes of the UNet; defaults are DINAR's (configs/eval.yaml, ``unet_config``).

    Attributes:
        image_size: latent side (64); informative only, any size divisible by ``2**(levels-1)`` works.
        in_channels: noisy latent + condition channels (6 + 7 = 13).
        out_channels: predicted noise channels (6).
        model_channels: base width (256); the timestep embedding has ``4 * model_channels`` features.
        channel_mult: width multiplier per level (256, 512, 768, 1024).
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        attention_resolutions: downsampling factors at which attention follows each residual block
            (8, 4, 2 -> the 32x32, 16x16 and 8x8 levels of a 64x64 latent); the middle block always attends.
        num_heads: attention heads (8), unless ``num_head_channels`` > 0 fixes the head width instead.
        num_head_channels: channels per head, -1 to use ``num_heads``.
        resblock_updown: resample with residual blocks (DINAR) instead of strided conv / nearest+conv.
        conv_resample: with ``resblock_updown`` False, resample with convolutions (else pooling / nearest).
        use_scale_shift_norm: FiLM-style timestep conditioning (DINAR: False).
        dropout: dropout in residual blocks (0).
        norm_groups: GroupNorm groups (DINAR: 8).
        preproc_input: apply DINAR's ``preproc_rgb`` / ``preproc_segm`` convs to the input.
    """

    image_size: int = 64
    in_channels: int = 13
    out_channels: int = 6
    model_channels: int = 256
    channel_mult: tuple[int, ...] = (1, 2, 3, 4)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (8, 4, 2)
    num_heads: int = 8
    num_head_channels: int = -1
    resblock_updown: bool = True
    conv_resample: bool = True
    use_scale_shift_norm: bool = False
    dropout: float = 0.0
    norm_groups: int = 8
    preproc_input: bool = True

    def __post_init__(self) -> None:
        if self.preproc_input and self.in_channels < 5:
            raise ValueError(f"UNetConfig: preproc_input needs in_channels >= 5, got {self.in_channels}")
        if self.num_heads <= 0 and self.num_head_channels <= 0:
            raise ValueError("UNetConfig: set num_heads or num_head_channels")
        widths = {self.model_channels * m for m in self.channel_mult}
        bad = sorted(w for w in widths if w % self.norm_groups)
        if bad:
            raise ValueError(f"UNetConfig: widths {bad} are not divisible by norm_groups={self.norm_groups}")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)


@dataclass(frozen=True)
class VQConfig:
    """Sizes of the VQ autoencoder; defaults are DINAR's (configs/eval.yaml, ``compress_branch_config``).

    Attributes:
        in_channels: channels of the neural texture fed to the encoder (DINAR: 21).
        out_channels: channels the decoder produces (DINAR: 21; at least 5 for the RGB/mask heads).
        base_channels: width of the first level (DINAR's ``ch``).
        channel_mult: width multiplier per level; ``len - 1`` downsamplings by 2 (256 -> 64 for three levels).
        num_res_blocks: residual blocks per encoder level (the decoder has one more per level).
        attn_resolutions: resolutions with self-attention after each residual block (DINAR: none; the middle
            block always has one).
        z_channels: channels of the encoder output and decoder input.
        embed_dim: channels of the latent (DINAR: 6), also the codebook vector length.
        n_embed: number of codebook vectors (DINAR: 8192).
        resolution: texture side (DINAR: 256); only used to place ``attn_resolutions``.
        norm_groups: GroupNorm groups (DINAR: 16).
        dropout: dropout inside residual blocks (0 at inference).
    """

    in_channels: int = 21
    out_channels: int = 21
    base_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = ()
    z_channels: int = 6
    embed_dim: int = 6
    n_embed: int = 8192
    resolution: int = 256
    norm_groups: int = 16
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.out_channels < 5:
            raise ValueError(f"VQConfig.out_channels must be >= 5 (RGB at [-5:-2], masks at [-2:]), got {self.out_channels}")
        widths = [self.base_channels * m for m in self.channel_mult]
        bad = [w for w in widths if w % self.norm_groups]
        if bad:
            raise ValueError(f"VQConfig: channel widths {bad} are not divisible by norm_groups={self.norm_groups}")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)


@dataclass(frozen=True)
class UVLayoutConfig:
    """Sizes of the UV layout tensors DINAR keeps in its checkpoint (SMPL-X with UV seams split).

    Attributes:
        num_faces: triangles (20908), rows of ``uv_faces`` / ``normal_faces``.
        num_uv_verts: UV-split vertices (11438), rows of ``uv_values``.
    """

    num_faces: int = 20908
    num_uv_verts: int = 11438


@dataclass(frozen=True)
class DinarConfig:
    """Every sub-network's config; defaults are DINAR's official sizes (configs/eval.yaml).

    Attributes:
        encoder, generator: StyleGAN2 image encoder and texture generator (first stage).
        compress_branch: texture VQ autoencoder.
        unet: denoising UNet (loaded with DINAR's EMA weights).
        renderer: pix2pix neural renderer.
        schedule: diffusion noise schedule.
        uv_layout: sizes of the rasterizer tensors.
        discriminator: StyleGAN2 discriminator for per-avatar finetuning; None to leave it out (its checkpoint
            weights are then recorded as unused).
        keep_training_unet: also hold DINAR's non-EMA UNet weights (``model.*``) in ``unet_train``.
        ema_decay: value written as ``model_ema.decay`` (DINAR: 0.9999).
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    compress_branch: VQConfig = field(default_factory=VQConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    renderer: RendererConfig = field(default_factory=RendererConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    uv_layout: UVLayoutConfig = field(default_factory=UVLayoutConfig)
    discriminator: DiscriminatorConfig | None = None
    keep_training_unet: bool = False
    ema_decay: float = 0.9999
