"""The `classic` avatar texture in one call: unwrap the photo(s), de-light them, then symmetry / part-wise fill."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from dinar_core.body.parts import Part
from dinar_core.render.rasterizer import MeshRasterizer
from dinar_core.texture.config import ClassicAvatarConfig
from dinar_core.texture.inpaint import InpaintResult, TransferMaps, inpaint_texture, transfer_maps
from dinar_core.texture.layout import UVLayout, texel_map, texel_points, vertex_normals
from dinar_core.texture.light import LightEstimate, delight_unwrap
from dinar_core.texture.unwrap import UnwrapResult, fuse_unwraps, unwrap


@dataclass
class ClassicTexture:
    """unwrapped: the partial texture and confidence seen in the photo(s) (de-lit when ``config.delight``);
    completed: the full texture with its provenance map; lights: the light estimated in each photo (None where
    de-lighting was off or too little was seen)."""

    unwrapped: UnwrapResult
    completed: InpaintResult
    lights: list[LightEstimate | None] = field(default_factory=list)
    face_texels: int = 0
    """Texels of the face (the head part facing forward in the rest pose): the detail a face can hold."""


@dataclass
class PhotoView:
    """One photo of the person with its fit. image: (H, W, 3) RGB; mask: (H, W); verts_cam: (V, 3) or (1, V, 3)
    posed body in that photo's camera frame; K: (3, 3)."""

    image: object
    mask: object
    verts_cam: Tensor
    K: Tensor


def posed_texel_normals(verts_cam: Tensor, layout: UVLayout, texture_size: int) -> Tensor:
    """(N, 3) unit normals of the inside texels (order of ``texel_map(layout, T).flat``) on the posed body.
    verts_cam: (V, 3) or (1, V, 3)."""
    v = verts_cam.detach().float()
    v = v[None] if v.ndim == 2 else v
    faces = layout.vertex_index.to(v.device)[layout.uv_faces.to(v.device)]
    _, nrm = texel_points(v, layout, texel_map(layout, texture_size), vertex_normals(v, faces))
    return nrm[0]


def classic_texture(photos: list[PhotoView], layout: UVLayout, rest_vertices: Tensor,
                    config: ClassicAvatarConfig | None = None,
                    rasterizer: MeshRasterizer | None = None, parts: Tensor | None = None) -> ClassicTexture:
    """Unwrap every photo, de-light it, fuse them, and complete the texture.

    photos: one or more :class:`PhotoView`; layout: the body's UV layout; rest_vertices: (V, 3) the body's rest
    pose in the model frame (x left, y up, z forward), from which the mirror maps, heights and part maps are built;
    parts: (V,) body part per vertex (``texture.parts.body_parts(model)`` from the skinning weights; default: cut
    from the rest pose by ``geometric_parts``).
    """
    config = config or ClassicAvatarConfig()
    if not photos:
        raise ValueError("classic_texture needs at least one photo")
    maps: TransferMaps = transfer_maps(rest_vertices, layout, config, vertex_parts=parts)
    unwraps, lights = [], []
    for p in photos:
        u = unwrap(p.image, p.mask, p.verts_cam, p.K, layout, config, rasterizer)
        est = None
        if config.delight:
            T = config.texture_size
            tm = texel_map(layout, T)
            u, est = delight_unwrap(u, posed_texel_normals(p.verts_cam, layout, T), maps.parts, tm.flat, config)
        unwraps.append(u)
        lights.append(est)
    seen = unwraps[0] if len(unwraps) == 1 else fuse_unwraps(unwraps)
    return ClassicTexture(seen, inpaint_texture(seen, layout, maps, config), lights, face_texels(maps))


def face_texels(maps: TransferMaps, front_axis: int = 2, min_facing: float = 0.5) -> int:
    """Texels of the head part whose rest-pose normal points forward (its component along `front_axis` above
    `min_facing`): the face's share of the texture. 0 when the maps carry no parts or normals."""
    if maps.parts is None or maps.normals is None:
        return 0
    face = (maps.parts == int(Part.HEAD)) & (maps.normals[..., front_axis] > min_facing)
    return int(face.sum())
