"""Builders for DINAR's class paths (as written in its YAML configs) and a strict state-dict loader."""

from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

from dinar_core.errors import CheckpointError

# DINAR class path (e.g. "renderers.pix2pix.Renderer") -> builder(params: dict) -> nn.Module accepting DINAR's calls.
BUILDERS: dict[str, Callable[[dict], nn.Module]] = {}


def register(target: str):
    """Decorator: register a builder for DINAR's class path `target`."""

    def deco(fn: Callable[[dict], nn.Module]):
        BUILDERS[target] = fn
        return fn

    return deco


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "state dict") -> None:
    """Load `state_dict` into `module`, raising `CheckpointError` that lists every missing key, unexpected key and
    shape mismatch (torch's strict loading stops at the first shape error and reports keys only in bulk)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(
        f"{k}: expected {tuple(own[k].shape)}, got {tuple(state_dict[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or mismatched:
        parts = []
        for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if items:
                shown = ", ".join(items[:20]) + (f", ... ({len(items)} in all)" if len(items) > 20 else "")
                parts.append(f"{len(items)} {title}: {shown}")
        raise CheckpointError(
            f"{source} does not match {type(module).__name__}: " + "; ".join(parts),
            fix="check that the checkpoint is DINAR's ddpm-epoch=24.ckpt (or was written by this project) and that "
            "the model config matches its sizes (configs/neural.yaml)",
        )
    module.load_state_dict(state_dict, strict=True)
