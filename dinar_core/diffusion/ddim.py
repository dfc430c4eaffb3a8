"""DDIM sampling with known-region replacement (DINAR's test-time inpainting), kept apart from the model.

The sampler only needs a callable ``eps_model(x_t, t, cond) -> eps`` and a :class:`DiffusionSchedule`.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Literal

import torch

from dinar_core.diffusion.inpaint import erode3x3
from dinar_core.diffusion.schedule import DiffusionSchedule

EpsModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
ProgressCallback = Callable[[int, int], None]
Precision = Literal["fp32", "bf16", "fp16"]
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class DDIMConfig:
    """DDIM options; defaults are DINAR's test settings (``sample_log(ddim_steps=200, eta=1.0)``).

    Attributes:
        steps: DDIM steps S; timesteps are ``range(0, T, T // S) + 1`` (200 -> 1, 6, ..., 996).
        eta: stochasticity (1: DDPM-like variance, 0: deterministic DDIM).
        dtype: autocast precision of the UNet calls; the latent itself stays float32.
        erode_mask: erode the known-latent mask 3x3 before replacement, as DINAR does.
    """

    steps: int = 200
    eta: float = 1.0
    dtype: Precision = "fp32"
    erode_mask: bool = True


@dataclass(frozen=True)
class DDIMParameters:
    """Per-step constants, indexed by step position (ascending timesteps).

    Attributes:
        timesteps: (S,) int64 training timesteps.
        alphas: (S,) float32 alpha_bar at each timestep.
        alphas_prev: (S,) float32 alpha_bar of the previous DDIM step; the first is alpha_bar[0].
        sigmas: (S,) float32 eta * sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev)).
    """

    timesteps: torch.Tensor
    alphas: torch.Tensor
    alphas_prev: torch.Tensor
    sigmas: torch.Tensor


def ddim_timesteps(num_train_steps: int, steps: int) -> torch.Tensor:
    """DINAR's "uniform" DDIM timesteps: range(0, T, T // S) + 1 -> (S',) int64 (S' = S when S divides T)."""
    if steps < 1 or num_train_steps // steps < 1:
        raise ValueError(f"DDIM steps must be in 1..{num_train_steps}, got {steps}")
    ts = torch.arange(0, num_train_steps, num_train_steps // steps, dtype=torch.int64) + 1
    if int(ts[-1]) >= num_train_steps:
        raise ValueError(
            f"DDIM steps={steps} with T={num_train_steps} gives timestep {int(ts[-1])} >= T (DINAR's rule: "
            f"range(0, T, T // steps) + 1); choose a number of steps that divides T, e.g. 200"
        )
    return ts


def ddim_parameters(alphas_cumprod: torch.Tensor, steps: int, eta: float) -> DDIMParameters:
    """alphas_cumprod: (T,) float32 schedule buffer -> DDIMParameters (computed in float64, stored float32)."""
    ts = ddim_timesteps(alphas_cumprod.shape[0], steps)
    ac = alphas_cumprod.detach().cpu().double()
    a = ac[ts]
    a_prev = torch.cat([ac[:1], ac[ts[:-1]]])
    sig = eta * torch.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
    return DDIMParameters(timesteps=ts, alphas=a.float(), alphas_prev=a_prev.float(), sigmas=sig.float())


@dataclass(frozen=True)
class DDIMStep:
    """prev_sample: (B, C, H, W) x at the previous timestep; pred_x0: (B, C, H, W) the clean-latent estimate."""

    prev_sample: torch.Tensor
    pred_x0: torch.Tensor


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor, alpha_prev: torch.Tensor,
              sigma: torch.Tensor, noise: torch.Tensor) -> DDIMStep:
    """One DDIM update (Song et al. 2021, eq. 12), eps parameterisation.

    x0 = (x_t - sqrt(1 - a) eps) / sqrt(a);  x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - s^2) eps + s z.
    x_t, eps, noise: (B, C, H, W); alpha, alpha_prev, sigma: () or (B, 1, 1, 1) float32.
    """
    pred_x0 = (x_t - torch.sqrt(1.0 - alpha) * eps) / alpha.sqrt()
    direction = (1.0 - alpha_prev - sigma**2).sqrt() * eps
    return DDIMStep(prev_sample=alpha_prev.sqrt() * pred_x0 + direction + sigma * noise, pred_x0=pred_x0)


@dataclass(frozen=True)
class InpaintSample:
    """latent: (B, C, H, W) final sample (not re-masked, as DINAR); pred_x0: (B, C, H, W) last x0 estimate;
    timesteps: (S,) the timesteps used, ascending."""

    latent: torch.Tensor
    pred_x0: torch.Tensor
    timesteps: torch.Tensor


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    # Draw on the generator's device (a CPU generator gives the same numbers whatever `device` is), then move.
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device, dtype=torch.float32).to(device)


