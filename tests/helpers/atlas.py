"""A non-overlapping UV atlas for a mesh made of separate closed tubes (the synthetic SMPL-X body).

One cylindrical chart per connected component, unrolled about its principal axis at its true size (width = mean
circumference, height = length), all charts at one common scale and shelf-packed into the unit square with the
largest scale that fits. Equal texel density everywhere, as a real body atlas has: a square cell per tube would give
the trunk as few texels as a thumb. Faces across a chart's seam are left out of the layout (a thin sliver per tube),
so no triangle spans the texture."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from dinar_core.body.base import UVLayout


@dataclass
class _Chart:
    """A tube unrolled in metres: vertices (n,) of the mesh; u (n,) around, v (n,) along; width, height."""

    vertices: np.ndarray
    u: np.ndarray
    v: np.ndarray
    width: float
    height: float


def _unroll(points: np.ndarray, index: np.ndarray) -> _Chart:
    """points: (n, 3) of one tube -> its chart (cylindrical coordinates about the principal axis)."""
    p = points - points.mean(0)
    axis = np.linalg.svd(p, full_matrices=False)[2][0]  # the tube's long axis
    ref = np.cross(axis, [0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [1.0, 0.0, 0.0])
    ref /= np.linalg.norm(ref)
    other = np.cross(axis, ref)
    a, b, t = p @ ref, p @ other, p @ axis
    width = 2 * math.pi * float(np.mean(np.hypot(a, b)))
    return _Chart(index, (np.arctan2(b, a) / (2 * math.pi) + 0.5) * width, t - t.min(), width, float(np.ptp(t)))


def _shelf_pack(charts: list[_Chart], scale: float, gap: float) -> list[tuple[float, float]] | None:
    """Lower-left corner of each chart, tallest first on shelves left to right, or None if they do not fit."""
    corners: list[tuple[float, float] | None] = [None] * len(charts)
    x, y, shelf = gap, gap, 0.0
    for c in sorted(range(len(charts)), key=lambda c: -charts[c].height):
        w, h = charts[c].width * scale, charts[c].height * scale
        if x + w + gap > 1.0:
            x, y, shelf = gap, y + shelf + gap, 0.0
        if x + w + gap > 1.0:
            return None
        corners[c] = (x, y)
        x += w + gap
        shelf = max(shelf, h)
    return corners if y + shelf + gap <= 1.0 else None  # type: ignore[return-value]


def tube_atlas(rest_vertices: torch.Tensor, faces: torch.Tensor, gap: float = 2 / 256) -> UVLayout:
    """rest_vertices: (V, 3); faces: (F, 3); gap: UV space kept between charts (2 texels of a 256^2 texture).
    Returns a UVLayout with vertex_index = arange(V)."""
    verts = rest_vertices.detach().cpu().numpy().astype(np.float64)
    f = faces.cpu().numpy()
    V = len(verts)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    n, label = connected_components(coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(V, V)),
                                    directed=False)
    charts = [_unroll(verts[idx], idx) for idx in (np.nonzero(label == c)[0] for c in range(n))]
    lo, hi = 0.0, 1.0 / max(max(c.width, c.height) for c in charts)  # hi: one chart alone fills the square
    for _ in range(40):  # bisection on the common scale
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _shelf_pack(charts, mid, gap) is not None else (lo, mid)
    corners = _shelf_pack(charts, lo, gap)
    uv = np.zeros((V, 2))
    for chart, (x, y) in zip(charts, corners):
        uv[chart.vertices, 0] = x + chart.u * lo
        uv[chart.vertices, 1] = y + chart.v * lo
    # a face whose u spans more than half its chart's width crosses the seam
    width = np.array([charts[label[i]].width * lo for i in f[:, 0]])
    keep = np.ptp(uv[f, 0], axis=1) < 0.5 * width
    return UVLayout(torch.from_numpy(uv).float(), torch.from_numpy(f[keep]).long(), torch.arange(V))
