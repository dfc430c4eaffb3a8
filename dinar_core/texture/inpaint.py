"""Classic inpainting of the texels the photo did not see: symmetry, front<->back transfer, then a fill.

1. Fuse, per texel, its own observation (weight = its confidence c0) with its left/right mirror texel's
   (``mirror_weight * c1``) and with the texel straight through the body (``front_back_weight * c2``, below the
   head only), each later source taking only the weight the earlier ones left:
   ``e0 = c0, e1 = c1 (1 - c0), e2 = c2 (1 - c0) (1 - c1)``. The fused colour is the weighted mean and its
   weight ``E = e0 + e1 + e2`` in [0, 1]. A grazing observation is thus blended with its mirror smoothly.
   With ``back_mode='parts'`` (default) there is no front<->back transfer and the mirror is kept on the limbs only
   (``mirror_scope``).
2. Fill what no source reached (``E = 0``): ``harmonic`` (default) solves Laplace's equation for vertex colours
   over the mesh with the seen vertices fixed, and interpolates them into the texels (it follows the surface, so
   UV islands and seams are respected); ``telea`` / ``ns`` use OpenCV's inpainting in texture space. With
   ``back_mode='parts'`` that fill only bridges the seams: away from the seen region the part's colour profile
   and synthesised texture take over (``texture.synth``), with hair as a part of its own (``texture.hair``).
3. Blend without seams: ``alpha = min(E / full_confidence, 1)``, lowered further within ``feather_px`` texels of
   the unknown region; ``texture = alpha * fused + (1 - alpha) * fill``.
4. Pad everything outside the charts with the nearest chart texel (bilinear sampling at chart borders).

The provenance map records which source gave each texel (observed / mirrored / front-back / filled).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch
from torch import Tensor

from dinar_core.texture.config import ClassicAvatarConfig
from dinar_core.texture.hair import HairEstimate, estimate_hair
from dinar_core.texture.layout import UVLayout, layout_key, texel_map, texel_points, vertex_normals
from dinar_core.texture.mirror import TexelCorrespondence, build_front_back_map, build_mirror_map
from dinar_core.texture.parts import geometric_parts, is_limb, texel_parts
from dinar_core.texture.synth import part_fill
from dinar_core.texture.unwrap import UnwrapResult


class Provenance(IntEnum):
    """Where a texel's colour came from (values of :attr:`InpaintResult.provenance`)."""

    OUTSIDE = 0
    """Outside the UV charts (padding only)."""
    OBSERVED = 1
    MIRRORED = 2
    FRONT_BACK = 3
    FILLED = 4


PROVENANCE_COLOURS = np.array([[0, 0, 0], [60, 180, 75], [0, 130, 200], [245, 130, 48], [230, 25, 75]], np.uint8)
"""RGB per :class:`Provenance` value, for the report's provenance image."""


@dataclass
class TransferMaps:
    """Texel correspondences of a layout on a body (see ``texture.mirror``).

    mirror: left/right map or None; front_back: front<->back map or None;
    height: (T, T) float32 rest-pose height of each texel as a fraction of the body's (feet 0, top 1), -1 outside;
    parts: (T, T) int64 body part of each texel (``texture.parts.Part``), -1 outside;
    points / normals: (T, T, 3) float32 rest-pose point and unit normal of each texel (0 outside).
    """

    mirror: TexelCorrespondence | None
    front_back: TexelCorrespondence | None
    height: Tensor
    parts: Tensor | None = None
    points: Tensor | None = None
    normals: Tensor | None = None


@dataclass
class InpaintResult:
    """texture: (T, T, 3) float32 in [0, 1], complete (every texel, charts and padding);
    provenance: (T, T) uint8 :class:`Provenance`; weight: (T, T) float32 fused weight E before the fill."""

    texture: Tensor
    provenance: Tensor
    weight: Tensor
    hair: HairEstimate | None = None
    """The hair found (``back_mode='parts'`` with ``hair`` on), else None."""

    def provenance_image(self) -> np.ndarray:
        """(T, T, 3) uint8 colour-coded provenance (``PROVENANCE_COLOURS``)."""
        return PROVENANCE_COLOURS[self.provenance.cpu().numpy()]

    def fractions(self) -> dict[str, float]:
        """Share of the chart texels per provenance (for the report)."""
        p = self.provenance.cpu().numpy()
        inside = p > 0
        n = max(int(inside.sum()), 1)
        return {k.name.lower(): float((p == k.value).sum()) / n for k in Provenance if k != Provenance.OUTSIDE}


