"""Loss terms of the body fit, as pure functions (no state, no optimiser, no body model).

Units: image residuals are divided by the body's height in the image (``scale``, pixels) before they enter a loss,
so one set of weights works for a 300 px thumbnail and a 4000 px photo. Angles are axis-angle radians.
Every function returns a (B,) tensor (one value per frame), so the fitter can sum frames without mixing them.
"""

from __future__ import annotations

import torch
from torch import Tensor
import torch.nn.functional as F


def geman_mcclure(residual_sq: Tensor, sigma: float) -> Tensor:
    """Geman-McClure robust function of squared residuals: ``sigma^2 r^2 / (sigma^2 + r^2)``.

    residual_sq: (...) squared residuals r^2 (>= 0). Returns the same shape. Quadratic (r^2) for r << sigma,
    saturating at sigma^2 for r >> sigma, so a wrong detection costs at most sigma^2.
    """
    s2 = sigma * sigma
    return s2 * residual_sq / (s2 + residual_sq)


def reprojection_loss(projected: Tensor, target: Tensor, weight: Tensor, scale: Tensor, sigma: float = 0.1) -> Tensor:
    """Robust, confidence-weighted 2D keypoint reprojection term.

    projected: (B, K, 2) model keypoints projected to pixels.
    target: (B, K, 2) detected keypoints in pixels.
    weight: (B, K) per-keypoint weight (detector confidence times part weight; 0 = ignore).
    scale: (B,) the body's height in pixels; residuals are measured in units of it.
    sigma: Geman-McClure scale in those units (0.1 = a tenth of the body height).
    Returns (B,) sum over keypoints of ``weight * GM(|r| / scale)``.
    """
    if projected.shape != target.shape or projected.shape[-1] != 2:
        raise ValueError(f"projected and target must both be (B, K, 2), got {tuple(projected.shape)} and "
                         f"{tuple(target.shape)}")
    if weight.shape != projected.shape[:2]:
        raise ValueError(f"weight must be {tuple(projected.shape[:2])}, got {tuple(weight.shape)}")
    r2 = ((projected - target) ** 2).sum(-1) / (scale[:, None] ** 2)  # (B, K)
    return (weight * geman_mcclure(r2, sigma)).sum(-1)


def sample_image(image: Tensor, points: Tensor, size: Tensor) -> Tensor:
    """Bilinear samples of a one-channel image at pixel positions (differentiable w.r.t. the positions).

    image: (B, 1, H, W); points: (B, N, 2) pixel coordinates (x, y) with pixel (i, j) centred at (j + 0.5, i + 0.5);
    size: (B, 2) the (W, H) extent of each frame's valid area inside ``image`` (frames of a batch may be smaller
    than the canvas; positions beyond a frame's extent read its border value).
    Returns (B, N).
    """
    B, _, H, W = image.shape
    clamped = torch.minimum(points, size[:, None, :].to(points) - 0.5).clamp_min(0.5)
    gx = clamped[..., 0] / W * 2 - 1  # align_corners=False: x = 0 is the left edge of pixel 0
    gy = clamped[..., 1] / H * 2 - 1
    grid = torch.stack([gx, gy], -1)[:, :, None]  # (B, N, 1, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0, :, 0]


def silhouette_outside_loss(points: Tensor, outside_dt: Tensor, size: Tensor, scale: Tensor,
                            weight: Tensor | None = None) -> Tensor:
    """Penalise projected vertices that fall outside the mask: mean over vertices of ``(dt / scale)^2``.

    points: (B, V, 2) projected vertices in pixels of the (padded) distance map.
    outside_dt: (B, 1, H, W) distance in pixels from each pixel to the nearest mask pixel (0 inside the mask).
    size: (B, 2) valid (W, H) of each frame's map; scale: (B,) body height in pixels.
    weight: (B, V) optional per-vertex weight (0 for vertices behind the camera). Returns (B,).
    """
    d = sample_image(outside_dt, points, size) / scale[:, None]  # (B, V)
    if weight is None:
        return (d * d).mean(-1)
    return (weight * d * d).sum(-1) / weight.sum(-1).clamp_min(1.0)


def nearest_points(queries: Tensor, points: Tensor) -> Tensor:
    """(B, M) index of the nearest of ``points`` (B, V, 2) to each of ``queries`` (B, M, 2): the squared distance
    less the queries' own |q|^2 (which does not change the choice) as one batched product, then a min; about half
    the time of ``cdist(...).argmin`` on the CPU, where the square roots and argmin dominate."""
    centre = queries.mean(1, keepdim=True)  # small coordinates: the expansion keeps float32's precision
    q, p = queries - centre, points - centre
    scores = torch.baddbmm((p * p).sum(-1)[:, None, :], q, p.transpose(1, 2), alpha=-2.0)  # (B, M, V)
    return scores.min(-1).indices


