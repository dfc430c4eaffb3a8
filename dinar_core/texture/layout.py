"""Texture space: the UV layout of a body model and which surface point every texel shows.

The layout type is the body package's :class:`~dinar_core.body.base.UVLayout` (``uv`` (U, 2) in [0, 1] with v
down, ``uv_faces`` (F, 3), ``vertex_index`` (U,) = DINAR's ``v_inds``), re-exported here so texture code and body
models share one type. Texel ``(i, j)`` of a ``T x T`` texture has its centre at ``uv = ((j + 0.5) / T,
(i + 0.5) / T)``, which is exactly where ``grid_sample(align_corners=False)`` reads it for the grid value
``uv * 2 - 1`` (DINAR's UV map), so unwrapping and rendering agree to the texel.
"""

from __future__ import annotations

from dinar_core.render.shading import vertex_normals  # noqa: F401  (re-exported: texture users import it here)

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dinar_core.body.base import UVLayout
from dinar_core.errors import MissingModelError
from dinar_core.render.rasterizer import RasterizerConfig, rasterize

__all__ = ["UVLayout", "TexelMap", "load_smplx_uv_layout", "layout_from_body", "texel_map", "texel_points",
           "vertex_normals", "layout_key", "check_layout"]


def load_smplx_uv_layout(assets_dir: str | os.PathLike | None, device: torch.device | str = "cpu") -> UVLayout:
    """DINAR's SMPL-X UV layout from its ``smplx_data/`` folder: ``uv.npy`` (11438, 2), ``uv_faces.npy``
    (20908, 3), ``v_inds.npy`` (11438,) into SMPL-X's 10,475 vertices.

    Raises MissingModelError naming the missing files and the fix (set ``avatar.uv_assets``).
    """
    if assets_dir is None:
        raise MissingModelError(
            "the SMPL-X avatar needs DINAR's UV layout (uv.npy, uv_faces.npy, v_inds.npy) but no folder is set",
            fix="set the avatar config's uv_assets to DINAR's smplx_data/ folder (github SamsungLabs/DINAR), or use "
                "the Anny body, which ships its own UVs")
    from dinar_core.body.smplx_model import load_uv_layout

    return load_uv_layout(assets_dir, device=device)


def layout_from_body(body) -> UVLayout:
    """The UV layout a body model carries (``body.uv_layout``: Anny's own UVs, or SMPL-X's when built with
    ``uv_assets``). Raises MissingModelError when it has none."""
    layout = getattr(body, "uv_layout", None)
    if layout is None:
        raise MissingModelError(
            f"the body model {type(body).__name__} has no UV layout",
            fix="build SMPLXBody with uv_assets=<DINAR's smplx_data/>, or use the Anny body (its UVs ship with it)")
    return layout


def check_layout(layout: UVLayout, num_verts: int | None = None) -> None:
    """ValueError unless the layout's indices are consistent (and fit a ``num_verts``-vertex mesh)."""
    U = layout.uv.shape[0]
    if layout.uv_faces.numel() and (int(layout.uv_faces.min()) < 0 or int(layout.uv_faces.max()) >= U):
        raise ValueError(f"uv_faces index 0..{int(layout.uv_faces.max())} but uv has {U} rows")
    if num_verts is not None and U and int(layout.vertex_index.max()) >= num_verts:
        raise ValueError(f"vertex_index refers to vertex {int(layout.vertex_index.max())} but the mesh has "
                         f"{num_verts} vertices")


def layout_key(layout: UVLayout, *extra: Tensor | np.ndarray | float | int | str) -> str:
    """A content hash of a layout (plus extra arrays/values), to cache what is derived from it."""
    h = hashlib.sha1()
    for t in (layout.uv, layout.uv_faces, layout.vertex_index, *extra):
        if isinstance(t, Tensor):
            t = t.detach().cpu().numpy()
        if isinstance(t, np.ndarray):
            h.update(str(t.dtype).encode() + str(t.shape).encode())
            h.update(np.ascontiguousarray(t).tobytes())
        else:
            h.update(repr(t).encode())
    return h.hexdigest()


