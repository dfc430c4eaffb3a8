"""Unwrap a photo into the body's UV texture, with a per-texel confidence.

Two methods (``ClassicAvatarConfig.unwrap_method``):

- ``gather`` (default): every texel inside the UV charts takes its 3D point on the posed mesh, projects it with K,
  is kept if the depth buffer says that point is the visible surface there, and samples the photo bilinearly.
  Every seen texel gets a value whatever the ratio of texture to photo resolution.
- ``splat`` (DINAR's ``sample_values_by_uv`` in spirit): every visible body pixel writes its colour into the
  texel its rasterized UV falls in (3x3 neighbours too when they got nothing). A texel smaller than a pixel's
  footprint gets no pixel: holes at 1024^2 or for a small person.

Measured in the synthetic round trip (docs/texture.md): gather is sharper and hole-free, and as fast.

Confidence in [0, 1] = visible x inside the eroded person mask (eroded more in larger photos, and ramped up over
``rim_feather_px`` from its edge) x away from self-occlusion edges x the
normal-to-camera weight ``((cos - min_cos) / (1 - min_cos)) ** angle_power`` (DINAR's ``normal_angles`` is the
clipped cosine; its ``erode_occlusions`` drops a dilated band at UV discontinuities, as the depth-jump band here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dinar_core.render.camera import apply_K
from dinar_core.render.rasterizer import MeshRasterizer, interpolate
from dinar_core.texture.config import ClassicAvatarConfig
from dinar_core.texture.layout import UVLayout, check_layout, texel_map, texel_points, vertex_normals


@dataclass
class UnwrapResult:
    """A partial texture seen in one photo.

    texture: (T, T, 3) float32 RGB in [0, 1] (0 where unseen).
    confidence: (T, T) float32 in [0, 1]; 0 = unseen (or outside the charts).
    inside: (T, T) bool, texels inside the UV charts.
    """

    texture: Tensor
    confidence: Tensor
    inside: Tensor

    @property
    def seen(self) -> Tensor:
        """(T, T) bool, texels with confidence > 0."""
        return self.confidence > 0


def _image_tensor(image, device: torch.device) -> Tensor:
    """(H, W, 3) uint8 numpy/torch or float in [0, 1] -> (H, W, 3) float32 on device."""
    t = torch.as_tensor(np.asarray(image) if not isinstance(image, Tensor) else image)
    if t.ndim != 3 or t.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got {tuple(t.shape)}")
    t = t.to(device)
    return t.float() / 255.0 if t.dtype == torch.uint8 else t.float()


def _mask_tensor(mask, shape: tuple[int, int], device: torch.device) -> Tensor:
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, Tensor) else mask)
    if m.ndim == 3:
        m = m[..., 0]  # DINAR reads channel 0
    if tuple(m.shape) != shape:
        raise ValueError(f"mask must be (H, W) = {shape} like the image, got {tuple(m.shape)}")
    m = m.to(device)
    return (m > (0.2 * 255 if m.dtype == torch.uint8 else 0.2)) if m.dtype != torch.bool else m


def _erode(mask: Tensor, r: int) -> Tensor:
    """(H, W) bool eroded by a (2r+1)^2 square."""
    if r <= 0:
        return mask
    return ~(F.max_pool2d((~mask).float()[None, None], 2 * r + 1, 1, r)[0, 0] > 0)


def _dilate(mask: Tensor, r: int) -> Tensor:
    if r <= 0:
        return mask
    return F.max_pool2d(mask.float()[None, None], 2 * r + 1, 1, r)[0, 0] > 0


def occlusion_edges(zbuf: Tensor, jump: float) -> Tensor:
    """Pixels on a self-occlusion edge: a 4-neighbour is covered too and its depth differs by more than ``jump``.

    zbuf: (H, W) depth, <= 0 where uncovered. Returns (H, W) bool (both sides of the edge are marked).
    """
    cov = zbuf > 0
    edge = torch.zeros_like(cov)
    dz = (zbuf[1:] - zbuf[:-1]).abs() > jump
    both = cov[1:] & cov[:-1] & dz
    edge[1:] |= both
    edge[:-1] |= both
    dz = (zbuf[:, 1:] - zbuf[:, :-1]).abs() > jump
    both = cov[:, 1:] & cov[:, :-1] & dz
    edge[:, 1:] |= both
    edge[:, :-1] |= both
    return edge


def angle_weight(cos: Tensor, config: ClassicAvatarConfig) -> Tensor:
    """Normal-to-camera weight in [0, 1] from the cosine between the normal and the ray to the camera."""
    w = ((cos - config.min_cos) / (1.0 - config.min_cos)).clamp(0.0, 1.0)
    return w if config.angle_power == 1.0 else w ** config.angle_power


def _check(verts_cam: Tensor, K: Tensor, layout: UVLayout) -> Tensor:
    if verts_cam.ndim == 2:
        verts_cam = verts_cam[None]
    if verts_cam.ndim != 3 or verts_cam.shape[0] != 1 or verts_cam.shape[-1] != 3:
        raise ValueError(f"verts_cam must be (V, 3) or (1, V, 3), got {tuple(verts_cam.shape)}")
    if K.shape != (3, 3):
        raise ValueError(f"K must be (3, 3), got {tuple(K.shape)}")
    check_layout(layout, verts_cam.shape[1])
    return verts_cam


def unwrap(image, mask, verts_cam: Tensor, K: Tensor, layout: UVLayout, config: ClassicAvatarConfig | None = None,
           rasterizer: MeshRasterizer | None = None) -> UnwrapResult:
    """Sample a photo into the UV texture of the posed body that was fitted to it.

    image: (H, W, 3) RGB, uint8 or float in [0, 1] (numpy or torch); mask: (H, W) person mask (bool, 0/255, or a
    3-channel segm whose channel 0 is used, > 0.2 as DINAR); verts_cam: (V, 3) or (1, V, 3) posed body vertices in
    camera space (DINAR's frame: x right, y down, z forward); K: (3, 3) intrinsics of the photo; layout: the body's
    UV layout (``layout.vertex_index`` indexes ``verts_cam``). config: texture size, method, weights.
    rasterizer: injected :class:`MeshRasterizer` (default: the CPU default backend).
    Returns :class:`UnwrapResult` with (T, T) maps on ``verts_cam.device``.
    """
    config = config or ClassicAvatarConfig()
    config.validate()
    verts_cam = _check(verts_cam, K, layout)
    device = verts_cam.device
    img = _image_tensor(image, device)
    H, W = img.shape[:2]
    person = _mask_tensor(mask, (H, W), device)
    rasterizer = rasterizer or MeshRasterizer()
    verts_cam = verts_cam.detach().float()
    K = K.to(verts_cam)
    layout_dev = type(layout)(layout.uv.to(device), layout.uv_faces.to(device), layout.vertex_index.to(device))
    faces = layout_dev.vertex_index[layout_dev.uv_faces]  # (F, 3) body faces, layout face order
    frags = rasterizer(apply_K(verts_cam, K), faces, (H, W))
    zbuf = frags.zbuf[0]  # (H, W)
    eroded = _erode(person, rim_erode_px(config, (H, W)))
    good_px = eroded & (zbuf > 0)
    good_px &= ~_dilate(occlusion_edges(zbuf, config.occlusion_depth_jump), config.occlusion_edge_px)
    rim = rim_weight(eroded, config.rim_feather_px)
    normals = vertex_normals(verts_cam, faces)  # (1, V, 3)
    if config.unwrap_method == "gather":
        return _gather(img, good_px, zbuf, verts_cam, normals, K, layout_dev, config, rim)
    return _splat(img, good_px, frags, verts_cam, normals, K, layout_dev, config, rim)


def rim_erode_px(config: ClassicAvatarConfig, image_size: tuple[int, int]) -> int:
    """Pixels the person mask is eroded by: ``mask_erode_px``, scaled up for photos larger than
    ``erode_reference_px``."""
    r = int(config.mask_erode_px)
    if config.erode_reference_px > 0 and min(image_size) > config.erode_reference_px:
        r = int(round(r * min(image_size) / config.erode_reference_px))
    return r


def rim_weight(mask: Tensor, feather_px: float) -> Tensor:
    """(H, W) float in [0, 1]: distance (px) to the outside of ``mask`` / feather_px, clamped (1 when feather 0)."""
    if feather_px <= 0:
        return torch.ones(mask.shape, device=mask.device)
    from scipy.ndimage import distance_transform_edt

    d = distance_transform_edt(mask.cpu().numpy()).astype(np.float32)
    return torch.from_numpy(np.clip((d - 0.5) / feather_px, 0.0, 1.0)).to(mask.device)


def _gather(img: Tensor, good_px: Tensor, zbuf: Tensor, verts_cam: Tensor, normals: Tensor, K: Tensor,
            layout: UVLayout, config: ClassicAvatarConfig, rim: Tensor) -> UnwrapResult:
    T = config.texture_size
    H, W = img.shape[:2]
    tmap = texel_map(layout, T)
    flat = tmap.flat.to(img.device)
    pts, nrm = texel_points(verts_cam, layout, tmap, normals)  # (1, N, 3) x2
    pts, nrm = pts[0], nrm[0]
    hom = pts @ K.T  # (N, 3)
    z = hom[:, 2]
    xy = hom[:, :2] / z.clamp_min(1e-9)[:, None]  # (N, 2) pixels
    col = torch.floor(xy[:, 0]).long()
    row = torch.floor(xy[:, 1]).long()
    in_img = (z > 0) & (col >= 0) & (col < W) & (row >= 0) & (row < H)
    pix = row.clamp(0, H - 1) * W + col.clamp(0, W - 1)
    z_vis = zbuf.reshape(-1)[pix]
    visible = in_img & (z_vis > 0) & (z <= z_vis + config.depth_tolerance) & good_px.reshape(-1)[pix]
    cos = (nrm * (-pts / pts.norm(dim=-1, keepdim=True).clamp_min(1e-12))).sum(-1)  # to the camera at the origin
    conf = angle_weight(cos, config) * visible.to(cos.dtype) * rim.reshape(-1)[pix]  # (N,)
    grid = torch.stack([xy[:, 0] / W * 2 - 1, xy[:, 1] / H * 2 - 1], dim=-1)  # align_corners=False pixel centres
    rgb = F.grid_sample(img.permute(2, 0, 1)[None], grid[None, None], mode="bilinear", padding_mode="border",
                        align_corners=False)[0, :, 0].T  # (N, 3)
    texture = torch.zeros(T * T, 3, device=img.device)
    confidence = torch.zeros(T * T, device=img.device)
    texture[flat] = torch.where(conf[:, None] > 0, rgb, torch.zeros_like(rgb))
    confidence[flat] = conf
    return UnwrapResult(texture.view(T, T, 3), confidence.view(T, T), tmap.inside.to(img.device))


def _splat(img: Tensor, good_px: Tensor, frags, verts_cam: Tensor, normals: Tensor, K: Tensor, layout: UVLayout,
           config: ClassicAvatarConfig, rim: Tensor) -> UnwrapResult:
    T = config.texture_size
    H, W = img.shape[:2]
    tmap = texel_map(layout, T)
    faces = layout.vertex_index[layout.uv_faces]
    uv = interpolate(frags, layout.uv_faces, layout.uv.float())[0]  # (2, H, W)
    nrm = interpolate(frags, faces, normals[0])[0]  # (3, H, W)
    nrm = nrm / nrm.norm(dim=0, keepdim=True).clamp_min(1e-12)
    jj, ii = torch.meshgrid(torch.arange(W, device=img.device), torch.arange(H, device=img.device), indexing="xy")
    ray = torch.stack([jj + 0.5, ii + 0.5, torch.ones_like(jj, dtype=torch.float32)], 0).float()  # (3, H, W)
    ray = torch.linalg.solve(K, ray.reshape(3, -1)).reshape(3, H, W)
    cos = -(nrm * ray).sum(0) / ray.norm(dim=0)
    w = angle_weight(cos, config) * good_px.float() * rim  # (H, W)
    sel = torch.nonzero(w.reshape(-1) > 0).squeeze(1)
    u = (uv[0].reshape(-1)[sel] * T).floor().long().clamp(0, T - 1)
    v = (uv[1].reshape(-1)[sel] * T).floor().long().clamp(0, T - 1)
    wsel = w.reshape(-1)[sel]
    rgb = img.reshape(-1, 3)[sel]
    acc = torch.zeros(T * T, 3, device=img.device)
    wsum = torch.zeros(T * T, device=img.device)
    cnt = torch.zeros(T * T, device=img.device)
    idx = v * T + u
    acc.index_add_(0, idx, rgb * wsel[:, None])
    wsum.index_add_(0, idx, wsel)
    cnt.index_add_(0, idx, torch.ones_like(wsel))
    # DINAR also splats each pixel into its 3x3 neighbourhood; here only texels no pixel hit take those values.
    nacc = torch.zeros_like(acc)
    nw = torch.zeros_like(wsum)
    for dv in (-1, 0, 1):
        for du in (-1, 0, 1):
            if du == 0 and dv == 0:
                continue
            nidx = (v + dv).clamp(0, T - 1) * T + (u + du).clamp(0, T - 1)
            nacc.index_add_(0, nidx, rgb * wsel[:, None])
            nw.index_add_(0, nidx, wsel)
    hit = wsum > 0
    texture = torch.where(hit[:, None], acc / wsum.clamp_min(1e-12)[:, None], nacc / nw.clamp_min(1e-12)[:, None])
    confidence = torch.where(hit, wsum / cnt.clamp_min(1), 0.5 * nw / (nw > 0).float().mul(8).clamp_min(1))
    inside = tmap.inside.to(img.device).reshape(-1)
    confidence = torch.where(inside & ((wsum > 0) | (nw > 0)), confidence.clamp(0, 1), torch.zeros_like(confidence))
    texture = torch.where(confidence[:, None] > 0, texture, torch.zeros_like(texture))
    return UnwrapResult(texture.view(T, T, 3), confidence.view(T, T), inside.view(T, T))


def fuse_unwraps(results: list[UnwrapResult]) -> UnwrapResult:
    """Merge the unwraps of several photos of one person: colours averaged with confidence^2 weights (the best
    view dominates), confidence = the maximum."""
    if not results:
        raise ValueError("fuse_unwraps needs at least one UnwrapResult")
    shape = results[0].confidence.shape
    for r in results:
        if r.confidence.shape != shape:
            raise ValueError(f"all unwraps must have the same texture size, got {tuple(r.confidence.shape)} and "
                             f"{tuple(shape)}")
    w = torch.stack([r.confidence ** 2 for r in results])  # (P, T, T)
    rgb = torch.stack([r.texture for r in results])  # (P, T, T, 3)
    total = w.sum(0)
    texture = (rgb * w[..., None]).sum(0) / total.clamp_min(1e-12)[..., None]
    confidence = torch.stack([r.confidence for r in results]).amax(0)
    return UnwrapResult(torch.where(total[..., None] > 0, texture, torch.zeros_like(texture)), confidence,
                        results[0].inside)
