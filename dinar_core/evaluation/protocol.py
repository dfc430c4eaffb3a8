"""The geometry of the multi-view protocol: an avatar made in the source camera, placed in the other cameras.

Camera convention (``cameras.json``, OpenCV): ``x_cam = R @ x_world + t``, x right, y down, z forward. An avatar
fitted in the source camera lives in that camera's frame; the rigid transform to a target camera follows from the
two calibrations alone (never from the target image): ``x_dst = R_rel @ x_src + t_rel`` with
``R_rel = R_dst @ R_src^T`` and ``t_rel = t_dst - R_rel @ t_src``.

View angle: the angle, around the person, between the directions from the person to the two cameras, measured in
the ground plane when the world's up axis is known (so a camera mounted higher does not count as "turned").
Buckets: front < 45 degrees <= side <= 135 degrees < back.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torch import Tensor

BUCKETS = ("front", "side", "back")
FRONT_MAX_DEG = 45.0
BACK_MIN_DEG = 135.0


def _rt(R, t) -> tuple[np.ndarray, np.ndarray]:
    R = np.asarray(R, np.float64).reshape(3, 3)
    t = np.asarray(t, np.float64).reshape(3)
    return R, t


def camera_centre(R, t) -> np.ndarray:
    """(3,) the camera's centre in world coordinates, ``-R^T t``."""
    R, t = _rt(R, t)
    return -R.T @ t


def relative_transform(R_src, t_src, R_dst, t_dst) -> tuple[np.ndarray, np.ndarray]:
    """(R_rel (3, 3), t_rel (3,)) with ``x_dst = R_rel @ x_src + t_rel`` for points in the source camera's frame."""
    R_src, t_src = _rt(R_src, t_src)
    R_dst, t_dst = _rt(R_dst, t_dst)
    R_rel = R_dst @ R_src.T
    return R_rel, t_dst - R_rel @ t_src


def transform_points(points: Tensor, R: np.ndarray, t: np.ndarray) -> Tensor:
    """points: (..., 3) -> (..., 3) ``R @ p + t`` (same dtype and device as `points`)."""
    Rt = torch.as_tensor(np.asarray(R).T, dtype=points.dtype, device=points.device)
    return points @ Rt + torch.as_tensor(np.asarray(t), dtype=points.dtype, device=points.device)


def view_angle_deg(R_src, t_src, R_dst, t_dst, centre_world, up=None) -> float:
    """Angle in degrees (0..180) between the directions from `centre_world` (3,) to the two camera centres,
    measured in the plane perpendicular to `up` (3,) when given."""
    c = np.asarray(centre_world, np.float64).reshape(3)
    a = camera_centre(R_src, t_src) - c
    b = camera_centre(R_dst, t_dst) - c
    if up is not None:
        u = np.asarray(up, np.float64).reshape(3)
        u = u / np.linalg.norm(u)
        a, b = a - (a @ u) * u, b - (b @ u) * u
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-9 or nb < 1e-9:
        raise ValueError("a camera sits on the person's vertical axis: its view angle is undefined")
    return math.degrees(math.acos(float(np.clip(a @ b / (na * nb), -1.0, 1.0))))


def bucket_of(angle_deg: float) -> str:
    """'front' (< 45 degrees from the source view), 'side' (45..135) or 'back' (> 135)."""
    if angle_deg < FRONT_MAX_DEG:
        return "front"
    return "back" if angle_deg > BACK_MIN_DEG else "side"


# BODY_25 indices used to tell a frontal view: shoulders, hips, nose, eyes.
_RSHO, _LSHO, _RHIP, _LHIP, _NOSE, _NECK, _MIDHIP, _REYE, _LEYE = 2, 5, 9, 12, 0, 1, 8, 15, 16


def frontal_score(body25: np.ndarray, min_conf: float = 0.2) -> float:
    """How squarely a view sees the person's front, from its OpenPose BODY_25 keypoints (25, 3) (x, y, conf).

    Seen from the front, the person's left shoulder and hip are on the image's right: the signed widths
    ``x_left - x_right`` of shoulders and hips, divided by the torso height, are large and positive; from the back
    they are negative, from the side near zero. The face's keypoints (nose, eyes) add their mean confidence, which
    breaks ties between a front and a back view of the same width. Returns -inf when the torso is not found.
    """
    kp = np.asarray(body25, np.float64).reshape(-1, 3)
    if kp.shape[0] < 25:
        raise ValueError(f"body25 must have 25 keypoints, got {kp.shape[0]}")
    ok = kp[:, 2] > min_conf
    if not (ok[_NECK] and ok[_MIDHIP]):
        return float("-inf")
    torso = float(np.linalg.norm(kp[_NECK, :2] - kp[_MIDHIP, :2]))
    if torso < 1e-6:
        return float("-inf")
    widths = [(kp[l, 0] - kp[r, 0]) / torso for l, r in ((_LSHO, _RSHO), (_LHIP, _RHIP)) if ok[l] and ok[r]]
    if not widths:
        return float("-inf")
    face = float(np.mean([kp[i, 2] for i in (_NOSE, _REYE, _LEYE)]))
    return float(np.mean(widths)) + 0.25 * face


