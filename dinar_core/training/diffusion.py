"""Phase ``diffusion`` (DINAR's third): the latent-diffusion UNet learns to paint complete texture latents.

A sample is one (person, view) of a texture set: ``x0`` is the VQ latent of the person's complete (merged)
texture, the condition is the latent of the texture that view alone gives plus its known mask at latent size
(`make_condition`, as DINAR conditions at inference). The loss is the MSE of the predicted noise on DINAR's
linear schedule (eps-prediction, timesteps uniform over the schedule); an exponential moving average of the UNet's
weights (``torch.optim.swa_utils.AveragedModel``) is what inference uses (DINAR's ``model_ema``). With
``train.scale_by_std`` (the default) the VQ's latents are first brought to unit standard deviation, the factor
folded into the VQ kept in the weights (`dinar_core.nets.vq.scale_latents`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dinar_core.diffusion.inpaint import make_condition
from dinar_core.diffusion.schedule import DiffusionSchedule
from dinar_core.nets.unet import UNet
from dinar_core.nets.vq import VQModel
from dinar_core.training.base import PhaseModule
from dinar_core.training.config import TrainConfig
from dinar_core.training.textures import TextureSet


@dataclass(frozen=True)
class LatentPairs:
    """The diffusion phase's samples: ``x0`` (N, D, h, w) complete-texture latents, ``cond`` (N, D + 1, h, w)."""

    x0: torch.Tensor
    cond: torch.Tensor


@torch.no_grad()
def encode_pairs(vq: VQModel, textures: TextureSet) -> LatentPairs:
    """One sample per (person, view): the complete texture's latent and the view's condition."""
    x0, cond = [], []
    for person in textures.persons:
        views = person.views
        x0.append(vq.encode(person.complete[None]).expand(views.shape[0], -1, -1, -1))
        cond.append(make_condition(vq.encode(views), views[:, -2:-1]))
    return LatentPairs(torch.cat(x0).contiguous(), torch.cat(cond).contiguous())


def eps_loss(unet: nn.Module, schedule: DiffusionSchedule, x0: torch.Tensor, cond: torch.Tensor, t: torch.Tensor,
             noise: torch.Tensor) -> torch.Tensor:
    """The eps-prediction loss: x0 (B, D, h, w), cond (B, D + 1, h, w), t (B,) int64, noise like x0 -> () MSE of
    ``unet(q_sample(x0, t, noise), t, cond)`` against `noise`."""
    return F.mse_loss(unet(schedule.q_sample(x0, t, noise), t, cond).float(), noise.float())


class EmaUpdate:
    """``torch.optim.swa_utils.get_ema_multi_avg_fn(decay)`` as a picklable object (``ddp_spawn`` pickles the
    module, and the library's function is a closure)."""

    def __init__(self, decay: float):
        self.decay = decay

    def __call__(self, averaged, current, num_averaged) -> None:
        get_ema_multi_avg_fn(self.decay)(averaged, current, num_averaged)


class DiffusionPhase(PhaseModule):
    """The UNet (trained), its EMA (``unet_ema``), the frozen VQ (``compress_branch``) and the schedule."""

    phase = "diffusion"

    def __init__(self, neural, train: TrainConfig, vq: VQModel, pairs: LatentPairs, layout: str,
                 untrained: tuple[str, ...] = (), latent_scale: float = 1.0):
        super().__init__(train, layout, untrained)
        self.latent_scale = latent_scale  # folded into `vq` already (train.scale_by_std); logged beside the loss
        self.unet = UNet(neural.unet)
        self.schedule = DiffusionSchedule(neural.schedule)
        self.compress_branch = vq.eval().requires_grad_(False)
        self.unet_ema = AveragedModel(self.unet, multi_avg_fn=EmaUpdate(train.ema_decay), use_buffers=True)
        self.unet_ema.requires_grad_(False)
        self.pairs = pairs

    def trainable(self) -> list[nn.Parameter]:
        return list(self.unet.parameters())

    def training_step(self, step, batch_idx):  # noqa: ARG002 - the step stream's item is the step's number
        g, n, b = self.draws(step), self.pairs.x0.shape[0], self.global_batch
        idx = torch.randint(0, n, (b,), generator=g)
        t = torch.randint(0, self.schedule.num_timesteps, (b,), generator=g)
        noise = torch.randn((b, *self.pairs.x0.shape[1:]), generator=g)
        x0, cond, t, noise = self.local(self.pairs.x0[idx], self.pairs.cond[idx], t, noise)
        loss = eps_loss(self.unet, self.schedule, x0, cond, t, noise)
        self.log("loss", loss, on_step=True, prog_bar=True, sync_dist=self.world > 1)
        self.log("latent_scale", self.latent_scale, on_step=True)
        return loss

    def optimizer_step(self, *args, **kwargs) -> None:
        """The step, then the EMA update (here, not in ``on_train_batch_end``: Lightning's checkpoint callback runs
        before the module's batch-end hook, so a checkpoint would miss the step's update)."""
        super().optimizer_step(*args, **kwargs)
        self.unet_ema.update_parameters(self.unet)

    def export_state(self) -> dict[str, torch.Tensor]:
        """``unet.*`` the EMA weights (what inference samples with), ``unet_train.*`` the raw ones,
        ``compress_branch.*`` the VQ the latents were made with."""
        out = {f"unet.{k}": v for k, v in self.unet_ema.module.state_dict().items()}
        out |= {f"unet_train.{k}": v for k, v in self.unet.state_dict().items()}
        out |= {f"compress_branch.{k}": v for k, v in self.compress_branch.state_dict().items()}
        return out
