"""Untextured, shaded renders of a mesh: the fit diagnostics' front and side views.

Images are (H, W, 3) uint8 RGB; meshes are camera-frame vertices (B, V, 3) with DINAR's camera K (B, 3, 3).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dinar_core.render.rasterizer import RasterizerConfig, interpolate, rasterize_camera


def vertex_normals(verts: Tensor, faces: Tensor) -> Tensor:
    """Area-weighted unit vertex normals. verts: (B, V, 3); faces: (F, 3) outward-wound. Returns (B, V, 3)."""
    if verts.ndim != 3 or verts.shape[-1] != 3:
        raise ValueError(f"verts must be (B, V, 3), got {tuple(verts.shape)}")
    faces = faces.to(device=verts.device, dtype=torch.int64)
    tri = verts[:, faces]  # (B, F, 3, 3)
    fn = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)  # (B, F, 3), |fn| = 2 area
    vn = torch.zeros_like(verts)
    for k in range(3):
        vn.index_add_(1, faces[:, k], fn)
    return vn / vn.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def shaded_render(verts_cam: Tensor, K: Tensor, faces: Tensor, image_size: tuple[int, int],
                  color: tuple[float, float, float] = (0.72, 0.78, 0.9), background: int = 255,
                  config: RasterizerConfig | None = None) -> np.ndarray:
    """Lambert-shaded render lit from the camera (a headlight), so every visible face has some light.

    verts_cam: (B, V, 3); K: (3, 3) or (B, 3, 3); faces: (F, 3). Returns (B, H, W, 3) uint8.
    """
    with torch.no_grad():
        frags = rasterize_camera(verts_cam, K, faces, image_size, config=config)
        normals = interpolate(frags, faces, vertex_normals(verts_cam, faces))  # (B, 3, H, W)
        # the camera looks along +z: a face turned to it has normal z < 0
        light = (-normals[:, 2:3]).clamp(0.0, 1.0) * 0.8 + 0.2  # (B, 1, H, W)
        rgb = light * torch.tensor(color, dtype=light.dtype, device=light.device).view(1, 3, 1, 1)
        mask = frags.mask.to(rgb.dtype)
        out = rgb * mask + (background / 255.0) * (1.0 - mask)
    return (out.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
