"""Configuration of DINAR's neural avatar (texture pipeline, finetuning, video), every size a field.

Defaults are DINAR's official sizes (configs/eval.yaml, configs/finetune_avatar.yaml); ``configs/neural.yaml``
restates them for the CLI. :meth:`NeuralAvatarConfig.tiny` gives the sizes the CPU tests use.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, Optional

from dinar_core.diffusion.config import ScheduleConfig
from dinar_core.nets.config import (DinarConfig, DiscriminatorConfig, EncoderConfig, GeneratorConfig, RendererConfig,
                                    UNetConfig, UVLayoutConfig, VQConfig)

if TYPE_CHECKING:  # torch is imported where a device is resolved: `tasks.config` (and `dinar status`) stay torch-free
    import torch

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["fp32", "bf16", "fp16"]

# The neural texture = generator channels + RGB (3) + known mask (1) + inpaint ring (1).
EXTRA_TEXTURE_CHANNELS = 5


@dataclass(frozen=True)
class FinetuneConfig:
    """Per-avatar finetuning of the texture's RGB channels (DINAR's ``TextureTune``, finetune_avatar.yaml).

    Attributes:
        enabled: run the finetuning at all (DINAR always does in ``inference.py``).
        steps: generator/discriminator iterations without back finetuning (DINAR: 64).
        back: back finetuning (DINAR's ``--finetune_back``): `back_steps` iterations instead of `steps`, the first
            `back_rescale_steps` only rescaling the colours.
        back_steps: iterations with back finetuning (DINAR: 128).
        back_rescale_steps: with back finetuning, the first iterations only fit the global per-channel scale and
            shift of the RGB channels (DINAR: 64); without it this is 0.
        lr_texture: Adam learning rate of the texture, scales and shifts (DINAR's lr_G: 2e-3).
        lr_discriminator: Adam learning rate of the discriminator (DINAR's lr_D: 4e-4).
        beta1, beta2: Adam betas (DINAR: 0, 0.99).
        l2_weight: weight of the masked MSE between the render and the photo (1).
        adversarial_weight: weight of the non-saturating generator loss and of the logistic discriminator loss (0.01).
        r1_weight: R1 penalty weight (0.1), applied as ``weight / 2 * r1_every * R1``.
        r1_every: every this many discriminator steps the step is an R1 step instead (16).
        lpips_weight: weight of the LPIPS-VGG loss when ``lpips_weights`` is given (1).
        lpips_weights: path to a local LPIPS-VGG state dict (``lpips.LPIPS(net='vgg').state_dict()``); None skips
            the perceptual loss (DINAR uses it; we never download weights).
        lpips_crop: side of the random crop (centred on a random projected vertex) LPIPS sees (DINAR: 256).
        grad_threshold, grad_sharpness, grad_blur: the texture-gradient mask from the normal angles:
            ``blur_k(n * max(1 - exp((threshold - n) * sharpness), 0))`` (DINAR: 0.6, 20, 5).
        mix_blur: box-blur size of the known mask when the tuned texels are blended with the source (DINAR: 10).
    """

    enabled: bool = True
    steps: int = 64
    back: bool = False
    back_steps: int = 128
    back_rescale_steps: int = 64
    lr_texture: float = 2e-3
    lr_discriminator: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.99
    l2_weight: float = 1.0
    adversarial_weight: float = 0.01
    r1_weight: float = 0.1
    r1_every: int = 16
    lpips_weight: float = 1.0
    lpips_weights: Optional[str] = None
    lpips_crop: int = 256
    grad_threshold: float = 0.6
    grad_sharpness: float = 20.0
    grad_blur: int = 5
    mix_blur: int = 10

    def schedule(self, finetune_back: bool) -> tuple[int, int]:
        """(total steps, rescale-only steps) for a run with or without back finetuning."""
        return (self.back_steps, self.back_rescale_steps) if finetune_back else (self.steps, 0)


@dataclass(frozen=True)
class VideoConfig:
    """DINAR's video maker (``utils/visualization/video_maker.py``).

    Attributes:
        fps: frames per second (30).
        turntable_seconds: length of the rotation video made when no animation is given (12 s).
        max_frames: cap on the frames rendered (None: all); handy for previews and tests.
        segm_threshold: mask threshold of the renderer in videos (DINAR's zero_threshold 0.5).
        exponential_transparency: fade the mask above the threshold instead of cutting (DINAR: on).
    """

    fps: int = 30
    turntable_seconds: float = 12.0
    max_frames: Optional[int] = None
    segm_threshold: float = 0.5
    exponential_transparency: bool = True


@dataclass(frozen=True)
class NeuralAvatarConfig:
    """Everything the neural avatar needs; defaults = DINAR's official sizes.

    Attributes:
        image_size: side of the square crop the person is resized to (DINAR: 512).
        texture_size: side of the neural texture (DINAR: 256).
        crop_scale: enlargement of the body and mask boxes before the crop (DINAR: 1.2).
        focal: focal length in pixels of the source photo's camera (DINAR: 5000).
        encoder, generator, vq, unet, renderer, discriminator, schedule, uv_layout: the networks' sizes.
        ddim_steps: DDIM steps (DINAR: 200); must give timesteps below the schedule length.
        ddim_eta: DDIM stochasticity (DINAR: 1).
        ddim_dtype: autocast precision of the UNet calls ('fp32', 'bf16', 'fp16').
        seed: seeds the one torch.Generator that draws every random number of a run.
        device: 'auto' (CUDA when available), 'cpu' or 'cuda'.
        randomize_generator_noise: draw fresh generator noise (DINAR at inference) instead of the stored planes.
        white_overflow_quirk: reproduce DINAR's uint8 overflow when sampling the photo into the texture (a pure
            white pixel, 1.0 -> 256, wraps to black). Off by default: values are clipped to 255.
        border_row_quirk: reproduce DINAR's clamp of texel positions at the texture border, which moves the
            whole (u, v) pair when one coordinate hits the border. Off by default: each coordinate is clamped
            to [1, T - 2] on its own.
        finetune: per-avatar finetuning.
        video: the video maker.
    """

    image_size: int = 512
    texture_size: int = 256
    crop_scale: float = 1.2
    focal: float = 5000.0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    vq: VQConfig = field(default_factory=VQConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    renderer: RendererConfig = field(default_factory=RendererConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    uv_layout: UVLayoutConfig = field(default_factory=UVLayoutConfig)
    ddim_steps: int = 200
    ddim_eta: float = 1.0
    ddim_dtype: Precision = "fp32"
    seed: int = 0
    device: Device = "auto"
    randomize_generator_noise: bool = True
    white_overflow_quirk: bool = False
    border_row_quirk: bool = False
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    video: VideoConfig = field(default_factory=VideoConfig)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def texture_channels(self) -> int:
        """Channels of the neural texture (DINAR: 16 + 5 = 21)."""
        return self.generator.output_channels + EXTRA_TEXTURE_CHANNELS

    def validate(self) -> None:
        """Raise ValueError naming the fields whose sizes do not fit together."""
        c = self.texture_channels
        problems = []
        checks = [
            (self.encoder.image_size == self.image_size, f"encoder.image_size {self.encoder.image_size} != image_size {self.image_size}"),
            (self.discriminator.image_size == self.image_size,
             f"discriminator.image_size {self.discriminator.image_size} != image_size {self.image_size}"),
            (self.generator.texture_size == self.texture_size,
             f"generator.texture_size {self.generator.texture_size} != texture_size {self.texture_size}"),
            (self.encoder.style_dim == self.generator.style_dim,
             f"encoder.style_dim {self.encoder.style_dim} != generator.style_dim {self.generator.style_dim}"),
            (self.vq.in_channels == c and self.vq.out_channels == c,
             f"vq.in_channels/out_channels {self.vq.in_channels}/{self.vq.out_channels} != texture channels {c} "
             "(generator.output_channels + 5)"),
            (self.vq.resolution == self.texture_size, f"vq.resolution {self.vq.resolution} != texture_size {self.texture_size}"),
            (self.renderer.in_channels_ntex == c, f"renderer.in_channels_ntex {self.renderer.in_channels_ntex} != {c}"),
            (self.unet.in_channels == 2 * self.vq.embed_dim + 1,
             f"unet.in_channels {self.unet.in_channels} != 2 * vq.embed_dim + 1 = {2 * self.vq.embed_dim + 1}"),
            (self.unet.out_channels == self.vq.embed_dim, f"unet.out_channels {self.unet.out_channels} != vq.embed_dim"),
            (self.image_size % (2 ** self.renderer.n_downsampling) == 0,
             f"image_size {self.image_size} not divisible by 2**renderer.n_downsampling"),
            (self.ddim_steps >= 1, f"ddim_steps must be >= 1, got {self.ddim_steps}"),
            (self.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {self.device!r}"),
            (self.ddim_dtype in ("fp32", "bf16", "fp16"), f"ddim_dtype must be fp32, bf16 or fp16, got {self.ddim_dtype!r}"),
            (self.crop_scale > 0, f"crop_scale must be > 0, got {self.crop_scale}"),
        ]
        problems = [msg for ok, msg in checks if not ok]
        if problems:
            raise ValueError("NeuralAvatarConfig: " + "; ".join(problems))

    def dinar_config(self, with_discriminator: bool = True) -> DinarConfig:
        """The network container's config (DinarModel)."""
        return DinarConfig(encoder=self.encoder, generator=self.generator, compress_branch=self.vq, unet=self.unet,
                           renderer=self.renderer, schedule=self.schedule, uv_layout=self.uv_layout,
                           discriminator=self.discriminator if with_discriminator else None)

    def resolve_device(self) -> torch.device:
        """'auto' -> CUDA when available, else the CPU."""
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("NeuralAvatarConfig.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
        return torch.device(self.device)

    @classmethod
    def tiny(cls, num_faces: int = 20908, num_uv_verts: int = 11438, **overrides) -> "NeuralAvatarConfig":
        """Test sizes: 64 px crops, 32 px textures, 8x8 latents, narrow networks, 4 DDIM steps, CPU.

        num_faces / num_uv_verts: the UV layout's sizes (a synthetic mesh may have its own).
        """
        base = cls(
            image_size=64, texture_size=32,
            encoder=EncoderConfig(image_size=64, style_dim=16, channel_base=8, channel_multiplier=1, max_channels=16),
            generator=GeneratorConfig(texture_size=32, output_channels=16, style_dim=16, channel_base=8,
                                      channel_multiplier=1, max_channels=16),
            vq=VQConfig(base_channels=16, channel_mult=(1, 2, 2), num_res_blocks=1, n_embed=32, resolution=32),
            unet=UNetConfig(image_size=8, model_channels=16, channel_mult=(1, 2), attention_resolutions=(2,),
                            num_heads=2),
            renderer=RendererConfig(ngf=8, n_downsampling=2, n_blocks=1),
            discriminator=DiscriminatorConfig(image_size=64, channel_base=8, channel_multiplier=1, max_channels=16),
            uv_layout=UVLayoutConfig(num_faces=num_faces, num_uv_verts=num_uv_verts),
            ddim_steps=4, device="cpu",
            finetune=FinetuneConfig(steps=6, back_steps=8, back_rescale_steps=3, r1_every=4, lpips_crop=32, mix_blur=3),
            video=VideoConfig(fps=10, turntable_seconds=0.4),
        )
        return replace(base, **overrides) if overrides else base
