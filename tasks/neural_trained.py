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

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from dinar_core.avatar.config import NeuralAvatarConfig
from dinar_core.avatar.dataset import crop_transform, scale_box, square_box, vertex_box
from dinar_core.avatar.neural import NeuralAvatarPipeline, project_vertices
from dinar_core.errors import DinarError
from dinar_core.nets.config import UVLayoutConfig
from dinar_core.training.textures import LAYOUT_OF_BODY, layout_of
from dinar_core.training.weights import read_phase_weights
from tasks.artifacts import avatar_json_path, fit_sample, load_fit, write_png
from tasks.bodies import load_body, load_layout
from tasks.config import PipelineConfig
from tasks.config_overrides import override
from tasks.runner import StageOutput
from tasks.workspace import Workspace, atomic_write_json


NETWORK_FIELDS = ("image_size", "texture_size", "crop_scale", "encoder", "generator", "vq", "unet", "renderer",
                  "discriminator", "schedule")
"""What ``model.pt`` decides (the sizes it was trained with); the rest of ``neural`` (DDIM steps, seed, device,
video) is the run's."""


@dataclass
class TrainedAvatar:
    """A person's neural avatar made with a trained model: the pipeline (networks, layout), DINAR's result for the
    source frame (`NeuralAvatar`: the inpainted neural texture, its crop's vertices and K), the body and the fit."""

    pipe: NeuralAvatarPipeline
    avatar: object
    weights: object
    body: object
    fit: object


def load_trained_avatar(ws: Workspace, cfg: PipelineConfig) -> TrainedAvatar:
    """DINAR's texture pipeline on `ws`'s first frame with the trained ``model.pt`` of ``avatar.checkpoint``."""
    from dinar_core.training.bundle import build_model

    weights = read_phase_weights(cfg.avatar.checkpoint, "model")
    body = load_body(cfg.body)
    if weights.layout != layout_of(body.kind):
        body_of = {layout: kind for kind, layout in LAYOUT_OF_BODY.items()}.get(weights.layout, weights.layout)
        raise DinarError(f"{weights.path} was trained on the {weights.layout!r} UV layout, but this person's fit uses "
                         f"the {body.kind} body", fix=f"fit with body.model={body_of}, or train on this body")
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
    sample = fit_sample(ws, fit, layout, neural)
    return TrainedAvatar(pipe, pipe.run(sample), weights, body, fit)


@torch.no_grad()
def render_view(trained: TrainedAvatar, verts_cam: torch.Tensor, K: torch.Tensor, size_hw: tuple[int, int]
                ) -> np.ndarray:
    """The neural avatar drawn in a camera: (1, V, 3) body vertices in that camera, its K (3, 3) -> (H, W, 4)
    uint8 RGBA on white. As DINAR renders: a square crop around the body (scaled by ``crop_scale``) at the
    network's size, the renderer's RGB and mask there (the video's transparency), resized into the crop box."""
    pipe, cfg = trained.pipe, trained.pipe.config
    H, W = size_hw
    verts_pix = project_vertices(verts_cam, K.to(verts_cam), pipe.layout.vertex_index.to(verts_cam.device))[0]
    box = scale_box(square_box(vertex_box(verts_pix.double().cpu().numpy())), cfg.crop_scale)
    S = cfg.image_size
    T = torch.as_tensor(crop_transform(box, S), dtype=torch.float32, device=verts_pix.device)
    frame = next(pipe.frames(trained.avatar.ntexture, iter([(verts_pix @ T.T)[None]])))
    rgba = np.concatenate([frame.rgb.numpy(), (frame.alpha.numpy() * 255).round().astype(np.uint8)[..., None]], -1)
    side = box.right - box.left
    crop = cv2.resize(rgba, (side, side), interpolation=cv2.INTER_AREA if side < S else cv2.INTER_LINEAR)
    out = np.zeros((H, W, 4), np.uint8)
    out[..., :3] = 255
    x0, y0 = max(0, box.left), max(0, box.top)
    x1, y1 = min(W, box.left + side), min(H, box.top + side)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = crop[y0 - box.top:y1 - box.top, x0 - box.left:x1 - box.left]
    return out


def trained_neural(ws: Workspace, cfg: PipelineConfig, out_dir: Path) -> StageOutput:
    """The avatar stage's neural mode with a trained model: turntable video and the texture's RGB (see above)."""
    from dinar_core.export.video import VideoConfig, write_mp4

    trained = load_trained_avatar(ws, cfg)
    pipe, avatar, weights = trained.pipe, trained.avatar, trained.weights
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / "turntable.mp4"
    frames = pipe.frames(avatar.ntexture, pipe.turntable(avatar.verts, avatar.K, pipe.turntable_frame_count()))
    write_mp4(video, (f.rgb.numpy() for f in frames), VideoConfig(fps=float(pipe.config.video.fps)))
    rgb = avatar.ntexture[0, -5:-2].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    texture = write_png(out_dir / "texture_rgb.png", (rgb * 255).round().astype(np.uint8))
    meta = {"mode": "neural", "body": trained.body.kind, "checkpoint": str(Path(cfg.avatar.checkpoint).resolve()),
            "trained": {"layout": weights.layout, "steps": weights.steps, "untrained": list(weights.untrained)},
            "frames": [trained.fit.frame], "videos": [ws.rel(video)], "texture_rgb": ws.rel(texture),
            "seconds": round(sum(avatar.times.seconds.values()), 3)}
    return StageOutput(outputs=[video, texture, atomic_write_json(avatar_json_path(ws), meta)],
                       info={"mode": "neural", "trained": True})