def transfer_maps(rest_vertices: Tensor, layout: UVLayout, config: ClassicAvatarConfig | None = None,
                  up_axis: int = 1, lateral_axis: int = 0, front_axis: int = 2,
                  vertex_parts: Tensor | None = None) -> TransferMaps:
    """Build (or fetch from the cache) the maps the inpainting uses, from the body's rest pose.

    rest_vertices: (V, 3) in the body model's frame (SMPL-X: x left, y up, z forward); vertex_parts: (V,) body
    parts (``texture.parts.body_parts(model)``), default :func:`~dinar_core.texture.parts.geometric_parts`.
    Cached per layout, rest pose, size, parts and options (the last 4).
    """
    config = config or ClassicAvatarConfig()
    T = config.texture_size
    key = layout_key(layout, rest_vertices, T, config.match_distance, config.use_mirror,
                     config.use_front_back and config.back_mode == "copy", up_axis, lateral_axis, front_axis,
                     "geometric" if vertex_parts is None else vertex_parts)
    hit = _MAPS_CACHE.get(key)
    if hit is None:
        hit = _MAPS_CACHE[key] = _transfer_maps(rest_vertices, layout, config, up_axis, lateral_axis, front_axis,
                                                vertex_parts)
        while len(_MAPS_CACHE) > 4:
            _MAPS_CACHE.popitem(last=False)
    _MAPS_CACHE.move_to_end(key)
    return hit


_MAPS_CACHE: OrderedDict[str, TransferMaps] = OrderedDict()


def _transfer_maps(rest_vertices: Tensor, layout: UVLayout, config: ClassicAvatarConfig, up_axis: int,
                   lateral_axis: int, front_axis: int, vertex_parts: Tensor | None) -> TransferMaps:
    T = config.texture_size
    mirror = build_mirror_map(rest_vertices, layout, T, config.match_distance, lateral_axis) \
        if config.use_mirror else None
    front_back = build_front_back_map(rest_vertices, layout, T, config.match_distance, front_axis) \
        if config.use_front_back and config.back_mode == "copy" else None
    tmap = texel_map(layout, T)
    rest = rest_vertices.detach().float()
    pts, nrm = texel_points(rest[None], layout, tmap, vertex_normals(rest[None], layout.vertex_index[layout.uv_faces]))
    y = pts[0, :, up_axis]
    lo, hi = float(rest_vertices[:, up_axis].min()), float(rest_vertices[:, up_axis].max())
    height = torch.full((T * T,), -1.0)
    height[tmap.flat.cpu()] = ((y - lo) / max(hi - lo, 1e-9)).cpu()
    flat = tmap.flat.cpu()
    points, normals = torch.zeros(T * T, 3), torch.zeros(T * T, 3)
    points[flat], normals[flat] = pts[0].cpu(), nrm[0].cpu()
    if vertex_parts is None:
        vertex_parts = geometric_parts(rest_vertices, lateral_axis, up_axis)
    parts = texel_parts(layout, T, vertex_parts)
    return TransferMaps(mirror, front_back, height.view(T, T), parts, points.view(T, T, 3), normals.view(T, T, 3))


