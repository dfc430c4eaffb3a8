"""Stage `render`: the textured avatar animated with a motion, to ``renders/video.mp4`` (H.264) and
``renders/front.png``, ``back.png``, ``side.png``.

The motion (``render.motion``) is a built-in one ('turntable' holds the fitted pose while turning, 'walk', 'wave',
'rest'; ``render.seconds`` long) or a file: DINAR's animation pickle (its poses are in DINAR's camera frame, as
DINAR renders them) or an AMASS .npz (turned from z up to SMPL-X's canonical y up by the loader). Canonical motions
are stood upright in front of the camera (180 degrees about x: y up -> DINAR's y down, facing the camera). Shape,
expression and translation come from the fit of the reference frame. Every frame's lowest vertex is put on one
ground height (``render.keep_on_ground``), and one framing camera is chosen for the whole motion, so the avatar
never leaves the picture and the camera never jumps.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from dinar_core.body import AnnyParams
from dinar_core.body.smplx_model import SMPLXParams
from dinar_core.errors import DinarError, MotionError
from dinar_core.export.video import VideoConfig, write_mp4
from dinar_core.motion import (SMPLX_SKELETON, Motion, anny_skeleton, apply_ground_offsets, ground_offsets,
                               load_motion, procedural_motion, resample)
from dinar_core.motion.procedural import Skeleton
from dinar_core.render.rasterizer import MeshRasterizer
from dinar_core.texture import framing_camera, render_textured, views
from tasks.avatar import FitFrame, load_avatar, texture_path, write_png
from tasks.bodies import LoadedBody
from tasks.config import PipelineConfig
from tasks.runner import Stage, StageOutput
from tasks.workspace import Workspace, atomic_path

BUILTIN_MOTIONS = ("turntable", "walk", "wave", "rest")
UPRIGHT = np.array([np.pi, 0.0, 0.0])
"""Axis-angle from SMPL-X's canonical frame (y up, facing +z) to DINAR's camera frame (y down, facing the camera);
its own inverse."""
CHUNK = 32  # frames posed per body forward (bounds memory for long motion files)


def skeleton_of(body: LoadedBody) -> Skeleton:
    if body.kind == "smplx":
        return SMPLX_SKELETON
    m = body.model
    return anny_skeleton(m.joint_names, m.frame.cpu().numpy(), m.rest_joints.cpu().numpy())


def fitted_body_pose(body: LoadedBody, fit: FitFrame) -> np.ndarray:
    """(3 J,) the fitted pose in the motion's body_pose layout."""
    p = fit.params
    pose = p.body_pose if body.kind == "smplx" else p.pose
    return pose.detach().reshape(-1).cpu().numpy()


def resolve_motion(spec: str, body: LoadedBody, fit: FitFrame, fps: float, seconds: float,
                   frame: str = "camera") -> Motion:
    """The motion named by `spec` at `fps`, with its root rotation in DINAR's camera frame (`frame='camera'`) or
    SMPL-X's canonical frame (`frame='canonical'`, for glTF). MotionError for a bad file or joint count."""
    skeleton = skeleton_of(body)
    if spec in BUILTIN_MOTIONS:
        n = max(1, int(round(seconds * fps)))
        options = {"body_pose": fitted_body_pose(body, fit)} if spec == "turntable" else {}
        motion = procedural_motion(spec, n, fps, skeleton, **options)
        in_camera = False
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise MotionError(f"motion {spec!r} is neither a built-in motion ({', '.join(BUILTIN_MOTIONS)}) nor an "
                              "existing file", fix="give turntable, walk, wave, rest or a DINAR .pkl / AMASS .npz")
        model = "SMPL-X" if body.kind == "smplx" else "Anny"
        motion = load_motion(path, num_body_joints=skeleton.num_joints) if body.kind == "smplx" else \
            load_motion(path).check_body_joints(skeleton.num_joints, model)
        motion = resample(motion, fps)
        in_camera = path.suffix.lower() in (".pkl", ".pickle")
    if in_camera != (frame == "camera"):
        motion = motion.compose_global(UPRIGHT)
    return motion