@torch.no_grad()
def sample_ddim_inpaint(
    eps_model: EpsModel,
    schedule: DiffusionSchedule,
    cond: torch.Tensor,
    *,
    steps: int = 200,
    eta: float = 1.0,
    dtype: Precision = "fp32",
    erode_mask: bool = True,
    generator: torch.Generator | None = None,
    progress: ProgressCallback | None = None,
    x_T: torch.Tensor | None = None,
) -> InpaintSample:
    """Sample a latent whose known region follows the condition (DINAR's DDIM inpainting).

    cond: (B, C + 1, H, W) = known latent (B, C, H, W) and known mask (B, 1, H, W) (see ``make_condition``);
    it is also the UNet's condition. Random draws, in order: x_T, then per step the q_sample noise and the
    DDIM noise, all from `generator`. progress(i, S) is called after step i (0-based) of S.
    """
    # 1. Split the condition into the known latent and its (eroded) mask.
    if cond.ndim != 4 or cond.shape[1] < 2:
        raise ValueError(f"sample_ddim_inpaint: cond must be (B, C + 1, H, W), got {tuple(cond.shape)}")
    if dtype not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"sample_ddim_inpaint: dtype must be 'fp32', 'bf16' or 'fp16', got {dtype!r}")
    device = cond.device
    cond = cond.float()
    x0_known = cond[:, :-1]  # (B, C, H, W)
    mask = erode3x3(cond[:, -1:]) if erode_mask else cond[:, -1:]  # (B, 1, H, W)
    b = cond.shape[0]

    # 2. Per-step constants for the chosen number of steps.
    params = ddim_parameters(schedule.alphas_cumprod, steps, eta)
    total = params.timesteps.shape[0]

    # 3. Start from pure noise (or the given x_T).
    if x_T is None:
        x = _randn(tuple(x0_known.shape), generator, device)
    else:
        if x_T.shape != x0_known.shape:
            raise ValueError(f"sample_ddim_inpaint: x_T {tuple(x_T.shape)} must be {tuple(x0_known.shape)}")
        x = x_T.to(device=device, dtype=torch.float32)
    autocast = (torch.autocast(device_type=device.type, dtype=_AUTOCAST[dtype]) if dtype != "fp32" else nullcontext())
    pred_x0 = x

    # 4. Denoise from the last timestep to the first.
    for i in range(total):
        index = total - 1 - i
        t = torch.full((b,), int(params.timesteps[index]), dtype=torch.int64, device=device)
        # 4a. Replace the known region by the known latent noised to this timestep (before the model call).
        x_known_t = schedule.q_sample(x0_known, t, _randn(tuple(x0_known.shape), generator, device))
        x = x_known_t * mask + (1.0 - mask) * x
        # 4b. Predict the noise.
        with autocast:
            eps = eps_model(x, t, cond)
        eps = eps.float()
        # 4c. DDIM update to the previous timestep.
        a, a_prev, s = (v[index].to(device).reshape(1, 1, 1, 1) for v in (params.alphas, params.alphas_prev, params.sigmas))
        out = ddim_step(x, eps, a, a_prev, s, _randn(tuple(x.shape), generator, device))
        x, pred_x0 = out.prev_sample, out.pred_x0
        # 4d. Report progress.
        if progress is not None:
            progress(i, total)

    # 5. Return the last sample as is: DINAR does not re-impose the known region after the final step.
    return InpaintSample(latent=x, pred_x0=pred_x0, timesteps=params.timesteps)
