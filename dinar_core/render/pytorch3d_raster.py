"""PyTorch3D backend: ``pytorch3d.renderer.mesh.rasterize_meshes`` with DINAR's pixel convention.

PyTorch3D's screen NDC has +X to the left and +Y up, the shorter image side spanning [-1, 1], and samples pixel
``(i, j)`` at NDC ``x = (W - 2 (j + 0.5)) / s``, ``y = (H - 2 (i + 0.5)) / s`` with ``s = min(H, W)`` (its
``PixToNonSquareNdc`` applied to the flipped indices ``W - 1 - j``, ``H - 1 - i``). So a point at DINAR pixel
coordinates ``(u, v)`` (centres at j + 0.5) goes to NDC ``((W - 2u) / s, (H - 2v) / s)``: the two axis flips are a
180-degree rotation, which keeps the winding, and the depth z is passed through for perspective correction.

The faces each batch element may draw (depths >= z_min, front-facing, non-degenerate) are chosen by
``types.screen_faces``, the rule every backend shares, and only those are given to PyTorch3D (its own back-face
culling and near clipping are left off), so the backends differ only in ties at shared edges.
Slow on the CPU (tens of seconds for SMPL-X at 512^2): meant for CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dinar_core.render.types import RasterizerConfig, screen_faces


@dataclass
class PyTorch3DFragments:
    """PyTorch3D's own output, mapped to DINAR's face ids.

    pix_to_face: (B, H, W) int64 index into ``faces`` (-1 background); bary: (B, H, W, 3) PyTorch3D's
    perspective-correct barycentrics (-1 background); zbuf: (B, H, W) depth (-1 background).
    ``rasterize`` keeps only ``pix_to_face`` and recomputes the rest; the others serve to cross-check conventions.
    """

    pix_to_face: Tensor
    bary: Tensor
    zbuf: Tensor


def pixels_to_pytorch3d_ndc(xy: Tensor, image_size: tuple[int, int]) -> Tensor:
    """DINAR pixel coordinates (..., 2) (x right, y down, centres at j + 0.5) -> PyTorch3D screen NDC (..., 2)."""
    H, W = image_size
    s = float(min(H, W))
    return torch.stack([(W - 2.0 * xy[..., 0]) / s, (H - 2.0 * xy[..., 1]) / s], dim=-1)


def rasterize_pytorch3d(verts_pix: Tensor, faces: Tensor, image_size: tuple[int, int],
                        config: RasterizerConfig | None = None) -> PyTorch3DFragments:
    """Visible face per pixel with PyTorch3D. verts_pix: (B, V, 3) homogeneous pixel coords; faces: (F, 3) int64.

    Not differentiable here (``rasterize`` recomputes differentiable barycentrics from ``pix_to_face``).
    """
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
    from pytorch3d.structures import Meshes

    config = config or RasterizerConfig()
    H, W = image_size
    B = verts_pix.shape[0]
    dev = verts_pix.device
    with torch.no_grad():
        sf = screen_faces(verts_pix, faces, config)
        z = verts_pix[..., 2].to(torch.float32)
        xy = verts_pix[..., :2].to(torch.float32) / z.clamp_min(config.z_min)[..., None]
        ndc = torch.cat([pixels_to_pytorch3d_ndc(xy, (H, W)), z[..., None]], dim=-1)  # (B, V, 3)
        kept = [torch.nonzero(sf.valid[b]).squeeze(1) for b in range(B)]  # original face ids per element
        if sum(k.numel() for k in kept) == 0:
            empty = torch.full((B, H, W), -1, dtype=torch.int64, device=dev)
            return PyTorch3DFragments(empty, torch.full((B, H, W, 3), -1.0, device=dev), empty.float())
        meshes = Meshes(verts=[ndc[b] for b in range(B)], faces=[faces[k] for k in kept])
        on_cpu = dev.type == "cpu"
        p2f, zbuf, bary, _ = rasterize_meshes(
            meshes, image_size=(H, W), blur_radius=0.0, faces_per_pixel=1,
            bin_size=0 if on_cpu else config.bin_size, max_faces_per_bin=None if on_cpu else config.max_faces_per_bin,
            perspective_correct=True, clip_barycentric_coords=False, cull_backfaces=False)
        lookup = torch.cat(kept)  # packed face index -> original face id
        p2f = p2f[..., 0]
        pix_to_face = torch.where(p2f >= 0, lookup[p2f.clamp_min(0)], torch.full_like(p2f, -1))
    return PyTorch3DFragments(pix_to_face=pix_to_face, bary=bary[..., 0, :], zbuf=zbuf[..., 0])


def pix_to_face_pytorch3d(verts_pix: Tensor, faces: Tensor, image_size: tuple[int, int],
                          config: RasterizerConfig | None = None) -> Tensor:
    """The registered backend (``rasterizer.BACKENDS``): :func:`rasterize_pytorch3d`'s pix_to_face (B, H, W)."""
    return rasterize_pytorch3d(verts_pix, faces, image_size, config).pix_to_face
