"""Synthetic people for the texture tests of the back, the hair and the light: the synthetic SMPL-X body
(``tests.helpers.synthetic_smplx``: head, arms, legs as closed tubes, real skinning weights) with an
area-proportional tube atlas, its body parts from the skinning weights, and per-texel rest-pose geometry.

- :func:`person_scene`: body, layout, parts, texel points / normals at a texture size, and a front camera.
- :func:`plain_texture`: one colour per body part plus a faint 8-texel checker (a plain shirt, trousers, skin).
- :func:`photo_of`: an unlit front render of a texture, as uint8 RGB + mask (what ``PhotoView`` takes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dinar_core.body import SMPLXBody
from dinar_core.body.base import UVLayout
from dinar_core.render import make_K
from dinar_core.texture import pad_outside, render_textured, texel_map, texel_points, vertex_normals
from dinar_core.texture.parts import Part, body_parts, texel_parts
from tests.helpers.atlas import tube_atlas
from tests.helpers.texture_meshes import to_camera

H = 512


@dataclass
class PersonScene:
    rest: torch.Tensor  # (V, 3)
    layout: UVLayout
    parts: torch.Tensor  # (V,)
    T: int
    texel_parts: torch.Tensor  # (T, T)
    points: torch.Tensor  # (T, T, 3) rest-pose texel points
    normals: torch.Tensor  # (T, T, 3)
    inside: torch.Tensor  # (T, T)
    K: torch.Tensor
    front: torch.Tensor  # (1, V, 3) camera-space body facing the camera
    back: torch.Tensor  # (1, V, 3) turned 180 degrees


def person_scene(model_dir, T: int = 256) -> PersonScene:
    body = SMPLXBody(model_dir)
    rest = body.rest_vertices
    layout = tube_atlas(rest, body.faces)
    parts = body_parts(body)
    tm = texel_map(layout, T)
    pts, nrm = texel_points(rest[None], layout, tm, vertex_normals(rest[None], layout.vertex_index[layout.uv_faces]))
    P, N = torch.zeros(T * T, 3), torch.zeros(T * T, 3)
    P[tm.flat], N[tm.flat] = pts[0], nrm[0]
    K = make_K(H, H)
    extent = rest.amax(0) - rest.amin(0)
    distance = 5000.0 * float(max(extent[0], extent[1])) / (0.85 * H)
    return PersonScene(rest, layout, parts, T, texel_parts(layout, T, parts), P.view(T, T, 3), N.view(T, T, 3),
                       tm.inside, K, to_camera(rest, distance), to_camera(rest, distance, 180.0))


PART_COLOURS = {Part.TORSO: (0.2, 0.45, 0.75), Part.HEAD: (0.86, 0.66, 0.54), Part.ARM_L: (0.86, 0.66, 0.54),
                Part.ARM_R: (0.86, 0.66, 0.54), Part.HAND_L: (0.86, 0.66, 0.54), Part.HAND_R: (0.86, 0.66, 0.54),
                Part.LEG_L: (0.25, 0.25, 0.3), Part.LEG_R: (0.25, 0.25, 0.3), Part.FOOT_L: (0.1, 0.1, 0.1),
                Part.FOOT_R: (0.1, 0.1, 0.1)}


def plain_texture(scene: PersonScene, checker: float = 0.03) -> torch.Tensor:
    """(T, T, 3) one colour per part (``PART_COLOURS``) with a faint 8-texel checker, padded outside the charts."""
    T = scene.T
    tex = torch.zeros(T, T, 3)
    for p, c in PART_COLOURS.items():
        tex[scene.texel_parts == int(p)] = torch.tensor(c)
    ii, jj = torch.meshgrid(torch.arange(T), torch.arange(T), indexing="ij")
    tex = tex + checker * ((((ii // 8) + (jj // 8)) % 2).float() - 0.5)[..., None]
    return pad_outside(tex.clamp(0, 1) * scene.inside[..., None], scene.inside)


def photo_of(scene: PersonScene, texture: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """An unlit front render: (H, W, 3) uint8 RGB and (H, W) bool mask."""
    photo = render_textured(scene.front, scene.K, None, scene.layout, texture, (H, H))
    rgb = (photo.rgba[0, :3].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()
    return rgb, (photo.rgba[0, 3] > 0.5).numpy()
