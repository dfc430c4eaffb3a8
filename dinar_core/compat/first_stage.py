"""Adapters for DINAR's first-stage classes: the StyleGAN2 encoder, the texture generator, the pix2pix renderer and
the finetuning discriminator.

Each builder takes DINAR's ``params`` block (as in configs/eval.yaml / configs/finetune_avatar.yaml), applies the
defaults of DINAR's class signature for the names it leaves out, and returns a subclass of our core network: the
state_dict keys are exactly those of DINAR's module (no extra prefix), and ``forward`` speaks DINAR's dicts:

* ``generators.style_gan_v2.Encoder``:   ``m({'input_rgb', 'real_segm'}[, noise=n])`` -> ``{'style': [w]}``
* ``generators.style_gan_v2.Generator``: ``m({'style': [w]}, randomize_noise=...)`` -> ``{'ntexture'}``
* ``renderers.pix2pix.Renderer``:        ``m({'ntexture', 'uv', 'uv_mask'[, 'background']})``
  -> ``{'fake_rgb', 'fake_segm'}``
* ``discriminators.style_gan_v2.Discriminator``: ``m({'disc_input'})`` -> ``{'score', 'activations'}``

Unknown parameter names raise ValueError naming them; DINAR options this project does not implement
(replicate padding, the generator's additive input, late input channels) raise ValueError too, rather than
building a network that would silently differ from DINAR's.
"""

from __future__ import annotations

from typing import Any

import torch

from dinar_core.compat.registry import register
from dinar_core.nets.renderer import NeuralRenderer, RendererConfig, composite, transparency
from dinar_core.nets.stylegan2 import (
    Discriminator,
    DiscriminatorConfig,
    Encoder,
    EncoderConfig,
    Generator,
    GeneratorConfig,
)

# Defaults of DINAR's class signatures (NB: channel_multiplier defaults to 4 there; eval.yaml passes 2).
_ENCODER_DEFAULTS = dict(input_channels=3, style_dim=512, channel_multiplier=4, late_input_channels=0,
                         blur_kernel=[1, 3, 3, 1], k_first=1, lr_mul=0.01, replicate_pad=False)
_GENERATOR_DEFAULTS = dict(style_dim=512, channel_multiplier=4, output_channels=3, blur_kernel=[1, 3, 3, 1],
                           ainp_path="xyz_512.pth", ainp_scales=[8, 16, 32, 64, 128, 256, 512], ainp_posenc=False,
                           ainp_train=False)
_RENDERER_DEFAULTS = dict(ngf=64, n_downsampling=3, n_blocks=3, normalization="batch", hardsegm=True,
                          replicate_pad=False, segm_threshold=0.0, exponential_transparency=True)
_DISCRIMINATOR_DEFAULTS = dict(input_channels=3, channel_multiplier=4, activation_layer=2, late_input_channels=0,
                               blur_kernel=[1, 3, 3, 1], k_first=1, replicate_pad=False, std_features=False)


def _resolve(where: str, params: dict, required: tuple[str, ...], defaults: dict) -> dict:
    """DINAR params + the class defaults; ValueError naming unknown or missing names."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(required) - set(defaults))
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {unknown}; known: {sorted(set(required) | set(defaults))}")
    missing = [k for k in required if k not in params]
    if missing:
        raise ValueError(f"{where}: required parameter(s) {missing} not given")
    return {**defaults, **params}


def _unsupported(where: str, name: str, value: Any, default: Any) -> None:
    if value != default:
        raise ValueError(f"{where}: {name}={value!r} is not supported by this re-implementation (only {default!r})")


# ----------------------------------------------------------------------------------------------------- encoder


def encoder_config_from_params(params: dict) -> EncoderConfig:
    """DINAR's ``generators.style_gan_v2.Encoder`` params -> EncoderConfig."""
    where = "generators.style_gan_v2.Encoder"
    p = _resolve(where, params, ("image_size",), _ENCODER_DEFAULTS)
    _unsupported(where, "late_input_channels", p["late_input_channels"], 0)
    _unsupported(where, "replicate_pad", bool(p["replicate_pad"]), False)
    return EncoderConfig(image_size=int(p["image_size"]), image_channels=int(p["input_channels"]),
                         style_dim=int(p["style_dim"]), channel_multiplier=int(p["channel_multiplier"]),
                         first_kernel=int(p["k_first"]), lr_mul=float(p["lr_mul"]),
                         blur_kernel=tuple(p["blur_kernel"]))