@dataclass
class TexelMap:
    """Which surface point every texel of a ``T x T`` texture shows (a rasterization of the layout in UV space).

    face: (T, T) int64, the layout face (= body face) covering the texel centre, -1 outside the UV charts.
    bary: (T, T, 3) float32 barycentrics of the texel centre in that face (0 outside).
    chart: (T, T) int64, the UV island (connected set of UV faces) of the texel, -1 outside.
    inside: (T, T) bool, ``face >= 0``.
    flat: (N,) int64, the row-major indices ``i * T + j`` of the inside texels (the order of every per-texel
        (N, ...) array in this package).
    """

    face: Tensor
    bary: Tensor
    chart: Tensor
    inside: Tensor
    flat: Tensor

    @property
    def size(self) -> int:
        return int(self.face.shape[0])

    def face_flat(self) -> Tensor:
        """(N,) the face of each inside texel."""
        return self.face.reshape(-1)[self.flat]

    def bary_flat(self) -> Tensor:
        """(N, 3) the barycentrics of each inside texel."""
        return self.bary.reshape(-1, 3)[self.flat]


def uv_charts(layout: UVLayout) -> Tensor:
    """(F,) int64 island id of every UV face: faces sharing a UV vertex are in the same island."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = layout.uv_faces.detach().cpu().numpy().astype(np.int64)
    U = layout.uv.shape[0]
    rows = np.concatenate([f[:, 0], f[:, 1]])
    cols = np.concatenate([f[:, 1], f[:, 2]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(U, U))
    _, vlabel = connected_components(graph, directed=False)
    return torch.from_numpy(vlabel[f[:, 0]].astype(np.int64))


_TEXEL_CACHE: OrderedDict[str, TexelMap] = OrderedDict()
_CACHE_SIZE = 8


def texel_map(layout: UVLayout, texture_size: int) -> TexelMap:
    """Rasterize the layout in UV space: the face and barycentrics of every texel centre. Cached per layout content
    and size (a 1024^2 map takes ~0.1-0.3 s on a CPU).

    Faces are drawn whatever their UV winding (DINAR's layout mixes both); where UV faces overlap, the lower face
    id wins. Returns :class:`TexelMap` on the layout's device.
    """
    T = int(texture_size)
    if T <= 0:
        raise ValueError(f"texture_size must be positive, got {texture_size}")
    key = layout_key(layout, T)
    hit = _TEXEL_CACHE.get(key)
    if hit is not None:
        _TEXEL_CACHE.move_to_end(key)
        return hit
    uv = layout.uv.to(torch.float32)
    verts_pix = torch.cat([uv * T, torch.ones_like(uv[:, :1])], dim=1)[None]  # (1, U, 3), z = 1: affine barys
    frags = rasterize(verts_pix, layout.uv_faces, (T, T), RasterizerConfig(backend="torch", cull_backfaces=False))
    face = frags.pix_to_face[0]  # (T, T)
    inside = face >= 0
    charts = uv_charts(layout).to(face.device)
    chart = torch.where(inside, charts[face.clamp_min(0)], torch.full_like(face, -1))
    flat = torch.nonzero(inside.reshape(-1)).squeeze(1)
    out = TexelMap(face=face, bary=frags.bary[0].to(torch.float32), chart=chart, inside=inside, flat=flat)
    _TEXEL_CACHE[key] = out
    while len(_TEXEL_CACHE) > _CACHE_SIZE:
        _TEXEL_CACHE.popitem(last=False)
    return out


def texel_points(verts: Tensor, layout: UVLayout, tmap: TexelMap, normals: Tensor | None = None
                 ) -> tuple[Tensor, Tensor | None]:
    """The 3D point (and interpolated normal) of every inside texel.

    verts: (B, V, 3) body vertices (``layout.vertex_index`` indexes them); tmap: from :func:`texel_map`;
    normals: optional (B, V, 3) vertex normals. Returns points (B, N, 3) and normals (B, N, 3) (unit) or None,
    in the order of ``tmap.flat``.
    """
    if verts.ndim != 3 or verts.shape[-1] != 3:
        raise ValueError(f"verts must be (B, V, 3), got {tuple(verts.shape)}")
    corner = layout.vertex_index.to(verts.device)[layout.uv_faces.to(verts.device)]  # (F, 3) body vertex ids
    vid = corner[tmap.face_flat().to(verts.device)]  # (N, 3)
    bary = tmap.bary_flat().to(verts)  # (N, 3)
    pts = (verts[:, vid] * bary[None, :, :, None]).sum(2)  # (B, N, 3)
    nrm = None
    if normals is not None:
        nrm = (normals[:, vid] * bary[None, :, :, None]).sum(2)
        nrm = nrm / nrm.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return pts, nrm