def silhouette_coverage_loss(points: Tensor, mask_points: Tensor, mask_weight: Tensor, scale: Tensor,
                              sigma: float | None = None, vertex_weight: Tensor | None = None) -> Tensor:
    """Penalise mask pixels far from the projected body: one-sided chamfer from mask boundary samples to the
    nearest projected vertex (the body's outline vertices are the nearest ones to the mask's outline).

    points: (B, V, 2) projected vertices (pixels); mask_points: (B, M, 2) samples of the mask boundary;
    mask_weight: (B, M) 1 for real samples, 0 for padding; scale: (B,); sigma: Geman-McClure scale in units of
    ``scale`` (None: plain squares); vertex_weight: (V,) optional weight of each vertex as the nearest one (the
    asymmetric silhouette: low on parts clothes hang loose on), multiplying its samples' cost (the mean still
    divides by the number of samples, so a low weight lowers the pull). Returns (B,) the weighted mean of
    ``GM((min_v |p_m - v| / scale)^2)``: robust, because a mask also holds what the person holds or wears loosely
    (a helmet, a bag), which no pose can cover.
    """
    with torch.no_grad():  # which vertex is nearest is a discrete choice: find it without building a graph
        nearest = nearest_points(mask_points, points.detach())  # (B, M)
    picked = torch.gather(points, 1, nearest[..., None].expand(-1, -1, 2))  # (B, M, 2)
    d2 = ((mask_points - picked) ** 2).sum(-1) / (scale[:, None] ** 2)  # (B, M)
    if sigma is not None:
        d2 = geman_mcclure(d2, sigma)
    w = mask_weight if vertex_weight is None else mask_weight * vertex_weight.to(d2)[nearest]
    return (w * d2).sum(-1) / mask_weight.sum(-1).clamp_min(1.0)


def l2_prior(x: Tensor) -> Tensor:
    """Squared L2 norm per frame: x (B, ...) -> (B,). Shape (betas), expression and hand-PCA magnitude priors."""
    return (x.reshape(x.shape[0], -1) ** 2).sum(-1)


def hinge_limits(pose: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
    """Joint-angle limits: squared excess of each axis-angle component beyond [lower, upper].

    pose: (B, J, 3) axis-angle per joint; lower, upper: (J, 3) limits (use -inf / +inf for free components).
    Returns (B,). Zero inside the limits, so it does not bias a plausible pose.
    """
    if pose.shape[1:] != lower.shape or lower.shape != upper.shape:
        raise ValueError(f"pose (B, J, 3) and limits (J, 3) must agree, got {tuple(pose.shape)}, "
                         f"{tuple(lower.shape)}, {tuple(upper.shape)}")
    below = (lower.to(pose) - pose).clamp_min(0.0)
    above = (pose - upper.to(pose)).clamp_min(0.0)
    return ((below ** 2) + (above ** 2)).reshape(pose.shape[0], -1).sum(-1)


def bending_penalty(pose: Tensor, joint: Tensor, axis: Tensor, sign: Tensor) -> Tensor:
    """Penalise elbows and knees bending the unnatural way (SMPLify's angle prior, with a smooth hinge).

    pose: (B, J, 3); joint, axis: (N,) int64 which component of which joint; sign: (N,) +1 if positive values of
    that component are the unnatural direction, -1 otherwise. Returns (B,) ``sum softplus(10 s a)^2 / 100``, which
    is ~0 for a natural bend and grows quadratically with a wrong one.
    """
    a = pose[:, joint, axis] * sign.to(pose)  # (B, N)
    return (F.softplus(10.0 * a) / 10.0).pow(2).sum(-1)


def pose_l2(pose: Tensor, weight: Tensor) -> Tensor:
    """Weighted squared magnitude of the joint rotations: pose (B, J, 3), weight (J,) -> (B,).

    Larger weights on the spine joints make the torso bend only when the data insist (bending penalty)."""
    return ((pose ** 2).sum(-1) * weight.to(pose)).sum(-1)


def lean_penalty(points: Tensor, segments: Tensor, weight: Tensor | None = None) -> Tensor:
    """Squared sine of each body segment's lean towards or away from the camera.

    points: (B, K, 3) keypoints in the camera frame; segments: (S, 2, 2) int64 index pairs, each segment running
    from the mean of its first two keypoints to the mean of its last two (a keypoint repeated for a single one);
    weight: (B, S) per-segment weights (e.g. 0 where the segment was not seen), default 1.
    Returns (B,): the weighted sum over segments of (dz / |d|)^2. A far camera (f = 5000 px) hardly sees depth,
    so without this a fit can lean the whole body by 20 degrees at no cost in the image.
    """
    lower = points[:, segments[:, 0]].mean(2)  # (B, S, 3)
    upper = points[:, segments[:, 1]].mean(2)  # (B, S, 3)
    d = upper - lower
    lean = (d[..., 2] / d.norm(dim=-1).clamp_min(1e-6)) ** 2  # (B, S)
    return (lean if weight is None else lean * weight).sum(-1)
