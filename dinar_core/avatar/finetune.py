"""Per-avatar finetuning of the neural texture's RGB channels (DINAR's ``TextureTune``, finetune_avatar.yaml).

Only the three RGB channels of the texture are optimised (plus a global per-channel ``scales``/``shifts``), through
the frozen neural renderer, so that the avatar rendered at the input view matches the photo:

* generator step: masked L2 to the photo (+ LPIPS-VGG on a random crop when weights are supplied) + 0.01 x the
  non-saturating adversarial loss of a StyleGAN2 discriminator (initialised from the checkpoint);
* discriminator step: 0.01 x the logistic loss on masked real/fake, every ``r1_every``-th step an R1 step instead;
* schedule: ``steps`` (DINAR: 64); with back finetuning ``back_steps`` (128) of which the first
  ``back_rescale_steps`` (64) only fit the scales and shifts;
* the texture gradient is multiplied by a mask from the normal angles (only texels that faced the camera change);
* Adam with betas (0, 0.99) that skips a parameter whose gradient is all zero (DINAR's ``ZeroAdam``);
* at the end the tuned colours are blended with the (rescaled) source by a blurred known mask.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dinar_core.avatar.config import FinetuneConfig
from dinar_core.avatar.neural import erode
from dinar_core.render import UVRender

RGB = slice(-5, -2)


class ZeroAdam(torch.optim.Optimizer):
    """Adam (bias-corrected, ``eps`` added after the bias correction of the second moment, as DINAR's copy of the
    old PyTorch Adam) that leaves a parameter untouched, state included, when its gradient is None or sums to 0
    in absolute value (e.g. the texture during the rescale-only steps)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if lr < 0 or eps < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"ZeroAdam: invalid lr={lr}, betas={betas} or eps={eps}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None or float(p.grad.abs().sum()) <= 0.0:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                g = p.grad
                state["exp_avg"].mul_(beta1).add_(g, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                bc1 = 1 - beta1 ** state["step"]
                bc2 = 1 - beta2 ** state["step"]
                denom = (state["exp_avg_sq"].sqrt() / math.sqrt(bc2)).add_(group["eps"])
                p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / bc1)
        return loss


def box_blur(x: torch.Tensor, size: int) -> torch.Tensor:
    """Normalised size x size mean filter with reflect-101 borders; even sizes put the extra tap after the centre
    (OpenCV's ``blur`` and kornia's ``box_blur``). x: (B, C, H, W) -> same."""
    front = (size - 1) // 2
    rear = size - 1 - front
    return F.avg_pool2d(F.pad(x, (front, rear, front, rear), mode="reflect"), kernel_size=size, stride=1)


def gradient_mask(normal_angles: torch.Tensor, threshold: float = 0.6, sharpness: float = 20.0,
                  blur: int = 5) -> torch.Tensor:
    """Where the texture may change: ``blur(n * max(1 - exp((threshold - n) * sharpness), 0))``: ~n for texels
    that faced the camera squarely, 0 below the threshold. normal_angles: (B, 1, T, T) in [0, 1] -> same."""
    n = normal_angles.float()
    return box_blur(n * (1 - torch.exp((threshold - n) * sharpness)).clamp_min(0), blur)


def loss_mask(uv: torch.Tensor, real_segm: torch.Tensor) -> torch.Tensor:
    """DINAR's ``get_lossmask(intersection=True)``: pixels covered by the body (any uv > -1) and by the photo's
    person mask. uv: (B, 2, H, W); real_segm: (B, 1, H, W) -> (B, 1, H, W)."""
    return (uv > -1).any(dim=1, keepdim=True).float() * real_segm[:, :1].float()


