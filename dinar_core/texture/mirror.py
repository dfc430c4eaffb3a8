"""Texel correspondences built from the rest-pose mesh: left <-> right mirror, and front <-> back through the body.

Both are found among the texels' own 3D points (every inside texel has one, see ``layout.texel_points``), so the
answer is a texel index directly and the accuracy is about one texel's footprint on the surface:

- mirror: reflect the texel's point across the sagittal plane (x -> 2 c - x, c the body's centre in x) and take
  the nearest texel point whose normal agrees with the reflected normal (a thumb's nearest point could otherwise
  be on the palm's other side);
- front-back: walk from the texel's point through the body along the front axis (backwards for a front-facing
  texel, forwards for a back-facing one) and take the first texel point facing the other way that lies on that
  line (within ``match_distance`` of it).

Rest-pose axes are the body model's: x = the body's left, y up, z forward (SMPL-X, and Anny in SMPL-X's frame).
Results are cached per (layout, rest vertices, size, parameters).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dinar_core.texture.layout import TexelMap, UVLayout, layout_key, texel_map, texel_points, vertex_normals

_CACHE: OrderedDict[str, "TexelCorrespondence"] = OrderedDict()
_CACHE_SIZE = 16


@dataclass
class TexelCorrespondence:
    """For every texel of a ``T x T`` texture, another texel (the mirror image, or the point behind it).

    source: (T, T) int64 row-major flat index ``i * T + j`` of the corresponding texel, -1 where none was found
        (outside the charts, or nothing within ``match_distance``).
    distance: (T, T) float32 rest-pose distance (m) between the wanted point and the texel point found (inf
        where none).
    """

    source: Tensor
    distance: Tensor

    @property
    def valid(self) -> Tensor:
        """(T, T) bool, where a correspondence exists."""
        return self.source >= 0

    def gather(self, values: Tensor) -> Tensor:
        """Pull per-texel values through the map: values (T, T, ...) -> (T, T, ...), zeros where invalid."""
        T = self.source.shape[0]
        flat = values.reshape(T * T, *values.shape[2:])
        out = flat[self.source.clamp_min(0).reshape(-1).to(values.device)]
        mask = self.valid.reshape(-1, *([1] * (values.ndim - 2))).to(values.device)
        return torch.where(mask, out, torch.zeros_like(out)).reshape(values.shape)


def _rest_geometry(rest_vertices: Tensor, faces_body: Tensor, layout: UVLayout, tmap: TexelMap
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Texel points (N, 3) and unit normals (N, 3) in the rest pose, float64 numpy."""
    verts = rest_vertices.detach().to(torch.float32)[None]  # (1, V, 3)
    normals = vertex_normals(verts, faces_body)
    pts, nrm = texel_points(verts, layout, tmap, normals)
    return pts[0].cpu().numpy().astype(np.float64), nrm[0].cpu().numpy().astype(np.float64)


def _body_faces(layout: UVLayout) -> Tensor:
    return layout.vertex_index[layout.uv_faces]  # (F, 3): the body's faces, in the layout's face order


def _check_rest(rest_vertices: Tensor, layout: UVLayout) -> None:
    if rest_vertices.ndim != 2 or rest_vertices.shape[1] != 3:
        raise ValueError(f"rest_vertices must be (V, 3), got {tuple(rest_vertices.shape)}")
    if int(layout.vertex_index.max()) >= rest_vertices.shape[0]:
        raise ValueError(f"the layout refers to vertex {int(layout.vertex_index.max())} but rest_vertices has "
                         f"{rest_vertices.shape[0]}")


def _finish(T: int, flat: Tensor, src_local: np.ndarray, dist: np.ndarray) -> TexelCorrespondence:
    """Scatter per-inside-texel results (N,) (local indices, -1 = none) into (T, T) maps."""
    flat_np = flat.cpu().numpy()
    source = np.full(T * T, -1, dtype=np.int64)
    distance = np.full(T * T, np.inf, dtype=np.float32)
    ok = src_local >= 0
    source[flat_np[ok]] = flat_np[src_local[ok]]
    distance[flat_np[ok]] = dist[ok]
    return TexelCorrespondence(torch.from_numpy(source.reshape(T, T)), torch.from_numpy(distance.reshape(T, T)))


def _cached(key: str, build) -> TexelCorrespondence:
    hit = _CACHE.get(key)
    if hit is None:
        hit = build()
        _CACHE[key] = hit
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return hit


