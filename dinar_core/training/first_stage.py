"""Phase ``first_stage`` (DINAR's first): the StyleGAN2 encoder and generator and the neural renderer learn
together that the texture made from one view of a person renders that person's other views.

A step draws (source view, target view) pairs of the same person: the encoder reads the source photo (the person
on black and the mask), the generator makes the texture's feature channels, the source's colours, known mask and
ring complete the neural texture (`assemble_ntexture`, as at inference), and the renderer draws it through the
target view's UV render. Losses (weights in ``train``): the MSE of the render against the target photo inside the
body and the person mask (DINAR's loss mask), the L1 of the rendered mask against the person mask, and LPIPS-VGG
from user-supplied weights (``train.lpips_weights``; none are downloaded); with ``train.adversarial_weight`` > 0 also
DINAR's adversarial terms: a StyleGAN2 discriminator (``neural.discriminator``) trained with the logistic loss and
an R1 penalty every ``train.r1_every`` steps, the generator side's non-saturating loss on the masked render and on a
render of the same texture under a random rotation of the target body (a view no photo shows: only the
discriminator judges it).

After training, `texture_set` turns the views into a texture set (`dinar_core.training.textures`): each view's
neural texture and normal-to-camera cosines, what the vq and diffusion phases read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dinar_core.avatar.dataset import DinarSample
from dinar_core.avatar.neural import PixelTexture, assemble_ntexture, photo_to_texture
from dinar_core.body.base import UVLayout
from dinar_core.errors import TrainingDataError
from dinar_core.render import render_uv
from dinar_core.training.base import PhaseModule, step_generator
from dinar_core.training.config import TrainConfig
from dinar_core.training.textures import save_texture_set_person


@dataclass(frozen=True)
class ViewSet:
    """N prepared views of P persons (each tensor's first dimension is the view).

    names: the P person names; person: (N,) int64 person index of each view; input_rgb: (N, 3, S, S) the person on
    black in [-1, 1]; real_rgb: (N, 3, S, S) on white; real_segm: (N, 1, S, S); uv: (N, 2, S, S) the body's UV
    render (background -10); uv_mask: (N, 1, S, S); pixels: the photo in texture space (N, ..., T, T); layout: the
    UV layout's name; verts: (N, U, 3) the UV-split mesh in crop pixels and K: (N, 3, 3), uv_faces (F, 3) and
    uv_values (U, 2) the layout (for renders under new rotations); None when not kept.
    """

    names: tuple[str, ...]
    person: torch.Tensor
    input_rgb: torch.Tensor
    real_rgb: torch.Tensor
    real_segm: torch.Tensor
    uv: torch.Tensor
    uv_mask: torch.Tensor
    pixels: PixelTexture
    layout: str
    verts: torch.Tensor | None = None
    K: torch.Tensor | None = None
    uv_faces: torch.Tensor | None = None
    uv_values: torch.Tensor | None = None


@torch.no_grad()
def prepare_views(persons: Mapping[str, list[DinarSample]], layout: UVLayout, layout_name: str, neural,
                  min_views: int = 2) -> ViewSet:
    """Rasterise each prepared view (`dinar_core.avatar.dataset.prepare_sample`) and splat its photo into texture
    space. Every person needs `min_views` views (a TrainingDataError otherwise)."""
    few = [name for name, views in persons.items() if len(views) < min_views]
    if not persons or few:
        raise TrainingDataError(f"persons with fewer than {min_views} views: {', '.join(few) or '(no persons)'}",
                                fix="the first stage learns from other views of the same person: give each person "
                                    "several views, or leave the single-view ones out")
    samples = [s for views in persons.values() for s in views]
    stack = lambda name: torch.stack([getattr(s, name) for s in samples])  # noqa: E731
    verts, K, input_rgb, segm = stack("verts"), stack("K"), stack("input_rgb"), stack("real_segm")
    size = neural.image_size
    uv = render_uv(verts, layout.uv_faces, layout.uv, (size, size))
    pixels = photo_to_texture(input_rgb, segm, verts, K, uv, layout.uv_faces, neural)
    person = torch.tensor([i for i, views in enumerate(persons.values()) for _ in views])
    return ViewSet(tuple(persons), person, input_rgb, stack("real_rgb"), segm, uv.uv, uv.mask, pixels, layout_name,
                   verts, K, layout.uv_faces, layout.uv)


def _pixels(pixels: PixelTexture, index: torch.Tensor) -> PixelTexture:
    return PixelTexture(pixels.rgb[index], pixels.known[index], pixels.ring[index], pixels.normal_angles[index])


def render_loss(rendered, real_rgb: torch.Tensor, real_segm: torch.Tensor, uv_mask: torch.Tensor,
                segm_weight: float, lpips: nn.Module | None, lpips_weight: float) -> torch.Tensor:
    """The first stage's loss on one batch of renders (`RenderOutput`): masked MSE to the photo (mask = body
    render x person mask) + segm_weight x L1 of the rendered mask + lpips_weight x LPIPS of the masked images."""
    m = uv_mask * real_segm
    loss = F.mse_loss(rendered.rgb * m, real_rgb * m) + segm_weight * F.l1_loss(rendered.segm, real_segm)
    if lpips is not None and lpips_weight:
        loss = loss + lpips_weight * lpips(rendered.rgb * m, real_rgb * m).mean()
    return loss


class FirstStagePhase(PhaseModule):
    """``encoder``, ``generator`` and ``renderer`` (DINAR's container names), trained together."""

    phase = "first_stage"

    def __init__(self, neural, train: TrainConfig, views: ViewSet, lpips: nn.Module | None = None):
        super().__init__(train, views.layout)
        from dinar_core.nets.renderer import NeuralRenderer
        from dinar_core.nets.stylegan2 import Discriminator, Encoder, Generator

        self.encoder = Encoder(neural.encoder)
        self.generator = Generator(neural.generator)
        self.renderer = NeuralRenderer(neural.renderer)
        self.adversarial = train.adversarial_weight > 0
        if self.adversarial:
            if views.verts is None:
                raise TrainingDataError("the adversarial terms render under new rotations and need the views' "
                                        "meshes", fix="build the views with prepare_views")
            self.discriminator = Discriminator(neural.discriminator)
            self.automatic_optimization = False  # a generator and a discriminator step per batch
            self.optimizers_per_step = 2
        self.views = views
        self.lpips = lpips.eval().requires_grad_(False) if lpips is not None else None
        same = views.person[:, None] == views.person[None, :]
        self._others = same & ~torch.eye(len(views.person), dtype=torch.bool)  # (N, N) other views, same person

    def trainable(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.generator.parameters(), *self.renderer.parameters()]

    def configure_optimizers(self):
        if not self.adversarial:
            return super().configure_optimizers()
        return (torch.optim.Adam(self.trainable(), lr=self.train_cfg.lr, betas=(0.0, 0.99)),
                torch.optim.Adam(self.discriminator.parameters(), lr=self.train_cfg.lr_discriminator, betas=(0.0, 0.99)))

    def pairs(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(source, target) view indices of the global batch: target a random other view of the source's person."""
        src = torch.randint(0, len(self.views.person), (self.global_batch,), generator=g)
        weights = self._others[src].float()
        return src, torch.multinomial(weights, 1, generator=g)[:, 0]

    def _render(self, src: torch.Tensor, tgt: torch.Tensor, noise: torch.Tensor | None = None,
                angle: float | None = None):
        """The texture of each source view rendered through its target view (or, with `angle`, through the target
        body rotated by it): (RenderOutput, its loss mask)."""
        v, d = self.views, self.device
        style = self.encoder(v.input_rgb[src].to(d), v.real_segm[src].to(d), generator=noise)
        generated = self.generator(style, randomize_noise=True, generator=noise)
        p = _pixels(v.pixels, src)
        ntexture = assemble_ntexture(generated, PixelTexture(p.rgb.to(d), p.known.to(d), p.ring.to(d),
                                                             p.normal_angles.to(d)))
        rendered = self.renderer(ntexture, v.uv[tgt].to(d), v.uv_mask[tgt].to(d))
        if angle is None:
            return rendered, None
        from dinar_core.avatar.neural import rotate_about_centroid

        verts = rotate_about_centroid(v.verts[tgt].to(d), v.K[tgt].to(d), angle)
        size = v.uv.shape[-1]
        uv = render_uv(verts, v.uv_faces.to(d), v.uv_values.to(d), (size, size))
        return rendered, (self.renderer(ntexture, uv.uv, uv.mask), uv.mask)

    def training_step(self, step, batch_idx):  # noqa: ARG002 - the step stream's item is the step's number
        v, g = self.views, self.draws(step)
        src, tgt = self.pairs(g)
        angle = float(torch.rand((), generator=g)) * 2 * torch.pi
        src, tgt = (t.cpu() for t in self.local(src, tgt))
        # the networks' own noise (encoder plane, generator layers): per process, keyed by the step too
        noise = step_generator(self.train_cfg.seed + 104729 * (self.global_rank + 1), int(step))
        d = self.device
        real, segm, mask = v.real_rgb[tgt].to(d), v.real_segm[tgt].to(d), v.uv_mask[tgt].to(d)
        rendered, rotated = self._render(src, tgt, noise, angle if self.adversarial else None)
        loss = render_loss(rendered, real, segm, mask, self.train_cfg.segm_weight, self.lpips,
                           self.train_cfg.lpips_weight)
        if self.adversarial:
            loss = self._adversarial_step(int(step), loss, rendered.rgb * mask * segm, rotated[0].rgb * rotated[1],
                                          real * mask * segm)
        self.log("loss", loss, on_step=True, prog_bar=True, sync_dist=self.world > 1)
        return loss

    def _adversarial_step(self, step: int, loss: torch.Tensor, fake: torch.Tensor, fake_rotated: torch.Tensor,
                          real: torch.Tensor) -> torch.Tensor:
        """Manual optimisation: the generator side (render loss + non-saturating loss on both fakes), then the
        discriminator (logistic loss; every ``r1_every`` steps its R1 step instead, weighted as StyleGAN2 does)."""
        from dinar_core.avatar.finetune import r1_penalty

        opt_g, opt_d = self.optimizers()
        cfg, D = self.train_cfg, self.discriminator
        D.requires_grad_(False)
        adv = F.softplus(-D(fake)).mean() + F.softplus(-D(fake_rotated)).mean()
        total = loss + cfg.adversarial_weight * adv
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(total)
        opt_g.step()
        D.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        if step % cfg.r1_every == cfg.r1_every - 1:
            d_loss = cfg.r1_weight / 2 * cfg.r1_every * r1_penalty(D, real)
        else:
            d_loss = cfg.adversarial_weight * (F.softplus(-D(real.detach())).mean()
                                               + F.softplus(D(fake.detach())).mean()
                                               + F.softplus(D(fake_rotated.detach())).mean())
        self.manual_backward(d_loss)
        opt_d.step()
        self.log("d_loss", d_loss, on_step=True, sync_dist=self.world > 1)
        return total.detach()

    def export_state(self) -> dict[str, torch.Tensor]:
        """``encoder.*``, ``generator.*``, ``renderer.*`` and, when trained, ``discriminator.*`` (what DINAR's
        per-avatar finetuning starts from)."""
        parts = ("encoder", "generator", "renderer") + (("discriminator",) if self.adversarial else ())
        return {f"{part}.{k}": t for part in parts for k, t in getattr(self, part).state_dict().items()}


@torch.no_grad()
def texture_set(encoder: nn.Module, generator: nn.Module, views: ViewSet, out: Path, seed: int = 0) -> list[Path]:
    """Write the texture set of `views` under `out`: per person ``<name>.npz`` with each view's neural texture
    (generator channels from its own photo + its colours, known mask and ring) and its normal angles as ``cos``."""
    g = torch.Generator().manual_seed(seed)
    written = []
    for i, name in enumerate(views.names):
        idx = torch.nonzero(views.person == i)[:, 0]
        style = encoder(views.input_rgb[idx], views.real_segm[idx], generator=g)
        ntexture = assemble_ntexture(generator(style, randomize_noise=False), _pixels(views.pixels, idx))
        cos = views.pixels.normal_angles[idx, 0]
        written.append(save_texture_set_person(Path(out) / f"{name}.npz", ntexture.numpy(), cos.numpy(),
                                               views.layout))
    return written
