"""Mesh rasterization with DINAR's conventions: fragments, attribute interpolation, DINAR's UV map.

``rasterize(verts_pix, faces, (H, W))`` takes vertices already multiplied by K (homogeneous pixel coordinates,
as DINAR does); ``rasterize_camera(verts_cam, K, faces, (H, W))`` takes camera-space vertices plus K.
Backends (``rasterizer.BACKENDS``, sharing ``types`` with the front end): `torch` (CPU default), `pytorch3d`
(CUDA default), `numba` (fastest on the CPU).
"""

from typing import TYPE_CHECKING

from dinar_core.lazy import lazy_package

if TYPE_CHECKING:  # resolved lazily below, so that e.g. the torch-free `config` submodule imports no torch
    from dinar_core.render.camera import DINAR_FOCAL, apply_K, make_K, project
    from dinar_core.render.rasterizer import (BACKENDS, MeshRasterizer, UVRender, fragments_from_pix_to_face, interpolate,
                                              rasterize, rasterize_camera, render_uv, resolve_backend, uv_map)
    from dinar_core.render.types import UV_BACKGROUND, ZBUF_BACKGROUND, Backend, Fragments, RasterizerConfig, VisibleFaces

__all__ = ["BACKENDS", "DINAR_FOCAL", "UV_BACKGROUND", "ZBUF_BACKGROUND", "Backend", "Fragments", "MeshRasterizer",
           "RasterizerConfig", "UVRender", "VisibleFaces", "apply_K", "fragments_from_pix_to_face", "interpolate",
           "make_K", "project", "rasterize", "rasterize_camera", "render_uv",
           "resolve_backend", "uv_map"]

_EXPORTS = {"DINAR_FOCAL": "camera", "apply_K": "camera", "make_K": "camera", "project": "camera",
            "BACKENDS": "rasterizer", "MeshRasterizer": "rasterizer", "UVRender": "rasterizer",
            "fragments_from_pix_to_face": "rasterizer", "interpolate": "rasterizer", "rasterize": "rasterizer",
            "rasterize_camera": "rasterizer", "render_uv": "rasterizer", "resolve_backend": "rasterizer",
            "uv_map": "rasterizer", "UV_BACKGROUND": "types", "ZBUF_BACKGROUND": "types", "Backend": "types",
            "Fragments": "types", "RasterizerConfig": "types", "VisibleFaces": "types"}
lazy_package(__name__, _EXPORTS)
