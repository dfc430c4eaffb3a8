"""Left/right mirror and front<->back texel maps built from the rest-pose mesh."""

from __future__ import annotations

import torch

from dinar_core.texture import build_front_back_map, build_mirror_map, texel_map, texel_points
from tests.helpers.texture_meshes import ellipsoid_body

T = 96


def _points(rest, layout):
    tm = texel_map(layout, T)
    pts, _ = texel_points(rest[None], layout, tm)
    full = torch.zeros(T * T, 3)
    full[tm.flat] = pts[0]
    return tm, full


def _involution_rate(corr, inside, tol_texels=1.5):
    src = corr.source.reshape(-1)
    ok = inside.reshape(-1) & (src >= 0)
    idx = torch.nonzero(ok).squeeze(1)
    back = src[src[idx]]
    good = back >= 0
    di = (back // T - idx // T).abs()
    dj = (back % T - idx % T).abs()
    return float((good & (di <= tol_texels) & (dj <= tol_texels)).float().sum() / max(len(idx), 1))


def test_mirror_map_is_an_involution_and_flips_x():
    rest, layout = ellipsoid_body(40, 64)
    corr = build_mirror_map(rest, layout, T, max_distance=0.03)
    tm, pts = _points(rest, layout)
    assert corr.valid[tm.inside].float().mean() > 0.98
    assert _involution_rate(corr, tm.inside) > 0.95
    src = corr.source.reshape(-1)
    sel = torch.nonzero(tm.inside.reshape(-1) & (src >= 0)).squeeze(1)
    p, q = pts[sel], pts[src[sel]]
    # The source point is the mirror image: x flipped, y and z kept (within a texel's footprint).
    assert (p[:, 0] + q[:, 0]).abs().median() < 0.01
    assert (p[:, 1:] - q[:, 1:]).norm(dim=1).median() < 0.01
    assert build_mirror_map(rest, layout, T, max_distance=0.03) is corr  # cached


def test_mirror_map_rejects_far_matches():
    rest, layout = ellipsoid_body(40, 64)
    lopsided = rest.clone()
    lopsided[:, 0] = torch.where(lopsided[:, 0] > 0, lopsided[:, 0] * 1.5, lopsided[:, 0])  # left side fatter
    corr = build_mirror_map(lopsided, layout, T, max_distance=0.005)
    tm = texel_map(layout, T)
    assert corr.valid[tm.inside].float().mean() < 0.6


def test_front_back_map_goes_through_the_body():
    rest, layout = ellipsoid_body(40, 64)
    corr = build_front_back_map(rest, layout, T, max_distance=0.03)
    tm, pts = _points(rest, layout)
    src = corr.source.reshape(-1)
    sel = torch.nonzero(tm.inside.reshape(-1) & (src >= 0)).squeeze(1)
    assert len(sel) > 0.9 * int(tm.inside.sum())
    p, q = pts[sel], pts[src[sel]]
    front = p[:, 2] > 0.02
    assert (q[front, 2] < 0).float().mean() > 0.98  # front texels map to the back
    assert (p[:, :2] - q[:, :2]).norm(dim=1).median() < 0.01  # along the front axis: same x, y


def test_gather_pulls_values_through_the_map():
    rest, layout = ellipsoid_body(24, 32)
    corr = build_mirror_map(rest, layout, 32)
    values = torch.arange(32 * 32, dtype=torch.float32).view(32, 32, 1)
    out = corr.gather(values)[..., 0]
    assert torch.equal(out[corr.valid], corr.source[corr.valid].float())
    assert (out[~corr.valid] == 0).all()
