"""Phase ``vq`` (DINAR's second): the VQ autoencoder learns to compress neural textures.

Its samples are every texture of a texture set: each view's own texture and each person's complete (merged)
one, the two kinds the diffusion phase encodes. The loss is the L1 reconstruction of the decoded texture plus
``codebook_weight`` times the quantiser's codebook + commitment loss (taming's VQ loss, as DINAR's VQ-GAN; its
perceptual and adversarial terms on 21-channel textures are not built here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dinar_core.nets.vq import VQModel
from dinar_core.training.base import PhaseModule
from dinar_core.training.config import TrainConfig
from dinar_core.training.textures import TextureSet


def texture_samples(textures: TextureSet) -> torch.Tensor:
    """(N, C, S, S): every view's texture and every person's complete texture."""
    return torch.cat([torch.cat([p.views, p.complete[None]]) for p in textures.persons]).contiguous()


def vq_loss(vq: VQModel, x: torch.Tensor, codebook_weight: float) -> torch.Tensor:
    """x: (B, C, S, S) -> () L1 of the reconstruction + codebook_weight * codebook/commitment loss."""
    q = vq.quantize(vq.encode(x))
    return F.l1_loss(vq.decode_quantized(q.latent), x) + codebook_weight * q.loss


class VQPhase(PhaseModule):
    """The VQ autoencoder (``compress_branch``), trained whole."""

    phase = "vq"

    def __init__(self, neural, train: TrainConfig, samples: torch.Tensor, layout: str):
        super().__init__(train, layout)
        self.compress_branch = VQModel(neural.vq)
        self.samples = samples

    def trainable(self) -> list[nn.Parameter]:
        return list(self.compress_branch.parameters())

    def training_step(self, step, batch_idx):  # noqa: ARG002 - the step stream's item is the step's number
        idx = torch.randint(0, self.samples.shape[0], (self.global_batch,), generator=self.draws(step))
        (x,) = self.local(self.samples[idx])
        loss = vq_loss(self.compress_branch, x, self.train_cfg.codebook_weight)
        self.log("loss", loss, on_step=True, prog_bar=True, sync_dist=self.world > 1)
        return loss

    def export_state(self) -> dict[str, torch.Tensor]:
        return {f"compress_branch.{k}": v for k, v in self.compress_branch.state_dict().items()}
