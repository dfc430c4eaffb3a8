"""Textured rendering of the body: rasterize, interpolate UV (DINAR's UV map), sample the texture bilinearly.

``render_textured`` draws any pose, camera and resolution as RGBA (unlit or lit by a fixed Lambert + ambient
light, optionally supersampled for anti-aliased silhouettes); ``views`` gives front / back / side renders and
``turntable`` the frames of a full turn about the vertical axis through the body's centre. Camera conventions are
DINAR's (``docs/conventions.md``): camera space x right, y down (so "vertical" is the camera's y axis), z forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Literal, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dinar_core.render.camera import apply_K, make_K
from dinar_core.render.rasterizer import Fragments, MeshRasterizer, interpolate
from dinar_core.texture.layout import UVLayout, check_layout, vertex_normals

Background = Union[Literal["white", "transparent"], Sequence[float]]
Shading = Literal["lit", "unlit"]

LIGHT_DIRECTION = (-0.35, -0.55, -1.0)
"""Direction towards the render light in camera space (x right, y down, z forward): from above, a little to the
left, and from the camera's side; fixed to the camera, so a turning body is lit on whatever side faces it."""
AMBIENT = 0.4
"""Lit renders: colour x (AMBIENT + (1 - AMBIENT) x max(0, n . l)), so no side is black and a surface facing the
light keeps the texture's colour."""


