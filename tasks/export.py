"""Stage `export`: ``avatar/avatar.glb``, the avatar as a skinned, textured glTF asset.

The mesh is the fitted body's shape in its rest (bind) pose, in SMPL-X's canonical frame (y up, facing +z, metres:
glTF's frame), with the avatar's texture, the model's skeleton and skinning weights, and the clips of
``export.clips`` (walk, wave, idle, turntable by default; motion files too) as named animations. For the SMPL-X
body a clip's PCA hands are expanded with the model's own hand
components and mean (DINAR builds SMPL-X with 6 PCA components and ``flat_hand_mean=False``). Anny's bones carry
their own orientations and it skins from a bind pose that is not its all-zero pose: the GLB holds Anny's bind mesh,
the bind bone frames (inverse bind matrices), nodes showing the fitted shape in the zero pose, and an animation of
per clip every bone's local rotation sampled from the model's own posed bone frames, so a viewer's skinning reproduces
Anny's (up to the four-weights-per-vertex limit of glTF).

``export.rig`` puts an Anny avatar on one of Anny's standard rigs instead (`standard_rig`: game_engine, mixamo,
cmu_mb; their names and weights, bound in the A- or T-pose the rig expects), each clip retargeted from Anny's own
bones (`dinar_core.body.anny_rigs.retarget_world`). A SMPL-X avatar keeps SMPL-X's 55 joints.

The file is read back (``read_glb_info``) and, when Khronos' validator is installed, validated: its error and
warning counts go into the manifest and any error fails the stage.

A `neural` avatar gets no GLB (its look comes from DINAR's neural renderer, not from an RGB texture): the stage is
done without output and its `NoGLB` warning, shown by ``dinar status`` and the report, says why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dinar_core.errors import DinarError, MotionError
from dinar_core.export.glb import (GLBAnimation, GLBInfo, SkinnedMesh, local_transforms, read_glb_info,
                                   write_glb)
from dinar_core.export.gltf_validator import find_validator, validate_gltf
from dinar_core.body.anny_rigs import (BIND_POSE, bone_correspondence, retarget_world, skin, t_pose_deltas,
                                      world_deltas)
from dinar_core.motion.rotations import matrix_to_axis_angle
from tasks.artifacts import FitFrame, avatar_json_path, body_inputs, load_avatar, texture_path, with_hair_volume
from tasks.bodies import LoadedBody, load_anny_rig
from tasks.config import PipelineConfig
from tasks.motions import BUILTIN_MOTIONS, motion_params, resolve_motion
from tasks.runner import Stage, StageOutput
from tasks.workspace import Workspace


class InvalidGLBError(DinarError):
    """The written GLB does not pass Khronos' glTF validator."""


@dataclass
class RestMesh:
    """vertices: (V, 3) the fitted shape in the rest pose; joints: (J, 3) its rest joints; both canonical frame."""

    vertices: np.ndarray
    joints: np.ndarray


def smplx_rest_mesh(body: LoadedBody, fit: FitFrame) -> RestMesh:
    """SMPL-X's shaped rest pose (template + shape and expression blend shapes, times body_scale), every joint
    rotation zero (so the hands are flat, as glTF's bind pose must be; the mean hand is part of the animation)."""
    from smplx.lbs import blend_shapes, vertices2joints

    s = body.model.smplx
    p = fit.params
    dirs = s.shapedirs
    coeffs = p.betas
    if getattr(s, "expr_dirs", None) is not None:
        dirs = torch.cat([dirs, s.expr_dirs], -1)
        coeffs = torch.cat([p.betas, p.expression], -1)
    with torch.no_grad():
        verts = s.v_template[None] + blend_shapes(coeffs, dirs)  # (1, V, 3)
        joints = vertices2joints(s.J_regressor, verts)  # (1, 55, 3)
        if p.body_scale is not None:
            verts, joints = verts * p.body_scale[:, None], joints * p.body_scale[:, None]
    return RestMesh(verts[0].cpu().numpy(), joints[0].cpu().numpy())


@dataclass
class AnnySkeleton:
    """Anny's skinning frames for the GLB (canonical frame). bind: (J, 4, 4) bone frames of the bind pose, which
    ``RestMesh.vertices`` are in; zero: (J, 4, 4) bone frames of the all-zero pose (what the nodes show)."""

    bind: np.ndarray
    zero: np.ndarray


def anny_rest_mesh(body: LoadedBody, fit: FitFrame) -> tuple[RestMesh, AnnySkeleton]:
    """Anny with the fitted phenotype in its bind pose (the mesh the skin deforms), and its bone frames."""
    with torch.no_grad():
        verts, bind = body.model.bind_pose(fit.params.phenotype[:1])
        p = fit.params
        zero = body.model.bone_poses(replace(p, pose=torch.zeros_like(p.pose), global_orient=torch.zeros_like(
            p.global_orient), transl=torch.zeros_like(p.transl)))
    bind, zero = bind[0].cpu().double().numpy(), zero[0].cpu().double().numpy()
    return RestMesh(verts[0].cpu().numpy(), bind[:, :3, 3]), AnnySkeleton(bind, zero)


