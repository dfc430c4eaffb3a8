"""Stage `render`: the textured avatar animated with a motion, to ``renders/video.mp4`` (H.264) and
``renders/front.png``, ``back.png``, ``side.png``; a `neural` avatar's video (drawn by DINAR's neural renderer in
the avatar stage) is copied to ``renders/video.mp4``.

The motion (``render.motion``, resolved by ``tasks.motions``) is a built-in one (``render.seconds`` long) or a
file. Canonical motions are stood upright in front of the camera (180 degrees about x: y up -> DINAR's y down,
facing the camera). Shape, expression and translation come from the fit of the reference frame. Every frame's
lowest vertex is put on one ground height (``render.keep_on_ground``), and one framing camera is chosen for the
whole motion, so the avatar never leaves the picture and the camera never jumps. The front/back/side views are
framed the same way around the fitted body (not in the photo's camera).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from dinar_core.errors import DinarError
from dinar_core.export.video import VideoConfig, write_mp4
from dinar_core.motion import apply_ground_offsets, ground_offsets
from dinar_core.render.rasterizer import MeshRasterizer
from dinar_core.texture import framing_camera, render_textured, views
from tasks.artifacts import (avatar_json_path, body_inputs, load_avatar, neural_videos, texture_path, with_hair_volume,
                             write_png)
from tasks.config import PipelineConfig
from tasks.motions import BUILTIN_MOTIONS, pose_motion, resolve_motion
from tasks.runner import Stage, StageOutput
from tasks.workspace import Workspace, atomic_path


def frame_motion(verts: torch.Tensor, image_size: tuple[int, int], fill: float, keep_on_ground: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """verts: (T, V, 3) in DINAR's camera frame -> (T, V, 3) grounded and shifted into one framing camera, K (3, 3)
    that keeps every frame's body in view."""
    if keep_on_ground:
        verts = apply_ground_offsets(verts, ground_offsets(verts, up_axis="-y"), up_axis="-y")
    stacked = verts.reshape(1, -1, 3)  # the whole motion's bounding box
    framed, K = framing_camera(stacked, image_size, fill=fill)
    return framed.reshape(verts.shape), K


MAX_VIEW_RASTER = 4096
"""Longest side of a view's supersampled raster: a view of a 2048 px photo is drawn at 2x, a larger one at 1x."""


def view_size(rc, photo_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of the front/back/side views: ``render.view_size``, else the photo's (H, W)."""
    size = rc.view_size if rc.view_size is not None else photo_size
    if len(size) != 2 or min(int(size[0]), int(size[1])) < 16:
        raise ValueError(f"render.view_size must be [H, W] with sides >= 16, got {list(size)}")
    return int(size[0]), int(size[1])


@dataclass
class RenderResult:
    video: Path
    views: list[Path]
    num_frames: int
    image_size: tuple[int, int]
    fps: float
    seconds: float


def render_avatar(ws: Workspace, cfg: PipelineConfig, motion: str | None = None, out: Path | None = None,
                  with_views: bool = True, rasterizer: MeshRasterizer | None = None) -> RenderResult:
    """Render the avatar of `ws` animated with `motion` (default ``cfg.render.motion``) to `out` (default
    ``renders/video.mp4``), plus front/back/side views in ``renders/`` when `with_views`."""
    t0 = time.perf_counter()
    rc = cfg.render
    if len(rc.image_size) != 2 or min(rc.image_size) < 16:
        raise ValueError(f"render.image_size must be [H, W] with sides >= 16, got {rc.image_size}")
    if not rc.fps > 0 or not rc.seconds > 0:
        raise ValueError(f"render.fps and render.seconds must be > 0, got {rc.fps}, {rc.seconds}")
    size = (int(rc.image_size[0]), int(rc.image_size[1]))
    avatar = load_avatar(ws, cfg)
    texture, body, layout, fit = avatar.texture, avatar.body, avatar.layout, avatar.fit
    faces = layout.vertex_index[layout.uv_faces]
    rasterizer = rasterizer or MeshRasterizer()
    bg = [float(c) / 255.0 for c in rc.background]

    m = resolve_motion(motion or rc.motion, body, fit, rc.fps, rc.seconds, frame="camera")
    verts, K = frame_motion(with_hair_volume(avatar, pose_motion(body, fit, m)), size, rc.fill, rc.keep_on_ground)

    def frames() -> Iterator[np.ndarray]:
        for t in range(verts.shape[0]):
            r = render_textured(verts[t:t + 1], K, faces, layout, texture, size, bg, rasterizer, rc.shading,
                                rc.supersample)
            yield r.to_uint8()[0, ..., :3]

    video = Path(out) if out is not None else ws.renders_dir / "video.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    info = write_mp4(video, frames(), VideoConfig(fps=rc.fps))
    written = []
    if with_views:
        vsize = view_size(rc, fit.image_size)
        framed, K_view = framing_camera(with_hair_volume(avatar, fit.verts_cam), vsize, fill=rc.fill)
        ss = max(1, min(max(2, rc.supersample), MAX_VIEW_RASTER // max(vsize)))  # views of big photos: 1x
        v = views(framed, K_view, layout, texture, vsize, bg, rasterizer, faces, shading=rc.shading, supersample=ss)
        for name, r in (("front", v.front), ("back", v.back), ("side", v.side)):
            written.append(write_png(ws.renders_dir / f"{name}.png", r.to_uint8()[0, ..., :3]))
    return RenderResult(video, written, info.num_frames, (info.height, info.width), rc.fps,
                        round(time.perf_counter() - t0, 3))


def render_inputs(ws: Workspace, cfg: PipelineConfig) -> list[Path]:
    neural = neural_videos(ws)
    if neural is not None:
        return [avatar_json_path(ws), *neural]
    inputs = [texture_path(ws), avatar_json_path(ws)] + body_inputs(ws, cfg)
    spec = cfg.render.motion
    if spec not in BUILTIN_MOTIONS and Path(spec).expanduser().is_file():
        inputs.append(Path(spec).expanduser())
    return inputs


def render(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    neural = neural_videos(ws)
    if neural is not None:  # the neural renderer already drew the avatar's video (avatar stage, DINAR's layout)
        if not neural:
            raise DinarError(f"the neural avatar of {ws.person} has no video", fix="rerun the avatar stage")
        video = ws.renders_dir / "video.mp4"
        with atomic_path(video) as tmp:
            shutil.copyfile(neural[0], tmp)
        return StageOutput(outputs=[video], info={"mode": "neural", "video": ws.rel(video)})
    result = render_avatar(ws, cfg)
    return StageOutput(outputs=[result.video, *result.views],
                       info={"motion": cfg.render.motion, "frames": result.num_frames,
                             "image_size": list(result.image_size), "fps": result.fps,
                             "video": ws.rel(result.video)})


STAGE = Stage(name="render", version="3", after=("avatar",), sections=("body", "avatar", "render"),
              inputs=render_inputs, run=render, tools=("torch", "av"))
