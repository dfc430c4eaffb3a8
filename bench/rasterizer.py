"""CPU timing of the rasterizer backends on an SMPL-X-sized mesh at DINAR's 512 x 512.

The mesh is synthetic and body-like: 7 closed ellipsoids (torso, head, neck, arms in T-pose, legs) with
20,908 faces and 10,468 vertices (SMPL-X: 20,908 / 10,475), standing 1.75 m tall 20 m in front of DINAR's
camera (f = 5000 px), so it covers ~440 px of height like a fitted body. Figures: seconds per frame for `torch` and `numba`
(median and minimum of ``repeats`` runs; ``rasterize`` = visible faces + differentiable barycentrics, and the
visible-face pass alone), one run of `pytorch3d` (tens of seconds on the CPU), the cost of ``interpolate``
(3-channel normals) and ``uv_map``, and a rasterize + uv_map forward and backward pass.

Run: ``.venv/bin/python -m bench.run rasterizer`` (writes bench/results/rasterizer.json) or call ``run()``.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable

import numpy as np
import torch

# (centre xyz, radii xyz, n_lon, n_lat) in a body frame: y up from the feet, metres.
_PARTS = [
    ((0.0, 1.20, 0.0), (0.21, 0.32, 0.14), 96, 36),  # torso
    ((0.0, 1.62, 0.0), (0.11, 0.13, 0.12), 72, 18),  # head
    ((0.0, 1.48, 0.0), (0.06, 0.07, 0.06), 10, 7),  # neck
    ((-0.11, 0.48, 0.0), (0.10, 0.46, 0.10), 64, 24),  # legs
    ((0.11, 0.48, 0.0), (0.10, 0.46, 0.10), 64, 24),
    ((-0.50, 1.38, 0.0), (0.32, 0.065, 0.065), 64, 20),  # arms
    ((0.50, 1.38, 0.0), (0.32, 0.065, 0.065), 64, 20),
]


def ellipsoid(centre, radii, n_lon: int, n_lat: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed lat-long ellipsoid: (n_lon * n_lat + 2, 3) vertices, (2 * n_lon * n_lat, 3) outward-wound faces."""
    theta = np.pi * np.arange(1, n_lat + 1) / (n_lat + 1)  # polar angles of the rings
    phi = 2 * np.pi * np.arange(n_lon) / n_lon
    t, p = np.meshgrid(theta, phi, indexing="ij")  # (n_lat, n_lon)
    ring = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]]) * np.asarray(radii) + np.asarray(centre)
    idx = 1 + np.arange(n_lat * n_lon).reshape(n_lat, n_lon)
    nxt = np.roll(idx, -1, axis=1)
    faces = [np.stack([np.zeros(n_lon, int), nxt[0], idx[0]], -1),
             np.stack([np.full(n_lon, len(verts) - 1), idx[-1], nxt[-1]], -1)]
    a, b, c, d = idx[:-1], nxt[:-1], nxt[1:], idx[1:]
    faces += [np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)]
    faces = np.concatenate(faces)
    # Orient every face outward (normal away from the ellipsoid's centre), whatever the winding above.
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    inward = (normal * (tri.mean(1) - np.asarray(centre))).sum(-1) < 0
    faces[inward] = faces[inward][:, ::-1]
    return verts, faces


