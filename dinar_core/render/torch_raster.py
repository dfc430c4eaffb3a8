"""Vectorised torch rasterizer (the CPU default; also runs on CUDA): which face is visible at each pixel.

Algorithm, all in batched tensor ops (no Python loop over faces or pixels):

1. Per face: screen positions, validity (all depths >= z_min, front-facing when culling, non-degenerate), and
   the box of pixel centres ``j + 0.5`` its bounding box contains.
2. Enumerate the candidate (face, pixel) pairs of those boxes, in chunks of at most ``max_pairs_per_chunk``.
3. Per pair: the three screen barycentrics and the inverse depth, each an affine function of the pixel's small
   integer offset from its box corner (coefficients precomputed per face in float64, so float32 per pair stays
   exact enough); inside = all barycentrics >= 0 (inclusive edges, as DINAR).
4. The nearest face per pixel in one ``scatter_reduce(amin)`` over an int64 key ``(depth float bits << 32) | face``:
   positive float32 bit patterns sort like the floats, so the minimum key is the smallest depth, ties going to the
   lower face id.

Barycentrics are not produced here: the front end (``rasterizer.fragments_from_pix_to_face``) recomputes them
differentiably.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dinar_core.render.types import RasterizerConfig, screen_faces

_NO_FACE = torch.iinfo(torch.int64).max


def _face_setup(verts_pix: Tensor, faces: Tensor, H: int, W: int, config: RasterizerConfig):
    """Per valid face: batch/face id, pixel box and the affine coefficients of (b0, b1, b2, 1/z).

    verts_pix: (B, V, 3); faces: (F, 3) int64. Returns (face_id (Fv,), base pixel index (Fv,), box width (Fv,),
    pair counts (Fv,), coefficients (Fv, 3, 4) float32 as rows [d/dx, d/dy, value at the box corner]).
    """
    B = verts_pix.shape[0]
    F = faces.shape[0]
    sf = screen_faces(verts_pix, faces, config)
    x, y, tz, area2 = sf.xy[..., 0], sf.xy[..., 1], sf.z, sf.area2  # (B, F, 3) x3, (B, F)
    # Edge k is opposite vertex k: b_k = cross(p_{k+1} - p, p_{k+2} - p) / area2.
    x1, y1 = x.roll(-1, dims=-1), y.roll(-1, dims=-1)
    x2, y2 = x.roll(-2, dims=-1), y.roll(-2, dims=-1)
    valid = sf.valid.clone()

    # Pixel centres c = j + 0.5 inside [min, max]  <=>  ceil(min - 0.5) <= j <= floor(max - 0.5).
    lim_x, lim_y = float(W + 2), float(H + 2)  # keeps far-off vertices from overflowing the int cast
    j0 = torch.ceil(x.amin(-1).clamp(-2.0, lim_x) - 0.5).clamp_min(0)
    j1 = torch.floor(x.amax(-1).clamp(-2.0, lim_x) - 0.5).clamp_max(W - 1)
    i0 = torch.ceil(y.amin(-1).clamp(-2.0, lim_y) - 0.5).clamp_min(0)
    i1 = torch.floor(y.amax(-1).clamp(-2.0, lim_y) - 0.5).clamp_max(H - 1)
    valid &= (j0 <= j1) & (i0 <= i1)

    idx = torch.nonzero(valid.reshape(-1)).squeeze(1)  # (Fv,) into B * F
    bid, fid = idx // F, idx % F

    def pick(t: Tensor) -> Tensor:
        return t.reshape(B * F, *t.shape[2:])[idx]

    x, y, x1, y1, x2, y2, tz, area2 = map(pick, (x, y, x1, y1, x2, y2, tz, area2))
    j0, j1, i0, i1 = map(pick, (j0, j1, i0, i1))
    ox, oy = (j0 + 0.5)[:, None], (i0 + 0.5)[:, None]  # box corner pixel centre (Fv, 1)
    inv_a = (1.0 / area2)[:, None]
    A = (y1 - y2) * inv_a  # (Fv, 3) d b_k / dx
    Bc = (x2 - x1) * inv_a  # d b_k / dy
    C = ((x1 - ox) * (y2 - oy) - (y1 - oy) * (x2 - ox)) * inv_a  # b_k at the corner
    iz = 1.0 / tz
    coef = torch.stack([torch.cat([A, (A * iz).sum(-1, keepdim=True)], -1),
                        torch.cat([Bc, (Bc * iz).sum(-1, keepdim=True)], -1),
                        torch.cat([C, (C * iz).sum(-1, keepdim=True)], -1)], dim=1).to(torch.float32)  # (Fv, 3, 4)
    bw = (j1 - j0 + 1).to(torch.int64)
    bh = (i1 - i0 + 1).to(torch.int64)
    base = bid * (H * W) + i0.to(torch.int64) * W + j0.to(torch.int64)
    return fid, base, bw, bw * bh, coef


def rasterize_torch(verts_pix: Tensor, faces: Tensor, image_size: tuple[int, int],
                    config: RasterizerConfig | None = None) -> Tensor:
    """Visible face per pixel. verts_pix: (B, V, 3) homogeneous pixel coords; faces: (F, 3) int64.

    Returns pix_to_face (B, H, W) int64, -1 where no face is visible. Not differentiable (integer output).
    """
    config = config or RasterizerConfig()
    H, W = image_size
    B = verts_pix.shape[0]
    dev = verts_pix.device
    with torch.no_grad():
        fid, base, bw, counts, coef = _face_setup(verts_pix, faces, H, W, config)
        best = torch.full((B * H * W,), _NO_FACE, dtype=torch.int64, device=dev)
        if counts.numel():
            ends = torch.cumsum(counts, 0)  # (Fv,) exclusive end of each face's pairs
            starts = ends - counts
            first = 0
            while first < counts.numel():
                # Faces [first, last) whose pairs fit in one chunk (at least one face, however large).
                limit = int(starts[first]) + config.max_pairs_per_chunk
                last = max(int(torch.searchsorted(ends, limit, right=True)), first + 1)
                lo, hi = int(starts[first]), int(ends[last - 1])
                _scan_chunk(best, first, last, lo, hi, fid, base, bw, counts, starts, coef, W)
                first = last
    pix_to_face = torch.where(best == _NO_FACE, torch.full_like(best, -1), best & 0xFFFFFFFF)
    return pix_to_face.view(B, H, W)


def _scan_chunk(best: Tensor, first: int, last: int, lo: int, hi: int, fid: Tensor, base: Tensor, bw: Tensor,
                counts: Tensor, starts: Tensor, coef: Tensor, W: int) -> None:
    """Test the pairs of faces [first, last) (pair numbers [lo, hi)) and fold them into ``best`` (B*H*W,)."""
    dev = best.device
    face = torch.repeat_interleave(torch.arange(first, last, device=dev), counts[first:last],
                                   output_size=hi - lo)  # (N,) index into the valid faces
    local = torch.arange(lo, hi, device=dev) - starts[face]  # pair number within its face's box
    width = bw[face]
    dy = torch.div(local, width, rounding_mode="floor")
    dx = local - dy * width
    c = coef[face]  # (N, 3, 4)
    vals = torch.addcmul(torch.addcmul(c[:, 2], c[:, 0], dx[:, None].to(c.dtype)), c[:, 1],
                         dy[:, None].to(c.dtype))  # (N, 4): b0, b1, b2, 1/z
    inside = (vals[:, :3] >= 0).all(-1) & (vals[:, 3] > 0)
    depth = 1.0 / vals[:, 3]
    key = (depth.view(torch.int32).to(torch.int64) << 32) | fid[face]
    key = torch.where(inside, key, torch.full_like(key, _NO_FACE))
    pix = base[face] + dy * W + dx
    best.scatter_reduce_(0, pix, key, reduce="amin", include_self=True)