class DinarEncoder(Encoder):
    """``forward(data_dict, noise=None) -> {'style': [w (B, style_dim)]}``; DINAR draws the noise plane itself,
    `noise` (B, 1, S, S) lets a caller fix it."""

    def forward(self, data_dict: dict, noise: torch.Tensor | None = None,  # type: ignore[override]
                generator: torch.Generator | None = None) -> dict:
        style = super().forward(data_dict["input_rgb"], data_dict["real_segm"], noise=noise, generator=generator)
        return {"style": [style]}


@register("generators.style_gan_v2.Encoder")
def build_encoder(params: dict) -> DinarEncoder:
    return DinarEncoder(encoder_config_from_params(params))


# --------------------------------------------------------------------------------------------------- generator


def generator_config_from_params(params: dict) -> GeneratorConfig:
    """DINAR's ``generators.style_gan_v2.Generator`` params -> GeneratorConfig. The additive input (``ainp_*``)
    is not implemented: ``ainp_path`` must be given as null, as configs/eval.yaml does (DINAR's default would load
    a file ``xyz_512.pth`` that it does not ship)."""
    where = "generators.style_gan_v2.Generator"
    p = _resolve(where, params, ("texture_size",), _GENERATOR_DEFAULTS)
    if p["ainp_path"] is not None and p["ainp_scales"] is not None:
        raise ValueError(f"{where}: the additive input (ainp_path={p['ainp_path']!r}) is not supported; set "
                         "ainp_path: null as DINAR's configs/eval.yaml does")
    return GeneratorConfig(texture_size=int(p["texture_size"]), output_channels=int(p["output_channels"]),
                           style_dim=int(p["style_dim"]), channel_multiplier=int(p["channel_multiplier"]),
                           blur_kernel=tuple(p["blur_kernel"]))


class DinarGenerator(Generator):
    """``forward(data_dict, randomize_noise=True, noise=None, truncation=1, truncation_latent=None,
    return_latents=False) -> {'ntexture': (B, C, T, T)[, 'w_real']}``; only ``data_dict['style'][0]`` is used
    (DINAR repeats it for every layer)."""

    def forward(self, data_dict: dict, return_latents: bool = False, truncation: float = 1,  # type: ignore[override]
                truncation_latent: torch.Tensor | None = None, noise: list[torch.Tensor] | None = None,
                randomize_noise: bool = True, generator: torch.Generator | None = None) -> dict:
        if data_dict.get("weights_deltas") is not None:
            raise ValueError("generators.style_gan_v2.Generator: weights_deltas are not supported")
        style = data_dict["style"][0]
        if truncation != 1:
            if truncation_latent is None:
                raise ValueError("generators.style_gan_v2.Generator: truncation != 1 needs truncation_latent")
            style = truncation_latent + truncation * (style - truncation_latent)
        out = {"ntexture": super().forward(style, randomize_noise=randomize_noise, generator=generator, noise=noise)}
        if return_latents:
            n_latent = self.config.num_noise_layers + 1  # DINAR's n_latent = log_size * 2 - 2
            out["w_real"] = style[:, None].expand(-1, n_latent, -1)
        return out


@register("generators.style_gan_v2.Generator")
def build_generator(params: dict) -> DinarGenerator:
    return DinarGenerator(generator_config_from_params(params))


# ---------------------------------------------------------------------------------------------------- renderer


