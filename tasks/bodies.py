"""Which body model a run uses, loaded once per process (Anny's load costs seconds, SMPL-X's a fraction), and its
UV layout."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from dinar_core.body import AnnyBody, AnnyConfig, SMPLXBody, find_smplx_model_file, resolve_smplx_models_dir
from dinar_core.body.smplx_model import ENV_VAR as SMPLX_ENV_VAR
from dinar_core.errors import MissingModelError
from dinar_core.body.base import UVLayout
from dinar_core.texture import layout_from_body, load_smplx_uv_layout
from tasks.config import BodyConfig, PipelineConfig

UV_FILES = ("uv.npy", "uv_faces.npy", "v_inds.npy")


@dataclass(frozen=True)
class LoadedBody:
    kind: Literal["smplx", "anny"]
    model: torch.nn.Module
    model_file: Path | None
    """The SMPL-X file the model was built from (its bytes key the fit's cache); None for Anny (its version is
    recorded instead)."""


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise MissingModelError("device 'cuda' was asked for but no CUDA device is available",
                                fix="use device: auto or cpu")
    return torch.device(device)


def body_kind(cfg: BodyConfig) -> Literal["smplx", "anny"]:
    """`auto` resolves to SMPL-X when its files are configured (config or $DINAR_SMPLX_MODELS), else Anny."""
    if cfg.model != "auto":
        return cfg.model
    return "smplx" if cfg.smplx_models or os.environ.get(SMPLX_ENV_VAR) else "anny"


def smplx_model_file(cfg: BodyConfig) -> Path:
    """The configured SMPL-X file; MissingModelError naming the files and where to get them otherwise."""
    return find_smplx_model_file(resolve_smplx_models_dir(cfg.smplx_models), cfg.gender)


@functools.lru_cache(maxsize=4)
def _load(kind: str, model_file: str | None, gender: str, anny_cache: str | None, device: str) -> torch.nn.Module:
    if kind == "smplx":
        return SMPLXBody(model_file, gender=gender, device=device)
    return AnnyBody(AnnyConfig(cache_dir=anny_cache), device=device)


@functools.lru_cache(maxsize=4)
def load_anny_rig(name: str, anny_cache: str | None = None):
    """One of Anny's standard rigs (`dinar_core.body.anny_rigs.AnnyRig`), loaded once per process."""
    from dinar_core.body.anny_rigs import AnnyRig

    return AnnyRig(name, cache_dir=anny_cache)


def load_body(cfg: BodyConfig) -> LoadedBody:
    kind = body_kind(cfg)
    device = str(resolve_device(cfg.device))
    model_file = smplx_model_file(cfg) if kind == "smplx" else None
    model = _load(kind, str(model_file) if model_file else None, cfg.gender, cfg.anny_cache, device)
    return LoadedBody(kind, model, model_file)


def uv_assets_dir(cfg: PipelineConfig) -> str | None:
    """DINAR's SMPL-X UV folder: ``body.uv_assets``, or ``avatar.classic.uv_assets`` when that is unset."""
    return cfg.body.uv_assets or cfg.avatar.classic.uv_assets


def layout_inputs(cfg: PipelineConfig) -> list[Path]:
    """The SMPL-X UV files that exist (their bytes key the cache; a missing one is reported by the stage itself as
    MissingModelError, not by the cache key as a bare FileNotFoundError)."""
    if body_kind(cfg.body) != "smplx" or not uv_assets_dir(cfg):
        return []
    return [p for p in (Path(uv_assets_dir(cfg)) / n for n in UV_FILES) if p.is_file()]


def load_layout(body: LoadedBody, cfg: PipelineConfig) -> UVLayout:
    """SMPL-X: DINAR's UV layout from ``body.uv_assets``; Anny: its own UVs. MissingModelError otherwise."""
    if body.kind == "smplx":
        return load_smplx_uv_layout(uv_assets_dir(cfg), device=body.model.device)
    return layout_from_body(body.model)
