"""Pure parts of the body fit: loss terms, rotations, metrics, camera initialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dinar_core.fitting import losses
from dinar_core.fitting.metrics import mask_iou, procrustes_align, procrustes_joint_error, reprojection_error_px, \
    silhouette
from dinar_core.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rot_x, rot_y, rot_z


def test_geman_mcclure_is_quadratic_near_zero_and_bounded():
    r2 = torch.tensor([1e-6, 1.0, 1e6])
    out = losses.geman_mcclure(r2, sigma=1.0)
    assert out[0] == pytest.approx(1e-6, rel=1e-3)
    assert out[1] == pytest.approx(0.5)
    assert out[2] < 1.0 and out[2] == pytest.approx(1.0, rel=1e-5)


def test_reprojection_loss_weights_confidence_and_scale():
    proj = torch.tensor([[[10.0, 0.0], [0.0, 0.0]]])
    target = torch.zeros(1, 2, 2)
    w = torch.tensor([[1.0, 1.0]])
    a = losses.reprojection_loss(proj, target, w, torch.tensor([100.0]), sigma=10.0)
    b = losses.reprojection_loss(proj, target, w * torch.tensor([[0.0, 1.0]]), torch.tensor([100.0]), sigma=10.0)
    c = losses.reprojection_loss(proj * 2, target, w, torch.tensor([200.0]), sigma=10.0)
    assert b.item() == 0.0  # the only residual has zero confidence
    assert a.item() == pytest.approx(c.item())  # residuals are measured in body heights
    assert a.item() == pytest.approx(100.0 * 0.01 / (100.0 + 0.01), rel=1e-5)
    with pytest.raises(ValueError, match="weight"):
        losses.reprojection_loss(proj, target, torch.ones(1, 3), torch.tensor([1.0]))


def test_sample_image_bilinear_and_differentiable():
    img = torch.arange(12, dtype=torch.float32).reshape(1, 1, 3, 4)  # value = 4 i + j at pixel centre (j+.5, i+.5)
    pts = torch.tensor([[[0.5, 0.5], [1.5, 1.5], [1.0, 0.5]]], requires_grad=True)
    size = torch.tensor([[4.0, 3.0]])
    vals = losses.sample_image(img, pts, size)
    assert torch.allclose(vals, torch.tensor([[0.0, 5.0, 0.5]]), atol=1e-5)
    vals.sum().backward()
    assert torch.allclose(pts.grad[0, 1], torch.tensor([1.0, 4.0]), atol=1e-4)  # d/dx = 1, d/dy = 4


def test_silhouette_outside_zero_inside_and_pulls_inwards():
    import cv2

    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 10:30] = 1
    dt = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, 5)
    dt_t = torch.from_numpy(dt)[None, None]
    size = torch.tensor([[40.0, 40.0]])
    inside = torch.tensor([[[20.0, 20.0], [12.0, 25.0]]])
    assert losses.silhouette_outside_loss(inside, dt_t, size, torch.tensor([20.0])).item() == 0.0
    out = torch.tensor([[[36.5, 20.5]]], requires_grad=True)
    loss = losses.silhouette_outside_loss(out, dt_t, size, torch.tensor([20.0]))
    assert loss.item() > 0
    loss.backward()
    assert out.grad[0, 0, 0] > 0  # moving right (further out) increases the loss


def test_silhouette_coverage_chamfer():
    pts = torch.tensor([[[0.0, 0.0], [10.0, 0.0]]], requires_grad=True)
    mask_pts = torch.tensor([[[0.0, 3.0], [10.0, 4.0], [99.0, 99.0]]])
    w = torch.tensor([[1.0, 1.0, 0.0]])  # the third sample is padding
    loss = losses.silhouette_coverage_loss(pts, mask_pts, w, torch.tensor([1.0]))
    assert loss.item() == pytest.approx((9 + 16) / 2)
    loss.backward()
    assert pts.grad[0, 1, 1] < 0  # the vertex moves towards the mask point above it


def test_silhouette_coverage_is_bounded_with_a_robust_scale():
    """An outline sample no pose can reach (a held object) costs at most sigma^2, however far it is."""
    pts = torch.tensor([[[0.0, 0.0], [10.0, 0.0]]])
    near = torch.tensor([[[0.0, 0.3]]])
    scale = torch.tensor([10.0])
    w = torch.ones(1, 1)
    plain = losses.silhouette_coverage_loss(pts, near, w, scale).item()
    assert losses.silhouette_coverage_loss(pts, near, w, scale, sigma=0.5).item() == pytest.approx(plain, rel=0.01)
    for far in (50.0, 500.0, 5000.0):
        robust = losses.silhouette_coverage_loss(pts, torch.tensor([[[far, far]]]), w, scale, sigma=0.05)
        assert 0.9 * 0.05 ** 2 < robust.item() <= 0.05 ** 2


def test_hinge_limits_zero_inside():
    lower = torch.tensor([[-1.0, -math.inf, 0.0]])
    upper = torch.tensor([[1.0, math.inf, 0.5]])
    assert losses.hinge_limits(torch.tensor([[[0.5, 9.0, 0.2]]]), lower, upper).item() == 0.0
    assert losses.hinge_limits(torch.tensor([[[1.5, 0.0, -0.5]]]), lower, upper).item() == pytest.approx(0.5)


def test_bending_penalty_only_for_the_unnatural_direction():
    joint, axis, sign = torch.tensor([0]), torch.tensor([1]), torch.tensor([1.0])
    natural = losses.bending_penalty(torch.tensor([[[0.0, -1.0, 0.0]]]), joint, axis, sign)
    wrong = losses.bending_penalty(torch.tensor([[[0.0, 1.0, 0.0]]]), joint, axis, sign)
    assert natural.item() < 1e-4 < 0.5 < wrong.item()


def test_priors():
    assert losses.l2_prior(torch.tensor([[3.0, 4.0]])).item() == 25.0
    pose = torch.ones(1, 2, 3)
    assert losses.pose_l2(pose, torch.tensor([1.0, 2.0])).item() == 9.0


def test_axis_angle_round_trip_including_pi():
    g = torch.Generator().manual_seed(0)
    aa = torch.randn(50, 3, generator=g)
    aa = aa / aa.norm(dim=-1, keepdim=True) * torch.rand(50, 1, generator=g) * (math.pi - 1e-3)
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    assert torch.allclose(back, aa, atol=1e-4)
    m = rot_z(0.3) @ rot_y(-0.2) @ rot_x(math.pi)
    assert torch.allclose(axis_angle_to_matrix(matrix_to_axis_angle(m)), m, atol=1e-5)
    assert torch.allclose(axis_angle_to_matrix(torch.zeros(3)), torch.eye(3))


def test_procrustes_removes_similarity():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(25, 3))
    r = (rot_z(0.4) @ rot_x(1.0)).numpy().astype(np.float64)
    pred = 1.7 * gt @ r.T + np.array([1.0, -2.0, 5.0])
    assert procrustes_joint_error(pred, gt) < 1e-6
    noisy = gt + rng.normal(scale=0.01, size=gt.shape)
    assert procrustes_joint_error(noisy, gt) < 0.02
    assert np.allclose(procrustes_align(gt, gt), gt)


def test_reprojection_error_ignores_missing():
    target = np.array([[3.0, 4.0, 1.0], [100.0, 100.0, 0.0]])
    assert reprojection_error_px(np.zeros((2, 2)), target) == pytest.approx(5.0)
    assert math.isnan(reprojection_error_px(np.zeros((2, 2)), target * [1, 1, 0]))


def test_silhouette_fills_exactly_and_iou():
    pts = np.array([[2.0, 2.0], [8.0, 2.0], [8.0, 6.0], [2.0, 6.0]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3]])  # one CCW and (reversed) one CW on screen: both drawn
    sil = silhouette(pts, faces[[0, 1]][:, ::-1].copy(), (10, 10)) | silhouette(pts, faces, (10, 10))
    expected = np.zeros((10, 10), bool)
    expected[2:6, 2:8] = True  # pixel centres j + 0.5 in (2, 8), i + 0.5 in (2, 6)
    assert mask_iou(sil, expected) == 1.0
    assert mask_iou(silhouette(pts, faces, (10, 10)), expected) == 1.0
    half = expected.copy()
    half[:, 5:] = False
    assert mask_iou(half, expected) == pytest.approx(12 / 24)


def test_lean_penalty_is_zero_upright_and_grows_with_lean():
    import math

    import torch

    from dinar_core.fitting.losses import lean_penalty

    segments = torch.tensor([[[0, 0], [1, 1]]])
    upright = torch.tensor([[[0.0, 1.0, 10.0], [0.0, -0.5, 10.0]]])  # (1, 2, 3): y down, same depth
    assert float(lean_penalty(upright, segments)) == 0.0
    a = math.radians(20)
    leaning = torch.tensor([[[0.0, 1.0, 10.0], [0.0, 1.0 - 1.5 * math.cos(a), 10.0 - 1.5 * math.sin(a)]]])
    assert abs(float(lean_penalty(leaning, segments)) - math.sin(a) ** 2) < 1e-6
