"""The whole DINAR network as one container: first stage (StyleGAN2 encoder + generator, pix2pix renderer),
texture VQ autoencoder, denoising UNet (EMA weights), diffusion schedule and the UV layout tensors.

It mirrors the weights of DINAR's ``LatentDiffusion`` checkpoint (see ``dinar_core.compat.checkpoint`` for the
key map) and runs the second stage: neural texture -> latent -> DDIM inpainting -> decoded texture with the
known texels copied back. The first stage (photo -> neural texture, texture -> image) is driven by its callers
through ``encoder``, ``generator`` and ``renderer``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from dinar_core.diffusion.ddim import DDIMConfig, ProgressCallback, sample_ddim_inpaint
from dinar_core.diffusion.inpaint import copy_known_texels, make_condition
from dinar_core.diffusion.schedule import DiffusionSchedule, ScheduleConfig
from dinar_core.nets.unet import UNet, UNetConfig
from dinar_core.nets.vq import VQConfig, VQModel
from dinar_core.nets.config import (DinarConfig, DiscriminatorConfig, EncoderConfig, GeneratorConfig,  # noqa: F401
                                    RendererConfig, UVLayoutConfig)  # re-exported: torch-free definitions


@dataclass(frozen=True)
class TextureInpainting:
    """Output of :meth:`DinarModel.inpaint_texture` (DINAR's data_dict keys in brackets).

    Attributes:
        ntexture: (B, C, H, W) final neural texture: source texels where known, diffusion elsewhere ['ntexture'].
        diffusion_ntexture: (B, C, H, W) VQ-decoded diffusion sample before the copy-back ['diffusion_ntexture'].
        mask: (B, 1, H, W) copy-back weight (1 = source texel) ['mask'].
        latent: (B, D, h, w) sampled latent ['compressed' after sampling].
        source_latent: (B, D, h, w) latent of the input texture ['compressed' before sampling].
    """

    ntexture: torch.Tensor
    diffusion_ntexture: torch.Tensor
    mask: torch.Tensor
    latent: torch.Tensor
    source_latent: torch.Tensor


PhaseTimer = Callable[[str], AbstractContextManager]
"""``timer(name)`` -> a context manager around one phase ('vq_encode', 'ddim', 'vq_decode'), to time it."""


def _untimed(name: str) -> AbstractContextManager:
    return nullcontext()


def _build_first_stage(cfg: DinarConfig) -> dict[str, nn.Module]:
    from dinar_core.nets.renderer import NeuralRenderer
    from dinar_core.nets.stylegan2 import Encoder, Generator

    return {"encoder": Encoder(cfg.encoder), "generator": Generator(cfg.generator), "renderer": NeuralRenderer(cfg.renderer)}


def _build_discriminator(cfg: Any) -> nn.Module:
    from dinar_core.nets.stylegan2 import Discriminator

    return Discriminator(cfg)


class DinarModel(nn.Module):
    """Container of DINAR's networks and constant tensors.

    Sub-modules: ``encoder``, ``generator``, ``compress_branch`` (VQ), ``unet`` (EMA weights, used for
    sampling), optional ``unet_train`` (non-EMA weights), ``renderer``, optional ``discriminator``,
    ``schedule``. Buffers: ``uv_faces`` (F, 3) int32, ``uv_values`` (V, 2) float32, ``normal_faces`` (F, 3)
    int32, ``ema_decay`` () float32, ``ema_num_updates`` () int32.

    Sub-networks may be injected (e.g. already-built or shared modules); otherwise they are built from `cfg`.
    `uv_faces` / `uv_values` are DINAR's ``uv_faces.npy`` / ``uv.npy``; when given, checkpoint loading
    compares the checkpoint's copies against them, else it loads them from the checkpoint.
    """

    uv_faces: torch.Tensor
    uv_values: torch.Tensor
    normal_faces: torch.Tensor
    ema_decay: torch.Tensor
    ema_num_updates: torch.Tensor

    def __init__(
        self,
        cfg: DinarConfig | None = None,
        *,
        encoder: nn.Module | None = None,
        generator: nn.Module | None = None,
        renderer: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        uv_faces: torch.Tensor | None = None,
        uv_values: torch.Tensor | None = None,
    ):
        super().__init__()
        self.config = cfg = cfg or DinarConfig()
        built = _build_first_stage(cfg) if None in (encoder, generator, renderer) else {}
        self.encoder = encoder if encoder is not None else built["encoder"]
        self.generator = generator if generator is not None else built["generator"]
        self.compress_branch = VQModel(cfg.compress_branch)
        self.unet = UNet(cfg.unet)
        self.unet_train = UNet(cfg.unet) if cfg.keep_training_unet else None
        self.renderer = renderer if renderer is not None else built["renderer"]
        if discriminator is None and cfg.discriminator is not None:
            discriminator = _build_discriminator(cfg.discriminator)
        self.discriminator = discriminator
        self.schedule = DiffusionSchedule(cfg.schedule)

        nf, nv = cfg.uv_layout.num_faces, cfg.uv_layout.num_uv_verts
        self.uv_from_assets = uv_faces is not None and uv_values is not None
        if (uv_faces is None) != (uv_values is None):
            raise ValueError("DinarModel: give both uv_faces and uv_values (DINAR's uv_faces.npy and uv.npy) or neither")
        if uv_faces is not None and (tuple(uv_faces.shape) != (nf, 3) or tuple(uv_values.shape) != (nv, 2)):
            raise ValueError(
                f"DinarModel: uv_faces must be ({nf}, 3) and uv_values ({nv}, 2), got {tuple(uv_faces.shape)} "
                f"and {tuple(uv_values.shape)}"
            )
        faces = uv_faces.to(torch.int32) if uv_faces is not None else torch.zeros(nf, 3, dtype=torch.int32)
        self.register_buffer("uv_faces", faces)
        self.register_buffer("uv_values", uv_values.float() if uv_values is not None else torch.zeros(nv, 2))
        # DINAR's normal rasterizer reads the same uv_faces.npy, so it holds the same faces.
        self.register_buffer("normal_faces", faces.clone())
        self.register_buffer("ema_decay", torch.tensor(cfg.ema_decay, dtype=torch.float32))
        self.register_buffer("ema_num_updates", torch.tensor(0, dtype=torch.int32))

    def compress(self, ntexture: torch.Tensor) -> torch.Tensor:
        """ntexture: (B, 21, 256, 256) -> (B, 6, 64, 64) continuous latent."""
        return self.compress_branch.encode(ntexture)

    @torch.no_grad()
    def inpaint_texture(
        self,
        ntexture: torch.Tensor,
        binary_uv_map: torch.Tensor | None = None,
        *,
        ddim: DDIMConfig = DDIMConfig(),
        generator: torch.Generator | None = None,
        progress: ProgressCallback | None = None,
        timer: PhaseTimer = _untimed,
    ) -> TextureInpainting:
        """DINAR's second stage on a neural texture with unseen texels (the one inpainting path: the avatar
        pipeline calls it too).

        ntexture: (B, 21, 256, 256) with the known-texel mask in channel -2; binary_uv_map: (1, 1, 256, 256)
        or (B, 1, 256, 256) 0/1 UV layout (DINAR's SMPLX-mesh-neutral.png), optional. Random draws come from
        `generator` (see ``sample_ddim_inpaint``); `progress` is called after each DDIM step; `timer` wraps the
        phases 'vq_encode', 'ddim' and 'vq_decode'.
        """
        expected = (self.config.compress_branch.in_channels, self.config.compress_branch.resolution)
        if ntexture.ndim != 4 or ntexture.shape[1] != expected[0]:
            raise ValueError(f"inpaint_texture: expected ntexture (B, {expected[0]}, H, W), got {tuple(ntexture.shape)}")
        # 1. Compress the texture; 2. condition = latent + known mask at latent size.
        with timer("vq_encode"):
            source_latent = self.compress(ntexture)
        cond = make_condition(source_latent, ntexture[:, -2:-1])
        # 3. Sample the latent with the known region imposed at every step (EMA UNet).
        with timer("ddim"):
            sample = sample_ddim_inpaint(self.unet, self.schedule, cond, steps=ddim.steps, eta=ddim.eta,
                                         dtype=ddim.dtype, erode_mask=ddim.erode_mask, generator=generator,
                                         progress=progress)
        # 4. Decode (quantises first) and copy the known texels back.
        with timer("vq_decode"):
            decoded = self.compress_branch.decode(sample.latent)
        merged = copy_known_texels(decoded, ntexture, binary_uv_map)
        return TextureInpainting(ntexture=merged.ntexture, diffusion_ntexture=decoded, mask=merged.mask,
                                 latent=sample.latent, source_latent=source_latent)
