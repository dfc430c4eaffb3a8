"""Textured rendering: UV interpolation + bilinear texture sampling, backgrounds, views and turntable."""

from __future__ import annotations

import pytest
import torch

from dinar_core.render import make_K
from dinar_core.texture import framing_camera, render_textured, turntable, views
from tests.helpers.texture_meshes import ellipsoid_body, to_camera

H = 96


@pytest.fixture(scope="module")
def scene():
    rest, layout = ellipsoid_body(24, 32)
    K = make_K(H, H, focal=300.0)
    return rest, layout, K, to_camera(rest, distance=300.0 * 1.7 / (0.8 * H))


def test_constant_texture_and_backgrounds(scene):
    rest, layout, K, verts = scene
    tex = torch.zeros(16, 16, 3)
    tex[..., 1] = 0.5
    white = render_textured(verts, K, None, layout, tex, (H, H))
    assert white.rgba.shape == (1, 4, H, H)
    body = white.rgba[0, 3] > 0
    assert 0.05 < body.float().mean() < 0.6
    assert torch.allclose(white.rgba[0, :3][:, body], torch.tensor([0.0, 0.5, 0.0])[:, None], atol=1e-5)
    assert (white.rgba[0, :3][:, ~body] == 1).all()
    clear = render_textured(verts, K, None, layout, tex, (H, H), background="transparent")
    assert (clear.rgba[0][:, ~body] == 0).all() and (clear.rgba[0, 3][body] == 1).all()
    grey = render_textured(verts, K, None, layout, (tex * 255).to(torch.uint8), (H, H), background=(128, 128, 128))
    assert torch.allclose(grey.rgba[0, :3][:, ~body], torch.tensor(128 / 255.0))
    assert grey.to_uint8().shape == (1, H, H, 4)


def test_texture_rows_follow_v_downwards(scene):
    """v = 0 (texture top row) is the head in this layout: it must appear at the top of the image."""
    rest, layout, K, verts = scene
    tex = torch.zeros(32, 32, 3)
    tex[:16, :, 0] = 1.0  # top half red
    tex[16:, :, 2] = 1.0  # bottom half blue
    img = render_textured(verts, K, None, layout, tex, (H, H)).rgba[0]
    rows = torch.nonzero(img[3].sum(1) > 0).squeeze(1)
    top, bottom = img[:, rows[2]], img[:, rows[-3]]
    on_top, on_bottom = top[3] > 0, bottom[3] > 0
    assert (top[0][on_top] > 0.9).all() and (bottom[2][on_bottom] > 0.9).all()


def test_views_and_turntable(scene):
    rest, layout, K, verts = scene
    tex = torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(1))
    v = views(verts, K, layout, tex, (H, H))
    width = [int((r.rgba[0, 3].sum(0) > 0).sum()) for r in (v.front, v.back, v.side)]
    assert abs(width[0] - width[1]) <= 1 and width[2] < 0.8 * width[0]  # the ellipsoid is thinner than wide
    frames = list(turntable(verts, K, layout, tex, (H, H), num_frames=4))
    assert len(frames) == 4
    assert torch.allclose(frames[0].rgba, v.front.rgba) and torch.allclose(frames[2].rgba, v.back.rgba, atol=1e-4)
    assert not torch.allclose(v.front.rgba, v.back.rgba)  # the back shows other texels


def test_framing_camera_fits_the_body(scene):
    rest, layout, K, verts = scene
    shifted, K2 = framing_camera(verts, (128, 64), fill=0.8)
    img = render_textured(shifted, K2, None, layout, torch.ones(4, 4, 3), (128, 64)).rgba[0, 3]
    rows = torch.nonzero(img.sum(1) > 0).squeeze(1)
    assert 0.7 * 128 < len(rows) <= 0.85 * 128


def test_bad_inputs(scene):
    rest, layout, K, verts = scene
    with pytest.raises(ValueError, match="texture"):
        render_textured(verts, K, None, layout, torch.zeros(16, 16), (H, H))
    with pytest.raises(ValueError, match="background"):
        render_textured(verts, K, None, layout, torch.zeros(16, 16, 3), (H, H), background="pink")
    with pytest.raises(ValueError, match="faces"):
        render_textured(verts, K, layout.uv_faces[:10], layout, torch.zeros(16, 16, 3), (H, H))