def inpaint_texture(unwrapped: UnwrapResult, layout: UVLayout, maps: TransferMaps | None = None,
                    config: ClassicAvatarConfig | None = None) -> InpaintResult:
    """Complete a partial texture. unwrapped: from ``unwrap`` (T, T) maps; layout: its UV layout; maps: from
    :func:`transfer_maps` at the same T (None: no transfers, fill only). Returns :class:`InpaintResult`."""
    config = config or ClassicAvatarConfig()
    config.validate()
    T = unwrapped.confidence.shape[0]
    if unwrapped.texture.shape != (T, T, 3) or unwrapped.confidence.shape != (T, T):
        raise ValueError(f"unwrapped texture must be (T, T, 3) with confidence (T, T), got "
                         f"{tuple(unwrapped.texture.shape)} and {tuple(unwrapped.confidence.shape)}")
    if maps is not None and maps.height.shape != (T, T):
        raise ValueError(f"transfer maps are for a {maps.height.shape[0]}^2 texture, the unwrap is {T}^2")
    device = unwrapped.texture.device
    tmap = texel_map(layout, T)
    inside = tmap.inside.to(device)
    c0 = unwrapped.confidence.clamp(0, 1) * inside
    col0 = unwrapped.texture
    num = col0 * c0[..., None]
    E = c0.clone()
    source = torch.where(c0 > 0, torch.full_like(c0, float(Provenance.OBSERVED)), torch.zeros_like(c0))
    best = c0.clone()
    rest = 1.0 - c0
    by_parts = config.back_mode == "parts" and maps is not None and maps.parts is not None
    for corr, weight, kind, limit in (
            (maps.mirror if maps else None, config.mirror_weight, Provenance.MIRRORED, None),
            (maps.front_back if maps and config.back_mode == "copy" else None, config.front_back_weight,
             Provenance.FRONT_BACK, config.front_back_max_height)):
        if corr is None:
            continue
        c = corr.gather(c0) * weight
        if limit is not None:
            c = c * (maps.height.to(device) <= limit)
        if by_parts and kind == Provenance.MIRRORED and config.mirror_scope == "limbs":
            limb = is_limb(maps.parts).to(device)
            c = c * (limb & corr.gather(limb.float()).bool())
        c = c * inside
        e = c * rest
        num = num + corr.gather(col0) * e[..., None]
        E = E + e
        source = torch.where(e > best, torch.full_like(source, float(kind)), source)
        best = torch.maximum(best, e)
        rest = rest * (1.0 - c)
    fused = num / E.clamp_min(1e-12)[..., None]
    fill = _fill(fused, E, inside, layout, tmap, config)
    hair = None
    if by_parts:
        parts = maps.parts.to(device)
        if config.hair and maps.points is not None:
            hair = estimate_hair(fused, E, parts, maps.points, maps.normals, maps.height, config)
            parts = hair.parts.to(device)
        lateral = None if maps.normals is None else maps.normals[..., 0].abs().to(device)
        fill = part_fill(fused, E, fill, parts, maps.height.to(device), inside, config, lateral)
    alpha = (E / config.full_confidence).clamp(0, 1)
    unknown = inside & (E <= 0)
    if config.feather_px > 0 and bool(unknown.any()):
        from scipy.ndimage import distance_transform_edt

        d = torch.from_numpy(distance_transform_edt(~unknown.cpu().numpy()).astype(np.float32)).to(device)
        alpha = alpha * (d / (config.feather_px + 1.0)).clamp(0, 1)
    texture = alpha[..., None] * fused + (1.0 - alpha[..., None]) * fill
    texture = torch.where(inside[..., None], texture, torch.zeros_like(texture))
    texture = pad_outside(texture.clamp(0, 1), inside)
    provenance = torch.where(inside & (E <= 0), torch.full_like(source, float(Provenance.FILLED)), source)
    provenance = torch.where(inside, provenance, torch.zeros_like(provenance))
    return InpaintResult(texture, provenance.to(torch.uint8), E, hair)


def pad_outside(texture: Tensor, inside: Tensor) -> Tensor:
    """Copy to every texel outside the charts the colour of the nearest inside texel.
    texture: (T, T, 3); inside: (T, T) bool. Returns (T, T, 3)."""
    from scipy.ndimage import distance_transform_edt

    ins = inside.cpu().numpy()
    if ins.all() or not ins.any():
        return texture
    _, (ii, jj) = distance_transform_edt(~ins, return_indices=True)
    src = torch.from_numpy((ii * ins.shape[1] + jj).reshape(-1)).to(texture.device)
    return texture.reshape(-1, 3)[src].reshape(texture.shape)


