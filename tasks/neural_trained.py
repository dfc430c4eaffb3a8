"""The avatar stage's `neural` mode with a model trained by `dinar train` (``avatar.checkpoint`` = its ``model.pt``):
DINAR's texture pipeline (`NeuralAvatarPipeline`: encoder, generator, VQ, DDIM inpainting, renderer) on the
workspace's own fit, for whichever body the model was trained on (Anny's layout included, so no SMPL-X is needed).

The networks' sizes are the ones recorded in ``model.pt`` (what it was trained with, `NETWORK_FIELDS`); the rest of
``neural`` (DDIM steps, seed, device, the video's length) comes from the run's config. Writes ``avatar/neural/turntable.mp4`` (the renderer's rotation video,
which the render stage takes as the person's video) and ``avatar/neural/texture_rgb.png`` (the RGB channels of the
inpainted neural texture, to look at). DINAR's per-avatar finetuning is not run (``model.pt`` holds no
discriminator).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from dinar_core.avatar.config import NeuralAvatarConfig
from dinar_core.avatar.dataset import prepare_sample
from dinar_core.avatar.neural import NeuralAvatarPipeline, project_vertices
from dinar_core.errors import DinarError
from dinar_core.nets.config import UVLayoutConfig
from dinar_core.training.weights import read_phase_weights
from tasks.artifacts import avatar_json_path, load_fit, read_mask, read_rgb, write_png
from tasks.bodies import load_body, load_layout
from tasks.config import PipelineConfig
from tasks.config_overrides import override
from tasks.runner import StageOutput
from tasks.workspace import Workspace, atomic_write_json


NETWORK_FIELDS = ("image_size", "texture_size", "crop_scale", "encoder", "generator", "vq", "unet", "renderer",
                  "discriminator", "schedule")
"""What ``model.pt`` decides (the sizes it was trained with); the rest of ``neural`` (DDIM steps, seed, device,
video) is the run's."""


def trained_neural(ws: Workspace, cfg: PipelineConfig, out_dir: Path) -> StageOutput:
    """The neural avatar of `ws`'s first frame with the trained ``model.pt`` of ``avatar.checkpoint``."""
    from dinar_core.export.video import VideoConfig, write_mp4
    from dinar_core.training.bundle import build_model

    weights = read_phase_weights(cfg.avatar.checkpoint, "model")
    body = load_body(cfg.body)
    if weights.layout != body.kind:
        raise DinarError(f"{weights.path} was trained on the {weights.layout!r} UV layout, but this person's fit uses "
                         f"the {body.kind} body", fix=f"fit with body.model={weights.layout}, or train on this body")
    layout = load_layout(body, cfg)
    trained = override(NeuralAvatarConfig(), weights.neural)
    neural = replace(cfg.neural, **{name: getattr(trained, name) for name in NETWORK_FIELDS},
                     uv_layout=UVLayoutConfig(num_faces=int(layout.uv_faces.shape[0]),
                                              num_uv_verts=int(layout.uv.shape[0])))
    device = neural.resolve_device()
    model = build_model(weights, neural, layout.uv_faces.cpu(), layout.uv.cpu()).to(device)
    pipe = NeuralAvatarPipeline(model, layout, neural, device=device)
    frame = ws.frames()[0]
    fit = load_fit(ws, body, [frame])[0]
    verts_pix = project_vertices(fit.verts_cam, fit.K, layout.vertex_index)[0]
    mask = read_mask(ws.segm(frame)).astype(np.uint8) * 255
    sample = prepare_sample(frame, read_rgb(ws.rgb(frame)), mask, verts_pix.double().cpu().numpy(),
                            fit.K.double().cpu().numpy(), neural.image_size, neural.crop_scale)
    avatar = pipe.run(sample)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / "turntable.mp4"
    frames = pipe.frames(avatar.ntexture, pipe.turntable(avatar.verts, avatar.K, pipe.turntable_frame_count()))
    write_mp4(video, (f.rgb.numpy() for f in frames), VideoConfig(fps=float(neural.video.fps)))
    rgb = avatar.ntexture[0, -5:-2].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    texture = write_png(out_dir / "texture_rgb.png", (rgb * 255).round().astype(np.uint8))
    meta = {"mode": "neural", "body": body.kind, "checkpoint": str(Path(cfg.avatar.checkpoint).resolve()),
            "trained": {"layout": weights.layout, "steps": weights.steps, "untrained": list(weights.untrained)},
            "frames": [frame], "videos": [ws.rel(video)], "texture_rgb": ws.rel(texture),
            "seconds": round(sum(avatar.times.seconds.values()), 3)}
    return StageOutput(outputs=[video, texture, atomic_write_json(avatar_json_path(ws), meta)],
                       info={"mode": "neural", "trained": True})
