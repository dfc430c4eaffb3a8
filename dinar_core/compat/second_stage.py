"""Adapters for DINAR's second-stage classes: the texture VQ autoencoder and the diffusion UNet.

Each builder takes DINAR's ``params`` block (configs/eval.yaml) and returns a module whose state_dict keys
equal DINAR's for that class and which accepts DINAR's calls.
"""

from __future__ import annotations

from typing import Any

import torch

from dinar_core.compat.registry import register
from dinar_core.nets.unet import UNet, UNetConfig
from dinar_core.nets.vq import VQConfig, VQModel


def _check_keys(where: str, params: dict, allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"{where}: unsupported parameter(s) {unknown}; supported: {sorted(allowed)}")


class DinarVQModel(VQModel):
    """``compress_models.vqmodel.VQModel``: ``encode(x) -> z``, ``decode(z) -> texture`` and DINAR's
    dict-in/dict-out ``forward(data_dict, compress_only=False)``."""

    def forward(self, data_dict: dict[str, Any], compress_only: bool = False) -> dict[str, Any]:  # type: ignore[override]
        source = data_dict["ntexture"].detach()
        z = self.encode(data_dict["ntexture"])
        if compress_only:
            return {"compressed": z}
        q = self.quantize(z)
        return {"src_ntexture": source, "ntexture": self.decode_quantized(q.latent), "codebook_loss": q.loss, "compressed": z}


_DD_KEYS = {"double_z", "z_channels", "resolution", "in_channels", "out_ch", "ch", "ch_mult", "num_res_blocks",
            "attn_resolutions", "dropout", "resamp_with_conv", "give_pre_end"}


def vq_config_from_params(params: dict) -> VQConfig:
    """DINAR's VQModel params ({ddconfig: {...}, n_embed, embed_dim}) -> VQConfig."""
    _check_keys("VQModel params", params, {"ddconfig", "n_embed", "embed_dim"})
    dd = dict(params["ddconfig"])
    _check_keys("VQModel ddconfig", dd, _DD_KEYS)
    if dd.get("double_z", True):
        raise ValueError("VQModel ddconfig: double_z must be false (DINAR's VQ encoder outputs z_channels, not 2x)")
    if not dd.get("resamp_with_conv", True) or dd.get("give_pre_end", False):
        raise ValueError("VQModel ddconfig: only resamp_with_conv=true and give_pre_end=false are supported")
    return VQConfig(
        in_channels=int(dd["in_channels"]), out_channels=int(dd["out_ch"]), base_channels=int(dd["ch"]),
        channel_mult=tuple(int(m) for m in dd.get("ch_mult", (1, 2, 4, 8))), num_res_blocks=int(dd["num_res_blocks"]),
        attn_resolutions=tuple(int(r) for r in dd.get("attn_resolutions", ())), z_channels=int(dd["z_channels"]),
        embed_dim=int(params["embed_dim"]), n_embed=int(params["n_embed"]), resolution=int(dd["resolution"]),
        dropout=float(dd.get("dropout", 0.0)),
    )


@register("compress_models.vqmodel.VQModel")
def build_vqmodel(params: dict) -> DinarVQModel:
    return DinarVQModel(vq_config_from_params(params))


class DinarUNetModel(UNet):
    """``inpainting.openaimodel.UNetModel``: ``m(x, timesteps, c_concat=c) -> eps``; ``c`` is a tensor or a list of
    tensors (LDM's format), concatenated on channels."""

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor | None = None,  # type: ignore[override]
                c_concat: torch.Tensor | list[torch.Tensor] | None = None, **kwargs: Any) -> torch.Tensor:
        if timesteps is None or c_concat is None:
            raise ValueError("UNetModel: timesteps and c_concat are required (DINAR's UNet is always conditioned)")
        cond = torch.cat(list(c_concat), dim=1) if isinstance(c_concat, (list, tuple)) else c_concat
        return super().forward(x, timesteps, cond)


_UNET_KEYS = {"image_size", "in_channels", "model_channels", "out_channels", "num_res_blocks", "attention_resolutions",
              "dropout", "channel_mult", "conv_resample", "dims", "use_checkpoint", "num_heads", "num_head_channels",
              "num_heads_upsample", "use_scale_shift_norm", "resblock_updown", "preproc_input"}


def unet_config_from_params(params: dict) -> UNetConfig:
    """DINAR's UNetModel params -> UNetConfig (``use_checkpoint`` only affects training memory; ignored)."""
    _check_keys("UNetModel params", params, _UNET_KEYS)
    if int(params.get("dims", 2)) != 2:
        raise ValueError(f"UNetModel: only dims=2 is supported, got {params['dims']}")
    heads = int(params.get("num_heads", -1))
    heads_up = int(params.get("num_heads_upsample", -1))
    if heads_up not in (-1, heads):
        raise ValueError(f"UNetModel: num_heads_upsample ({heads_up}) different from num_heads ({heads}) is not supported")
    return UNetConfig(
        image_size=int(params["image_size"]), in_channels=int(params["in_channels"]),
        out_channels=int(params["out_channels"]), model_channels=int(params["model_channels"]),
        channel_mult=tuple(int(m) for m in params.get("channel_mult", (1, 2, 4, 8))),
        num_res_blocks=int(params["num_res_blocks"]),
        attention_resolutions=tuple(int(r) for r in params["attention_resolutions"]),
        num_heads=heads, num_head_channels=int(params.get("num_head_channels", -1)),
        resblock_updown=bool(params.get("resblock_updown", False)), conv_resample=bool(params.get("conv_resample", True)),
        use_scale_shift_norm=bool(params.get("use_scale_shift_norm", False)), dropout=float(params.get("dropout", 0.0)),
        preproc_input=bool(params.get("preproc_input", False)),
    )


@register("inpainting.openaimodel.UNetModel")
def build_unet(params: dict) -> DinarUNetModel:
    return DinarUNetModel(unet_config_from_params(params))
