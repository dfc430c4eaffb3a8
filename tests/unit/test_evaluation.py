"""The evaluation's metrics (against known values and against torchmetrics itself) and its geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from dinar_core.evaluation import (bucket_of, camera_centre, depth_scale, frontal_score, masked_image_scores,
                                   mask_iou, recentre_intrinsics, relative_transform, transform_points,
                                   triangulate_points, view_angle_deg)
from dinar_core.evaluation.body import mpjpe, pa_mpjpe


def _person_image(seed: int = 0, size: int = 200):
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), 255, np.uint8)
    mask = np.zeros((size, size), bool)
    mask[30:180, 60:140] = True
    texture = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    smooth = np.asarray(torch.nn.functional.avg_pool2d(torch.from_numpy(texture).permute(2, 0, 1)[None].float(), 7,
                                                       1, 3)[0].permute(1, 2, 0)).astype(np.uint8)
    img[mask] = smooth[mask]
    return img, mask


def test_identical_images_score_perfectly():
    img, mask = _person_image()
    s = masked_image_scores(img, img, mask, mask)
    assert math.isinf(s.psnr) or s.psnr > 90
    assert s.ssim == pytest.approx(1.0, abs=1e-6)
    assert s.ms_ssim == pytest.approx(1.0, abs=1e-5)
    assert s.iou == 1.0
    assert s.lpips is None


def test_known_noise_gives_the_expected_psnr():
    img, mask = _person_image()
    rng = np.random.default_rng(1)
    sigma = 0.05
    noisy = np.clip(img / 255.0 + rng.normal(0, sigma, img.shape), 0, 1)
    noisy[~mask] = 1.0  # background untouched: only the person's pixels count
    s = masked_image_scores(noisy, img, mask, mask)
    expected = 10 * math.log10(1.0 / np.mean((noisy[mask] - img[mask] / 255.0) ** 2))
    assert s.psnr == pytest.approx(expected, abs=1e-3)
    assert s.psnr == pytest.approx(10 * math.log10(1 / sigma ** 2), abs=0.6)  # clipping costs a little
    assert 0.2 < s.ssim < 0.95


def test_background_never_counts():
    img, mask = _person_image()
    other_bg = img.copy()
    other_bg[~mask] = 0  # a black wall instead of a white one: same person
    s = masked_image_scores(other_bg, img, mask, mask)
    assert s.psnr > 90 or math.isinf(s.psnr)
    assert s.ssim == pytest.approx(1.0, abs=1e-6)


def test_a_shifted_render_scores_worse_and_its_iou_is_exact():
    img, mask = _person_image()
    shifted = np.roll(img, 10, axis=1)
    smask = np.roll(mask, 10, axis=1)
    s = masked_image_scores(shifted, img, smask, mask)
    assert s.iou == pytest.approx((70 * 150) / (90 * 150))  # 80-wide boxes overlapping by 70
    assert s.iou == pytest.approx(mask_iou(smask, mask))
    base = masked_image_scores(img, img, mask, mask)
    assert s.psnr < 20 < base.psnr and s.ssim < base.ssim - 0.2


def test_full_mask_equals_torchmetrics_on_the_whole_image():
    a, _ = _person_image(2)
    b, _ = _person_image(3)
    full = np.ones(a.shape[:2], bool)
    s = masked_image_scores(a, b, full, full)
    ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255
    assert s.psnr == pytest.approx(float(peak_signal_noise_ratio(ta, tb, data_range=1.0)), abs=1e-4)
    assert s.ssim == pytest.approx(float(structural_similarity_index_measure(ta, tb, data_range=1.0)), abs=1e-5)


def test_lpips_path_with_generated_weights(tmp_path):
    from dinar_core.avatar.lpips import LPIPSVGG, load_lpips_vgg

    torch.manual_seed(0)
    net = LPIPSVGG()
    for p in net.parameters():
        p.data.normal_(0, 0.05).abs_()
    path = tmp_path / "lpips_vgg.pth"
    torch.save({k: v for k, v in net.state_dict().items() if not k.startswith("scaling_layer")}, path)
    model = load_lpips_vgg(path)
    img, mask = _person_image()
    same = masked_image_scores(img, img, mask, mask, model)
    other = masked_image_scores(np.roll(img, 7, axis=0), img, np.roll(mask, 7, axis=0), mask, model)
    assert same.lpips == pytest.approx(0.0, abs=1e-6)
    assert other.lpips > 1e-4


def test_empty_masks_are_refused():
    img, _ = _person_image()
    none = np.zeros(img.shape[:2], bool)
    with pytest.raises(ValueError, match="empty"):
        masked_image_scores(img, img, none, none)


def _look_at(centre, target=(0.0, 0.0, 1.0), up=(0.0, 0.0, 1.0)):
    """World->camera (R, t) of a camera at `centre` looking at `target` (OpenCV axes, world z up)."""
    c, tg = np.asarray(centre, float), np.asarray(target, float)
    z = tg - c
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, float))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ c


def test_relative_transform_maps_camera_frames():
    R1, t1 = _look_at((0, -3, 1.2))
    R2, t2 = _look_at((3, 0, 1.5))
    pts = np.random.default_rng(0).normal(size=(20, 3))
    in1, in2 = pts @ R1.T + t1, pts @ R2.T + t2
    R, t = relative_transform(R1, t1, R2, t2)
    got = transform_points(torch.from_numpy(in1), R, t).numpy()
    np.testing.assert_allclose(got, in2, atol=1e-9)
    np.testing.assert_allclose(camera_centre(R1, t1), [0, -3, 1.2], atol=1e-9)


def _project(K, R, t, pts):
    cam = pts @ R.T + t
    uv = cam @ np.asarray(K).T
    return uv[:, :2] / uv[:, 2:]


def test_triangulation_recovers_points_seen_twice_and_refuses_the_rest():
    K = np.array([[800.0, 0, 320], [0, 800.0, 240], [0, 0, 1]])
    cams = [_look_at(c) for c in ((0, -3, 1.2), (3, 0, 1.5), (-2.5, 1.5, 1.0))]
    pts = np.random.default_rng(1).normal(scale=0.3, size=(6, 3)) + [0, 0, 1]
    uv = np.stack([_project(K, R, t, pts) for R, t in cams])
    conf = np.ones((3, 6))
    conf[1:, 5] = 0.0  # point 5: one view only
    P = np.stack([K @ np.hstack([R, t.reshape(3, 1)]) for R, t in cams])
    got, ok = triangulate_points(uv, conf, P)
    assert ok.tolist() == [True] * 5 + [False]
    np.testing.assert_allclose(got[:5], pts[:5], atol=1e-6)


def test_depth_scale_removes_exactly_the_size_ambiguity_of_one_view():
    """A body fitted 12 % too small (and so 12 % too close) looks the same in the source camera; in a side camera
    it lands in the wrong place. Scaled by depth_scale about the source camera's centre it lands on the truth,
    and the source view does not change."""
    K = np.array([[800.0, 0, 320], [0, 800.0, 240], [0, 0, 1]])
    (R1, t1), (R2, t2) = _look_at((0, -3.5, 1.2)), _look_at((3.5, 0, 1.2))
    truth = np.random.default_rng(2).normal(scale=0.25, size=(25, 3)) + [0, 0, 0.9]
    truth_src = truth @ R1.T + t1
    fitted_src = truth_src * 0.88 + np.random.default_rng(3).normal(scale=0.005, size=(25, 3))
    s = depth_scale(fitted_src, truth_src)
    assert abs(s - 1 / 0.88) < 0.01
    R, t = relative_transform(R1, t1, R2, t2)
    K1 = np.eye(3)
    side_before = _project(K, np.eye(3), np.zeros(3), fitted_src @ R.T + t)
    side_after = _project(K, np.eye(3), np.zeros(3), (s * fitted_src) @ R.T + t)
    side_truth = _project(K, R2, t2, truth)
    assert np.abs(side_before - side_truth).mean() > 20  # pixels: the wrong place
    assert np.abs(side_after - side_truth).mean() < 3
    np.testing.assert_allclose(_project(K, K1, np.zeros(3), s * fitted_src),
                               _project(K, K1, np.zeros(3), fitted_src), atol=1e-9)
    assert math.isnan(depth_scale(fitted_src[:2], truth_src[:2]))


@pytest.mark.parametrize("deg, bucket", [(0, "front"), (30, "front"), (90, "side"), (120, "side"), (180, "back"),
                                         (150, "back")])
def test_view_angles_and_buckets(deg, bucket):
    a = math.radians(deg)
    R1, t1 = _look_at((0, -3, 1.2))
    R2, t2 = _look_at((3 * math.sin(a), -3 * math.cos(a), 2.0))  # higher up: ignored in the ground plane
    angle = view_angle_deg(R1, t1, R2, t2, (0, 0, 1.0), up=(0, 0, 1))
    assert angle == pytest.approx(deg, abs=1e-6)
    assert bucket_of(angle) == bucket


def _body25(facing: str) -> np.ndarray:
    kp = np.zeros((25, 3))
    kp[1] = (100, 50, 0.9)  # neck
    kp[8] = (100, 150, 0.9)  # mid hip
    sign = {"front": 1, "back": -1, "side": 0}[facing]
    kp[2], kp[5] = (100 - 30 * sign, 50, 0.9), (100 + 30 * sign, 50, 0.9)  # R, L shoulder
    kp[9], kp[12] = (100 - 15 * sign, 150, 0.9), (100 + 15 * sign, 150, 0.9)
    if facing == "front":
        kp[0], kp[15], kp[16] = (100, 30, 0.9), (95, 25, 0.9), (105, 25, 0.9)
    return kp


def test_frontal_score_orders_front_side_back():
    f, s, b = (frontal_score(_body25(x)) for x in ("front", "side", "back"))
    assert f > s > b
    assert frontal_score(np.zeros((25, 3))) == float("-inf")


def test_recentre_intrinsics_is_the_exact_homography():
    H, W = 120, 160
    K = np.array([[300.0, 0, 70.5], [0, 320.0, 55.0], [0, 0, 1]])
    X = np.array([[0.1, -0.05, 2.0]])
    u = (K @ X.T).T
    u = u[:, :2] / u[:, 2:]
    img = np.zeros((H, W, 3), np.uint8)
    j, i = int(u[0, 0]), int(u[0, 1])  # the pixel whose area holds the projection
    img[i - 1:i + 2, j - 1:j + 2] = 255
    warped, K2 = recentre_intrinsics(img, K)
    assert K2[0, 2] == W // 2 and K2[1, 2] == H // 2 and K2[0, 0] == K2[1, 1] == pytest.approx(math.sqrt(300 * 320))
    v = (K2 @ X.T).T
    v = v[:, :2] / v[:, 2:]
    ys, xs = np.nonzero(warped[..., 0] > 60)
    centre = np.array([xs.mean() + 0.5, ys.mean() + 0.5])  # pixel centres at +0.5 (docs/conventions.md)
    expected = v[0] + (centre - v[0]) * 0  # the blob's centre is where the point projects with K2...
    blob_shift = np.array([j + 0.5, i + 0.5]) - u[0]  # ...up to where the 3x3 blob sat around the true point
    np.testing.assert_allclose(centre, expected + blob_shift * np.array([K2[0, 0] / K[0, 0], K2[1, 1] / K[1, 1]]),
                               atol=0.35)


def test_mpjpe_and_pa_mpjpe():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(24, 3))
    assert mpjpe(gt + 5.0, gt) == pytest.approx(0.0, abs=1e-12)  # root-aligned: a translation costs nothing
    a = math.radians(30)
    Rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rotated = 1.3 * gt @ Rz.T + 2.0
    assert mpjpe(rotated, gt) > 0.1
    assert pa_mpjpe(rotated, gt) == pytest.approx(0.0, abs=1e-9)