def clip_name(spec: str) -> str:
    """A clip's default name: the built-in motion's, or the motion file's stem."""
    return spec if spec in BUILTIN_MOTIONS else Path(spec).expanduser().stem


def anny_world_frames(body: LoadedBody, fit: FitFrame, cfg: PipelineConfig, motion: str) -> tuple[np.ndarray, float]:
    """(T, J, 4, 4) every Anny bone's posed world frame for the motion, canonical frame, and its frame rate."""
    m = resolve_motion(motion, body, fit, cfg.render.fps, cfg.render.seconds, frame="canonical")
    # posed as the render stage poses it, from the origin of the canonical frame instead of the photo's camera
    p = fit.params
    at_origin = replace(p, global_orient=torch.zeros_like(p.global_orient), transl=torch.zeros_like(p.transl))
    with torch.no_grad():
        world = torch.cat([body.model.bone_poses(params) for params in motion_params(body, at_origin, m)])
    return world.cpu().double().numpy(), m.fps


def animation_from_world(world: np.ndarray, parents: np.ndarray, display: np.ndarray, fps: float,
                         name: str) -> GLBAnimation:
    """A clip from posed world frames (T, J, 4, 4): every bone's local rotation, and the root's translation from
    where the nodes stand when nothing plays (`display`, (J, 4, 4))."""
    local = local_transforms(world, parents)
    root = int(np.flatnonzero(parents < 0)[0])  # Anny's rigs have one root
    root_shift = world[:, root, :3, 3] - display[root, :3, 3]  # (T, 3)
    return GLBAnimation(rotations=matrix_to_axis_angle(local[..., :3, :3]), fps=fps, root_translation=root_shift,
                        name=name)


def anny_animation(body: LoadedBody, fit: FitFrame, cfg: PipelineConfig, motion: str,
                   skeleton: AnnySkeleton, name: str | None = None) -> GLBAnimation:
    """The motion in the canonical frame as every Anny bone's local rotation (from the model's posed bone frames)
    and the root's translation relative to the zero pose."""
    world, fps = anny_world_frames(body, fit, cfg, motion)
    return animation_from_world(world, body.model.parents.cpu().numpy(), skeleton.zero, fps,
                                name or clip_name(motion))


# Anny's upper-arm bones and the bones at the elbows, for a T-pose bind.
ANNY_ARMS = {"left": ("upperarm01.L", "lowerarm01.L"), "right": ("upperarm01.R", "lowerarm01.R")}


@dataclass
class StandardRig:
    """One of Anny's standard rigs on the avatar (`dinar_core.body.anny_rigs`).

    rig: the AnnyRig; rest: (J, 4, 4) its rest frames (Anny's A-pose); bind: (J, 4, 4) the GLB's bind frames
    (the T-pose for a rig that expects one, else `rest`); vertices: (V, 3) the mesh in that bind pose; match: (J,)
    the Anny bone each bone turns with."""

    rig: object
    rest: np.ndarray
    bind: np.ndarray
    vertices: np.ndarray
    match: np.ndarray

    @property
    def parents(self) -> np.ndarray:
        return self.rig.parents.cpu().numpy()

    def animation(self, world: np.ndarray, skeleton: AnnySkeleton, fps: float, name: str) -> GLBAnimation:
        """A clip of Anny's own bones (`anny_world_frames`) retargeted onto the rig."""
        moved = retarget_world(world_deltas(world, skeleton.bind), self.match, self.rest, self.parents)
        return animation_from_world(moved, self.parents, self.bind, fps, name)


def standard_rig(body: LoadedBody, fit: FitFrame, rest: RestMesh, skeleton: AnnySkeleton, name: str,
                 cfg: PipelineConfig) -> StandardRig:
    """The avatar's mesh (`rest`, Anny's bind pose, hair volume included) on the standard rig `name`, bound in the
    pose that rig expects (`BIND_POSE`): a T-pose raises both arms to horizontal and skins the mesh there."""
    rig = load_anny_rig(name, cfg.body.anny_cache)
    with torch.no_grad():
        _, frames = rig.bind_pose(fit.params.phenotype[:1].to(rig.skinning_weights.device))
    rig_rest = frames[0].cpu().double().numpy()
    weights = rig.skinning_weights.cpu().double().numpy()
    match = bone_correspondence(weights, body.model.skinning_weights.cpu().double().numpy(), rig_rest[:, :3, 3],
                                skeleton.bind[:, :3, 3])
    parents = rig.parents.cpu().numpy()
    bind, vertices = rig_rest, np.asarray(rest.vertices, np.float64)
    if BIND_POSE[name] == "T":
        raise_arms = t_pose_deltas(skeleton.bind, body.model.parents.cpu().numpy(), tuple(body.model.joint_names),
                                   ANNY_ARMS)
        bind = retarget_world(raise_arms[None], match, rig_rest, parents)[0]
        vertices = skin(vertices, weights, world_deltas(bind, rig_rest))
    return StandardRig(rig, rig_rest, bind, vertices, match)


