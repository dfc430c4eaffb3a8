"""Meshes with UV layouts for the texture tests.

- :func:`ellipsoid_body`: a closed, exactly left/right symmetric ellipsoid (1.7 m tall) with a latitude-longitude
  UV layout split along a seam at the back; its own layout, no assets needed.
- :func:`smplx_uv_body`: SMPL-X's real connectivity (DINAR's ``v_inds[uv_faces]``, 10,475 vertices) given a
  body-like shape without the licensed vertex positions: landmark Isomap (geodesic distances along UV edge
  lengths, classical MDS into 3D) and a few hundred steps of "inflation" (edge lengths towards their UV lengths,
  enclosed volume up). The result has a head, a torso, arms and legs in roughly a star pose, oriented in SMPL-X's
  frame (x = the body's left, y up, z forward) from smplx's landmark vertices, 1.7 m tall. Eyeballs (separate
  components) are shrunk into the head. ~3-4 s, cached per process.
- :func:`clothing_texture`: a known full texture defined on the body (skin, shirt, trousers by rest-pose height,
  stripes, a fine UV checker), so a body's back resembles its front as people's do.
- Camera helpers: model frame -> DINAR camera frame (facing the camera).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from dinar_core.body.base import UVLayout
from dinar_core.texture import pad_outside, texel_map, texel_points


def ellipsoid_body(n_lat: int = 48, n_lon: int = 64, radii=(0.2, 0.85, 0.13)) -> tuple[torch.Tensor, UVLayout]:
    """rest vertices (V, 3) (x left, y up, z forward) and a UV layout (one chart, seam at the back, v down = head at
    the top). Faces are wound outwards."""
    a, b, c = radii
    rings = []
    for r in range(1, n_lat):
        th = np.pi * r / n_lat
        for k in range(n_lon):
            ph = 2 * np.pi * k / n_lon  # 0 at the back (-z), the seam
            rings.append((a * np.sin(th) * np.sin(ph), b * np.cos(th), -c * np.sin(th) * np.cos(ph)))
    verts = np.array([(0.0, b, 0.0)] + rings + [(0.0, -b, 0.0)])
    top, bottom = 0, len(verts) - 1

    def body_index(r: int, k: int) -> int:
        if r == 0:
            return top
        if r == n_lat:
            return bottom
        return 1 + (r - 1) * n_lon + (k % n_lon)

    m = 0.02
    uv, vidx = [], []
    for r in range(n_lat + 1):
        for k in range(n_lon + 1):
            uv.append((m + (1 - 2 * m) * k / n_lon, m + (1 - 2 * m) * r / n_lat))
            vidx.append(body_index(r, k))
    uv, vidx = np.array(uv), np.array(vidx)

    def uvi(r: int, k: int) -> int:
        return r * (n_lon + 1) + k

    faces = []
    for r in range(n_lat):
        for k in range(n_lon):
            q = (uvi(r, k), uvi(r, k + 1), uvi(r + 1, k + 1), uvi(r + 1, k))
            for tri in ((q[0], q[1], q[2]), (q[0], q[2], q[3])):
                if len({vidx[t] for t in tri}) == 3:
                    faces.append(tri)
    faces = np.array(faces)
    tri = verts[vidx[faces]]
    vol = np.einsum("fi,fi->f", np.cross(tri[:, 0], tri[:, 1]), tri[:, 2]).sum()
    if vol < 0:
        faces = faces[:, [0, 2, 1]]
    layout = UVLayout(torch.tensor(uv, dtype=torch.float32), torch.tensor(faces, dtype=torch.int64),
                      torch.tensor(vidx, dtype=torch.int64))
    return torch.tensor(verts, dtype=torch.float32), layout


def to_camera(rest: torch.Tensor, distance: float, turn_deg: float = 0.0) -> torch.Tensor:
    """Model frame (x left, y up, z forward) -> DINAR camera frame (x right, y down, z forward) with the body
    facing the camera (its left on the image's right), its box centre on the optical axis at ``distance``.
    ``turn_deg`` turns the body about its vertical axis first (180 = the camera sees its back).
    rest: (V, 3). Returns (1, V, 3)."""
    centre = 0.5 * (rest.amin(0) + rest.amax(0))
    p = rest - centre
    t = np.radians(turn_deg)
    R = torch.tensor([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]], dtype=p.dtype)
    p = p @ R.T
    cam = torch.stack([p[:, 0], -p[:, 1], -p[:, 2] + distance], dim=1)
    return cam[None]


@functools.lru_cache(maxsize=2)
def _smplx_uv_body(assets: str, iters: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components, dijkstra

    d = Path(assets)
    uv = np.load(d / "uv.npy")
    uf = np.load(d / "uv_faces.npy").astype(np.int64)
    vi = np.load(d / "v_inds.npy").astype(np.int64)
    f = vi[uf]
    V = int(vi.max()) + 1
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    euv = np.concatenate([uf[:, [0, 1]], uf[:, [1, 2]], uf[:, [2, 0]]])
    length = np.linalg.norm(uv[euv[:, 0]] - uv[euv[:, 1]], axis=1)
    key = np.minimum(e[:, 0], e[:, 1]) * V + np.maximum(e[:, 0], e[:, 1])
    ukey, inv = np.unique(key, return_inverse=True)
    target = np.maximum(np.bincount(inv, length) / np.bincount(inv), 1e-5)
    edges = np.stack([ukey // V, ukey % V], 1)
    A = sp.coo_matrix((target, (edges[:, 0], edges[:, 1])), shape=(V, V))
    A = (A + A.T).tocsr()
    _, lab = connected_components(A, directed=False)
    body_label = np.argmax(np.bincount(lab))
    on_body = lab == body_label
    # Landmark Isomap: farthest-point landmarks, geodesic distances, classical MDS, then all vertices.
    marks = [int(np.nonzero(on_body)[0][0])]
    dist = dijkstra(A, indices=marks[-1])
    for _ in range(99):
        marks.append(int(np.argmax(np.where(on_body, dist, -1))))
        dist = np.minimum(dist, dijkstra(A, indices=marks[-1]))
    D2 = dijkstra(A, indices=marks)[:, :] ** 2  # (k, V)
    D2[:, ~on_body] = 0.0
    k = len(marks)
    J = np.eye(k) - 1.0 / k
    w, U = np.linalg.eigh(-0.5 * J @ D2[:, marks] @ J)
    top = np.argsort(w)[::-1][:3]
    X = -0.5 * ((D2 - D2[:, marks].mean(1, keepdims=True)).T @ (U[:, top] / np.sqrt(w[top])))  # (V, 3)
    # Inflate: edge lengths towards their UV lengths, enclosed volume up.
    torch.manual_seed(0)
    Xt = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    et, lt, ft = torch.tensor(edges), torch.tensor(target, dtype=torch.float32), torch.tensor(f)
    opt = torch.optim.Adam([Xt], lr=1e-3)
    scale = float(target.mean())
    for _ in range(iters):
        l = (Xt[et[:, 0]] - Xt[et[:, 1]]).norm(dim=1)
        tri = Xt[ft]
        vol = (torch.cross(tri[:, 0], tri[:, 1], dim=1) * tri[:, 2]).sum() / 6
        loss = ((l / lt - 1) ** 2).mean() - 1e-3 * vol / scale ** 3 / len(f)
        opt.zero_grad()
        loss.backward()
        opt.step()
    X = Xt.detach().numpy().astype(np.float64)
    # Orient into SMPL-X's frame from smplx's landmark vertices (nose, thumbs, big toes).
    nose, lthumb, rthumb, ltoe, rtoe = 9120, 5361, 8079, 5770, 8463
    y = X[nose] - 0.5 * (X[ltoe] + X[rtoe])
    y /= np.linalg.norm(y)
    x = X[lthumb] - X[rthumb]
    x -= x.dot(y) * y
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    X = X @ np.stack([x, y, z], 1)
    body = X[on_body]
    X = X - 0.5 * (body.min(0) + body.max(0))
    X *= 1.7 / (body[:, 1].max() - body[:, 1].min())
    head = X[on_body & (X[:, 1] > 0.35 * X[on_body, 1].max())].mean(0)
    X[~on_body] = head + 0.01 * (X[~on_body] - X[~on_body].mean(0))  # eyeballs: tiny, inside the head
    return X.astype(np.float32), uv.astype(np.float32), uf, vi


def smplx_uv_body(assets_dir: str | Path, iters: int = 200) -> tuple[torch.Tensor, UVLayout]:
    """rest vertices (10475, 3) in SMPL-X's frame and DINAR's SMPL-X UV layout (see the module docstring).

    The shape is cached on disk (``$DINAR_STATE_DIR`` or ``~/.local/state/dinar-pipeline``, ``test-cache/``) keyed
    by the assets' bytes, so only the first run pays the ~3-20 s (depending on CPU load) it takes to build."""
    import hashlib
    import os

    d = Path(assets_dir)
    h = hashlib.sha1(str(iters).encode())
    for name in ("uv.npy", "uv_faces.npy", "v_inds.npy"):
        h.update((d / name).read_bytes())
    state = Path(os.environ.get("DINAR_STATE_DIR", Path.home() / ".local" / "state" / "dinar-pipeline"))
    cache = state / "test-cache" / f"smplx_uv_body_{h.hexdigest()[:16]}.npy"
    uv, uf, vi = (np.load(d / n) for n in ("uv.npy", "uv_faces.npy", "v_inds.npy"))
    if cache.is_file():
        X = np.load(cache)
    else:
        X = _smplx_uv_body(str(d), iters)[0]
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, X)
        os.replace(tmp, cache)
    uv, uf, vi = uv.astype(np.float32), uf.astype(np.int64), vi.astype(np.int64)
    return torch.from_numpy(X.copy()), UVLayout(torch.from_numpy(uv.copy()), torch.from_numpy(uf.copy()),
                                                torch.from_numpy(vi.copy()))


