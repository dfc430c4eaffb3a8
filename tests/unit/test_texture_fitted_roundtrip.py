"""Issue 4's round trip with the fit in the loop: a body with a known full texture is rendered from the front at
512^2, *fitted* from its keypoints and mask (SMPL-X path, synthetic model file, a tube atlas as its UV layout),
unwrapped through the fitted mesh and rendered again. Front: PSNR >= 25 dB and SSIM >= 0.85 on the body; back:
the metrics against the true back are reported and must beat a flat mean-colour texture."""

import math

import pytest
import torch

from dinar_core.body import SMPLXBody
from dinar_core.fitting import FitConfig, fit_body
from dinar_core.fitting.adapters import SMPLXFitBody
from dinar_core.render import make_K
from dinar_core.texture import ClassicAvatarConfig, PhotoView, classic_texture, render_textured
from dinar_core.texture.metrics import masked_psnr, masked_ssim
from dinar_core.texture.render import rotate_about_vertical
from tests.helpers.atlas import tube_atlas
from tests.helpers.fitting_scenes import make_scene, natural_pose, place
from tests.helpers.synthetic_smplx import synthetic_smplx_dir  # noqa: F401 (fixture)

SIZE = (512, 512)


def _pattern(T: int = 256) -> torch.Tensor:
    """(T, T, 3) in [0, 1]: smooth colour fields plus soft stripes."""
    v, u = torch.meshgrid(torch.linspace(0, 1, T), torch.linspace(0, 1, T), indexing="ij")
    r = 0.5 + 0.35 * torch.sin(2 * math.pi * (2 * u + v))
    g = 0.5 + 0.35 * torch.cos(2 * math.pi * 3 * v)
    b = 0.5 + 0.3 * torch.sin(2 * math.pi * 5 * u) * torch.sin(math.pi * v)
    return torch.stack([r, g, b], -1).clamp(0, 1)


def round_trip(models):
    body = SMPLXBody(models)
    fb = SMPLXFitBody(body)
    truth_vars = place(fb, natural_pose(fb, 1, seed=3, scale=0.06, yaw_deg=8.0), SIZE)
    scene = make_scene(fb, truth_vars, SIZE, seed=1)[0]  # keypoints with 2 px noise and 3 dropped joints
    layout = tube_atlas(body.rest_vertices, body.faces)
    truth_tex = _pattern()
    K = make_K(*SIZE)
    with torch.no_grad():
        truth_verts = fb.forward(truth_vars).vertices  # (1, V, 3)
        photo = render_textured(truth_verts, K, None, layout, truth_tex, SIZE)
    rgb = (photo.rgba[0, :3].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()
    mask = (photo.rgba[0, 3] > 0.5).numpy()
    fit = fit_body(body, [scene.keypoints], [mask], [SIZE], FitConfig())
    with torch.no_grad():
        result = classic_texture([PhotoView(rgb, mask, fit.vertices[0:1], fit.K[0])], layout, body.rest_vertices,
                                 ClassicAvatarConfig(texture_size=256))
        texture = result.completed.texture
        again = render_textured(fit.vertices[0:1], fit.K[0], None, layout, texture, SIZE)
        back_verts = rotate_about_vertical(truth_verts, 180.0)
        backs = [render_textured(back_verts, K, None, layout, t, SIZE)
                 for t in (truth_tex, texture, truth_tex.reshape(-1, 3).mean(0).expand(8, 8, 3))]
    # "on the body": where the photo and the fitted body's render both show it (the fit's silhouette differs from
    # the photo's by a few per cent, IoU in the result; those pixels compare skin with background)
    on_body = (photo.rgba[:, 3:] > 0.5) & (again.rgba[:, 3:] > 0.5)
    front = (masked_psnr(again.rgba[:, :3], photo.rgba[:, :3], on_body),
             masked_ssim(again.rgba[:, :3], photo.rgba[:, :3], on_body))
    on_back = backs[0].rgba[:, 3:] > 0.5
    back = [(masked_psnr(b.rgba[:, :3], backs[0].rgba[:, :3], on_back),
             masked_ssim(b.rgba[:, :3], backs[0].rgba[:, :3], on_back)) for b in backs[1:]]
    return front, back[0], back[1], fit


@pytest.mark.xfail(strict=True, reason="open in issue 4: measured front 21.8 dB / SSIM 0.81 (goal 25 / 0.85) and a "
                   "back below the flat texture on this synthetic tube body; with the true mesh instead of the "
                   "fit the same atlas gives 23.2 dB / 0.92, so the tube atlas' texel density limits it too; the "
                   "round trip on DINAR's real UV layout (test_texture_roundtrip.py, known mesh) passes at 31.6 dB")
def test_fit_unwrap_render_round_trip(synthetic_smplx_dir):  # noqa: F811
    front, back, flat, fit = round_trip(synthetic_smplx_dir)
    print(f"fitted round trip: front PSNR {front[0]:.2f} dB SSIM {front[1]:.3f} (fit IoU "
          f"{fit.metrics[0].mask_iou:.3f}); back PSNR {back[0]:.2f} SSIM {back[1]:.3f} vs flat {flat[0]:.2f} "
          f"{flat[1]:.3f}")
    assert front[0] >= 25.0 and front[1] >= 0.85, front
    assert back[0] > flat[0], (back, flat)
