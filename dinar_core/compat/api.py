"""Public entry points of the DINAR compatibility layer: build a module from DINAR's ``{target, params}`` and
load a state_dict for it strictly."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from dinar_core.compat.registry import BUILDERS, load_strict

# Importing these modules registers their builders (first stage: encoder, generator, renderer, discriminator;
# second stage: VQ, UNet).
import dinar_core.compat.first_stage  # noqa: E402,F401
import dinar_core.compat.second_stage  # noqa: E402,F401


def build_dinar_module(target: str, params: Mapping | None = None) -> nn.Module:
    """Build the module for DINAR's class path `target` (e.g. "inpainting.openaimodel.UNetModel") from its
    params block. Raises ValueError for an unknown target, listing the known ones."""
    if target not in BUILDERS:
        raise ValueError(f"unknown DINAR target {target!r}; known targets: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[target](dict(params or {}))


def load_dinar_state_dict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "state dict") -> None:
    """Load DINAR's state_dict for one module (keys exactly as DINAR's module of that class has them, i.e.
    with the parent prefix such as ``first_stage.compress_branch.`` removed). Strict: any missing or unexpected
    key or shape difference raises CheckpointError listing them all."""
    load_strict(module, state_dict, source=source)
