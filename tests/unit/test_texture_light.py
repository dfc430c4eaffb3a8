"""The photo's light (issue 11): a known albedo (one colour per body part) under a known second-order SH light is
estimated back from the texels and normals, and de-lighting recovers the albedo; the render's Lambert light and
its anti-aliased silhouette."""

from __future__ import annotations

import pytest
import torch

from dinar_core.render import make_K
from dinar_core.texture import ClassicAvatarConfig, render_textured, texel_map, texel_points, vertex_normals
from dinar_core.texture.light import delight, estimate_light, sh_shading
from tests.helpers.texture_meshes import ellipsoid_body, to_camera

# Light from above-left (camera frame: y down), a warm tint in red, a little quadratic term.
TRUE_LIGHT = torch.tensor([[1.0, -0.25, -0.35, -0.2, 0.05, 0.0, 0.04, 0.05, -0.03],
                           [0.9, -0.22, -0.3, -0.2, 0.04, 0.0, 0.03, 0.05, -0.03],
                           [0.8, -0.2, -0.3, -0.15, 0.04, 0.0, 0.03, 0.04, -0.02]])


@pytest.fixture(scope="module")
def lit_texels():
    """Front-facing texels of an ellipsoid body in a camera: normals (N, 3), 4 albedo groups by height, colours."""
    rest, layout = ellipsoid_body(32, 48)
    verts = to_camera(rest, 4.0)  # (1, V, 3) facing the camera
    tm = texel_map(layout, 64)
    _, nrm = texel_points(verts, layout, tm, vertex_normals(verts, layout.vertex_index[layout.uv_faces]))
    n = nrm[0]
    pts, _ = texel_points(rest[None], layout, tm)
    group = ((pts[0, :, 1] + 0.85) / 1.7 * 4).long().clamp(0, 3)
    keep = n[:, 2] < -0.2  # seen from the camera
    albedo = torch.tensor([[0.8, 0.6, 0.5], [0.2, 0.3, 0.7], [0.6, 0.2, 0.2], [0.3, 0.3, 0.3]])
    n, group = n[keep], group[keep]
    shade = sh_shading(n, TRUE_LIGHT)
    assert float(shade.min()) > 0.2  # a physical light on these normals
    return n, group, albedo, albedo[group] * shade, shade


def test_a_known_sh_light_is_recovered(lit_texels):
    n, group, albedo, colour, shade = lit_texels
    est = estimate_light(colour, n, torch.ones(len(n)), group, ridge=1e-4)
    got = sh_shading(n, est.coeffs)
    truth = shade / shade.mean(0, keepdim=True)  # the estimate is scaled to mean 1 per channel
    err = float(((got - truth) / truth).abs().max())
    print(f"relative shading error {err:.4f}; coefficients / DC {est.coeffs[:, 1:4] / est.coeffs[:, :1]} vs "
          f"{TRUE_LIGHT[:, 1:4] / TRUE_LIGHT[:, :1]}")
    assert err < 0.03  # stated tolerance: 3 % of the shading on every seen normal
    # The first band (the light's direction) relative to the constant term, within 0.05.
    ratio = est.coeffs[:, 1:4] / est.coeffs[:, :1]
    assert float((ratio - TRUE_LIGHT[:, 1:4] / TRUE_LIGHT[:, :1]).abs().max()) < 0.05


def test_delighting_recovers_the_albedo_up_to_one_gain_per_channel(lit_texels):
    n, group, albedo, colour, shade = lit_texels
    cfg = ClassicAvatarConfig(sh_ridge=1e-4)
    out, _ = delight(colour, n, torch.ones(len(n)), group, cfg)
    gain = (out / albedo[group]).median(0).values  # the exposure and light colour stay in the albedo
    rel = ((out / gain) - albedo[group]).abs() / albedo[group]
    before = ((colour / (colour / albedo[group]).median(0).values) - albedo[group]).abs() / albedo[group]
    print(f"albedo error after de-lighting {float(rel.mean()):.4f}, before {float(before.mean()):.4f}")
    assert float(rel.mean()) < 0.02 and float(before.mean()) > 0.1


def test_a_logo_does_not_bend_the_light(lit_texels):
    n, group, albedo, colour, shade = lit_texels
    logo = torch.zeros(len(n), dtype=torch.bool)
    logo[torch.randperm(len(n), generator=torch.Generator().manual_seed(0))[: len(n) // 12]] = True
    marked = torch.where(logo[:, None], torch.tensor([1.0, 1.0, 0.0]), colour)
    est = estimate_light(marked, n, torch.ones(len(n)), group, ridge=1e-4)
    truth = shade / shade.mean(0, keepdim=True)
    err = float(((sh_shading(n, est.coeffs) - truth) / truth).abs()[~logo].mean())
    assert err < 0.05, err


def _disc_scene():
    rest, layout = ellipsoid_body(24, 32)
    K = make_K(64, 64, focal=120.0)
    return to_camera(rest, 4.0), K, layout


def test_supersampled_silhouettes_have_fractional_coverage():
    verts, K, layout = _disc_scene()
    white = torch.ones(8, 8, 3)
    hard = render_textured(verts, K, None, layout, white, (64, 64), supersample=1).rgba[0, 3]
    soft = render_textured(verts, K, None, layout, white, (64, 64), supersample=4).rgba[0, 3]
    fine = render_textured(verts, K, None, layout, white, (64, 64), supersample=8).rgba[0, 3]
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    edge = (soft > 0.01) & (soft < 0.99)
    assert edge.sum() > 20  # the outline's pixels are partly covered
    assert float((soft - fine).abs().max()) < 0.2  # and their coverage converges with the factor
    assert abs(float(soft.sum()) - float(fine.sum())) < 0.01 * float(fine.sum())
    assert soft.shape == (64, 64)


def test_lit_render_shades_by_the_normal_and_unlit_keeps_the_texture():
    verts, K, layout = _disc_scene()
    white = torch.ones(8, 8, 3)
    unlit = render_textured(verts, K, None, layout, white, (64, 64)).rgba[0]
    lit = render_textured(verts, K, None, layout, white, (64, 64), shading="lit").rgba[0]
    body = unlit[3] > 0.5
    assert torch.allclose(unlit[:3][:, body], torch.ones(1)) and float(lit[:3][:, body].max()) <= 1.0 + 1e-6
    g = lit[0][body]
    assert float(g.min()) >= 0.4 - 1e-4 and float(g.max() - g.min()) > 0.3  # ambient floor, shape visible
    with pytest.raises(ValueError, match="shading"):
        render_textured(verts, K, None, layout, white, (64, 64), shading="glossy")
    with pytest.raises(ValueError, match="supersample"):
        render_textured(verts, K, None, layout, white, (64, 64), supersample=0)


def test_an_evenly_lit_photo_is_not_delit(lit_texels):
    n, group, albedo, colour, shade = lit_texels
    g = torch.Generator().manual_seed(1)
    flat = (albedo[group] * (1 + 0.1 * (torch.rand(len(n), 1, generator=g) - 0.5))).clamp(0, 1)  # texture, no light
    out, est = delight(flat, n, torch.ones(len(n)), group, ClassicAvatarConfig())
    assert torch.allclose(out, flat, atol=1e-5)
    lit_out, _ = delight(colour, n, torch.ones(len(n)), group, ClassicAvatarConfig())  # a real light: divided out
    assert float((lit_out - colour).abs().mean()) > 0.02
