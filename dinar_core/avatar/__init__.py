"""DINAR's neural avatar: sample preparation (``dataset``), the texture pipeline (``neural``), per-avatar
finetuning (``finetune``, with an optional local LPIPS-VGG in ``lpips``) and their config (``config``)."""

from dinar_core.avatar.config import FinetuneConfig, NeuralAvatarConfig, VideoConfig
from dinar_core.avatar.dataset import Box, DinarSample, prepare_sample
from dinar_core.avatar.finetune import FinetuneInputs, FinetuneResult, ZeroAdam, finetune_texture
from dinar_core.avatar.neural import NeuralAvatar, NeuralAvatarPipeline, PixelTexture, TexelSamples, sample_values_by_uv

__all__ = ["Box", "DinarSample", "FinetuneConfig", "FinetuneInputs", "FinetuneResult", "NeuralAvatar",
           "NeuralAvatarConfig", "NeuralAvatarPipeline", "PixelTexture", "TexelSamples", "VideoConfig", "ZeroAdam",
           "finetune_texture", "prepare_sample", "sample_values_by_uv"]
