"""Classic inpainting: mirror, front<->back transfer, fill of everything inside the charts, provenance."""

from __future__ import annotations

import pytest
import torch

from dinar_core.texture import (ClassicAvatarConfig, Provenance, UnwrapResult, harmonic_fill, inpaint_texture,
                                texel_map, texel_points, transfer_maps)
from tests.helpers.texture_meshes import ellipsoid_body

T = 64


@pytest.fixture(scope="module")
def body():
    rest, layout = ellipsoid_body(32, 48)
    tm = texel_map(layout, T)
    pts, _ = texel_points(rest[None], layout, tm)
    p = torch.zeros(T * T, 3)
    p[tm.flat] = pts[0]
    return rest, layout, tm, p.view(T, T, 3)


def _partial(tm, seen, colour_fn, pts):
    tex = torch.where(seen[..., None], colour_fn(pts), torch.zeros(T, T, 3))
    return UnwrapResult(tex, seen.float(), tm.inside)


def test_front_only_observation_is_completed_with_front_back_transfer(body):
    rest, layout, tm, pts = body
    # Clothing-like colours: a function of height only, so the back looks like the front.
    colour = lambda p: torch.stack([0.5 + 0.5 * torch.sin(6 * p[..., 1]), 0.3 + 0 * p[..., 1],  # noqa: E731
                                    0.5 - 0.4 * p[..., 1]], -1).clamp(0, 1)
    seen = tm.inside & (pts[..., 2] > 0.01)
    cfg = ClassicAvatarConfig(texture_size=T, back_mode="copy")  # the pixel transfer (the default never copies)
    res = inpaint_texture(_partial(tm, seen, colour, pts), layout, transfer_maps(rest, layout, cfg), cfg)
    prov = res.provenance
    assert (prov[tm.inside] > 0).all() and (prov[~tm.inside] == Provenance.OUTSIDE).all()
    assert (prov[seen] == Provenance.OBSERVED).all()
    back = tm.inside & (pts[..., 2] < -0.02) & (pts[..., 1].abs() < 0.6)
    assert (prov[back] == Provenance.FRONT_BACK).float().mean() > 0.9
    err = (res.texture[back] - colour(pts)[back]).abs().mean()
    assert err < 0.03
    assert torch.isfinite(res.texture).all() and float(res.texture.min()) >= 0 and float(res.texture.max()) <= 1
    assert abs(sum(res.fractions().values()) - 1.0) < 1e-6


def test_left_half_is_mirrored_to_the_right(body):
    rest, layout, tm, pts = body
    colour = lambda p: torch.stack([p[..., 1] * 0 + 0.2, 0.5 + 0.4 * p[..., 1], 0.5 + p[..., 2]], -1)  # noqa: E731
    seen = tm.inside & (pts[..., 0] > 0.01)  # the body's left half
    cfg = ClassicAvatarConfig(texture_size=T, use_front_back=False, mirror_scope="all")  # the ellipsoid: no limbs
    res = inpaint_texture(_partial(tm, seen, colour, pts), layout, transfer_maps(rest, layout, cfg), cfg)
    right = tm.inside & (pts[..., 0] < -0.02)
    assert (res.provenance[right] == Provenance.MIRRORED).float().mean() > 0.9
    assert (res.texture[right] - colour(pts)[right]).abs().mean() < 0.03


@pytest.mark.parametrize("fill", ["harmonic", "telea", "ns"])
def test_every_texel_inside_the_charts_is_filled(body, fill):
    rest, layout, tm, pts = body
    seen = tm.inside & (pts[..., 2] > 0.05) & (pts[..., 1] > 0.3)  # a small patch: most must be filled
    colour = lambda p: torch.stack([0.9 + 0 * p[..., 0], 0.1 + 0 * p[..., 0], 0.4 + 0 * p[..., 0]], -1)  # noqa
    cfg = ClassicAvatarConfig(texture_size=T, fill_method=fill, use_mirror=False, use_front_back=False)
    res = inpaint_texture(_partial(tm, seen, colour, pts), layout, None, cfg)
    assert (res.provenance[tm.inside & ~seen] == Provenance.FILLED).all()
    # One known colour: the fill must reproduce it everywhere (charts and padding), no black leaking in.
    # (OpenCV works in uint8 and Navier-Stokes drifts by a few levels.)
    tol = 0.01 if fill == "harmonic" else 0.04
    assert (res.texture - torch.tensor([0.9, 0.1, 0.4])).abs().max() < tol


def test_harmonic_fill_interpolates_between_known_colours(body):
    rest, layout, tm, pts = body
    top = tm.inside & (pts[..., 1] > 0.6)
    bottom = tm.inside & (pts[..., 1] < -0.6)
    tex = torch.zeros(T, T, 3)
    tex[top] = 1.0
    w = (top | bottom).float()
    out = harmonic_fill(tex, w, layout, tm)
    mid = tm.inside & (pts[..., 1].abs() < 0.1)
    v = out[mid][:, 0]
    assert 0.3 < float(v.mean()) < 0.7  # halfway between white and black
    assert float(out[top].min()) > 0.95 and float(out[bottom].max()) < 0.05


def test_mismatched_sizes_are_rejected(body):
    rest, layout, tm, pts = body
    cfg = ClassicAvatarConfig(texture_size=T)
    maps = transfer_maps(rest, layout, cfg)
    small = UnwrapResult(torch.zeros(32, 32, 3), torch.zeros(32, 32), torch.zeros(32, 32, dtype=torch.bool))
    with pytest.raises(ValueError, match="transfer maps"):
        inpaint_texture(small, layout, maps, cfg)
