"""Public entry points of the DINAR compatibility layer: build a module from DINAR's ``{target, params}`` and
load a state_dict for it strictly."""

from __future__ import annotations

import importlib
from typing import Mapping

import torch
from torch import nn

from dinar_core.compat.registry import BUILDERS, load_strict

# Modules whose import registers builders (first stage: encoder, generator, renderer...; second stage: VQ, UNet).
_BUILDER_MODULES = ("dinar_core.compat.first_stage", "dinar_core.compat.second_stage")


def _register_all() -> None:
    for name in _BUILDER_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # a missing dependency inside the module is a real error
                raise


def build_dinar_module(target: str, params: Mapping | None = None) -> nn.Module:
    """Build the module for DINAR's class path `target` (e.g. "inpainting.openaimodel.UNetModel") from its
    params block. Raises ValueError for an unknown target, listing the known ones."""
    _register_all()
    if target not in BUILDERS:
        raise ValueError(f"unknown DINAR target {target!r}; known targets: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[target](dict(params or {}))


def load_dinar_state_dict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "state dict") -> None:
    """Load DINAR's state_dict for one module (keys exactly as DINAR's module of that class has them, i.e.
    with the parent prefix such as ``first_stage.compress_branch.`` removed). Strict: any missing or unexpected
    key or shape difference raises CheckpointError listing them all."""
    load_strict(module, state_dict, source=source)
