"""Texture space and the `classic` avatar: UV layouts, photo unwrapping with confidence, mirror and front-back
texel maps, classic inpainting, and textured rendering (front/back/side views, turntable).

Typical use::

    layout = load_smplx_uv_layout(cfg.uv_assets)          # or layout_from_body(anny_body)
    result = classic_texture([PhotoView(rgb, segm, verts_cam, K)], layout, body.rest_vertices, cfg,
                             parts=body_parts(body))                   # parts from the skinning weights
    frame = render_textured(verts_cam, K, None, layout, result.completed.texture, (512, 512))
"""

from typing import TYPE_CHECKING

from dinar_core.lazy import lazy_package

if TYPE_CHECKING:  # resolved lazily below, so that e.g. the torch-free `config` submodule imports no torch
    from dinar_core.texture.classic import ClassicTexture, PhotoView, classic_texture
    from dinar_core.texture.config import ClassicAvatarConfig
    from dinar_core.texture.inpaint import (InpaintResult, Provenance, TransferMaps, harmonic_fill, inpaint_texture,
                                            opencv_fill, pad_outside, transfer_maps)
    from dinar_core.texture.hair import HairEstimate, estimate_hair
    from dinar_core.texture.light import LightEstimate, estimate_light, sh_shading
    from dinar_core.texture.parts import Part, body_parts, geometric_parts, vertex_parts_from_weights
    from dinar_core.texture.layout import (TexelMap, UVLayout, layout_from_body, load_smplx_uv_layout, texel_map,
                                           texel_points, vertex_normals)
    from dinar_core.texture.mirror import TexelCorrespondence, build_front_back_map, build_mirror_map
    from dinar_core.texture.render import (TexturedRender, Views, framing_camera, render_textured, rotate_about_vertical,
                                           turntable, views)
    from dinar_core.texture.unwrap import UnwrapResult, fuse_unwraps, unwrap

__all__ = [
    "ClassicAvatarConfig", "ClassicTexture", "PhotoView", "classic_texture", "InpaintResult", "Provenance",
    "TransferMaps", "harmonic_fill", "inpaint_texture", "opencv_fill", "pad_outside", "transfer_maps", "TexelMap",
    "UVLayout", "layout_from_body", "load_smplx_uv_layout", "texel_map", "texel_points", "vertex_normals",
    "TexelCorrespondence", "build_front_back_map", "build_mirror_map", "TexturedRender", "Views", "framing_camera",
    "render_textured", "rotate_about_vertical", "turntable", "views", "UnwrapResult", "fuse_unwraps", "unwrap",
    "HairEstimate", "estimate_hair", "LightEstimate", "estimate_light", "sh_shading", "Part", "body_parts",
    "geometric_parts", "vertex_parts_from_weights",
]

_EXPORTS = {"ClassicTexture": "classic", "PhotoView": "classic", "classic_texture": "classic",
            "ClassicAvatarConfig": "config", "InpaintResult": "inpaint", "Provenance": "inpaint",
            "TransferMaps": "inpaint", "harmonic_fill": "inpaint", "inpaint_texture": "inpaint",
            "opencv_fill": "inpaint", "pad_outside": "inpaint", "transfer_maps": "inpaint", "HairEstimate": "hair",
            "estimate_hair": "hair", "LightEstimate": "light", "estimate_light": "light", "sh_shading": "light",
            "Part": "parts", "body_parts": "parts", "geometric_parts": "parts", "vertex_parts_from_weights": "parts",
            "TexelMap": "layout", "UVLayout": "layout", "layout_from_body": "layout",
            "load_smplx_uv_layout": "layout", "texel_map": "layout", "texel_points": "layout",
            "vertex_normals": "layout", "TexelCorrespondence": "mirror", "build_front_back_map": "mirror",
            "build_mirror_map": "mirror", "TexturedRender": "render", "Views": "render", "framing_camera": "render",
            "render_textured": "render", "rotate_about_vertical": "render", "turntable": "render", "views": "render",
            "UnwrapResult": "unwrap", "fuse_unwraps": "unwrap", "unwrap": "unwrap"}
lazy_package(__name__, _EXPORTS)