def _hand_pca(hand: np.ndarray, fmt: str, components: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """(T, D) motion hand -> (T, P) PCA coefficients of the SMPL-X model (P = its component count):
    PCA is cut or zero-padded, axis-angle (T, 45) is projected on the components (they are orthonormal rows)."""
    P = components.shape[0]
    h = torch.as_tensor(hand, dtype=components.dtype, device=components.device)
    if fmt == "pca":
        out = torch.zeros(h.shape[0], P, dtype=h.dtype, device=h.device)
        k = min(P, h.shape[1])
        out[:, :k] = h[:, :k]
        return out
    return (h - mean[None]) @ components.T


def motion_params(body: LoadedBody, fitted: SMPLXParams | AnnyParams, motion: Motion
                  ) -> Iterator[SMPLXParams | AnnyParams]:
    """The body model's parameters for every frame of `motion`, CHUNK frames at a time: the fitted avatar (shape,
    expression, translation and, where the motion has none, pose and orientation of `fitted`, batch 1) moved by
    `motion`."""
    device = body.model.device
    T = motion.num_frames
    for start in range(0, T, CHUNK):
        sl = slice(start, min(T, start + CHUNK))
        n = sl.stop - sl.start

        def col(values, fallback: torch.Tensor) -> torch.Tensor:
            if values is None:
                return fallback.expand(n, -1).clone()
            return torch.as_tensor(values[sl], dtype=torch.float32, device=device)

        p = fitted
        transl = p.transl.expand(n, -1).clone()
        if motion.transl is not None:
            transl = transl + torch.as_tensor(motion.transl[sl] - motion.transl[:1], dtype=torch.float32,
                                              device=device)
        orient = col(motion.global_orient, p.global_orient)
        if body.kind == "smplx":
            s = body.model.smplx
            hands = []
            for side, fitted in (("left", p.left_hand_pose), ("right", p.right_hand_pose)):
                pose = getattr(motion, f"{side}_hand_pose")
                hands.append(fitted.expand(n, -1).clone() if pose is None else _hand_pca(
                    pose[sl], motion.hand_format, getattr(s, f"{side}_hand_components"), getattr(s, f"{side}_hand_mean")))
            params = SMPLXParams(
                betas=p.betas.expand(n, -1).clone(), expression=p.expression.expand(n, -1).clone(),
                global_orient=orient, body_pose=col(motion.body_pose, p.body_pose),
                jaw_pose=col(motion.jaw_pose, p.jaw_pose), left_hand_pose=hands[0], right_hand_pose=hands[1],
                transl=transl, body_scale=None if p.body_scale is None else p.body_scale.expand(n, -1).clone())
        else:
            params = AnnyParams(phenotype=p.phenotype.expand(n, -1).clone(),
                                pose=col(motion.body_pose, p.pose.reshape(1, -1)).reshape(n, -1, 3),
                                global_orient=orient, transl=transl)
        yield params


def pose_motion(body: LoadedBody, fit: FitFrame, motion: Motion) -> torch.Tensor:
    """(T, V, 3) vertices of the fitted avatar (shape, expression, translation of `fit`) moved by `motion`."""
    with torch.no_grad():
        return torch.cat([body.model(params).vertices for params in motion_params(body, fit.params, motion)], 0)


def frame_motion(verts: torch.Tensor, image_size: tuple[int, int], fill: float, keep_on_ground: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """verts: (T, V, 3) in DINAR's camera frame -> (T, V, 3) grounded and shifted into one framing camera, K (3, 3)
    that keeps every frame's body in view."""
    if keep_on_ground:
        verts = apply_ground_offsets(verts, ground_offsets(verts, up_axis="-y"), up_axis="-y")
    stacked = verts.reshape(1, -1, 3)  # the whole motion's bounding box
    framed, K = framing_camera(stacked, image_size, fill=fill)
    return framed.reshape(verts.shape), K


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
    import time

    t0 = time.perf_counter()
    rc = cfg.render
    if len(rc.image_size) != 2 or min(rc.image_size) < 16:
        raise ValueError(f"render.image_size must be [H, W] with sides >= 16, got {rc.image_size}")
    if not rc.fps > 0 or not rc.seconds > 0:
        raise ValueError(f"render.fps and render.seconds must be > 0, got {rc.fps}, {rc.seconds}")
    size = (int(rc.image_size[0]), int(rc.image_size[1]))
    avatar = load_avatar(ws, cfg)
    meta, texture, body, layout, fit = avatar.meta, avatar.texture, avatar.body, avatar.layout, avatar.fit
    faces = layout.vertex_index[layout.uv_faces]
    rasterizer = rasterizer or MeshRasterizer()
    bg = [float(c) / 255.0 for c in rc.background]

    m = resolve_motion(motion or rc.motion, body, fit, rc.fps, rc.seconds, frame="camera")
    verts, K = frame_motion(pose_motion(body, fit, m), size, rc.fill, rc.keep_on_ground)

    def frames() -> Iterator[np.ndarray]:
        for t in range(verts.shape[0]):
            r = render_textured(verts[t:t + 1], K, faces, layout, texture, size, bg, rasterizer)
            yield r.to_uint8()[0, ..., :3]

    video = Path(out) if out is not None else ws.renders_dir / "video.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    info = write_mp4(video, frames(), VideoConfig(fps=rc.fps))
    written = []
    if with_views:
        framed, K_view = framing_camera(fit.verts_cam, size, fill=rc.fill)
        v = views(framed, K_view, layout, texture, size, bg, rasterizer, faces)
        for name, r in (("front", v.front), ("back", v.back), ("side", v.side)):
            written.append(write_png(ws.renders_dir / f"{name}.png", r.to_uint8()[0, ..., :3]))
    return RenderResult(video, written, info.num_frames, (info.height, info.width), rc.fps,
                        round(time.perf_counter() - t0, 3))


def _neural_videos(ws: Workspace) -> list[Path] | None:
    """The videos DINAR's neural renderer made for a `neural` avatar (None for a classic avatar)."""
    meta_path = ws.avatar_dir / "avatar.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    return [ws.root / v for v in meta["videos"]] if meta.get("mode") == "neural" else None


def render_inputs(ws: Workspace, cfg: PipelineConfig) -> list[Path]:
    from tasks.avatar import body_inputs

    neural = _neural_videos(ws)
    if neural is not None:
        return [ws.avatar_dir / "avatar.json", *neural]
    inputs = [texture_path(ws), ws.avatar_dir / "avatar.json"] + body_inputs(ws, cfg)
    spec = cfg.render.motion
    if spec not in BUILTIN_MOTIONS and Path(spec).expanduser().is_file():
        inputs.append(Path(spec).expanduser())
    return inputs


def render(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    neural = _neural_videos(ws)
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


STAGE = Stage(name="render", version="1", after=("avatar",), sections=("body", "render"), inputs=render_inputs,
              run=render, tools=("torch", "av"))