def smplx_animation(body: LoadedBody, fit: FitFrame, cfg: PipelineConfig, motion: str,
                    name: str | None = None) -> GLBAnimation:
    """The motion in the canonical frame as per-joint local rotations of SMPL-X's 55 joints."""
    m = resolve_motion(motion, body, fit, cfg.render.fps, cfg.render.seconds, frame="canonical")
    if m.left_hand_pose is None and m.right_hand_pose is None:  # keep the fitted hands
        T = m.num_frames
        m = m.replace(left_hand_pose=np.repeat(fit.params.left_hand_pose.cpu().numpy(), T, 0),
                      right_hand_pose=np.repeat(fit.params.right_hand_pose.cpu().numpy(), T, 0), hand_format="pca")
    s = body.model.smplx
    np_ = lambda t: t.detach().cpu().numpy()  # noqa: E731
    rotations = m.smplx_full_pose(left_hand_components=np_(s.left_hand_components),
                                  right_hand_components=np_(s.right_hand_components),
                                  left_hand_mean=np_(s.left_hand_mean), right_hand_mean=np_(s.right_hand_mean))
    root = None if m.transl is None else (m.transl - m.transl[:1])
    return GLBAnimation(rotations=rotations, fps=m.fps, root_translation=root, name=name or clip_name(motion))


@dataclass
class ExportResult:
    path: Path
    info: GLBInfo
    validation: dict | None
    warnings: list[str]


