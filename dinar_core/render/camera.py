"""DINAR's pinhole camera: no rotation, x right, y down, z forward, fx = fy = 5000 px, principal point (W//2, H//2).

Three coordinate kinds appear in the renderer (see ``docs/conventions.md``):

- camera space ``verts_cam`` ``(B, V, 3)``: metres, z = depth in front of the camera;
- homogeneous pixel coordinates ``verts_pix = verts_cam @ K^T`` ``(B, V, 3)``: ``(x z, y z, z)`` where ``(x, y)`` are
  pixel coordinates (pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``). This is what DINAR hands to its
  rasterizer (it multiplies the SMPL-X vertices by K and rasterizes with an identity camera), and what
  :func:`dinar_core.render.rasterize` takes;
- pixel coordinates ``(B, V, 2)`` = ``verts_pix[..., :2] / verts_pix[..., 2:]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dinar_core.render.conventions import DINAR_FOCAL  # torch-free definition


def make_K(H: int, W: int, focal: float = DINAR_FOCAL, *, device: torch.device | str | None = None,
           dtype: torch.dtype = torch.float32) -> Tensor:
    """DINAR's intrinsics for an ``H x W`` image: ``[[f, 0, W//2], [0, f, H//2], [0, 0, 1]]``, shape ``(3, 3)``.

    The principal point is the integer ``(W // 2, H // 2)``, as in DINAR's data (not ``(W - 1) / 2``).
    """
    if H <= 0 or W <= 0:
        raise ValueError(f"image size must be positive, got H={H}, W={W}")
    return torch.tensor([[focal, 0.0, float(W // 2)], [0.0, focal, float(H // 2)], [0.0, 0.0, 1.0]],
                        device=device, dtype=dtype)


def _check_verts_K(verts: Tensor, K: Tensor) -> None:
    if verts.ndim != 3 or verts.shape[-1] != 3:
        raise ValueError(f"verts must be (B, V, 3), got {tuple(verts.shape)}")
    if K.shape[-2:] != (3, 3) or K.ndim not in (2, 3) or (K.ndim == 3 and K.shape[0] not in (1, verts.shape[0])):
        raise ValueError(f"K must be (3, 3) or (B, 3, 3) with B={verts.shape[0]}, got {tuple(K.shape)}")


def apply_K(verts_cam: Tensor, K: Tensor) -> Tensor:
    """Camera-space vertices to homogeneous pixel coordinates (DINAR's ``verts @ K.T``).

    verts_cam: (B, V, 3) camera space; K: (3, 3) or (B, 3, 3).
    Returns verts_pix: (B, V, 3) = (x z, y z, z) with (x, y) in pixels. Differentiable.
    """
    _check_verts_K(verts_cam, K)
    Kt = K.transpose(-1, -2).to(verts_cam)
    return verts_cam @ Kt  # (B, V, 3)


def project(verts_cam: Tensor, K: Tensor, eps: float = 1e-9) -> Tensor:
    """Pixel coordinates of camera-space points: ``(K X)_xy / (K X)_z``.

    verts_cam: (B, V, 3); K: (3, 3) or (B, 3, 3). Returns (B, V, 2) pixels (x right, y down, centres at j + 0.5).
    ``eps`` is added to the depth as DINAR's rasterizer does, so a point at z = 0 gives a large value, not NaN.
    """
    verts_pix = apply_K(verts_cam, K)
    return verts_pix[..., :2] / (verts_pix[..., 2:] + eps)  # (B, V, 2)
