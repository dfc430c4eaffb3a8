"""Issue 4's round trip with the fit in the loop: a body with a known full texture is rendered from the front at
512^2, *fitted* from its keypoints (2 px noise, 3 joints dropped) and mask, unwrapped through the fitted mesh,
completed, and rendered again. Front: PSNR >= 25 dB and SSIM >= 0.85 on the body; back: the metrics against the
true back are reported and must beat a flat mean-colour texture.

The SMPL-X path with the synthetic model file (``tests.helpers.synthetic_smplx``: real array shapes, its own tube
topology) and an area-proportional tube atlas as its UV layout; the texture is the clothing-like one of the
known-mesh round trip on DINAR's layout (``test_texture_roundtrip.py``), defined on the body, so the back resembles
the front as a person's does. "On the body" = where the photo and the fitted body's render both show the body; the
fit's silhouette error is its IoU, asserted separately."""

import pytest
import torch

from dinar_core.body import SMPLXBody
from dinar_core.fitting import FitConfig, fit_body
from dinar_core.fitting.adapters import SMPLXFitBody
from dinar_core.render import make_K
from dinar_core.texture import ClassicAvatarConfig, PhotoView, classic_texture, render_textured, texel_map
from dinar_core.texture.metrics import masked_psnr, masked_ssim, ssim_map
from dinar_core.texture.render import rotate_about_vertical
from tests.helpers.atlas import tube_atlas
from tests.helpers.fitting_scenes import make_scene, natural_pose, place
from tests.helpers.synthetic_smplx import synthetic_smplx_dir  # noqa: F401 (fixture)
from tests.helpers.texture_meshes import clothing_texture

SIZE = (512, 512)


def _metrics(ours, truth, mask) -> tuple[float, float]:
    """(PSNR dB, SSIM) of two RenderOutputs' RGB over mask (B, 1, H, W)."""
    return masked_psnr(ours.rgba[:, :3], truth.rgba[:, :3], mask), masked_ssim(ours.rgba[:, :3], truth.rgba[:, :3],
                                                                                 mask)


@pytest.fixture(scope="module")
def round_trip(synthetic_smplx_dir):  # noqa: F811
    body = SMPLXBody(synthetic_smplx_dir)
    fb = SMPLXFitBody(body)
    truth_vars = place(fb, natural_pose(fb, 1, seed=3, scale=0.06, yaw_deg=8.0), SIZE)
    scene = make_scene(fb, truth_vars, SIZE, seed=1)[0]  # keypoints with 2 px noise and 3 dropped joints
    layout = tube_atlas(body.rest_vertices, body.faces)
    truth_tex = clothing_texture(body.rest_vertices, layout, 512)
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
        mean = truth_tex.reshape(-1, 3)[texel_map(layout, 512).flat].mean(0)
        true_back, our_back, flat_back = (render_textured(back_verts, K, None, layout, t, SIZE)
                                          for t in (truth_tex, texture, mean.expand(8, 8, 3)))
    on_body = (photo.rgba[:, 3:] > 0.5) & (again.rgba[:, 3:] > 0.5)
    on_back = true_back.rgba[:, 3:] > 0.5
    return {"fit": fit, "on_body": on_body, "photo": photo, "again": again,
            "front": _metrics(again, photo, on_body), "back": _metrics(our_back, true_back, on_back),
            "flat": _metrics(flat_back, true_back, on_back)}


def test_fit_unwrap_render_round_trip(round_trip):
    r = round_trip
    front, back, flat, fit = r["front"], r["back"], r["flat"], r["fit"]
    # SSIM with the outside of the comparison left as rendered, for the record: the windows at the fitted outline
    # then also compare background with the photo's body
    raw = float((ssim_map(r["again"].rgba[:, :3], r["photo"].rgba[:, :3]) * r["on_body"]).sum() / r["on_body"].sum())
    print(f"fitted round trip: front PSNR {front[0]:.2f} dB SSIM {front[1]:.3f} (uncomposited {raw:.3f}; fit IoU "
          f"{fit.metrics[0].mask_iou:.3f}); back PSNR {back[0]:.2f} SSIM {back[1]:.3f} vs flat {flat[0]:.2f} "
          f"{flat[1]:.3f}")
    assert fit.metrics[0].mask_iou > 0.9
    assert r["on_body"].sum() > 0.9 * (r["photo"].rgba[:, 3:] > 0.5).sum()  # the comparison covers the body
    assert front[0] >= 25.0 and front[1] >= 0.85, front
    assert back[0] > flat[0] and back[1] > flat[1], (back, flat)
