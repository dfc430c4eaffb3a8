"""Stage `avatar`: the fitted body + the photo(s) -> a textured avatar.

`classic` mode (any body): every frame's photo is unwrapped into the body's UV texture through the fit's camera
(``smplx/<frame>_camera.json`` or Anny's npz; ``tasks.artifacts.read_camera``), then completed by symmetry,
front/back transfer and a fill (``dinar_core.texture.classic_texture``). Outputs: ``avatar/texture.png`` (RGB,
``texture_size`` squared), ``avatar/provenance.png`` (observed / mirrored / front-back / filled, colour-coded) and
``avatar/avatar.json`` (what later stages need: the body, its params files, the reference frame, the texture size
and the provenance fractions).

`neural` mode: with DINAR's checkpoint (SMPL-X only), DINAR's inference (``tasks.neural_inference``) on the
workspace, which is a DINAR dataset, written in DINAR's layout under ``avatar/neural/``; with a ``model.pt`` of
`dinar train`, the same networks for the body it was trained on (``tasks.neural_trained``, Anny included);
``avatar/avatar.json`` lists the files.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dinar_core.errors import DatasetError, DinarError, MissingCheckpointError
from dinar_core.texture import PhotoView, body_parts, classic_texture
from dinar_core.texture.hair_volume import HairVolume, measure_hair_volume, scalp_weights
from tasks.artifacts import (avatar_json_path, body_inputs, load_fit, params_path, read_mask, read_rgb, texture_path,
                             write_png)
from tasks.bodies import body_kind, load_body, load_layout, uv_assets_dir
from tasks.config import PipelineConfig
from tasks.runner import Stage, StageOutput
from tasks.workspace import Workspace, atomic_write_json


def avatar_inputs(ws: Workspace, cfg: PipelineConfig) -> list[Path]:
    frames = ws.frames()
    checkpoint = [Path(cfg.avatar.checkpoint)] if cfg.avatar.mode == "neural" and cfg.avatar.checkpoint else []
    return [ws.rgb(f) for f in frames] + [ws.segm(f) for f in frames] + body_inputs(ws, cfg) + checkpoint


def neural_dir(ws: Workspace) -> Path:
    """Where the neural avatar is written, in DINAR's layout (``eval/run/textures/{data_dict,finetuned,videos}``)."""
    return ws.avatar_dir / "neural"


def _neural(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    """DINAR's neural avatar of this workspace (a workspace is a DINAR dataset): `tasks.neural_inference.infer`
    on it."""
    if not cfg.avatar.checkpoint:
        raise MissingCheckpointError(
            "avatar.mode is 'neural' but avatar.checkpoint is not set",
            fix="download DINAR's ddpm-epoch=24.ckpt (link in DINAR's README, github SamsungLabs/DINAR) and set "
                "avatar.checkpoint to it; neural mode also needs the SMPL-X body (body.smplx_models), or use "
                "avatar.mode=classic")
    from dinar_core.training.weights import is_weights_file

    if is_weights_file(cfg.avatar.checkpoint):  # a model of `dinar train`, for the body it was trained on
        from tasks.neural_trained import trained_neural

        return trained_neural(ws, cfg, neural_dir(ws))
    if body_kind(cfg.body) != "smplx":
        raise DinarError("avatar.mode 'neural' with DINAR's checkpoint needs the SMPL-X body (DINAR's networks were "
                         "trained on it); the fit used Anny",
                         fix="set --smplx-models DIR (and body.model smplx), give a model.pt that `dinar bundle` made "
                             "from networks trained on Anny, or use avatar.mode=classic")
    from tasks.neural_inference import InferOptions, infer  # the networks' modules load only in neural mode

    options = InferOptions(neural=cfg.neural, smplx_models=Path(cfg.body.smplx_models) if cfg.body.smplx_models
                           else None, uv_assets=Path(cfg.body.uv_assets) if cfg.body.uv_assets else None,
                           run_name="run", write_frames=False)
    result = infer(cfg.avatar.checkpoint, neural_dir(ws), ws.root, options)
    meta = {"mode": "neural", "body": "smplx", "checkpoint": str(Path(cfg.avatar.checkpoint).resolve()),
            "frames": result.persons, "data_dicts": [ws.rel(p) for p in result.data_dicts],
            "finetuned": [ws.rel(p) for p in result.finetuned], "videos": [ws.rel(p) for p in result.videos],
            "seconds": result.seconds}
    outputs = [*result.data_dicts, *result.finetuned, *result.videos,
               atomic_write_json(avatar_json_path(ws), meta)]
    return StageOutput(outputs=outputs, info={"mode": "neural", "seconds": result.seconds})


def _hair_record(hair) -> dict | None:
    """What the texture found of the hair (``texture.hair``): its colour (0..255) and the lowest body height it
    reaches, or found = false."""
    if hair is None:
        return None
    if hair.colour is None:
        return {"found": False}
    return {"found": True, "colour_rgb": [int(round(float(c) * 255)) for c in hair.colour],
            "reach": round(float(hair.reach), 4)}


def hair_volume(body, fit, mask, classic, parts) -> HairVolume | None:
    """The scalp shell's thickness measured on the reference photo's mask (None when off or the body has no
    parts). parts: (V,) the body's vertex parts (``body_parts``) or None."""
    if not (classic.hair_volume and parts is not None):
        return None
    weights = scalp_weights(body.model.rest_vertices, parts)
    with torch.no_grad():
        return measure_hair_volume(fit.verts_cam, fit.K, body.model.faces, mask, weights,
                                   max_thickness=float(classic.hair_max_thickness))


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
    parts = body_parts(body.model)
    with torch.no_grad():
        result = classic_texture(photos, layout, body.model.rest_vertices, classic, parts=parts)
    completed = result.completed
    volume = hair_volume(body, fits[0], photos[0].mask, classic, parts)
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
        "face_texels": result.face_texels,
        "hair": _hair_record(completed.hair),
        "hair_volume": volume.to_dict() if volume is not None else None,
        "provenance": "provenance.png",
        "fractions": fractions,
    }
    outputs.append(atomic_write_json(avatar_json_path(ws), meta))
    warnings = []
    if fractions.get("observed", 0.0) < 0.2:
        warnings.append(f"LowCoverage: only {fractions.get('observed', 0.0):.0%} of the texture was seen in the "
                        "photo(s); the rest is mirrored or filled")
    return StageOutput(outputs=outputs, warnings=warnings,
                       info={"body": body.kind, "texture_size": int(classic.texture_size),
                             "face_texels": result.face_texels, **fractions})


STAGE = Stage(name="avatar", version="3", after=("fit",), sections=("body", "avatar", "neural"), inputs=avatar_inputs,
              run=build_avatar, tools=("torch",))