def r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """StyleGAN2's R1: mean over the batch of |d D(real) / d real|^2."""
    real = real.detach().requires_grad_(True)
    score = discriminator(real)
    (grad,) = torch.autograd.grad(score.sum(), real, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


@dataclass
class FinetuneInputs:
    """What finetuning needs of one avatar (batch 1; DINAR's data_dict keys in brackets).

    ntexture: (1, C, T, T) final texture after inpainting ['ntexture']; its RGB initialises the tuned colours.
    diffusion_ntexture: (1, C, T, T) ['diffusion_ntexture'], the source texture when given (DINAR), else ntexture.
    mask: (1, 1, T, T) known-texel weight ['mask']; normal_angles: (1, 1, T, T) ['normal_angles'].
    uv: the input view's UV render (from the avatar's vertices); real_rgb: (1, 3, S, S) the photo on white in
    [-1, 1]; real_segm: (1, 1, S, S); verts: (1, U, 3) homogeneous crop pixels (for the LPIPS crop centre).
    binary_uv_map: (1, 1, T, T) UV layout coverage or None; additive_uv_map: (1, 1, T, T) texels always taken from
    the tuned texture (DINAR: eyes and hands) or None.
    """

    ntexture: torch.Tensor
    mask: torch.Tensor
    normal_angles: torch.Tensor
    uv: UVRender
    real_rgb: torch.Tensor
    real_segm: torch.Tensor
    verts: torch.Tensor
    diffusion_ntexture: torch.Tensor | None = None
    binary_uv_map: torch.Tensor | None = None
    additive_uv_map: torch.Tensor | None = None


@dataclass
class FinetuneResult:
    """ntexture: (1, C, T, T) the finetuned texture (tuned colours blended into the source);
    l2 / adversarial / lpips: generator-step losses per step (lpips empty without weights);
    discriminator: discriminator-step losses per step (R1 steps included, as their penalty);
    scales, shifts: (1, 3, 1, 1); steps: iterations run; seconds: wall time."""

    ntexture: torch.Tensor
    scales: torch.Tensor
    shifts: torch.Tensor
    l2: list[float] = field(default_factory=list)
    adversarial: list[float] = field(default_factory=list)
    lpips: list[float] = field(default_factory=list)
    discriminator: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


class TextureTuner(nn.Module):
    """The tunable colours and the frozen renderer, rendering the input view (DINAR's ``TextureTune.forward``)."""

    def __init__(self, renderer: nn.Module, inputs: FinetuneInputs, config: FinetuneConfig):
        super().__init__()
        self.renderer = renderer
        src = inputs.diffusion_ntexture if inputs.diffusion_ntexture is not None else inputs.ntexture
        self.register_buffer("src_texture", src.detach().float().clone())
        self.register_buffer("known_mask", inputs.mask.detach().float().clone())
        self.tunable = nn.Parameter(inputs.ntexture[:, RGB].detach().float().clone())
        self.scales = nn.Parameter(torch.ones(1, 3, 1, 1, device=src.device))
        self.shifts = nn.Parameter(torch.zeros(1, 3, 1, 1, device=src.device))
        self.register_buffer("grad_mask", gradient_mask(inputs.normal_angles.to(src.device), config.grad_threshold,
                                                        config.grad_sharpness, config.grad_blur))
        self.tunable.register_hook(lambda g: g * self.grad_mask)
        # The renderer sees the UV map with the body mask eroded 3x3 and the background at -1 (DINAR's finetuning).
        mask = erode(inputs.uv.mask.float(), 3)
        self.register_buffer("uv_mask", mask)
        self.register_buffer("uv", inputs.uv.uv * mask - (1 - mask))

    def texture(self, tune_texels: bool) -> torch.Tensor:
        src_rgb = self.src_texture[:, RGB]
        rescaled = src_rgb * self.scales + self.shifts
        rgb = self.tunable * self.known_mask + rescaled * (1 - self.known_mask) if tune_texels else rescaled
        return torch.cat([self.src_texture[:, :-5], rgb, self.src_texture[:, -2:]], dim=1)

    def forward(self, tune_texels: bool) -> torch.Tensor:
        """Render the input view: (1, 3, S, S) in [-1, 1] on white."""
        return self.renderer(self.texture(tune_texels), self.uv, self.uv_mask).rgb

    @torch.no_grad()
    def mixed_texture(self, binary_uv_map: torch.Tensor | None, additive_uv_map: torch.Tensor | None,
                      blur: int) -> torch.Tensor:
        """DINAR's validation texture: tuned colours where known (blurred mask), the rescaled source elsewhere."""
        tuned = self.texture(True)
        src = self.src_texture.clone()
        src[:, RGB] = self.src_texture[:, RGB] * self.scales + self.shifts
        mask = self.known_mask
        if binary_uv_map is not None:
            outer = 1 - binary_uv_map.to(mask)
            mask = box_blur((mask + outer).clamp(0, 1), blur)
            mask = (mask - outer).clamp(0, 1)
        else:
            mask = box_blur(mask, blur)
        if additive_uv_map is not None:
            mask = (mask + additive_uv_map.to(mask)).clamp(0, 1)
        return tuned * mask + src * (1 - mask)


def _lpips_crop(verts: torch.Tensor, size: int, crop: int, generator: torch.Generator) -> tuple[int, int]:
    """Top-left corner of a crop x crop window centred on a random projected vertex, kept inside the image."""
    xy = verts[0, :, :2] / verts[0, :, 2:]
    k = int(torch.randint(xy.shape[0], (1,), generator=generator))
    half = crop // 2
    cx, cy = int(xy[k, 0]), int(xy[k, 1])
    j = min(max(cx, half), size - half - 1)
    i = min(max(cy, half), size - half - 1)
    return i - half, j - half


def finetune_texture(renderer: nn.Module, discriminator: nn.Module, inputs: FinetuneInputs, config: FinetuneConfig,
                     *, finetune_back: bool = False, generator: torch.Generator | None = None,
                     lpips: nn.Module | None = None, progress: Callable[[int, int], None] | None = None
                     ) -> FinetuneResult:
    """Finetune one avatar's texture colours (see the module docstring).

    renderer: the neural renderer (frozen here, eval mode); discriminator: the checkpoint's StyleGAN2 discriminator
    (copied, the copy is trained); lpips: an LPIPS module or None (no perceptual loss).
    """
    if inputs.ntexture.ndim != 4 or inputs.ntexture.shape[0] != 1:
        raise ValueError(f"finetune_texture: expected ntexture (1, C, T, T), got {tuple(inputs.ntexture.shape)}")
    if inputs.real_rgb.shape[-2:] != inputs.uv.uv.shape[-2:]:
        raise ValueError(f"finetune_texture: real_rgb {tuple(inputs.real_rgb.shape)} and uv "
                         f"{tuple(inputs.uv.uv.shape)} differ in size")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    total, rescale = config.schedule(finetune_back)
    t0 = time.perf_counter()
    was_training = renderer.training
    flags = [p.requires_grad for p in renderer.parameters()]
    renderer.eval().requires_grad_(False)
    disc = copy.deepcopy(discriminator).train()
    dev = inputs.ntexture.device
    tuner = TextureTuner(renderer, inputs, config).to(dev)
    real = inputs.real_rgb.to(dev).float()
    lmask = loss_mask(tuner.uv, inputs.real_segm.to(dev))
    real_masked = real * lmask
    opt_g = ZeroAdam([tuner.tunable, tuner.scales, tuner.shifts], lr=config.lr_texture,
                     betas=(config.beta1, config.beta2))
    opt_d = ZeroAdam(disc.parameters(), lr=config.lr_discriminator, betas=(config.beta1, config.beta2))
    result = FinetuneResult(ntexture=inputs.ntexture, scales=tuner.scales, shifts=tuner.shifts)
    size = real.shape[-1]
    r1_countdown = config.r1_every
    try:
        for step in range(total):
            tune_texels = step >= rescale
            # 1. Generator step: only the colours (after the rescale phase) or only scales/shifts move.
            tuner.tunable.requires_grad_(tune_texels)
            tuner.scales.requires_grad_(not tune_texels)
            tuner.shifts.requires_grad_(not tune_texels)
            disc.requires_grad_(False)
            opt_g.zero_grad(set_to_none=True)
            fake = tuner(tune_texels)
            l2 = F.mse_loss(real_masked, fake * lmask) * config.l2_weight
            adv = F.softplus(-disc(fake * lmask)).mean() * config.adversarial_weight
            loss = l2 + adv
            if lpips is not None:
                crop = min(config.lpips_crop, size)
                i, j = _lpips_crop(inputs.verts, size, crop, gen)
                win = (slice(None), slice(None), slice(i, i + crop), slice(j, j + crop))
                lp = lpips(real_masked[win], (fake * lmask)[win]).mean() * config.lpips_weight
                loss = loss + lp
                result.lpips.append(lp.item())
            loss.backward()
            opt_g.step()
            result.l2.append(l2.item())
            result.adversarial.append(adv.item())
            # 2. Discriminator step (every r1_every-th one is an R1 step instead).
            tuner.tunable.requires_grad_(False)
            tuner.scales.requires_grad_(False)
            tuner.shifts.requires_grad_(False)
            disc.requires_grad_(True)
            opt_d.zero_grad(set_to_none=True)
            r1_countdown -= 1
            if r1_countdown == 0:
                r1_countdown = config.r1_every
                d_loss = config.r1_weight / 2 * config.r1_every * r1_penalty(disc, real)
            else:
                with torch.no_grad():
                    fake = tuner(tune_texels)
                d_loss = (F.softplus(-disc(real_masked)).mean() + F.softplus(disc(fake * lmask)).mean()) \
                    * config.adversarial_weight
            d_loss.backward()
            opt_d.step()
            result.discriminator.append(d_loss.item())
            if progress is not None:
                progress(step, total)
        result.ntexture = tuner.mixed_texture(inputs.binary_uv_map, inputs.additive_uv_map, config.mix_blur).detach()
    finally:
        for p, f in zip(renderer.parameters(), flags):
            p.requires_grad_(f)
        renderer.train(was_training)
    result.scales, result.shifts = tuner.scales.detach().clone(), tuner.shifts.detach().clone()
    result.steps = total
    result.seconds = time.perf_counter() - t0
    return result
