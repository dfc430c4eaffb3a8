"""DDPM noise schedule with DINAR's 13 buffers (the names its checkpoint stores at the top level).

Values are computed in float64 and stored as float32, as DINAR (LDM) does, so they equal the buffers of its
checkpoint bit for bit.
"""

from __future__ import annotations


import numpy as np
import torch
from torch import nn

from dinar_core.diffusion.config import ScheduleConfig  # noqa: F401  (re-exported: torch-free definition)

# In DINAR's state_dict order.
BUFFER_NAMES: tuple[str, ...] = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
    "logvar",
)


def schedule_arrays(cfg: ScheduleConfig) -> dict[str, np.ndarray]:
    """The 13 buffers as float64 arrays of shape (T,), before DINAR's float32 cast."""
    t = cfg.num_timesteps
    # device="cpu": the maths runs on the host even when a model is built under `with torch.device("meta")`.
    betas = (torch.linspace(cfg.linear_start**0.5, cfg.linear_end**0.5, t, dtype=torch.float64, device="cpu") ** 2).numpy()
    alphas = 1.0 - betas
    ac = np.cumprod(alphas, axis=0)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = (1 - cfg.v_posterior) * betas * (1.0 - ac_prev) / (1.0 - ac) + cfg.v_posterior * betas
    return {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": np.sqrt(ac),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": np.log(1.0 - ac),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ac - 1),
        "posterior_variance": post_var,
        # clipped because the posterior variance is 0 at t = 0
        "posterior_log_variance_clipped": np.log(np.maximum(post_var, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
        "logvar": np.full((t,), cfg.logvar_init, dtype=np.float64),
    }


def _gather(a: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """a: (T,), t: (B,) -> (B, 1, ..., 1) with `ndim` dims in all."""
    return a.gather(0, t).reshape(-1, *([1] * (ndim - 1)))


class DiffusionSchedule(nn.Module):
    """Holds the schedule as persistent float32 buffers (``betas`` ... ``logvar``), so a DINAR checkpoint's
    values can be loaded over the computed ones exactly as DINAR does."""

    betas: torch.Tensor
    alphas_cumprod: torch.Tensor
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    sqrt_recip_alphas_cumprod: torch.Tensor
    sqrt_recipm1_alphas_cumprod: torch.Tensor

    def __init__(self, cfg: ScheduleConfig | None = None):
        super().__init__()
        self.config = cfg = cfg or ScheduleConfig()
        for name, arr in schedule_arrays(cfg).items():
            self.register_buffer(name, torch.tensor(arr, dtype=torch.float32))

    @property
    def num_timesteps(self) -> int:
        return self.config.num_timesteps

    def expected_buffers(self) -> dict[str, torch.Tensor]:
        """Freshly computed float32 buffers (CPU), e.g. to compare with loaded ones."""
        return {k: torch.tensor(v, dtype=torch.float32) for k, v in schedule_arrays(self.config).items()}

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Forward diffusion. x0, noise: (B, C, H, W); t: (B,) int64 -> x_t: (B, C, H, W)."""
        if noise.shape != x0.shape:
            raise ValueError(f"q_sample: noise {tuple(noise.shape)} must match x0 {tuple(x0.shape)}")
        return (_gather(self.sqrt_alphas_cumprod, t, x0.ndim) * x0
                + _gather(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise)

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x0 from an eps prediction. x_t, eps: (B, C, H, W); t: (B,) -> (B, C, H, W)."""
        return (_gather(self.sqrt_recip_alphas_cumprod, t, x_t.ndim) * x_t
                - _gather(self.sqrt_recipm1_alphas_cumprod, t, x_t.ndim) * eps)
