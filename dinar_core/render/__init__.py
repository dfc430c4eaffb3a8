"""Mesh rasterization with DINAR's conventions: fragments, attribute interpolation, DINAR's UV map.

``rasterize(verts_pix, faces, (H, W))`` takes vertices already multiplied by K (homogeneous pixel coordinates,
as DINAR does); ``rasterize_camera(verts_cam, K, faces, (H, W))`` takes camera-space vertices plus K.
Backends (``rasterizer.BACKENDS``, sharing ``types`` with the front end): `torch` (CPU default), `pytorch3d`
(CUDA default), `numba` (fastest on the CPU).
"""

from dinar_core.render.camera import DINAR_FOCAL, apply_K, make_K, project
from dinar_core.render.rasterizer import (BACKENDS, MeshRasterizer, UVRender, fragments_from_pix_to_face, interpolate,
                                          rasterize, rasterize_camera, render_uv, resolve_backend, uv_map)
from dinar_core.render.types import UV_BACKGROUND, ZBUF_BACKGROUND, Backend, Fragments, RasterizerConfig, VisibleFaces

__all__ = ["BACKENDS", "DINAR_FOCAL", "UV_BACKGROUND", "ZBUF_BACKGROUND", "Backend", "Fragments", "MeshRasterizer",
           "RasterizerConfig", "UVRender", "VisibleFaces", "apply_K", "fragments_from_pix_to_face", "interpolate",
           "make_K", "project", "rasterize", "rasterize_camera", "render_uv",
           "resolve_backend", "uv_map"]
