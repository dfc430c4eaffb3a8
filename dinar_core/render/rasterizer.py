"""Mesh rasterization with DINAR's conventions, behind one interface with interchangeable backends.

Conventions (the same for every backend, reproducing DINAR's ``minimal_pytorch_rasterizer``; see
``docs/conventions.md`` and ``dinar_core.render.camera``):

- Input vertices are **homogeneous pixel coordinates** ``verts_pix = verts_cam @ K^T`` = ``(x z, y z, z)``, shape
  ``(B, V, 3)``: ``(x, y)`` are pixels (x right, y down), ``z`` is the depth. This is what DINAR feeds its rasterizer
  (SMPL-X vertices multiplied by K, identity camera). :func:`rasterize_camera` takes camera-space vertices plus K.
- Pixel ``(i, j)`` (row i, column j) is sampled at its centre ``(j + 0.5, i + 0.5)``. A centre on an edge counts as
  inside (DINAR's edge test is inclusive). Between two faces covering a centre the nearer wins, then (here, to be
  deterministic; DINAR lets the last writer within 1e-5 of the depth win) the lower face id.
- A face with any vertex ``z < z_min`` (1e-5) is skipped (behind or at the camera), as in DINAR.
- Only front faces are drawn (``cull_backfaces=True``, DINAR's one-sided edge test): a front face is one whose
  vertices run **counter-clockwise on the screen** (pixel axes x right, y down), i.e. whose right-hand normal
  ``(v1 - v0) x (v2 - v0)`` points towards the camera (-z); so an outward-wound closed mesh (SMPL-X) shows the
  side facing the camera. (DINAR's kernel rejects a centre p if ``cross(b - a, p - a) > 0`` for an edge a->b in
  y-down pixel axes, which keeps exactly these faces.)
- Barycentrics are perspective-correct (screen barycentrics divided by the vertex depths and renormalised), and
  the depth test keeps the smallest interpolated depth.
- Deliberate difference: DINAR's CUDA kernel never draws the image's last pixel column and row (a bounding-box
  off-by-one); here every pixel can be covered.

Backends only decide *which* face is visible at each pixel (``pix_to_face``, discrete, no gradient). The
barycentrics and depths are then recomputed here from ``verts_pix`` with differentiable torch ops, so every
backend gives identical barycentrics for the same visible face and gradients flow from ``bary`` / ``zbuf`` /
:func:`interpolate` / :func:`uv_map` back to the vertex positions (not through coverage changes: the silhouette
edge itself is not differentiable).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import torch
from torch import Tensor

from dinar_core.render.camera import apply_K
from dinar_core.render.types import (UV_BACKGROUND, ZBUF_BACKGROUND, Backend, Fragments, RasterizerConfig,
                                     VisibleFaces)

BACKENDS: dict[str, str] = {
    "torch": "dinar_core.render.torch_raster:rasterize_torch",
    "numba": "dinar_core.render.numba_raster:rasterize_numba",
    "pytorch3d": "dinar_core.render.pytorch3d_raster:pix_to_face_pytorch3d",
}
"""Backend name -> ``module:function`` (a :class:`~dinar_core.render.types.VisibleFaces`). Imported on first use,
so numba and PyTorch3D are loaded only when chosen."""


def backend_function(backend: Backend, device: torch.device) -> VisibleFaces:
    """The backend function for `backend` (see :func:`resolve_backend`) on `device`."""
    module, function = BACKENDS[resolve_backend(backend, device)].split(":")
    return getattr(importlib.import_module(module), function)


def _check_inputs(verts_pix: Tensor, faces: Tensor, image_size: tuple[int, int]) -> tuple[int, int]:
    if verts_pix.ndim != 3 or verts_pix.shape[-1] != 3:
        raise ValueError(f"verts_pix must be (B, V, 3) homogeneous pixel coordinates, got {tuple(verts_pix.shape)}")
    if not verts_pix.is_floating_point():
        raise ValueError(f"verts_pix must be floating point, got {verts_pix.dtype}")
    if faces.ndim != 2 or faces.shape[-1] != 3 or faces.is_floating_point():
        raise ValueError(f"faces must be (F, 3) integer vertex indices, got {tuple(faces.shape)} {faces.dtype}")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= verts_pix.shape[1]):
        raise ValueError(f"faces index vertices 0..{int(faces.max())} but verts_pix has V={verts_pix.shape[1]}")
    if len(image_size) != 2 or int(image_size[0]) <= 0 or int(image_size[1]) <= 0:
        raise ValueError(f"image_size must be (H, W) > 0, got {image_size}")
    return int(image_size[0]), int(image_size[1])


def resolve_backend(backend: Backend, device: torch.device) -> Backend:
    """`auto` -> `pytorch3d` on CUDA, `torch` otherwise; other names are returned unchanged."""
    if backend == "auto":
        return "pytorch3d" if device.type == "cuda" else "torch"
    if backend not in BACKENDS:
        raise ValueError(f"unknown rasterizer backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
    return backend


def rasterize(verts_pix: Tensor, faces: Tensor, image_size: tuple[int, int],
              config: RasterizerConfig | None = None, backend: Backend | None = None) -> Fragments:
    """Rasterize a batch of meshes given in homogeneous pixel coordinates (DINAR's convention).

    verts_pix: (B, V, 3) float, ``verts_cam @ K^T`` = (x z, y z, z) with (x, y) in pixels of an
        ``image_size`` image (centres at j + 0.5) and z the depth. Use :func:`rasterize_camera` for camera-space
        vertices plus K.
    faces: (F, 3) integer vertex indices shared by the batch.
    image_size: (H, W).
    config: backend and culling options (default :class:`RasterizerConfig`); ``backend`` overrides its backend.
    Returns :class:`Fragments` with (B, H, W) / (B, H, W, 3) / (B, 1, H, W) tensors on ``verts_pix.device``.
    """
    config = config or RasterizerConfig()
    H, W = _check_inputs(verts_pix, faces, image_size)
    faces = faces.to(device=verts_pix.device, dtype=torch.int64)
    visible_faces = backend_function(backend or config.backend, verts_pix.device)
    with torch.no_grad():
        pix_to_face = visible_faces(verts_pix.detach(), faces, (H, W), config)
    return fragments_from_pix_to_face(verts_pix, faces, pix_to_face)


def rasterize_camera(verts_cam: Tensor, K: Tensor, faces: Tensor, image_size: tuple[int, int],
                     config: RasterizerConfig | None = None, backend: Backend | None = None) -> Fragments:
    """:func:`rasterize` for camera-space vertices. verts_cam: (B, V, 3); K: (3, 3) or (B, 3, 3); faces: (F, 3)."""
    return rasterize(apply_K(verts_cam, K), faces, image_size, config, backend)


class MeshRasterizer:
    """:func:`rasterize` with its config bound, to inject into renderers (``Renderer(rasterizer=MeshRasterizer())``)."""

    def __init__(self, config: RasterizerConfig | None = None):
        self.config = config or RasterizerConfig()

    def __call__(self, verts_pix: Tensor, faces: Tensor, image_size: tuple[int, int]) -> Fragments:
        """verts_pix: (B, V, 3) homogeneous pixel coordinates; faces: (F, 3). See :func:`rasterize`."""
        return rasterize(verts_pix, faces, image_size, self.config)


def _covered(pix_to_face: Tensor) -> tuple[Tensor, Tensor]:
    """Flat indices (N,) of the covered pixels of a (B, H, W) ``pix_to_face`` and their face ids (N,)."""
    flat = pix_to_face.reshape(-1)
    sel = torch.nonzero(flat >= 0).squeeze(1)  # (N,)
    return sel, flat[sel]


def fragments_from_pix_to_face(verts_pix: Tensor, faces: Tensor, pix_to_face: Tensor) -> Fragments:
    """Differentiable perspective-correct barycentrics and depths at the pixel centres for given visible faces.

    verts_pix: (B, V, 3) homogeneous pixel coordinates; faces: (F, 3) int64; pix_to_face: (B, H, W) int64 (-1 bg).
    Returns :class:`Fragments`. The maths runs in float64 (small triangles far from the origin lose digits in
    float32) and is cast back to ``verts_pix.dtype``.
    """
    B, H, W = pix_to_face.shape
    V = verts_pix.shape[1]
    sel, face = _covered(pix_to_face)
    b = torch.div(sel, H * W, rounding_mode="floor")  # (N,)
    rem = sel - b * (H * W)
    i = torch.div(rem, W, rounding_mode="floor")
    j = rem - i * W

    # index_select (backward: index_add) rather than advanced indexing, whose CPU backward is far slower.
    vid = (b[:, None] * V + faces[face]).reshape(-1)  # (N * 3,)
    tri = verts_pix.reshape(B * V, 3).index_select(0, vid).view(-1, 3, 3).to(torch.float64)  # (N, 3, 3)
    z = tri[..., 2]  # (N, 3)
    centre = torch.stack([j, i], dim=-1).to(torch.float64) + 0.5  # (N, 2) pixel centres
    d = tri[..., :2] / z[..., None] - centre[:, None]  # (N, 3, 2) vertices relative to the pixel centre
    d1, d2 = d.roll(-1, dims=1), d.roll(-2, dims=1)
    # Twice the signed areas of the sub-triangles opposite each vertex: screen barycentrics times area2.
    w = d1[..., 0] * d2[..., 1] - d1[..., 1] * d2[..., 0]  # (N, 3)
    wz = w / z  # perspective correction: 1/z is affine on the screen, so weight by 1/z and renormalise
    wz_sum = wz.sum(-1, keepdim=True)
    bary = (wz / wz_sum).to(verts_pix.dtype)  # (N, 3); the area normalisation cancels
    depth = (w.sum(-1) / wz_sum.squeeze(-1)).to(verts_pix.dtype)  # (N,) = 1 / sum(screen_bary / z)

    n_pix = B * H * W
    bary_full = torch.zeros(n_pix, 3, dtype=verts_pix.dtype, device=verts_pix.device).index_put((sel,), bary)
    zbuf = torch.full((n_pix,), ZBUF_BACKGROUND, dtype=verts_pix.dtype, device=verts_pix.device)
    zbuf = zbuf.index_put((sel,), depth)
    return Fragments(pix_to_face=pix_to_face, bary=bary_full.view(B, H, W, 3), zbuf=zbuf.view(B, H, W),
                     mask=(pix_to_face >= 0)[:, None])


def interpolate(fragments: Fragments, faces: Tensor, vertex_attrs: Tensor, background: float = 0.0) -> Tensor:
    """Interpolate per-vertex attributes (normals, colours, UVs) with the fragments' barycentrics.

    fragments: from :func:`rasterize`; faces: (F, 3) integer, face ``f`` must be the face rasterized as ``f``
        (it may index another vertex set, e.g. DINAR's UV-split vertices, as long as the face order is the same);
    vertex_attrs: (B, V, C) or (V, C) (shared by the batch). background: value where no face is visible.
    Returns (B, C, H, W). Differentiable w.r.t. ``vertex_attrs`` and, through the barycentrics, the vertices.
    """
    B, H, W = fragments.pix_to_face.shape
    shared = vertex_attrs.ndim == 2
    if not shared and (vertex_attrs.ndim != 3 or vertex_attrs.shape[0] != B):
        raise ValueError(f"vertex_attrs must be (V, C) or (B={B}, V, C), got {tuple(vertex_attrs.shape)}")
    if faces.ndim != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be (F, 3), got {tuple(faces.shape)}")
    faces = faces.to(device=vertex_attrs.device, dtype=torch.int64)
    V, C = vertex_attrs.shape[-2:]
    if faces.numel() and int(faces.max()) >= V:
        raise ValueError(f"faces index vertex {int(faces.max())} but vertex_attrs has V={V}")
    sel, face = _covered(fragments.pix_to_face)
    if face.numel() and int(face.max()) >= faces.shape[0]:
        raise ValueError(f"fragments refer to face {int(face.max())} but faces has F={faces.shape[0]}")
    vid = faces[face]  # (N, 3)
    if not shared:
        vid = vid + torch.div(sel, H * W, rounding_mode="floor")[:, None] * V  # rows of the (B * V, C) table
    vals = vertex_attrs.reshape(-1, C).index_select(0, vid.reshape(-1)).view(-1, 3, C)  # (N, 3, C)
    bary = fragments.bary.reshape(-1, 3).index_select(0, sel).to(vals.dtype)  # (N, 3)
    out = (bary[:, :, None] * vals).sum(1)  # (N, C)
    full = torch.full((B * H * W, C), background, dtype=vals.dtype, device=vals.device).index_put((sel,), out)
    return full.view(B, H, W, C).permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)


def uv_map(fragments: Fragments, uv_faces: Tensor, uv_verts: Tensor) -> Tensor:
    """DINAR's UV map: interpolated UV ``* 2 - 1`` in [-1, 1] where the body is visible, -10 elsewhere.

    uv_faces: (F, 3) integer (DINAR's ``uv_faces.npy``, the faces that were rasterized); uv_verts: (V, 2) or
    (B, V, 2) UV coordinates in [0, 1] (DINAR's ``uv.npy``). Returns (B, 2, H, W), usable directly as a
    ``grid_sample`` grid after ``permute(0, 2, 3, 1)`` (u -> x, v -> y, no flip).
    """
    if uv_verts.shape[-1] != 2:
        raise ValueError(f"uv_verts must be (V, 2) or (B, V, 2), got {tuple(uv_verts.shape)}")
    uv = interpolate(fragments, uv_faces, uv_verts)  # (B, 2, H, W)
    return torch.where(fragments.mask, uv * 2.0 - 1.0, torch.full_like(uv, UV_BACKGROUND))


@dataclass
class UVRender:
    """DINAR's UV rasterizer output. uv: (B, 2, H, W) in [-1, 1], -10 in the background; mask: (B, 1, H, W)
    float32 1/0 (DINAR's ``uv_mask``); fragments: the underlying :class:`Fragments`."""

    uv: Tensor
    mask: Tensor
    fragments: Fragments


def render_uv(verts_pix: Tensor, uv_faces: Tensor, uv_verts: Tensor, image_size: tuple[int, int],
              v_inds: Tensor | None = None, config: RasterizerConfig | None = None) -> UVRender:
    """DINAR's ``uv_rasterizer.Rasterizer`` forward: the body's UV map and mask.

    verts_pix: (B, V, 3) homogeneous pixel coordinates (SMPL-X vertices @ K^T); with ``v_inds`` (V_uv,) the UV
    mesh's vertices are ``verts_pix[:, v_inds]`` (DINAR's ``v_inds.npy``), else verts_pix are already the UV mesh's
    (B, V_uv, 3). uv_faces: (F, 3) into the UV mesh; uv_verts: (V_uv, 2) in [0, 1]. image_size: (H, W).
    """
    if v_inds is not None:
        verts_pix = verts_pix[:, v_inds.to(device=verts_pix.device, dtype=torch.int64)]  # (B, V_uv, 3)
    frags = rasterize(verts_pix, uv_faces, image_size, config)
    return UVRender(uv=uv_map(frags, uv_faces, uv_verts.to(verts_pix)), mask=frags.mask.to(verts_pix.dtype),
                    fragments=frags)
