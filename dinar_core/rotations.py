"""Rotation helpers (axis-angle <-> matrix, elementary rotations) in torch, shared by the body models and the fit."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """Rodrigues' formula, smooth at zero: aa (..., 3) -> (..., 3, 3)."""
    theta2 = (aa * aa).sum(-1, keepdim=True)  # (..., 1)
    small = theta2 < 1e-8
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)  # sin(t) / t
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / (theta * theta))  # (1 - cos t) / t^2
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def matrix_to_axis_angle(m: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) -> axis-angle (..., 3) with angle in [0, pi] (via a unit quaternion, which
    stays accurate near pi where the skew-part formula loses the axis). Not meant to be differentiated."""
    m = m.to(torch.float64)
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # Shepperd's method: pick the largest of 4 candidates for numerical stability.
    cands = torch.stack([tr, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    best = cands.argmax(-1)
    q = torch.zeros(*m.shape[:-2], 4, dtype=m.dtype, device=m.device)  # (w, x, y, z)
    for i in range(4):
        sel = best == i
        if not sel.any():
            continue
        r = m[sel]
        if i == 0:
            s = torch.sqrt(1.0 + r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]) * 2
            qq = torch.stack([0.25 * s, (r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s,
                              (r[:, 1, 0] - r[:, 0, 1]) / s], -1)
        elif i == 1:
            s = torch.sqrt(1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2]) * 2
            qq = torch.stack([(r[:, 2, 1] - r[:, 1, 2]) / s, 0.25 * s, (r[:, 0, 1] + r[:, 1, 0]) / s,
                              (r[:, 0, 2] + r[:, 2, 0]) / s], -1)
        elif i == 2:
            s = torch.sqrt(1.0 + r[:, 1, 1] - r[:, 0, 0] - r[:, 2, 2]) * 2
            qq = torch.stack([(r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 0, 1] + r[:, 1, 0]) / s, 0.25 * s,
                              (r[:, 1, 2] + r[:, 2, 1]) / s], -1)
        else:
            s = torch.sqrt(1.0 + r[:, 2, 2] - r[:, 0, 0] - r[:, 1, 1]) * 2
            qq = torch.stack([(r[:, 1, 0] - r[:, 0, 1]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s,
                              (r[:, 1, 2] + r[:, 2, 1]) / s, 0.25 * s], -1)
        q[sel] = qq
    q = q * torch.where(q[..., :1] < 0, -1.0, 1.0)  # w >= 0: angle in [0, pi]
    vec = q[..., 1:]
    sin_half = vec.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    scale = torch.where(sin_half > 1e-12, angle / sin_half.clamp_min(1e-12), torch.full_like(angle, 2.0))
    return (vec * scale).to(torch.float32)


def rot_x(angle: float) -> Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle: float) -> Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle: float) -> Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