def body_like_mesh(depth: float = 20.0, height: float = 1.75) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-space (V, 3) float32 vertices (x right, y down, z forward) and (F, 3) int64 faces of the body."""
    verts, faces, offset = [], [], 0
    for centre, radii, n_lon, n_lat in _PARTS:
        v, f = ellipsoid(centre, radii, n_lon, n_lat)
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    v = np.concatenate(verts)
    # Body frame (y up, facing +z) -> camera (y down, facing the camera at -z): rotate 180 degrees about x.
    cam = np.stack([v[:, 0], -(v[:, 1] - height / 2), -v[:, 2] + depth], -1)
    return torch.from_numpy(cam).float(), torch.from_numpy(np.concatenate(faces)).long()


def _median_time(fn: Callable[[], object], repeats: int) -> dict:
    """Median and minimum seconds over ``repeats`` calls after a warm-up call. On a shared machine the minimum is
    the better estimate of the uncontended cost, the median of what a busy machine gives."""
    fn()  # warm-up (allocator, JIT)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 5), "min_s": round(min(times), 5)}


def _timings(verts_pix: torch.Tensor, faces: torch.Tensor, verts_cam: torch.Tensor, size: int,
             repeats: int) -> dict:
    """Every timed figure at the current torch thread count."""
    from dinar_core.render import interpolate, rasterize, uv_map
    from dinar_core.render.rasterizer import RasterizerConfig
    from dinar_core.render.torch_raster import rasterize_torch

    hw, cfg, out = (size, size), RasterizerConfig(), {}
    out["torch"] = _median_time(lambda: rasterize(verts_pix, faces, hw, backend="torch"), repeats)
    out["torch_visibility_only"] = _median_time(lambda: rasterize_torch(verts_pix, faces, hw, cfg), repeats)
    try:
        from dinar_core.render.numba_raster import rasterize_numba

        out["numba"] = _median_time(lambda: rasterize(verts_pix, faces, hw, backend="numba"), repeats)
        out["numba_visibility_only"] = _median_time(lambda: rasterize_numba(verts_pix, faces, hw, cfg), repeats)
    except ImportError as exc:
        out["numba"] = f"unavailable: {exc}"

    frags = rasterize(verts_pix, faces, hw, backend="torch")
    normals = torch.nn.functional.normalize(verts_cam - verts_cam.mean(0), dim=-1)[None]  # (1, V, 3) stand-in
    out["interpolate_3ch"] = _median_time(lambda: interpolate(frags, faces, normals), repeats)
    uv = torch.rand(verts_cam.shape[0], 2, generator=torch.Generator().manual_seed(0))
    out["uv_map"] = _median_time(lambda: uv_map(frags, faces, uv), repeats)
    verts_grad = verts_pix.clone().requires_grad_(True)

    def forward_backward() -> None:
        fr = rasterize(verts_grad, faces, hw, backend="torch")
        uv_map(fr, faces, uv).clamp_min(-1).sum().backward()

    out["torch_rasterize_uv_map_forward_backward"] = _median_time(forward_backward, repeats)
    return out


def run(size: int = 512, repeats: int = 7, with_pytorch3d: bool = True, threads: tuple[int, ...] = (1, 2)) -> dict:
    """Seconds per ``size`` x ``size`` frame per backend, plus interpolate / uv_map costs (module docstring),
    for each torch thread count in ``threads`` (restored afterwards)."""
    from dinar_core.render import apply_K, make_K, rasterize

    verts_cam, faces = body_like_mesh()
    verts_pix = apply_K(verts_cam[None], make_K(size, size))
    frags = rasterize(verts_pix, faces, (size, size), backend="torch")
    default_threads = torch.get_num_threads()
    out: dict = {"image_size": [size, size], "n_verts": int(verts_cam.shape[0]), "n_faces": int(faces.shape[0]),
                 "covered_pixels": int(frags.mask.sum()), "default_threads": default_threads, "repeats": repeats,
                 "load_average_1min_at_start": round(os.getloadavg()[0], 2)}
    try:
        for n in threads:
            torch.set_num_threads(n)
            out[f"threads_{n}"] = _timings(verts_pix, faces, verts_cam, size, repeats)
    finally:
        torch.set_num_threads(default_threads)

    if with_pytorch3d:
        t0 = time.perf_counter()
        p3 = rasterize(verts_pix, faces, (size, size), backend="pytorch3d")
        out["pytorch3d_once_s"] = round(time.perf_counter() - t0, 2)
        covered = frags.mask | p3.mask
        out["pytorch3d_vs_torch_same_face_fraction"] = float(
            (p3.pix_to_face == frags.pix_to_face)[covered[:, 0]].float().mean())
    out["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(with_pytorch3d="--no-pytorch3d" not in sys.argv), indent=2))