def clothing_texture(rest: torch.Tensor, layout, T: int) -> torch.Tensor:
    """(T, T, 3): skin / shirt / trousers by rest-pose height and arm reach, stripes, an 8-texel UV checker."""
    tm = texel_map(layout, T)
    p = texel_points(rest[None], layout, tm)[0][0]
    lo, hi = rest[:, 1].min(), rest[:, 1].max()
    h = (p[:, 1] - lo) / (hi - lo)
    col = torch.tensor([0.87, 0.68, 0.55]).repeat(len(p), 1)
    arm = p[:, 0].abs() > 0.22
    col[(h > 0.45) & (h < 0.82) & ~arm] = torch.tensor([0.75, 0.15, 0.2])
    col[h <= 0.45] = torch.tensor([0.15, 0.25, 0.55])
    col = col * (0.8 + 0.2 * (0.5 + 0.5 * torch.sin(h * 2 * np.pi * 25)))[:, None]
    i, j = tm.flat // T, tm.flat % T
    checker = (((i // (T // 64)) + (j // (T // 64))) % 2).float()
    col = (col + 0.08 * (checker[:, None] - 0.5)).clamp(0, 1)
    tex = torch.zeros(T * T, 3)
    tex[tm.flat] = col
    return pad_outside(tex.view(T, T, 3), tm.inside)
