"""Unwrapping a photo into the UV texture with a confidence map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dinar_core.render import make_K
from dinar_core.texture import (ClassicAvatarConfig, UnwrapResult, fuse_unwraps, render_textured, texel_map,
                                texel_points, unwrap, vertex_normals)
from dinar_core.texture.unwrap import occlusion_edges
from tests.helpers.texture_meshes import ellipsoid_body, to_camera

H = 160
T = 64


@pytest.fixture(scope="module")
def scene():
    rest, layout = ellipsoid_body(32, 48)
    K = make_K(H, H, focal=400.0)
    verts = to_camera(rest, distance=400.0 * 1.7 / (0.85 * H))
    g = torch.Generator().manual_seed(0)
    texture = torch.rand(T // 8, T // 8, 3, generator=g).repeat_interleave(8, 0).repeat_interleave(8, 1)
    image = render_textured(verts, K, None, layout, texture, (H, H))
    rgb = (image.rgba[0, :3].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()
    mask = image.rgba[0, 3].numpy() > 0.5
    tm = texel_map(layout, T)
    _, nrm = texel_points(rest[None], layout, tm, vertex_normals(rest[None], layout.vertex_index[layout.uv_faces]))
    facing = torch.zeros(T * T)
    facing[tm.flat] = nrm[0, :, 2]  # + towards the camera (the body faces +z in its rest frame)
    return rest, layout, K, verts, texture, rgb, mask, facing.view(T, T), tm


@pytest.mark.parametrize("method", ["gather", "splat"])
def test_front_view_fills_front_texels_and_leaves_back_unseen(scene, method):
    rest, layout, K, verts, texture, rgb, mask, facing, tm = scene
    # The body is only ~34 px wide here: no mask erosion, which would eat the rim (tested separately below).
    cfg = ClassicAvatarConfig(texture_size=T, unwrap_method=method, mask_erode_px=0)
    res = unwrap(rgb, mask, verts, K, layout, cfg)
    assert isinstance(res, UnwrapResult) and res.texture.shape == (T, T, 3) and res.confidence.shape == (T, T)
    assert float(res.confidence.min()) >= 0 and float(res.confidence.max()) <= 1
    front = tm.inside & (facing > 0.5)
    back = tm.inside & (facing < -0.2)
    assert res.seen[front].float().mean() > 0.9
    assert not res.seen[back].any()
    assert not res.seen[~tm.inside].any()
    # Colours of confidently seen texels are the texture's (8x8 blocks; block borders excluded).
    ii, jj = torch.meshgrid(torch.arange(T), torch.arange(T), indexing="ij")
    interior = ((ii % 8) > 1) & ((ii % 8) < 6) & ((jj % 8) > 1) & ((jj % 8) < 6)
    sel = (res.confidence > 0.5) & interior
    assert sel.sum() > 50
    err = (res.texture[sel] - texture[sel]).abs().mean()
    assert err < 0.03


def test_confidence_drops_at_grazing_angles(scene):
    rest, layout, K, verts, texture, rgb, mask, facing, tm = scene
    res = unwrap(rgb, mask, verts, K, layout, ClassicAvatarConfig(texture_size=T))
    frontal = res.confidence[tm.inside & (facing > 0.9)].mean()
    grazing = res.confidence[tm.inside & (facing > 0.05) & (facing < 0.3)].mean()
    assert frontal > 0.8 and grazing < 0.4


def test_pixels_outside_the_person_mask_are_dropped(scene):
    rest, layout, K, verts, texture, rgb, mask, facing, tm = scene
    full = unwrap(rgb, mask, verts, K, layout, ClassicAvatarConfig(texture_size=T))
    half = mask.copy()
    half[:, H // 2:] = False  # the body's left half (image right) is not the person
    res = unwrap(rgb, half, verts, K, layout, ClassicAvatarConfig(texture_size=T))
    pts, _ = texel_points(verts, layout, tm)
    x = torch.zeros(T * T)
    x[tm.flat] = pts[0, :, 0]
    x = x.view(T, T)
    assert not res.seen[x > 0.0].any()
    assert res.seen[(x < -0.03) & full.seen].float().mean() > 0.95
    # Erosion: with a 2 px erosion the rim of the silhouette is not sampled.
    eroded = unwrap(rgb, mask, verts, K, layout, ClassicAvatarConfig(texture_size=T, mask_erode_px=0))
    assert int(eroded.seen.sum()) > int(full.seen.sum())


def test_self_occlusion_edges_are_found_and_removed():
    z = torch.full((20, 20), 5.0)
    z[:, 10:] = 4.0  # a nearer surface: its left border is an occlusion edge
    z[:2] = -1.0  # background next to the body is not an occlusion edge
    e = occlusion_edges(z, jump=0.5)
    assert e[2:, 9:11].all() and e.sum() == 2 * 18


def test_fuse_keeps_the_most_confident_view():
    a = UnwrapResult(torch.zeros(4, 4, 3), torch.full((4, 4), 0.9), torch.ones(4, 4, dtype=torch.bool))
    b = UnwrapResult(torch.ones(4, 4, 3), torch.full((4, 4), 0.1), torch.ones(4, 4, dtype=torch.bool))
    b.confidence[0, 0] = 0.0
    f = fuse_unwraps([a, b])
    assert torch.allclose(f.confidence, torch.full((4, 4), 0.9))
    assert float(f.texture[1, 1, 0]) < 0.02 and float(f.texture[0, 0, 0]) == 0.0


def test_bad_shapes_are_value_errors(scene):
    rest, layout, K, verts, texture, rgb, mask, facing, tm = scene
    with pytest.raises(ValueError, match="mask"):
        unwrap(rgb, mask[:10], verts, K, layout, ClassicAvatarConfig(texture_size=T))
    with pytest.raises(ValueError, match="verts_cam"):
        unwrap(rgb, mask, verts[0, :, :2], K, layout, ClassicAvatarConfig(texture_size=T))
    with pytest.raises(ValueError, match="image"):
        unwrap(np.zeros((H, H)), mask, verts, K, layout, ClassicAvatarConfig(texture_size=T))