@dataclass
class TexturedRender:
    """rgba: (B, 4, H, W) float32 in [0, 1]: RGB composited over the background (over nothing for
    ``transparent``: RGB is 0 where alpha is 0, straight colour elsewhere), alpha = 1 on the body;
    fragments: the rasterization (pix_to_face, bary, zbuf, mask)."""

    rgba: Tensor
    fragments: Fragments

    def to_uint8(self) -> np.ndarray:
        """(B, H, W, 4) uint8 RGBA."""
        return (self.rgba.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _texture_tensor(texture, batch: int, device: torch.device) -> Tensor:
    """(T, T, 3) or (B, 3, T, T), uint8 or float in [0, 1] -> (1 or B, 3, T, T) float32."""
    t = torch.as_tensor(np.asarray(texture) if not isinstance(texture, Tensor) else texture).to(device)
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    if t.ndim == 3 and t.shape[-1] == 3:
        t = t.permute(2, 0, 1)[None]
    if t.ndim != 4 or t.shape[1] != 3 or t.shape[0] not in (1, batch):
        raise ValueError(f"texture must be (T, T, 3) or (B={batch}, 3, T, T), got {tuple(t.shape)}")
    return t


def _background(background: Background, device: torch.device) -> Tensor | None:
    """(3,) colour, or None for transparent."""
    if isinstance(background, str):
        if background == "white":
            return torch.ones(3, device=device)
        if background == "transparent":
            return None
        raise ValueError(f"background must be 'white', 'transparent' or an RGB triple, got {background!r}")
    rgb = torch.as_tensor(list(background), dtype=torch.float32, device=device)
    if rgb.shape != (3,):
        raise ValueError(f"background RGB must have 3 values, got {tuple(rgb.shape)}")
    return rgb / 255.0 if float(rgb.max()) > 1.0 else rgb


def lambert(normals: Tensor, ambient: float = AMBIENT, direction=LIGHT_DIRECTION) -> Tensor:
    """(B, 3, H, W) unit normals (camera space) -> (B, 1, H, W) Lambert + ambient shading in [ambient, 1]."""
    d = torch.tensor(direction, dtype=normals.dtype, device=normals.device)
    d = d / d.norm()
    cos = (normals * d.view(1, 3, 1, 1)).sum(1, keepdim=True)
    return ambient + (1.0 - ambient) * cos.clamp_min(0.0)


def render_textured(verts_cam: Tensor, K: Tensor, faces: Tensor | None, uv_layout: UVLayout, texture,
                    image_size: tuple[int, int], background: Background = "white",
                    rasterizer: MeshRasterizer | None = None, shading: Shading = "unlit",
                    supersample: int = 1) -> TexturedRender:
    """Render the textured body.

    verts_cam: (B, V, 3) or (V, 3) camera-space body vertices; K: (3, 3) or (B, 3, 3); faces: (F, 3) body faces in
    the layout's face order (``uv_layout.vertex_index[uv_layout.uv_faces]``; None computes exactly that);
    uv_layout: the body's UV layout; texture: (T, T, 3) or (B, 3, T, T), uint8 or float in [0, 1];
    image_size: (H, W); background: 'white', 'transparent' or an RGB triple (0..1 or 0..255);
    rasterizer: injected :class:`MeshRasterizer` (default backend otherwise); shading: `unlit` (the texture's
    colour, what round trips and the evaluation compare) or `lit` (:func:`lambert` from ``LIGHT_DIRECTION``, so the
    avatar has shape); supersample: an integer factor s >= 1, the body is drawn at (s H, s W) and box-filtered
    down, so silhouette pixels get fractional alpha (anti-aliased edges; the fragments are then at s H x s W).
    Returns :class:`TexturedRender` with rgba (B, 4, H, W).
    """
    if shading not in ("lit", "unlit"):
        raise ValueError(f"shading must be 'lit' or 'unlit', got {shading!r}")
    s = int(supersample)
    if s < 1 or s != supersample:
        raise ValueError(f"supersample must be an integer >= 1, got {supersample}")
    if verts_cam.ndim == 2:
        verts_cam = verts_cam[None]
    if verts_cam.ndim != 3 or verts_cam.shape[-1] != 3:
        raise ValueError(f"verts_cam must be (B, V, 3) or (V, 3), got {tuple(verts_cam.shape)}")
    device = verts_cam.device
    check_layout(uv_layout, verts_cam.shape[1])
    uv_faces = uv_layout.uv_faces.to(device)
    expected = uv_layout.vertex_index.to(device)[uv_faces]
    if faces is None:
        faces = expected
    elif faces.shape != uv_faces.shape:
        raise ValueError(f"faces must be (F={uv_faces.shape[0]}, 3) like the layout's uv_faces, got "
                         f"{tuple(faces.shape)}")
    B = verts_cam.shape[0]
    tex = _texture_tensor(texture, B, device)
    bg = _background(background, device)
    rasterizer = rasterizer or MeshRasterizer()
    K_s = K if s == 1 else torch.diag(torch.tensor([float(s), float(s), 1.0], dtype=K.dtype, device=K.device)) @ K
    size = (int(image_size[0]) * s, int(image_size[1]) * s)
    frags = rasterizer(apply_K(verts_cam, K_s), faces.to(device), size)
    uv = interpolate(frags, uv_faces, uv_layout.uv.to(device=device, dtype=verts_cam.dtype))  # (B, 2, sH, sW)
    grid = (uv * 2.0 - 1.0).permute(0, 2, 3, 1)  # (B, sH, sW, 2): DINAR's UV map as a grid_sample grid
    if tex.shape[0] == 1 and B > 1:
        tex = tex.expand(B, -1, -1, -1)
    rgb = F.grid_sample(tex, grid.to(tex.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    if shading == "lit":
        normals = interpolate(frags, faces.to(device), vertex_normals(verts_cam.detach(), faces.to(device)))
        # |n| by hand: torch's vector norm over the channel axis of an NCHW image is ~20x slower on the CPU
        length = (normals * normals).sum(1, keepdim=True).sqrt().clamp_min(1e-12)
        rgb = rgb * lambert(normals / length).to(rgb)
    alpha = frags.mask.to(rgb.dtype)  # (B, 1, sH, sW)
    rgb = rgb * alpha  # premultiplied
    if s > 1:
        rgb, alpha = F.avg_pool2d(rgb, s), F.avg_pool2d(alpha, s)  # (B, 3 | 1, H, W), coverage in alpha
    if bg is None:
        rgb = rgb / alpha.clamp_min(1e-12) * (alpha > 0)  # straight colour where covered
    else:
        rgb = rgb + bg.view(1, 3, 1, 1) * (1.0 - alpha)
    return TexturedRender(rgba=torch.cat([rgb, alpha], dim=1), fragments=frags)


def rotate_about_vertical(verts_cam: Tensor, angle_deg: float, centre: Tensor | None = None) -> Tensor:
    """Turn the body about the camera's vertical (y) axis through ``centre``.

    verts_cam: (B, V, 3); centre: (B, 3) or (3,), default the middle of each body's bounding box. Right-handed about
    +y (which points down): a positive angle turns the side facing the camera towards the image's left.
    Returns (B, V, 3).
    """
    if verts_cam.ndim != 3 or verts_cam.shape[-1] != 3:
        raise ValueError(f"verts_cam must be (B, V, 3), got {tuple(verts_cam.shape)}")
    if centre is None:
        centre = 0.5 * (verts_cam.amin(1) + verts_cam.amax(1))  # (B, 3)
    centre = centre.reshape(-1, 1, 3).to(verts_cam)
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    R = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=verts_cam.dtype, device=verts_cam.device)
    return (verts_cam - centre) @ R.T + centre


def framing_camera(verts_cam: Tensor, image_size: tuple[int, int], fill: float = 0.85,
                   focal: float | None = None) -> tuple[Tensor, Tensor]:
    """A camera that frames the body: the body is shifted so its box centre is on the optical axis at a depth where
    its larger screen extent fills ``fill`` of the image.

    verts_cam: (V, 3) or (1, V, 3); image_size: (H, W); focal: pixels (default: 2 x the image height, a mild
    perspective). Returns (shifted verts (1, V, 3), K (3, 3)).
    """
    if verts_cam.ndim == 2:
        verts_cam = verts_cam[None]
    H, W = image_size
    focal = float(focal or 2.0 * H)
    lo, hi = verts_cam[0].amin(0), verts_cam[0].amax(0)
    centre = 0.5 * (lo + hi)
    size = hi - lo
    depth = max(focal * float(size[1]) / (fill * H), focal * float(size[0]) / (fill * W)) + 0.5 * float(size[2])
    shift = torch.stack([-centre[0], -centre[1], depth - centre[2]])
    return verts_cam + shift, make_K(H, W, focal, device=verts_cam.device, dtype=verts_cam.dtype)


@dataclass
class Views:
    """Front, back and side renders of one body (each a :class:`TexturedRender` with B = 1)."""

    front: TexturedRender
    back: TexturedRender
    side: TexturedRender


def views(verts_cam: Tensor, K: Tensor, uv_layout: UVLayout, texture, image_size: tuple[int, int],
          background: Background = "white", rasterizer: MeshRasterizer | None = None,
          faces: Tensor | None = None, shading: Shading = "lit", supersample: int = 2) -> Views:
    """Front (as seen by the camera), back (turned 180 deg) and side (turned 90 deg) renders about the vertical
    axis through the body's centre, lit and anti-aliased by default (see :func:`render_textured`).
    verts_cam: (V, 3) or (1, V, 3); K: (3, 3)."""
    if verts_cam.ndim == 2:
        verts_cam = verts_cam[None]
    renders = [render_textured(rotate_about_vertical(verts_cam, a), K, faces, uv_layout, texture, image_size,
                               background, rasterizer, shading, supersample) for a in (0.0, 180.0, 90.0)]
    return Views(*renders)


def turntable(verts_cam: Tensor, K: Tensor, uv_layout: UVLayout, texture, image_size: tuple[int, int],
              num_frames: int = 60, background: Background = "white", rasterizer: MeshRasterizer | None = None,
              faces: Tensor | None = None, shading: Shading = "lit", supersample: int = 2
              ) -> Iterator[TexturedRender]:
    """Frames of one full turn about the vertical axis through the body's centre (frame k at 360 k / n deg),
    yielded one at a time (B = 1) so a long video never holds all frames; lit and anti-aliased by default."""
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if verts_cam.ndim == 2:
        verts_cam = verts_cam[None]
    centre = 0.5 * (verts_cam.amin(1) + verts_cam.amax(1))
    for k in range(num_frames):
        yield render_textured(rotate_about_vertical(verts_cam, 360.0 * k / num_frames, centre), K, faces, uv_layout,
                              texture, image_size, background, rasterizer, shading, supersample)