def build_mirror_map(rest_vertices: Tensor, layout: UVLayout, texture_size: int, max_distance: float = 0.03,
                     axis: int = 0, candidates: int = 8) -> TexelCorrespondence:
    """Left/right mirror map: for each texel, the texel showing the mirror-image surface point.

    rest_vertices: (V, 3) the body in its rest pose (symmetric about a plane normal to ``axis``, x for SMPL-X);
    layout: its UV layout; texture_size: T. max_distance: reject matches further than this (model units, m).
    candidates: nearest texel points examined for a normal that agrees. Returns :class:`TexelCorrespondence`.
    """
    from scipy.spatial import cKDTree

    _check_rest(rest_vertices, layout)
    T = int(texture_size)
    key = "mirror:" + layout_key(layout, rest_vertices, T, max_distance, axis, candidates)

    def build() -> TexelCorrespondence:
        tmap = texel_map(layout, T)
        pts, nrm = _rest_geometry(rest_vertices, _body_faces(layout), layout, tmap)
        centre = 0.5 * (float(rest_vertices[:, axis].min()) + float(rest_vertices[:, axis].max()))
        flip = np.ones(3)
        flip[axis] = -1.0
        want = pts * flip
        want[:, axis] += 2.0 * centre
        want_n = nrm * flip
        k = min(candidates, len(pts))
        dist, idx = cKDTree(pts).query(want, k=k, workers=-1)  # (N, k)
        dist, idx = dist.reshape(len(pts), k), idx.reshape(len(pts), k)
        agree = np.einsum("nkc,nc->nk", nrm[idx], want_n) > 0.3
        # First candidate (nearest first) whose normal agrees; if none agrees, the nearest.
        choice = np.where(agree.any(1), agree.argmax(1), 0)
        src = idx[np.arange(len(pts)), choice]
        d = dist[np.arange(len(pts)), choice]
        src = np.where(d <= max_distance, src, -1)
        return _finish(T, tmap.flat, src, d.astype(np.float32))

    return _cached(key, build)


def build_front_back_map(rest_vertices: Tensor, layout: UVLayout, texture_size: int, max_distance: float = 0.03,
                         front_axis: int = 2, candidates: int = 16, layer_gap: float = 0.04) -> TexelCorrespondence:
    """Front<->back map: for each texel, the texel where a line through its point along the front axis leaves the
    body on the other side (the back of a shirt behind its front).

    rest_vertices: (V, 3) rest pose, facing +``front_axis`` (z for SMPL-X); max_distance: largest distance of the
    found point from the line (model units); layer_gap: points at most this much further along the line than the
    nearest one belong to the same surface layer (model units). Returns :class:`TexelCorrespondence`.
    """
    from scipy.spatial import cKDTree

    _check_rest(rest_vertices, layout)
    T = int(texture_size)
    key = "frontback:" + layout_key(layout, rest_vertices, T, max_distance, front_axis, candidates, layer_gap)

    def build() -> TexelCorrespondence:
        tmap = texel_map(layout, T)
        pts, nrm = _rest_geometry(rest_vertices, _body_faces(layout), layout, tmap)
        lateral = [a for a in range(3) if a != front_axis]
        facing = nrm[:, front_axis] >= 0  # (N,) True: faces forward
        src = np.full(len(pts), -1, dtype=np.int64)
        dist = np.full(len(pts), np.inf, dtype=np.float64)
        for side in (True, False):
            query = np.nonzero(facing == side)[0]
            target = np.nonzero(facing != side)[0]
            if not len(query) or not len(target):
                continue
            k = min(candidates, len(target))
            d_lat, j = cKDTree(pts[target][:, lateral]).query(pts[query][:, lateral], k=k, workers=-1)
            d_lat, j = d_lat.reshape(len(query), k), j.reshape(len(query), k)
            cand = target[j]  # (Nq, k)
            # Signed distance along the walking direction: backwards (-front) from a front-facing texel.
            step = (pts[cand][..., front_axis] - pts[query][:, None, front_axis]) * (-1.0 if side else 1.0)
            ok = (d_lat <= max_distance) & (step > 0)
            step = np.where(ok, step, np.inf)
            # The first surface layer behind (candidates within a layer gap of the nearest one), then the
            # laterally nearest point of that layer.
            first = step.min(1, keepdims=True)
            in_layer = step <= first + layer_gap
            best = np.where(in_layer, d_lat, np.inf).argmin(1)
            rows = np.arange(len(query))
            found = np.isfinite(step[rows, best])
            src[query[found]] = cand[rows, best][found]
            dist[query[found]] = d_lat[rows, best][found]
        return _finish(T, tmap.flat, src, dist.astype(np.float32))

    return _cached(key, build)
