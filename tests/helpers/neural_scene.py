"""A synthetic person for the neural-avatar tests: the synthetic SMPL-X body, a UV layout made for its own mesh
(cylindrical per-vertex UVs, uv_faces = faces, vertex_index = arange), a photo rendered from a procedural texture,
its mask and the SMPL-X parameters that produced it (DINAR's camera: fx = fy = 5000, principal point (W//2, H//2))."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dinar_core.body import SMPLXBody, SMPLXParams, UVLayout
from dinar_core.render import make_K, render_uv
from tests.helpers.synthetic_smplx import write_synthetic_smplx


@dataclass
class NeuralScene:
    body: SMPLXBody
    layout: UVLayout
    params: SMPLXParams
    K: torch.Tensor  # (3, 3) photo intrinsics
    rgb: np.ndarray  # (H, W, 3) uint8
    segm: np.ndarray  # (H, W) uint8 0/255


def cylindrical_layout(rest_vertices: torch.Tensor, faces: torch.Tensor) -> UVLayout:
    """u = angle about the vertical axis, v = height from the top (image convention), both in [0.02, 0.98]."""
    x, y, z = rest_vertices.unbind(-1)
    u = torch.atan2(x, z) / (2 * math.pi) + 0.5
    v = (y.max() - y) / (y.max() - y.min())
    uv = torch.stack([u, v], -1) * 0.96 + 0.02
    return UVLayout(uv.float(), faces.long(), torch.arange(rest_vertices.shape[0]))


def scene_params(body: SMPLXBody, image_size: tuple[int, int], fill: float = 0.8, yaw: float = 0.0) -> SMPLXParams:
    """The rest body turned to face DINAR's camera (y down, z forward), centred, `fill` of the image height."""
    p = SMPLXParams.zeros(1)
    # rot_y(yaw) @ rot_x(pi) as one axis-angle: small yaw keeps the front towards the camera
    R = torch.tensor([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]]) @ \
        torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])
    angle = math.acos(max(-1.0, min(1.0, (float(R.trace()) - 1) / 2)))
    axis = torch.tensor([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    axis = axis / axis.norm() if float(axis.norm()) > 1e-6 else torch.tensor([1.0, 0, 0])
    p.global_orient = (axis * angle)[None].float()
    with torch.no_grad():
        v = body(p).vertices[0]
    H, W = image_size
    height = float(v[:, 1].max() - v[:, 1].min())
    z = 5000.0 * height / (fill * H)
    centre = (v.max(0).values + v.min(0).values) / 2
    p.transl = torch.tensor([[-float(centre[0]), -float(centre[1]), z]])
    return p


def procedural_colours(uv: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) UV map in [-1, 1] -> (B, 3, H, W) colours in [0, 1]: smooth bands, distinct front/back."""
    u, v = (uv[:, 0] + 1) / 2, (uv[:, 1] + 1) / 2
    r = 0.5 + 0.4 * torch.sin(6 * math.pi * v)
    g = 0.5 + 0.4 * torch.cos(4 * math.pi * u)
    b = 0.3 + 0.4 * v
    return torch.stack([r, g, b], 1).clamp(0, 1)


def make_scene(model_dir: Path, image_size: tuple[int, int] = (96, 80), yaw: float = 0.0) -> NeuralScene:
    if not (Path(model_dir) / "SMPLX_NEUTRAL.pkl").is_file():
        write_synthetic_smplx(model_dir)
    body = SMPLXBody(model_dir)
    layout = cylindrical_layout(body.rest_vertices, body.faces)
    params = scene_params(body, image_size, yaw=yaw)
    H, W = image_size
    K = make_K(H, W)
    with torch.no_grad():
        verts = body(params).vertices @ K.T
    r = render_uv(verts, layout.uv_faces, layout.uv, image_size)
    colours = procedural_colours(r.uv) * r.mask + 0.4 * (1 - r.mask)
    rgb = (colours[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    segm = (r.mask[0, 0].numpy() * 255).astype(np.uint8)
    return NeuralScene(body, layout, params, K, rgb, segm)


def write_tiny_checkpoint(scene: NeuralScene, path: Path, seed: int = 0):
    """A tiny random DinarModel for `scene`'s UV layout, saved at `path` in DINAR's key layout wrapped as Lightning
    does. Returns its NeuralAvatarConfig."""
    from dinar_core.avatar.config import NeuralAvatarConfig
    from dinar_core.compat.checkpoint import lightning_checkpoint, to_dinar_state_dict
    from dinar_core.nets.dinar import DinarModel

    cfg = NeuralAvatarConfig.tiny(num_faces=scene.layout.uv_faces.shape[0], num_uv_verts=scene.layout.uv.shape[0])
    torch.manual_seed(seed)
    model = DinarModel(cfg.dinar_config(), uv_faces=scene.layout.uv_faces, uv_values=scene.layout.uv)
    torch.save(lightning_checkpoint(to_dinar_state_dict(model), epoch=24), path)
    return cfg
