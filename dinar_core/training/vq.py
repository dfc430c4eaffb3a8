"""Phase ``vq`` (DINAR's second): the VQ autoencoder learns to compress neural textures.

Its samples are every texture of a texture set: each view's own texture and each person's complete (merged)
one, the two kinds the diffusion phase encodes. The loss is taming's VQ-GAN loss, which DINAR's texture
autoencoder descends from: the L1 reconstruction of the decoded texture, ``codebook_weight`` times the
quantiser's codebook + commitment loss, ``vq_lpips_weight`` times LPIPS-VGG of the texture's RGB channels when
``train.lpips_weights`` is set (user-supplied; nothing is downloaded), and with ``vq_adversarial_weight`` > 0 the
hinge loss of a PatchGAN discriminator on the whole texture (`dinar_core.nets.patchgan`) from step
``vq_adversarial_start`` on (taming's ``disc_start``), a fixed weight where taming adapts it to the gradients'
ratio. The discriminator is kept in ``vq.pt`` (``discriminator.*``) but is no part of the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dinar_core.nets.vq import VQModel
from dinar_core.training.base import PhaseModule
from dinar_core.training.config import TrainConfig
from dinar_core.training.textures import TextureSet

RGB = slice(-5, -2)
"""The photo colours' channels of a neural texture (16..18 of DINAR's 21; the last two are the masks)."""


def texture_samples(textures: TextureSet) -> torch.Tensor:
    """(N, C, S, S): every view's texture and every person's complete texture."""
    return torch.cat([torch.cat([p.views, p.complete[None]]) for p in textures.persons]).contiguous()


def reconstruct(vq: VQModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (B, C, S, S) -> (the decoded texture (B, C, S, S), the codebook + commitment loss ())."""
    q = vq.quantize(vq.encode(x))
    return vq.decode_quantized(q.latent), q.loss


def vq_loss(vq: VQModel, x: torch.Tensor, codebook_weight: float, lpips: nn.Module | None = None,
            lpips_weight: float = 0.0) -> torch.Tensor:
    """x: (B, C, S, S) -> () L1 of the reconstruction + codebook_weight * codebook/commitment loss
    (+ lpips_weight * LPIPS of the RGB channels)."""
    decoded, codebook = reconstruct(vq, x)
    return _generator_loss(decoded, x, codebook, codebook_weight, lpips, lpips_weight)


def _generator_loss(decoded, x, codebook, codebook_weight, lpips, lpips_weight) -> torch.Tensor:
    loss = F.l1_loss(decoded, x) + codebook_weight * codebook
    if lpips is not None and lpips_weight:
        loss = loss + lpips_weight * lpips(decoded[:, RGB].clamp(-1, 1), x[:, RGB]).mean()
    return loss


class VQPhase(PhaseModule):
    """The VQ autoencoder (``compress_branch``), trained whole; with the adversarial terms also a PatchGAN
    ``discriminator`` (manual optimisation: an autoencoder step, then a discriminator step)."""

    phase = "vq"

    def __init__(self, neural, train: TrainConfig, samples: torch.Tensor, layout: str,
                 lpips: nn.Module | None = None):
        super().__init__(train, layout)
        self.compress_branch = VQModel(neural.vq)
        self.samples = samples
        self.lpips = lpips.eval().requires_grad_(False) if lpips is not None else None
        self.adversarial = train.vq_adversarial_weight > 0
        if self.adversarial:
            from dinar_core.nets.patchgan import PatchDiscriminator

            self.discriminator = PatchDiscriminator(neural.vq.out_channels, train.vq_discriminator_channels,
                                                    train.vq_discriminator_layers)
            self.automatic_optimization = False
            self.optimizers_per_step = 2

    def trainable(self) -> list[nn.Parameter]:
        return list(self.compress_branch.parameters())

    def configure_optimizers(self):
        if not self.adversarial:
            return super().configure_optimizers()
        return (torch.optim.Adam(self.trainable(), lr=self.train_cfg.lr, betas=(0.5, 0.9)),
                torch.optim.Adam(self.discriminator.parameters(), lr=self.train_cfg.lr_discriminator,
                                 betas=(0.5, 0.9)))

    def training_step(self, step, batch_idx):  # noqa: ARG002 - the step stream's item is the step's number
        cfg = self.train_cfg
        idx = torch.randint(0, self.samples.shape[0], (self.global_batch,), generator=self.draws(step))
        (x,) = self.local(self.samples[idx])
        decoded, codebook = reconstruct(self.compress_branch, x)
        loss = _generator_loss(decoded, x, codebook, cfg.codebook_weight, self.lpips, cfg.vq_lpips_weight)
        if self.adversarial:
            loss = self._adversarial_step(int(step), loss, decoded, x)
        self.log("loss", loss, on_step=True, prog_bar=True, sync_dist=self.world > 1)
        return loss

    def _adversarial_step(self, step: int, loss: torch.Tensor, fake: torch.Tensor, real: torch.Tensor):
        """The autoencoder's step (its loss + the hinge generator loss once the discriminator is on), then the
        discriminator's hinge step (from ``vq_adversarial_start``)."""
        cfg, D = self.train_cfg, self.discriminator
        opt_g, opt_d = self.optimizers()
        on = step >= cfg.vq_adversarial_start
        total = loss
        if on:
            D.requires_grad_(False)
            total = loss - cfg.vq_adversarial_weight * D(fake).mean()
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(total)
        opt_g.step()
        D.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        if on:
            d_loss = F.relu(1 - D(real)).mean() + F.relu(1 + D(fake.detach())).mean()
            self.manual_backward(d_loss)
            self.log("d_loss", d_loss, on_step=True, sync_dist=self.world > 1)
        opt_d.step()  # before the start without gradients: no change, but counted (2 optimiser steps per step)
        return total.detach()

    def export_state(self) -> dict[str, torch.Tensor]:
        """``compress_branch.*`` and, when trained, ``discriminator.*`` (no part of the model)."""
        out = {f"compress_branch.{k}": v for k, v in self.compress_branch.state_dict().items()}
        if self.adversarial:
            out |= {f"discriminator.{k}": v for k, v in self.discriminator.state_dict().items()}
        return out
