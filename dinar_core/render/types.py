"""What the rasterizer's front end (``rasterizer``) and its backends (``torch_raster``, ``numba_raster``,
``pytorch3d_raster``) share: the config, the result type, the backend signature and the rule that decides which
faces a backend may draw. Backends import this module only, never the front end, and the front end finds them
through its registry (``rasterizer.BACKENDS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

import torch
from torch import Tensor

Backend = Literal["auto", "torch", "pytorch3d", "numba"]

UV_BACKGROUND = -10.0
"""Value of the UV map outside the body, as DINAR's rasterizer sets it (``negbg``)."""

ZBUF_BACKGROUND = -1.0
"""Depth buffer value where no face is visible (PyTorch3D's convention; keeps ``zbuf * mask`` finite)."""


@dataclass(frozen=True)
class RasterizerConfig:
    """How to rasterize. Defaults reproduce DINAR's rasterizer."""

    backend: Backend = "auto"
    """`torch`: vectorised torch rasterizer (CPU or CUDA; an SMPL-X-sized mesh at 512^2 takes ~18 ms on 2 CPU
    threads, ~28 ms on 1, barycentrics included); `pytorch3d`: PyTorch3D's ``rasterize_meshes`` (fast on CUDA,
    seconds per frame on the CPU); `numba`: a compiled CPU loop (~3 ms for the visible faces, ~9-15 ms with the
    barycentrics; CPU tensors only). Figures: ``bench/rasterizer.py``.
    `auto`: `pytorch3d` for CUDA tensors, `torch` on the CPU."""
    z_min: float = 1e-5
    """Faces with any vertex depth below this are skipped (DINAR's value)."""
    cull_backfaces: bool = True
    """Draw only faces that run counter-clockwise on the screen (DINAR draws one winding only)."""
    max_pairs_per_chunk: int = 1 << 21
    """`torch` backend: candidate (face, pixel) pairs processed at once; bounds memory (~60 bytes a pair)."""
    bin_size: int | None = None
    """`pytorch3d` backend on CUDA: coarse-to-fine bin size (None: PyTorch3D's heuristic). The CPU uses 0 (naive)."""
    max_faces_per_bin: int | None = None
    """`pytorch3d` backend on CUDA: PyTorch3D's per-bin face limit (None: its default)."""


@dataclass
class Fragments:
    """Per-pixel rasterization result of a batch of meshes sharing one face list.

    pix_to_face: (B, H, W) int64, index into ``faces`` (not packed over the batch) of the visible face; -1 where
        no face is visible.
    bary: (B, H, W, 3) perspective-correct barycentric weights of the visible face's 3 vertices (sum to 1;
        0 where uncovered). Differentiable w.r.t. the vertex positions.
    zbuf: (B, H, W) depth (camera z) of the visible surface at the pixel centre; -1 where uncovered
        (:data:`ZBUF_BACKGROUND`). Differentiable.
    mask: (B, 1, H, W) bool, True where a face is visible (DINAR's ``uv_mask``).
    """

    pix_to_face: Tensor
    bary: Tensor
    zbuf: Tensor
    mask: Tensor

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.pix_to_face.shape[1]), int(self.pix_to_face.shape[2])


class VisibleFaces(Protocol):
    """A backend: which face is visible at each pixel.

    ``(verts_pix (B, V, 3) homogeneous pixel coordinates, faces (F, 3) int64, image_size (H, W), config)`` ->
    pix_to_face (B, H, W) int64, -1 where no face is visible. Not differentiable (integer output); the front end
    recomputes differentiable barycentrics from it.
    """

    def __call__(self, verts_pix: Tensor, faces: Tensor, image_size: tuple[int, int],
                 config: RasterizerConfig | None = None) -> Tensor: ...


class ScreenFaces(NamedTuple):
    """Faces on the screen, float64. xy: (B, F, 3, 2) pixels; z: (B, F, 3) depths; area2: (B, F) twice the signed
    screen area (negative = counter-clockwise on the screen = front face); valid: (B, F) bool, the faces a
    backend may draw (all depths >= z_min, finite, non-degenerate, front-facing when culling)."""

    xy: Tensor
    z: Tensor
    area2: Tensor
    valid: Tensor


MIN_AREA2 = 1e-9
"""Twice the screen area in pixels^2 below which a face is degenerate and drawn by no backend."""


def screen_faces(verts_pix: Tensor, faces: Tensor, config: RasterizerConfig) -> ScreenFaces:
    """Project the faces and decide which ones a backend may draw (the rule shared by all backends).

    verts_pix: (B, V, 3) homogeneous pixel coordinates; faces: (F, 3) int64. See :class:`ScreenFaces`.
    """
    v = verts_pix.detach().to(torch.float64)
    z = v[..., 2]  # (B, V)
    xy = v[..., :2] / z.clamp_min(config.z_min)[..., None]  # (B, V, 2); faces with small z are invalid anyway
    tri = xy[:, faces]  # (B, F, 3, 2)
    tz = z[:, faces]  # (B, F, 3)
    e1 = tri[:, :, 1] - tri[:, :, 0]
    e2 = tri[:, :, 2] - tri[:, :, 0]
    area2 = e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]  # (B, F)
    valid = (tz >= config.z_min).all(-1) & torch.isfinite(area2)
    valid &= (area2 < -MIN_AREA2) if config.cull_backfaces else (area2.abs() > MIN_AREA2)
    return ScreenFaces(tri, tz, area2, valid)
