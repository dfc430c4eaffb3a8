"""The diffusion schedule's config, torch-free so that `tasks.config` (and `dinar status`) never import torch;
re-exported by ``dinar_core.diffusion.schedule``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ScheduleConfig:
    """Noise schedule; defaults are DINAR's (configs/eval.yaml and LDM's DDPM defaults).

    Attributes:
        num_timesteps: training diffusion steps T (1000).
        beta_schedule: "linear" = linspace(sqrt(start), sqrt(end), T)**2 (LDM's name for it).
        linear_start: first beta (3e-4).
        linear_end: last beta (0.02).
        v_posterior: weight of beta in the posterior variance (0: beta_tilde).
        logvar_init: value of the (unused at inference) ``logvar`` buffer.
    """

    num_timesteps: int = 1000
    beta_schedule: Literal["linear"] = "linear"
    linear_start: float = 0.0003
    linear_end: float = 0.02
    v_posterior: float = 0.0
    logvar_init: float = 0.0

    def __post_init__(self) -> None:
        if self.beta_schedule != "linear":
            raise ValueError(f"ScheduleConfig.beta_schedule: only 'linear' is supported, got {self.beta_schedule!r}")
        if self.num_timesteps < 2:
            raise ValueError(f"ScheduleConfig.num_timesteps must be >= 2, got {self.num_timesteps}")
