"""DINAR's neural avatar: sample preparation (``dataset``), the texture pipeline (``neural``), per-avatar
finetuning (``finetune``, with an optional local LPIPS-VGG in ``lpips``) and their config (``config``)."""

from typing import TYPE_CHECKING

from dinar_core.lazy import lazy_package

if TYPE_CHECKING:  # resolved lazily below, so that e.g. the torch-free `config` submodule imports no torch
    from dinar_core.avatar.config import FinetuneConfig, NeuralAvatarConfig, VideoConfig
    from dinar_core.avatar.dataset import Box, DinarSample, prepare_sample
    from dinar_core.avatar.finetune import FinetuneInputs, FinetuneResult, ZeroAdam, finetune_texture
    from dinar_core.avatar.neural import NeuralAvatar, NeuralAvatarPipeline, PixelTexture, TexelSamples, sample_values_by_uv

__all__ = ["Box", "DinarSample", "FinetuneConfig", "FinetuneInputs", "FinetuneResult", "NeuralAvatar",
           "NeuralAvatarConfig", "NeuralAvatarPipeline", "PixelTexture", "TexelSamples", "VideoConfig", "ZeroAdam",
           "finetune_texture", "prepare_sample", "sample_values_by_uv"]

_EXPORTS = {"FinetuneConfig": "config", "NeuralAvatarConfig": "config", "VideoConfig": "config", "Box": "dataset",
            "DinarSample": "dataset", "prepare_sample": "dataset", "FinetuneInputs": "finetune",
            "FinetuneResult": "finetune", "ZeroAdam": "finetune", "finetune_texture": "finetune",
            "NeuralAvatar": "neural", "NeuralAvatarPipeline": "neural", "PixelTexture": "neural",
            "TexelSamples": "neural", "sample_values_by_uv": "neural"}
lazy_package(__name__, _EXPORTS)
