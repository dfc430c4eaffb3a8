"""What every training phase shares: random draws keyed by the step, the rank's share of the global batch, the
step stream a phase iterates over, and the LightningModule base class.

Why the draws are keyed by the step (and not by the data loader's order and the global RNG): Lightning restarts a
data loader at the start of its epoch when it resumes from a checkpoint taken mid-epoch, and the global RNG state
depends on how many processes run. A phase instead draws the batch's samples, timesteps and noise for the whole
global batch from a generator seeded by (seed, step) and each process takes its slice, so a resumed run equals a
straight one, and N processes of batch b equal one process of batch N * b (up to the order of float sums).
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterator

import pytorch_lightning as pl
import torch

from dinar_core.training.config import TrainConfig


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator seeded by (`seed`, `step`) (a hash, so neighbouring seeds and steps are unrelated)."""
    digest = hashlib.blake2b(f"dinar-train/{seed}/{step}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & ((1 << 63) - 1))


class StepStream:
    """What a phase iterates over: the step numbers ``next .. steps - 1`` (the batch is drawn in
    ``training_step``). Stateful (``state_dict`` / ``load_state_dict``), so Lightning stores where it was in a
    checkpoint and a resumed run iterates the remaining steps only."""

    def __init__(self, steps: int):
        self.steps, self.next = steps, 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[int]:
        while self.next < self.steps:
            step = self.next
            self.next += 1
            yield step
        self.next = 0  # a new epoch starts from the beginning

    def state_dict(self) -> dict[str, int]:
        return {"next": self.next}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.next = int(state["next"])


class PhaseModule(pl.LightningModule):
    """Base of the phases: Adam on :meth:`trainable`, the step stream, and the rank's slice of a global draw.

    Subclasses set ``phase``, build their networks, implement ``training_step(step, _)`` (the step stream's item
    is the training step's number) with :meth:`draws` and :meth:`local`, and give :meth:`export_state` (the
    tensors of ``<phase>.pt``).
    """

    phase = "?"

    def __init__(self, train: TrainConfig, layout: str, untrained: tuple[str, ...] = ()):
        super().__init__()
        self.train_cfg = train
        self.layout = layout
        self.untrained = untrained

    # -- the global batch -------------------------------------------------------------------------------------------
    @property
    def global_batch(self) -> int:
        return self.train_cfg.batch_size * self.world

    @property
    def world(self) -> int:
        return self.trainer.world_size if self._trainer is not None else 1

    optimizers_per_step = 1
    """Optimiser steps per training step (Lightning's ``global_step`` counts those): 2 with a discriminator."""

    def draws(self, step: int) -> torch.Generator:
        """Training step `step`'s generator (the same in every process)."""
        return step_generator(self.train_cfg.seed, int(step))

    def local(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This process's rows of global-batch tensors, moved to its device."""
        rank = self.global_rank if self._trainer is not None else 0
        part = slice(rank * self.train_cfg.batch_size, (rank + 1) * self.train_cfg.batch_size)
        return tuple(t[part].to(self.device) for t in tensors)

    # -- Lightning hooks ----------------------------------------------------------------------------------------------
    def train_dataloader(self) -> StepStream:
        return StepStream(self.train_cfg.max_steps)

    def trainable(self) -> list[torch.nn.Parameter]:
        raise NotImplementedError

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.trainable(), lr=self.train_cfg.lr)

    def export_state(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError
