"""Stage `avatar`: the fitted body + the photo(s) -> a textured avatar.

`classic` mode (any body): every frame's photo is unwrapped into the body's UV texture, then completed by
symmetry, front/back transfer and a fill (``dinar_core.texture.classic_texture``). Outputs:
``avatar/texture.png`` (RGB, ``texture_size`` squared), ``avatar/provenance.png`` (observed / mirrored /
front-back / filled, colour-coded) and ``avatar/avatar.json`` (what later stages need: the body, its params files,
the reference frame, the texture size and the provenance fractions).

`neural` mode (DINAR's network) is run by ``dinar infer`` for now: the stage says so (or that the checkpoint is
missing) instead of duplicating that pipeline.

The helpers here (`load_fit`, `load_layout`, `read_texture`) are shared by the `render` and `export` stages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from dinar_core.body import AnnyParams
from dinar_core.body.base import UVLayout
from dinar_core.body.dinar_pickle import read_dinar_pickle
from dinar_core.body.smplx_model import SMPLXParams
from dinar_core.errors import DatasetError, DinarError, MissingCheckpointError
from dinar_core.render.camera import make_K
from dinar_core.texture import PhotoView, classic_texture, layout_from_body, load_smplx_uv_layout
from tasks.bodies import LoadedBody, body_kind, load_body, smplx_model_file
from tasks.config import PipelineConfig
from tasks.fit import anny_params_path
from tasks.runner import Stage, StageOutput
from tasks.segment import read_mask, read_rgb
from tasks.workspace import Workspace, atomic_path, atomic_write_json

UV_FILES = ("uv.npy", "uv_faces.npy", "v_inds.npy")


# ----------------------------------------------------------------------------------------------------------------
# Shared: the fit of a workspace, the UV layout, the texture
# ----------------------------------------------------------------------------------------------------------------
def params_path(ws: Workspace, kind: str, frame: str) -> Path:
    """The fit stage's parameter file of `frame` for the body `kind`."""
    return ws.smplx(frame) if kind == "smplx" else anny_params_path(ws, frame)


def uv_assets_dir(cfg: PipelineConfig) -> str | None:
    return cfg.body.uv_assets or cfg.avatar.classic.uv_assets


def layout_inputs(cfg: PipelineConfig) -> list[Path]:
    """The SMPL-X UV files that exist (their bytes key the cache; a missing one is reported by the stage itself as
    MissingModelError, not by the cache key as a bare FileNotFoundError)."""
    if body_kind(cfg.body) != "smplx" or not uv_assets_dir(cfg):
        return []
    return [p for p in (Path(uv_assets_dir(cfg)) / n for n in UV_FILES) if p.is_file()]


def body_inputs(ws: Workspace, cfg: PipelineConfig) -> list[Path]:
    """Every frame's fit parameters, and the SMPL-X model file when that body is used."""
    kind = body_kind(cfg.body)
    inputs = [p for p in (params_path(ws, kind, f) for f in ws.frames()) if p.is_file()]
    if kind == "smplx":
        inputs.append(smplx_model_file(cfg.body))
    return inputs + layout_inputs(cfg)


def load_layout(body: LoadedBody, cfg: PipelineConfig) -> UVLayout:
    """SMPL-X: DINAR's UV layout from ``body.uv_assets``; Anny: its own UVs. MissingModelError otherwise."""
    if body.kind == "smplx":
        return load_smplx_uv_layout(uv_assets_dir(cfg), device=body.model.device)
    return layout_from_body(body.model)


@dataclass
class FitFrame:
    """One frame's fit. params: SMPLXParams or AnnyParams (batch 1, on the body's device); K: (3, 3) the photo's
    camera; verts_cam: (1, V, 3) the posed body in that camera; image_size: (H, W) of the photo."""

    frame: str
    params: object
    K: torch.Tensor
    verts_cam: torch.Tensor
    image_size: tuple[int, int]


def read_fit_params(ws: Workspace, kind: str, frame: str, device: torch.device) -> tuple[object, torch.Tensor | None]:
    """(params, K or None): K is stored with Anny's fits; SMPL-X's is DINAR's make_K at the photo size."""
    path = params_path(ws, kind, frame)
    if not path.is_file():
        raise DatasetError(f"{ws.rel(path)} is missing: the fit of frame {frame!r} was not written",
                           fix="run the fit stage again (dinar rerun)")
    if kind == "smplx":
        return read_dinar_pickle(path).params.to(device), None
    with np.load(path) as z:
        arrays = {k: torch.from_numpy(np.asarray(z[k], np.float32)).to(device) for k in
                  ("phenotype", "pose", "global_orient", "transl", "K")}
    K = arrays.pop("K")
    return AnnyParams(**arrays), K


def load_fit(ws: Workspace, body: LoadedBody, frames: list[str] | None = None) -> list[FitFrame]:
    """The fit of each frame, posed."""
    out = []
    device = body.model.device
    for frame in frames or ws.frames():
        params, K = read_fit_params(ws, body.kind, frame, device)
        H, W = read_mask(ws.segm(frame)).shape[:2]
        if K is None:
            K = make_K(H, W, device=device)
        with torch.no_grad():
            verts = body.model(params).vertices
        out.append(FitFrame(frame, params, K.to(device), verts, (H, W)))
    return out