def recentre_intrinsics(image: np.ndarray, K) -> tuple[np.ndarray, np.ndarray]:
    """Warp `image` (H, W, C) taken with intrinsics K (3, 3) to the same camera with square pixels and the
    principal point at (W // 2, H // 2): DINAR's camera model, which the fit assumes.

    A change of intrinsics with the same centre and orientation is the homography ``K_new @ inv(K)``, so the warp
    is exact (up to resampling). f_new = sqrt(fx * fy). K is in the project's pixel convention (pixel (i, j) has
    its centre at (j + 0.5, i + 0.5), ``dinar_core.cameras.multiview``), as is DINAR's ``make_K``. Returns (warped image (H, W, C), K_new (3, 3)).
    """
    K = np.asarray(K, np.float64).reshape(3, 3)
    H, W = image.shape[:2]
    f = math.sqrt(K[0, 0] * K[1, 1])
    K_new = np.array([[f, 0.0, W // 2], [0.0, f, H // 2], [0.0, 0.0, 1.0]])
    if np.allclose(K, K_new, atol=1e-6):
        return image.copy(), K_new
    # The homography maps the project's pixel coordinates (pixel centres at j + 0.5, as K is written); OpenCV's
    # warp works in coordinates whose pixel centres are integers: conjugate by that half-pixel shift.
    S = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    Hm = np.linalg.inv(S) @ K_new @ np.linalg.inv(K) @ S
    warped = cv2.warpPerspective(image, Hm, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped, K_new


# ----------------------------------------------------------------------------------------------------------------
# Scale-aligned placement
# ----------------------------------------------------------------------------------------------------------------
def triangulate_points(points_2d, confidence, projections, min_conf: float = 0.3,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Linear (DLT) triangulation of J points seen by C calibrated cameras.

    points_2d: (C, J, 2) pixel coordinates; confidence: (C, J), a view counts for a point when above `min_conf`;
    projections: (C, 3, 4) ``K @ [R | t]`` per camera. Each point's rows are weighted by its confidence.
    Returns (points (J, 3) in the world frame, ok (J,) bool: seen in at least two views and in front of them).
    """
    x = np.asarray(points_2d, np.float64)
    w = np.asarray(confidence, np.float64)
    P = np.asarray(projections, np.float64)
    C, J = w.shape
    out, ok = np.zeros((J, 3)), np.zeros(J, bool)
    for j in range(J):
        seen = np.nonzero(w[:, j] > min_conf)[0]
        if len(seen) < 2:
            continue
        rows = []
        for c in seen:
            u, v = x[c, j]
            rows += [w[c, j] * (u * P[c, 2] - P[c, 0]), w[c, j] * (v * P[c, 2] - P[c, 1])]
        _, _, vt = np.linalg.svd(np.asarray(rows))
        h = vt[-1]
        if abs(h[3]) < 1e-12:
            continue
        X = h[:3] / h[3]
        depths = np.array([P[c, 2] @ np.append(X, 1.0) for c in seen])
        if (depths > 0).all():
            out[j], ok[j] = X, True
    return out, ok


def depth_scale(fitted, reference, ok=None) -> float:
    """The scale ``s`` about the source camera's centre that best takes the fitted points to the reference points
    (least squares: ``s = sum(f . r) / sum(f . f)``); both (J, 3) in the source camera's frame, `ok` (J,) the
    points to use.

    One photo cannot tell a big person far away from a small one close by: every ``s * body`` projects to the
    same image. Scaling by ``s`` changes nothing in the source view and removes exactly that ambiguity, as the
    Procrustes alignment of PA-MPJPE removes the pose's. Returns nan with fewer than three points."""
    f = np.asarray(fitted, np.float64).reshape(-1, 3)
    r = np.asarray(reference, np.float64).reshape(-1, 3)
    use = np.ones(len(f), bool) if ok is None else np.asarray(ok, bool).reshape(-1)
    if use.sum() < 3:
        return float("nan")
    f, r = f[use], r[use]
    return float((f * r).sum() / max((f * f).sum(), 1e-12))