def renderer_config_from_params(params: dict) -> RendererConfig:
    """DINAR's ``renderers.pix2pix.Renderer`` params -> RendererConfig (``segm_channels`` only slices the mask
    head, whose first channel is the one DINAR outputs; it has no effect on the weights or the output)."""
    where = "renderers.pix2pix.Renderer"
    p = _resolve(where, params, ("in_channels_ntex", "segm_channels"), _RENDERER_DEFAULTS)
    _unsupported(where, "replicate_pad", bool(p["replicate_pad"]), False)
    if not 1 <= int(p["segm_channels"]) <= 3:
        raise ValueError(f"{where}: segm_channels must be 1..3 (the mask head has 3 channels), got {p['segm_channels']}")
    return RendererConfig(in_channels_ntex=int(p["in_channels_ntex"]), ngf=int(p["ngf"]),
                          n_downsampling=int(p["n_downsampling"]), n_blocks=int(p["n_blocks"]),
                          normalization=p["normalization"], hardsegm=bool(p["hardsegm"]),
                          segm_threshold=float(p["segm_threshold"]),
                          exponential_transparency=bool(p["exponential_transparency"]))


class DinarRenderer(NeuralRenderer):
    """``forward(data_dict) -> {'fake_rgb' (B,3,H,W) in [-1,1], 'fake_segm' (B,1,H,W)}``.

    As DINAR: ``data_dict['background']`` (B, 3, H, W) is in [0, 1] (ones = white); without it the person is
    put on black and the threshold is not applied. ``segm_threshold`` and ``exponential_transparency`` are
    plain attributes a caller may change (DINAR's video maker sets ``renderer.segm_threshold = 0.5``).
    """

    def __init__(self, config: RendererConfig):
        super().__init__(config)
        self.segm_threshold = config.segm_threshold
        self.exponential_transparency = config.exponential_transparency

    def forward(self, data_dict: dict) -> dict:  # type: ignore[override]
        ntexture, uv, uv_mask = data_dict["ntexture"], data_dict["uv"], data_dict["uv_mask"]
        background = data_dict.get("background")
        self._check(ntexture, uv, uv_mask, background)
        pred = self.predict(ntexture, uv, uv_mask)
        segm = pred.segm
        if background is not None:
            segm = transparency(segm, float(self.segm_threshold), bool(self.exponential_transparency))
        return {"fake_rgb": composite(pred.foreground, segm, background), "fake_segm": segm}


@register("renderers.pix2pix.Renderer")
def build_renderer(params: dict) -> DinarRenderer:
    return DinarRenderer(renderer_config_from_params(params))


# ----------------------------------------------------------------------------------------------- discriminator


def discriminator_config_from_params(params: dict) -> tuple[DiscriminatorConfig, int]:
    """DINAR's ``discriminators.style_gan_v2.Discriminator`` params -> (DiscriminatorConfig, activation_layer)."""
    where = "discriminators.style_gan_v2.Discriminator"
    p = _resolve(where, params, ("image_size",), _DISCRIMINATOR_DEFAULTS)
    _unsupported(where, "late_input_channels", p["late_input_channels"], 0)
    _unsupported(where, "replicate_pad", bool(p["replicate_pad"]), False)
    config = DiscriminatorConfig(image_size=int(p["image_size"]), in_channels=int(p["input_channels"]),
                                 channel_multiplier=int(p["channel_multiplier"]), first_kernel=int(p["k_first"]),
                                 std_features=bool(p["std_features"]), blur_kernel=tuple(p["blur_kernel"]))
    return config, int(p["activation_layer"])


class DinarDiscriminator(Discriminator):
    """``forward(data_dict) -> {'score' (B, 1), 'activations': activations[activation_layer]}`` on
    ``data_dict['disc_input']`` (B, 3, S, S)."""

    def __init__(self, config: DiscriminatorConfig, activation_layer: int = 2):
        super().__init__(config)
        n_acts = len(self.convs) + 1
        if not -n_acts <= activation_layer < n_acts:
            raise ValueError(f"discriminators.style_gan_v2.Discriminator: activation_layer {activation_layer} out "
                             f"of range for {n_acts} activations")
        self.activation_layer = activation_layer

    def forward(self, data_dict: dict) -> dict:  # type: ignore[override]
        out = self.run(data_dict["disc_input"])
        return {"score": out.logits, "activations": out.activations[self.activation_layer]}


@register("discriminators.style_gan_v2.Discriminator")
def build_discriminator(params: dict) -> DinarDiscriminator:
    config, activation_layer = discriminator_config_from_params(params)
    return DinarDiscriminator(config, activation_layer)