def _fill(fused: Tensor, E: Tensor, inside: Tensor, layout: UVLayout, tmap, config: ClassicAvatarConfig) -> Tensor:
    """(T, T, 3) colours for every inside texel from the known ones (E > 0)."""
    if config.fill_method == "harmonic":
        return harmonic_fill(fused, E, layout, tmap)
    return opencv_fill(fused, E > 0, inside, config.fill_method)


def opencv_fill(texture: Tensor, known: Tensor, inside: Tensor, method: str = "telea", radius: int = 3) -> Tensor:
    """OpenCV inpainting in texture space (``cv2.INPAINT_TELEA`` / ``INPAINT_NS``) of every texel not known
    (outside-chart texels are inpainted too, so they do not feed black into the charts).
    texture: (T, T, 3) [0, 1]; known: (T, T) bool. Returns (T, T, 3) float32."""
    import cv2

    img = (texture.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
    hole = (~known.cpu().numpy()).astype(np.uint8)
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    out = cv2.inpaint(img, hole, radius, flag)
    return torch.from_numpy(out.astype(np.float32) / 255.0).to(texture.device)


def harmonic_fill(texture: Tensor, weight: Tensor, layout: UVLayout, tmap, known_fraction: float = 0.25) -> Tensor:
    """Fill on the mesh: vertex colours from the known texels, Laplace's equation for the others, interpolated back.

    texture: (T, T, 3); weight: (T, T) >= 0 (0 = unknown); layout with V body vertices (``vertex_index``);
    known_fraction: a vertex is fixed when the weight-average of the texels around it (bary-weighted) is above
    this. Vertices of a mesh component with nothing known get the mean known colour. Returns (T, T, 3).
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    T = texture.shape[0]
    device = texture.device
    corner = (layout.vertex_index[layout.uv_faces]).cpu().numpy()  # (F, 3) body faces
    V = int(layout.vertex_index.max()) + 1
    flat = tmap.flat.cpu().numpy()
    vid = corner[tmap.face_flat().cpu().numpy()]  # (N, 3)
    bary = tmap.bary_flat().cpu().numpy().astype(np.float64)  # (N, 3)
    w = weight.reshape(-1).cpu().numpy()[flat].astype(np.float64)  # (N,)
    col = texture.reshape(-1, 3).cpu().numpy()[flat].astype(np.float64)  # (N, 3)
    support = np.bincount(vid.ravel(), bary.ravel(), minlength=V)
    wb = (bary * w[:, None]).ravel()
    wsum = np.bincount(vid.ravel(), wb, minlength=V)
    acc = np.stack([np.bincount(vid.ravel(), wb * np.repeat(col[:, c], 3), minlength=V) for c in range(3)], 1)
    known = (wsum > 0) & (wsum >= known_fraction * np.maximum(support, 1e-12))
    x = np.zeros((V, 3))
    x[known] = acc[known] / wsum[known, None]
    mean = (col * w[:, None]).sum(0) / max(w.sum(), 1e-12) if w.sum() > 0 else np.full(3, 0.5)
    unknown = np.nonzero(~known)[0]
    if len(unknown):
        e = np.concatenate([corner[:, [0, 1]], corner[:, [1, 2]], corner[:, [2, 0]]])
        e = np.unique(np.sort(e, 1), axis=0)
        A = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(V, V))
        A = (A + A.T).tocsr()
        A.data[:] = 1.0
        deg = np.asarray(A.sum(1)).ravel()
        # A tiny pull towards the mean colour keeps components with nothing known solvable (they get the mean).
        eps = 1e-6
        L_uu = (sp.diags(deg[unknown] + eps) - A[unknown][:, unknown]).tocsc()
        rhs = A[unknown][:, np.nonzero(known)[0]] @ x[known] + eps * mean[None]
        x[unknown] = np.asarray(spsolve(L_uu, rhs)).reshape(len(unknown), 3)
    fill_n = (x[vid] * bary[..., None]).sum(1)  # (N, 3)
    out = np.zeros((T * T, 3), dtype=np.float32)
    out[flat] = fill_n
    return torch.from_numpy(out.reshape(T, T, 3)).to(device)
