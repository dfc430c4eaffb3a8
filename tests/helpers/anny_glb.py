"""An Anny avatar's GLB with a walk, and the model's own posed vertices for the same frames (what a viewer's
skinning of the file must reproduce)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from dinar_core.body import AnnyParams
from dinar_core.export.glb import SkinnedMesh, write_glb
from tasks.config import PipelineConfig, override
from tasks.export import anny_animation, anny_rest_mesh
from tasks.motions import resolve_motion


@dataclass
class AnnyWalk:
    """path: the GLB; fps; expected: (T, U, 3) the model's vertices per frame (UV-split order, as in the file);
    zero: (U, 3) the all-zero pose; joint_names: the rig's; vi: (U,) the body vertex of each file vertex."""

    path: Path
    fps: float
    expected: np.ndarray
    zero: np.ndarray
    joint_names: tuple[str, ...]
    vi: np.ndarray


def anny_walk_glb(anny, path: Path, fps: float = 10.0, seconds: float = 1.0) -> AnnyWalk:
    """Write an Anny person (fixed phenotype) walking for `seconds` at `fps` to `path`."""
    body = anny.model
    p = AnnyParams.zeros(1, body.num_joints)
    p.phenotype = torch.tensor([[0.3, 0.6, 0.7, 0.4, 0.55, 0.45]])
    fit = SimpleNamespace(params=p)
    cfg = override(PipelineConfig(), {"render": {"fps": fps, "seconds": seconds}})
    rest, skeleton = anny_rest_mesh(anny, fit)
    anim = anny_animation(anny, fit, cfg, "walk", skeleton)
    layout = body.uv_layout
    vi = layout.vertex_index.numpy()
    mesh = SkinnedMesh.from_uv_layout(
        rest.vertices, body.skinning_weights.numpy(), body.parents.numpy(), rest.joints, layout.uv.numpy(),
        layout.uv_faces.numpy(), vi, joint_names=tuple(body.joint_names), rest_rotations=skeleton.bind[:, :3, :3],
        display_joints=skeleton.zero[:, :3, 3], display_rotations=skeleton.zero[:, :3, :3],
        texture=np.full((64, 64, 3), 180, np.uint8))
    write_glb(path, mesh, anim)
    m = resolve_motion("walk", anny, fit, fps, seconds, frame="canonical")
    T = m.num_frames
    params = AnnyParams(p.phenotype.expand(T, -1).clone(), torch.as_tensor(m.body_pose).float().reshape(T, -1, 3),
                        torch.as_tensor(m.global_orient).float(), torch.as_tensor(m.transl - m.transl[:1]).float())
    with torch.no_grad():
        expected = body(params).vertices.numpy()[:, vi]  # (T, U, 3)
        zero = body(AnnyParams(p.phenotype, torch.zeros(1, body.num_joints, 3), torch.zeros(1, 3),
                               torch.zeros(1, 3))).vertices.numpy()[0, vi]
    return AnnyWalk(path, fps, expected, zero, tuple(body.joint_names), vi)