def clip_specs(cfg: PipelineConfig, motion: str | None = None, clip: str | None = None) -> list[tuple[str, str]]:
    """(motion spec, clip name) of each clip to export: ``export.clips`` (or the render motion when empty), then
    `motion` named `clip`. A motion file's clip is named by its stem; a name given twice is a MotionError."""
    specs = [(spec, clip_name(spec)) for spec in (cfg.export.clips or [cfg.render.motion])]
    if motion is not None:
        specs.append((motion, clip or clip_name(motion)))
    names = [name for _, name in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MotionError(f"clip names given twice: {', '.join(twice)}",
                          fix="name the extra clip with --clip NAME, or drop it from export.clips")
    return specs


def glb_content(body: LoadedBody, fit: FitFrame, layout, texture: np.ndarray | None, cfg: PipelineConfig,
                specs: list[tuple[str, str]], name: str, hair: Callable[[np.ndarray], np.ndarray] = lambda v: v
                ) -> tuple[SkinnedMesh, list[GLBAnimation], list[str]]:
    """The GLB's skinned mesh (on ``export.rig``'s skeleton for Anny) and its clips (`specs`: (motion, name)),
    and warnings. `hair` pushes the rest vertices out by the hair's volume."""
    skeleton, frames = None, {}
    if body.kind == "smplx":
        rest = smplx_rest_mesh(body, fit)
    else:
        rest, skeleton = anny_rest_mesh(body, fit)
        frames = {"rest_rotations": skeleton.bind[:, :3, :3], "display_joints": skeleton.zero[:, :3, 3],
                  "display_rotations": skeleton.zero[:, :3, :3]}
    # The hair's volume, pushed out in the rest pose: the head's bones carry it in every frame.
    rest = replace(rest, vertices=hair(rest.vertices))
    m = body.model
    warnings = []
    rig = None
    if cfg.export.rig != "default" and body.kind == "anny":
        rig = standard_rig(body, fit, rest, skeleton, cfg.export.rig, cfg)
        weights, parents, joint_names = rig.rig.skinning_weights.cpu().numpy(), rig.parents, rig.rig.joint_names
        rest = RestMesh(rig.vertices, rig.bind[:, :3, 3])
        frames = {"rest_rotations": rig.bind[:, :3, :3]}  # the nodes stand in the bind pose
    else:
        if cfg.export.rig != "default":
            warnings.append(f"RigIgnored: export.rig={cfg.export.rig} is for the Anny body; an SMPL-X GLB keeps "
                            f"SMPL-X's 55 joints")
        weights, parents, joint_names = m.skinning_weights.cpu().numpy(), m.parents.cpu().numpy(), m.joint_names
    mesh = SkinnedMesh.from_uv_layout(
        rest.vertices, weights, parents, rest.joints, layout.uv.cpu().numpy(), layout.uv_faces.cpu().numpy(),
        layout.vertex_index.cpu().numpy(), texture=texture, joint_names=tuple(joint_names), name=name, **frames)
    clips = []
    for spec, clip in specs:
        if body.kind == "smplx":
            clips.append(smplx_animation(body, fit, cfg, spec, clip))
        elif rig is not None:
            world, fps = anny_world_frames(body, fit, cfg, spec)
            clips.append(rig.animation(world, skeleton, fps, clip))
        else:
            clips.append(anny_animation(body, fit, cfg, spec, skeleton, clip))
    return mesh, clips, warnings


def export_avatar(ws: Workspace, cfg: PipelineConfig, out: Path | None = None, motion: str | None = None,
                  animate: bool | None = None, clip: str | None = None) -> ExportResult:
    """Write the avatar of `ws` as a GLB at `out` (default ``avatar/avatar.glb``) with its clips (`clip_specs`),
    read it back and validate it."""
    avatar = load_avatar(ws, cfg)
    specs = clip_specs(cfg, motion, clip) if (cfg.export.animation if animate is None else animate) else []
    mesh, clips, warnings = glb_content(
        avatar.body, avatar.fit, avatar.layout, avatar.texture, cfg, specs, ws.person,
        hair=lambda v: with_hair_volume(avatar, torch.from_numpy(np.asarray(v, np.float32))[None])[0].numpy())
    path = Path(out) if out is not None else ws.avatar_dir / "avatar.glb"
    path.parent.mkdir(parents=True, exist_ok=True)
    written = write_glb(path, mesh, clips)
    info = read_glb_info(path)
    if (info.num_vertices, info.num_joints, info.num_faces) != (written.num_vertices, written.num_joints,
                                                                written.num_faces):
        raise InvalidGLBError(f"{path} reads back with {info.num_vertices} vertices / {info.num_joints} joints / "
                              f"{info.num_faces} faces, expected {written.num_vertices} / {written.num_joints} / "
                              f"{written.num_faces}", fix="report this as a bug")
    validation = None
    if cfg.export.validate and find_validator() is not None:
        report = validate_gltf(path)
        validation = {"errors": report.errors, "warnings": report.warnings, "infos": report.infos,
                      "hints": report.hints}
        if report.errors:
            raise InvalidGLBError(f"{path} has {report.errors} glTF validation errors: {report.summary('error')}",
                                  fix="report this as a bug, with the file")
    elif cfg.export.validate:
        warnings.append("NoValidator: the glTF validator is not installed, the GLB was only read back")
    return ExportResult(path, info, validation, warnings)


def export_inputs(ws: Workspace, cfg: PipelineConfig) -> list[Path]:
    if cfg.avatar.mode == "neural":
        return [avatar_json_path(ws)]
    inputs = [texture_path(ws), avatar_json_path(ws)] + body_inputs(ws, cfg)
    if cfg.export.animation:
        for spec in cfg.export.clips or [cfg.render.motion]:
            if spec not in BUILTIN_MOTIONS and Path(spec).expanduser().is_file():
                inputs.append(Path(spec).expanduser())
    return inputs


NO_GLB_FOR_NEURAL = ("NoGLB: a neural avatar gets no GLB: a GLB carries an RGB texture, and a neural avatar's look "
                     "comes from its neural renderer (its video is renders/video.mp4); set export.glb=false to "
                     "silence this, or use avatar.mode=classic for a GLB")


def export(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    """``avatar/avatar.glb`` for a classic avatar; nothing, with the reason as a warning, for a neural one."""
    if not cfg.export.glb or cfg.avatar.mode == "neural":
        stale = ws.avatar_dir / "avatar.glb"  # an earlier classic run's: not this avatar's, so not kept
        if stale.is_file():
            stale.unlink()
    if not cfg.export.glb:
        return StageOutput(outputs=[], info={"glb": None})
    if cfg.avatar.mode == "neural":
        return StageOutput(outputs=[], warnings=[NO_GLB_FOR_NEURAL], info={"glb": None, "mode": "neural"})
    r = export_avatar(ws, cfg)
    i = r.info
    return StageOutput(outputs=[r.path], warnings=r.warnings,
                       info={"glb": ws.rel(r.path), "vertices": i.num_vertices, "faces": i.num_faces,
                             "joints": i.num_joints, "animations": i.num_animations, "keyframes": i.num_keyframes,
                             "clips": list(i.animation_names),
                             "bytes": i.size_bytes, "validation": r.validation})


STAGE = Stage(name="export", version="3", after=("avatar",), sections=("body", "avatar", "render", "export"),
              inputs=export_inputs, run=export, tools=("torch", "pygltflib"))