def write_png(path: Path, rgb: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")
    return path


def texture_path(ws: Workspace) -> Path:
    return ws.avatar_dir / "texture.png"


def read_texture(ws: Workspace) -> np.ndarray:
    """(T, T, 3) uint8 RGB."""
    path = texture_path(ws)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{ws.rel(path)} is missing or unreadable", fix="run the avatar stage again")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_avatar_json(ws: Workspace) -> dict:
    path = ws.avatar_dir / "avatar.json"
    if not path.is_file():
        raise DatasetError(f"{ws.rel(path)} is missing", fix="run the avatar stage again")
    return json.loads(path.read_text("utf-8"))


# ----------------------------------------------------------------------------------------------------------------
# The stage
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class LoadedAvatar:
    """A built avatar read back for render and export: avatar.json, texture (T, T, 3) uint8, the body model it was
    built for, its UV layout and the reference frame's fit."""

    meta: dict
    texture: np.ndarray
    body: LoadedBody
    layout: UVLayout
    fit: FitFrame


def load_avatar(ws: Workspace, cfg: PipelineConfig) -> LoadedAvatar:
    meta = read_avatar_json(ws)
    texture = read_texture(ws)
    body = load_body(cfg.body)
    if body.kind != meta["body"]:
        raise ValueError(f"the avatar was built for the {meta['body']} body but body.model resolves to {body.kind}")
    return LoadedAvatar(meta, texture, body, load_layout(body, cfg), load_fit(ws, body, [meta["reference_frame"]])[0])


def avatar_inputs(ws: Workspace, cfg: PipelineConfig) -> list[Path]:
    frames = ws.frames()
    checkpoint = [Path(cfg.avatar.checkpoint)] if cfg.avatar.mode == "neural" and cfg.avatar.checkpoint else []
    return [ws.rgb(f) for f in frames] + [ws.segm(f) for f in frames] + body_inputs(ws, cfg) + checkpoint


def neural_dir(ws: Workspace) -> Path:
    """Where the neural avatar is written, in DINAR's layout (``eval/run/textures/{data_dict,finetuned,videos}``)."""
    return ws.avatar_dir / "neural"


def _neural(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    """DINAR's neural avatar of this workspace (a workspace is a DINAR dataset): `tasks.infer.infer` on it."""
    if not cfg.avatar.checkpoint:
        raise MissingCheckpointError(
            "avatar.mode is 'neural' but avatar.checkpoint is not set",
            fix="download DINAR's ddpm-epoch=24.ckpt (link in DINAR's README, github SamsungLabs/DINAR) and set "
                "avatar.checkpoint to it; neural mode also needs the SMPL-X body (body.smplx_models), or use "
                "avatar.mode=classic")
    if body_kind(cfg.body) != "smplx":
        raise DinarError("avatar.mode 'neural' needs the SMPL-X body (DINAR's networks were trained on it); the fit "
                         "used Anny", fix="set --smplx-models DIR (and body.model smplx), or use avatar.mode=classic")
    from tasks.infer import InferOptions, infer

    options = InferOptions(neural=cfg.neural, smplx_models=Path(cfg.body.smplx_models) if cfg.body.smplx_models
                           else None, uv_assets=Path(cfg.body.uv_assets) if cfg.body.uv_assets else None,
                           run_name="run", write_frames=False)
    result = infer(cfg.avatar.checkpoint, neural_dir(ws), ws.root, options)
    meta = {"mode": "neural", "body": "smplx", "checkpoint": str(Path(cfg.avatar.checkpoint).resolve()),
            "frames": result.persons, "data_dicts": [ws.rel(p) for p in result.data_dicts],
            "finetuned": [ws.rel(p) for p in result.finetuned], "videos": [ws.rel(p) for p in result.videos],
            "seconds": result.seconds}
    outputs = [*result.data_dicts, *result.finetuned, *result.videos,
               atomic_write_json(ws.avatar_dir / "avatar.json", meta)]
    return StageOutput(outputs=outputs, info={"mode": "neural", "seconds": result.seconds})


def build_avatar(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    """Classic texture from every frame; writes texture.png, provenance.png and avatar.json."""
    if cfg.avatar.mode == "neural":
        return _neural(ws, cfg)
    classic = cfg.avatar.classic
    classic.validate()
    frames = ws.frames()
    if not frames:
        raise DatasetError(f"{ws.root} has no frames in rgb/", fix="run the ingest stage first")
    body = load_body(cfg.body)
    layout = load_layout(body, cfg)
    fits = load_fit(ws, body, frames)
    photos = [PhotoView(read_rgb(ws.rgb(f.frame)), read_mask(ws.segm(f.frame)), f.verts_cam, f.K) for f in fits]
    with torch.no_grad():
        result = classic_texture(photos, layout, body.model.rest_vertices, classic)
    completed = result.completed
    texture = (completed.texture.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()  # (T, T, 3)
    outputs = [write_png(texture_path(ws), texture),
               write_png(ws.avatar_dir / "provenance.png", completed.provenance_image())]
    fractions = {k: round(v, 4) for k, v in completed.fractions().items()}
    meta = {
        "mode": "classic",
        "body": body.kind,
        "model_file": str(body.model_file) if body.model_file else None,
        "gender": cfg.body.gender,
        "uv_layout": str(Path(uv_assets_dir(cfg)).resolve()) if body.kind == "smplx" else "anny",
        "frames": frames,
        "params_files": [ws.rel(params_path(ws, body.kind, f)) for f in frames],
        "reference_frame": frames[0],
        "reference_image_size": list(fits[0].image_size),
        "texture": "texture.png",
        "texture_size": int(classic.texture_size),
        "provenance": "provenance.png",
        "fractions": fractions,
    }
    outputs.append(atomic_write_json(ws.avatar_dir / "avatar.json", meta))
    warnings = []
    if fractions.get("observed", 0.0) < 0.2:
        warnings.append(f"LowCoverage: only {fractions.get('observed', 0.0):.0%} of the texture was seen in the "
                        "photo(s); the rest is mirrored or filled")
    return StageOutput(outputs=outputs, warnings=warnings,
                       info={"body": body.kind, "texture_size": int(classic.texture_size), **fractions})


STAGE = Stage(name="avatar", version="1", after=("fit",), sections=("body", "avatar", "neural"), inputs=avatar_inputs,
              run=build_avatar, tools=("torch",))
