"""The fill of unseen texels per body part: what front and back share, never a pixel copy of the front.

For every part (``texture.parts``; hair is one more part, ``HAIR``, see ``texture.hair``):

1. **Colour and low frequencies**: a robust height profile, the median colour of the part's known texels in bins
   of rest-pose height (``profile_bin`` of the body's height), empty bins taken from the nearest filled one, then
   smoothed along the height (``profile_sigma`` bins). A median of a whole height band of the part is not moved by
   a print, a nipple or a navel covering less than half of the band; horizontal structure (a shirt over trousers,
   a belt, stripes) is kept. Where a band has enough seen texels on the part's *sides* (rest-pose normal with a
   lateral component of at least ``profile_sides``), only those count: the sides are what front and back share,
   and a print, a logo, a nipple or a navel sits on the front, not on the sides. Optionally (``profile_rare``) the
   part's rare colours are dropped first (a 4-means of its known colours; off by default: a shirt's neck skin or
   a waistband is rare in its part too).
2. **Seams**: within ``blend_px`` texels of the known region the harmonic fill (which continues the seen colours
   along the surface) is blended into the profile, so the observed sides meet the back without a seam.
3. **Texture**: the high frequencies (known colour minus its Gaussian low-pass, ``synth_sigma`` texels) are
   synthesised by tiling Hann-windowed patches (``synth_patch`` texels, half overlap, so the windows sum to one)
   taken at random from fully known patches of the same part; patches whose residual energy is above
   ``synth_outlier`` times the part's median are never used (the edges of a print or a logo are such outliers).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def common_colours(colour: np.ndarray, rare: float, k: int = 4, seed: int = 0,
                   side: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: texels whose colour cluster (k-means, k clusters, in RGB) holds at least ``rare`` of the texels
    (of the ``side`` texels when given and there are some: the colours the part shows on its sides, which front
    and back share). A print, a logo, a nipple is a rare colour of its part; a shirt's stripes are not."""
    n = len(colour)
    if n < 4 * k or rare <= 0:
        return np.ones(n, bool)
    rng = np.random.default_rng(seed)
    sample = colour[rng.choice(n, min(n, 2000), replace=False)]
    centres = sample[rng.choice(len(sample), k, replace=False)]
    for _ in range(8):
        lbl = ((sample[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([sample[lbl == c].mean(0) if (lbl == c).any() else centres[c] for c in range(k)])
    lbl = ((colour[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    ref = lbl if side is None or side.sum() < 4 * k else lbl[side]
    share = np.bincount(ref, minlength=k) / len(ref)
    return share[lbl] >= rare


def height_profile(colour: np.ndarray, known: np.ndarray, parts: np.ndarray, height: np.ndarray, n_parts: int,
                   bin_size: float, sigma_bins: float, min_count: int = 4, rare: float = 0.0,
                   side: np.ndarray | None = None) -> np.ndarray:
    """(n_parts, B, 3) median colour per part and height bin (B = ceil(1 / bin_size) + 1), filled and smoothed,
    over the texels of the part's common colours (:func:`common_colours` with ``rare``).

    colour: (N, 3); known: (N,) bool; parts: (N,) int in [0, n_parts); height: (N,) in [0, 1]; side: (N,) bool,
    the texels on the part's sides: when the part has them, a bin takes its median from them only (a bin with
    fewer than ``min_count`` is filled from the nearest band)."""
    from scipy.ndimage import gaussian_filter1d

    B = int(np.ceil(1.0 / bin_size)) + 1
    bins = np.clip((height / bin_size).astype(np.int64), 0, B - 1)
    all_known = colour[known]
    fallback = np.median(all_known, 0) if len(all_known) else np.full(3, 0.5)
    prof = np.tile(fallback, (n_parts, B, 1)).astype(np.float64)
    for p in range(n_parts):
        sel = known & (parts == p)
        if not sel.any():
            continue
        idx = np.nonzero(sel)[0]
        sel[idx[~common_colours(colour[idx], rare)]] = False
        sd = np.zeros(len(sel), bool) if side is None else side
        b, c, sb = bins[sel], colour[sel], sd[sel]
        order = np.argsort(b, kind="stable")
        b, c, sb = b[order], c[order], sb[order]
        use_sides = int(sb.sum()) >= 4 * min_count  # a part seen on its sides uses them only
        edges = np.searchsorted(b, np.arange(B + 1))
        good = np.zeros(B, bool)
        for k in range(B):
            lo, hi = edges[k], edges[k + 1]
            if hi - lo >= min_count:
                cb, on_side = c[lo:hi], sb[lo:hi]
                if use_sides and on_side.sum() < min_count:
                    continue  # no sides seen here: taken from the nearest band that has them
                prof[p, k] = np.median(cb[on_side] if use_sides else cb, 0)
                good[k] = True
        if not good.any():
            prof[p] = np.median(c, 0)
            continue
        idx = np.nonzero(good)[0]
        nearest = idx[np.clip(np.searchsorted(idx, np.arange(B)), 0, len(idx) - 1)]
        before = idx[np.clip(np.searchsorted(idx, np.arange(B)) - 1, 0, len(idx) - 1)]
        pick = np.where(np.abs(before - np.arange(B)) < np.abs(nearest - np.arange(B)), before, nearest)
        prof[p] = prof[p, pick]
        if sigma_bins > 0:
            prof[p] = gaussian_filter1d(prof[p], sigma_bins, axis=0, mode="nearest")
    return prof


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Near-Gaussian blur of (T, T) or (T, T, C) by three box filters of the same variance (cost independent of
    sigma), over the two texture axes only."""
    from scipy.ndimage import uniform_filter

    size = max(1, int(round(np.sqrt(4.0 * sigma * sigma + 1.0))))  # 3 boxes of width w: variance 3 (w^2 - 1) / 12
    box = [size, size] + [1] * (x.ndim - 2)
    for _ in range(3):
        x = uniform_filter(x, size=box, mode="constant")
    return x


def _lowpass(img: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised blur of img (T, T, 3) with weights (T, T): known texels only. For a wide sigma the blur runs on a
    block-averaged copy (blocks of sigma / 2 texels) and is brought back bilinearly (same result, a fraction of the
    cost at 1024^2)."""
    import cv2

    T = img.shape[0]
    f = max(1, int(sigma // 2))
    while f > 1 and T % f:
        f -= 1
    num, den = img * weight[..., None], weight
    if f > 1:
        num = num.reshape(T // f, f, T // f, f, 3).mean((1, 3))
        den = den.reshape(T // f, f, T // f, f).mean((1, 3))
    low = _blur(num, sigma / f) / np.maximum(_blur(den, sigma / f), 1e-6)[..., None]
    if f > 1:
        low = cv2.resize(low.astype(np.float32), (T, T), interpolation=cv2.INTER_LINEAR)
    return low


def synthesise_residual(colour: np.ndarray, known: np.ndarray, parts: np.ndarray, patch: int, sigma: float,
                        outlier: float, seed: int, min_known: float = 0.0) -> np.ndarray:
    """(T, T, 3) high-frequency texture for every texel, tiled from random known patches of its own part.

    colour: (T, T, 3); known: (T, T) bool (exemplar texels); parts: (T, T) int, -1 outside; patch: side P >= 2
    (even); sigma: low-pass of the residual; outlier: energy cap relative to the part's median patch energy;
    min_known: a part whose known texels are fewer than this share of its texels, or than 4 P x P patches, gets no
    texture (0 there)."""
    from scipy.ndimage import uniform_filter

    T = colour.shape[0]
    P = max(2, int(patch) // 2 * 2)
    half = P // 2
    rng = np.random.default_rng(seed)
    colour = colour.astype(np.float32)
    resid = (colour - _lowpass(colour, known.astype(np.float32), sigma)) * known[..., None]
    energy = uniform_filter((resid ** 2).sum(-1), P, mode="constant")
    win1 = np.sin(np.pi * (np.arange(P) + 0.5) / P) ** 2  # Hann, sums to 1 at half overlap
    window = (win1[:, None] * win1[None, :]).ravel()  # (P*P,)
    oi, oj = np.meshgrid(np.arange(P), np.arange(P), indexing="ij")
    offs = (oi * T + oj).ravel()  # (P*P,) flat offsets from a patch's corner
    gi, gj = np.meshgrid(np.arange(-half, T, half), np.arange(-half, T, half), indexing="ij")
    gi, gj = gi.ravel(), gj.ravel()  # patch corners on the half-overlap grid (may start before 0)
    ci, cj = np.clip(gi + half, 0, T - 1), np.clip(gj + half, 0, T - 1)
    gpart = parts[ci, cj]
    acc = np.zeros((T * T, 3))
    flat_res = resid.reshape(-1, 3)
    flat_parts = parts.ravel()
    for p in np.unique(gpart[gpart >= 0]):
        mine = known & (parts == p)
        rows, cols = np.nonzero(mine.any(1))[0], np.nonzero(mine.any(0))[0]
        if not len(rows) or int(mine.sum()) < max(min_known * int((parts == p).sum()), 4 * P * P):
            continue
        r0, c0 = rows[0], cols[0]  # the part's bounding box: the box filter runs on it only
        crop = mine[r0:rows[-1] + 1, c0:cols[-1] + 1].astype(np.float32)
        ii, jj = np.nonzero(uniform_filter(crop, P, mode="constant") > 1 - 0.5 / (P * P))
        ii, jj = ii + r0, jj + c0  # patch centres: the P x P window from (i - half, j - half) is known
        corner_i, corner_j = ii - half, jj - half
        fits = (corner_i >= 0) & (corner_j >= 0) & (corner_i + P <= T) & (corner_j + P <= T)
        ii, jj, corner_i, corner_j = ii[fits], jj[fits], corner_i[fits], corner_j[fits]
        if not len(ii):
            continue
        e = energy[ii, jj]
        keep = e <= outlier * max(np.median(e), 1e-12)
        corner_i, corner_j = corner_i[keep], corner_j[keep]
        if not len(corner_i):
            continue
        sel = np.nonzero(gpart == p)[0]
        pick = rng.integers(0, len(corner_i), len(sel))
        src = (corner_i[pick] * T + corner_j[pick])[:, None] + offs[None]  # (n, P*P)
        dst_i = gi[sel][:, None] + oi.ravel()[None]
        dst_j = gj[sel][:, None] + oj.ravel()[None]
        inside = (dst_i >= 0) & (dst_i < T) & (dst_j >= 0) & (dst_j < T)
        dst = np.clip(dst_i, 0, T - 1) * T + np.clip(dst_j, 0, T - 1)
        w = window[None] * inside * (flat_parts[dst] == p)
        for c in range(3):
            acc[:, c] += np.bincount(dst.ravel(), (w * flat_res[src, c]).ravel(), minlength=T * T)
    return acc.reshape(T, T, 3)


def part_fill(fused: Tensor, weight: Tensor, harmonic: Tensor, parts: Tensor, height: Tensor, inside: Tensor,
              config, lateral: Tensor | None = None) -> Tensor:
    """(T, T, 3) fill of every inside texel: part profile blended with the harmonic fill near the known region,
    plus synthesised texture. fused: (T, T, 3) fused known colour; weight: (T, T) its weight E (0 = unknown);
    harmonic: (T, T, 3) the harmonic fill; parts: (T, T) int (-1 outside); height: (T, T) rest height fraction;
    config: :class:`ClassicAvatarConfig`; lateral: (T, T) |lateral component| of the rest-pose normals (the sides
    of a part have it near 1), None: no side preference."""
    from scipy.ndimage import distance_transform_edt

    device = fused.device
    T = fused.shape[0]
    scale = T / 256.0
    col = fused.detach().cpu().numpy().astype(np.float64)
    E = weight.detach().cpu().numpy()
    ins = inside.cpu().numpy()
    prt = parts.cpu().numpy()
    hgt = height.cpu().numpy()
    known = ins & (E >= 0.5 * config.full_confidence) & (prt >= 0)
    n_parts = int(prt.max()) + 1 if (prt >= 0).any() else 1
    flat = np.nonzero(ins.ravel())[0]
    prof = height_profile(col.reshape(-1, 3)[flat], known.ravel()[flat], np.clip(prt.ravel()[flat], 0, None),
                          np.clip(hgt.ravel()[flat], 0, 1), n_parts, config.profile_bin, config.profile_sigma,
                          rare=config.profile_rare,
                          side=None if lateral is None else lateral.cpu().numpy().ravel()[flat] >= config.profile_sides)
    bins = np.clip((np.clip(hgt, 0, 1) / config.profile_bin).astype(np.int64), 0, prof.shape[1] - 1)
    base = prof[np.clip(prt, 0, None), bins]  # (T, T, 3)
    unknown = ins & (E <= 0)
    d = distance_transform_edt(unknown) if unknown.any() else np.zeros((T, T))
    ramp = np.clip(d / max(config.blend_px * scale, 1e-6), 0, 1)[..., None]
    low = ramp * base + (1 - ramp) * harmonic.detach().cpu().numpy()
    if config.synth_strength > 0:
        res = synthesise_residual(col, known, np.where(ins, prt, -1), max(2, round(config.synth_patch * scale)),
                                  config.synth_sigma * scale, config.synth_outlier, config.seed,
                                  float(config.synth_min_known))
        low = low + config.synth_strength * ramp * res  # no synthetic texture at the seams / on seen texels
    return torch.from_numpy(np.where(ins[..., None], low, 0).astype(np.float32)).to(device)
