"""The `classic` avatar texture in one call: unwrap the photo(s), then symmetry / front-back transfer and fill."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from dinar_core.render.rasterizer import MeshRasterizer
from dinar_core.texture.config import ClassicAvatarConfig
from dinar_core.texture.inpaint import InpaintResult, inpaint_texture, transfer_maps
from dinar_core.texture.layout import UVLayout
from dinar_core.texture.unwrap import UnwrapResult, fuse_unwraps, unwrap


@dataclass
class ClassicTexture:
    """unwrapped: the partial texture and confidence seen in the photo(s); completed: the full texture with its
    provenance map."""

    unwrapped: UnwrapResult
    completed: InpaintResult


@dataclass
class PhotoView:
    """One photo of the person with its fit. image: (H, W, 3) RGB; mask: (H, W); verts_cam: (V, 3) or (1, V, 3)
    posed body in that photo's camera frame; K: (3, 3)."""

    image: object
    mask: object
    verts_cam: Tensor
    K: Tensor


def classic_texture(photos: list[PhotoView], layout: UVLayout, rest_vertices: Tensor,
                    config: ClassicAvatarConfig | None = None,
                    rasterizer: MeshRasterizer | None = None) -> ClassicTexture:
    """Unwrap every photo, fuse them, and complete the texture.

    photos: one or more :class:`PhotoView`; layout: the body's UV layout; rest_vertices: (V, 3) the body's rest
    pose in the model frame (x left, y up, z forward), from which the mirror and front-back maps are built.
    """
    config = config or ClassicAvatarConfig()
    if not photos:
        raise ValueError("classic_texture needs at least one photo")
    parts = [unwrap(p.image, p.mask, p.verts_cam, p.K, layout, config, rasterizer) for p in photos]
    seen = parts[0] if len(parts) == 1 else fuse_unwraps(parts)
    maps = transfer_maps(rest_vertices, layout, config)
    return ClassicTexture(seen, inpaint_texture(seen, layout, maps, config))
