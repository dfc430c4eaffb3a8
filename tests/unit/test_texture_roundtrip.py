"""Synthetic round trip with DINAR's SMPL-X UV layout (issue 4's must-show).

A body with SMPL-X's real connectivity (``tests.helpers.texture_meshes.smplx_uv_body``) wears a known full texture
(clothing-like colours by height, stripes, and a fine UV checker). It is rendered from the front at 512^2 (DINAR's
camera, f = 5000), unwrapped from that render with its mask, completed (mirror, front-back, fill), and rendered
again: the front must match (PSNR >= 25 dB, SSIM >= 0.85 on the body); the back is compared with the true back and
must beat a flat mean-colour texture.
"""

from __future__ import annotations

import pytest
import torch

from dinar_core.render import make_K
from dinar_core.texture import (ClassicAvatarConfig, PhotoView, build_mirror_map, classic_texture, render_textured,
                                texel_map)
from dinar_core.texture.metrics import masked_psnr, masked_ssim
from tests.helpers.texture_meshes import clothing_texture, smplx_uv_body, to_camera

H = 512


@pytest.fixture(scope="module")
def scene(uv_assets):
    rest, layout = smplx_uv_body(uv_assets)
    truth = clothing_texture(rest, layout, 512)
    K = make_K(H, H)  # DINAR's camera: f = 5000 px
    extent = rest.amax(0) - rest.amin(0)
    distance = 5000.0 * float(max(extent[0], extent[1])) / (0.85 * H)
    front, back = to_camera(rest, distance), to_camera(rest, distance, 180.0)
    return rest, layout, truth, K, front, back


def test_front_round_trip_and_back_beats_a_flat_texture(scene):
    rest, layout, truth, K, front, back = scene
    photo = render_textured(front, K, None, layout, truth, (H, H))
    rgb = (photo.rgba[0, :3].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()
    mask = (photo.rgba[0, 3] > 0.5).numpy()
    cfg = ClassicAvatarConfig(texture_size=256)
    result = classic_texture([PhotoView(rgb, mask, front, K)], layout, rest, cfg)
    texture = result.completed.texture
    assert texture.shape == (256, 256, 3)
    tm = texel_map(layout, 256)
    assert (result.completed.provenance[tm.inside] > 0).all()  # every chart texel has a value

    again = render_textured(front, K, None, layout, texture, (H, H))
    body = photo.rgba[:, 3:] > 0.5
    psnr = masked_psnr(again.rgba[:, :3], photo.rgba[:, :3], body)
    ssim = masked_ssim(again.rgba[:, :3], photo.rgba[:, :3], body)
    assert psnr >= 25.0 and ssim >= 0.85, (psnr, ssim)

    true_back = render_textured(back, K, None, layout, truth, (H, H))
    ours_back = render_textured(back, K, None, layout, texture, (H, H))
    mean = truth.reshape(-1, 3)[texel_map(layout, 512).flat].mean(0)
    flat_back = render_textured(back, K, None, layout, mean.expand(8, 8, 3), (H, H))
    body_b = true_back.rgba[:, 3:] > 0.5
    ours = (masked_psnr(ours_back.rgba[:, :3], true_back.rgba[:, :3], body_b),
            masked_ssim(ours_back.rgba[:, :3], true_back.rgba[:, :3], body_b))
    flat = (masked_psnr(flat_back.rgba[:, :3], true_back.rgba[:, :3], body_b),
            masked_ssim(flat_back.rgba[:, :3], true_back.rgba[:, :3], body_b))
    print(f"front PSNR {psnr:.2f} dB SSIM {ssim:.3f}; back PSNR {ours[0]:.2f} SSIM {ours[1]:.3f}; "
          f"flat back PSNR {flat[0]:.2f} SSIM {flat[1]:.3f}; provenance {result.completed.fractions()}")
    assert ours[0] > flat[0] + 3.0 and ours[1] > flat[1], (ours, flat)


def test_mirror_map_on_the_smplx_layout_is_an_involution_on_most_texels(scene):
    rest, layout = scene[:2]
    T = 128
    corr = build_mirror_map(rest, layout, T, max_distance=0.03)
    tm = texel_map(layout, T)
    src = corr.source.reshape(-1)
    idx = torch.nonzero(tm.inside.reshape(-1) & (src >= 0)).squeeze(1)
    assert len(idx) > 0.8 * int(tm.inside.sum())
    back = src[src[idx]]
    near = (back >= 0) & ((back // T - idx // T).abs() <= 2) & ((back % T - idx % T).abs() <= 2)
    assert near.float().mean() > 0.8
