"""A non-overlapping UV atlas for a mesh made of separate closed tubes (the synthetic SMPL-X body): one cylindrical
chart per connected component, about its principal axis, packed in a grid. Faces across a chart's seam are left
out of the layout (a thin sliver per tube), so no triangle spans the texture."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from dinar_core.body.base import UVLayout


def tube_atlas(rest_vertices: torch.Tensor, faces: torch.Tensor, margin: float = 0.02) -> UVLayout:
    """rest_vertices: (V, 3); faces: (F, 3). Returns a UVLayout with vertex_index = arange(V)."""
    verts = rest_vertices.detach().cpu().numpy().astype(np.float64)
    f = faces.cpu().numpy()
    V = len(verts)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(V, V))
    n, label = connected_components(graph, directed=False)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    uv = np.zeros((V, 2))
    for c in range(n):
        idx = np.nonzero(label == c)[0]
        p = verts[idx] - verts[idx].mean(0)
        axis = np.linalg.svd(p, full_matrices=False)[2][0]  # the tube's long axis
        ref = np.cross(axis, [0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [1.0, 0.0, 0.0])
        ref /= np.linalg.norm(ref)
        other = np.cross(axis, ref)
        u = (np.arctan2(p @ other, p @ ref) / (2 * math.pi)) + 0.5  # [0, 1] around the axis
        t = p @ axis
        v = (t - t.min()) / max(t.max() - t.min(), 1e-9)
        r, k = divmod(c, cols)
        uv[idx, 0] = (k + margin + (1 - 2 * margin) * u) / cols
        uv[idx, 1] = (r + margin + (1 - 2 * margin) * v) / rows
    span = np.ptp(uv[f, 0], axis=1) * cols  # in chart widths
    keep = span < 0.5
    return UVLayout(torch.from_numpy(uv).float(), torch.from_numpy(f[keep]).long(), torch.arange(V))
