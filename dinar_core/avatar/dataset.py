"""DINAR's sample preparation (``dataloaders/from_folder.py``): photo + person mask + projected SMPL-X vertices ->
a square crop resized to the network size, with the camera updated to match.

Steps (all integer arithmetic as DINAR's, so crops agree pixel for pixel):

1. body box: the projected vertices' box (``int`` truncation), made square around its centre, scaled by 1.2;
2. mask box: the mask's nonzero rows/columns, scaled by 1.2, clipped to the image;
3. crop box: the union of both (not re-squared: the crop side is its width ``r - l``, rows ``[t, t + side)``);
4. crop with zero padding, resize to ``image_size`` with Pillow's bicubic filter (DINAR's ``resize_image``);
5. K' = diag(s, s, 1) [[1, 0, -l], [0, 1, -t], [0, 0, 1]] K with s = image_size / side; vertices likewise;
6. crop_mask: 1 where the crop lies inside the photo, extended to the borders beyond which no vertex falls.

Images are numpy arrays here (the caller reads files); outputs are torch tensors in a typed :class:`DinarSample`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image


@dataclass(frozen=True)
class Box:
    """(left, top, right, bottom) in integer pixels (right/bottom as DINAR computes them, see the functions)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def side(self) -> int:
        """The crop side DINAR uses: the box's width."""
        return self.right - self.left


def vertex_box(verts_pix: np.ndarray) -> Box:
    """Box of projected vertices, DINAR's ``get_ltrb_from_verts`` (``int`` truncates towards zero).

    verts_pix: (V, 3) homogeneous pixel coordinates (x z, y z, z).
    """
    if verts_pix.ndim != 2 or verts_pix.shape[1] != 3:
        raise ValueError(f"vertex_box: expected verts_pix (V, 3), got {verts_pix.shape}")
    xy = verts_pix[:, :2] / verts_pix[:, 2:]
    return Box(int(np.min(xy[:, 0])), int(np.min(xy[:, 1])), int(np.max(xy[:, 0])), int(np.max(xy[:, 1])))


def mask_box(mask: np.ndarray) -> Box:
    """Box of the nonzero pixels of a (H, W) mask: first/last nonzero column and row (inclusive indices)."""
    rows = np.nonzero(mask.sum(axis=1))[0]
    cols = np.nonzero(mask.sum(axis=0))[0]
    if rows.size == 0:
        raise ValueError("mask_box: the mask is empty (no person pixels)")
    return Box(int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1]))


def square_box(box: Box) -> Box:
    """Stretch the shorter side to the longer around the centre (DINAR's ``get_square_bbox``, floor divisions)."""
    l, t, r, b = box.left, box.top, box.right, box.bottom
    w, h = r - l, b - t
    if w > h:
        t = (t + b) // 2 - w // 2
        b = t + w
    else:
        l = (l + r) // 2 - h // 2
        r = l + h
    return Box(l, t, r, b)


def scale_box(box: Box, scale: float) -> Box:
    """Scale about the (floor) centre; new sizes truncated (DINAR's ``scale_bbox``)."""
    l, t, r, b = box.left, box.top, box.right, box.bottom
    cx, cy = (r + l) // 2, (b + t) // 2
    nw, nh = int(scale * (r - l)), int(scale * (b - t))
    nl, nt = cx - nw // 2, cy - nh // 2
    return Box(nl, nt, nl + nw, nt + nh)


def clip_box(box: Box, height: int, width: int) -> Box:
    """Clip to [0, W] x [0, H] (DINAR's ``correct_bbox``)."""
    return Box(max(0, box.left), max(0, box.top), min(width, box.right), min(height, box.bottom))


def union_box(a: Box, b: Box) -> Box:
    return Box(min(a.left, b.left), min(a.top, b.top), max(a.right, b.right), max(a.bottom, b.bottom))


def crop_box(verts_pix: np.ndarray, mask: np.ndarray, scale: float = 1.2) -> Box:
    """DINAR's crop box: union of the square, scaled vertex box and the scaled, clipped mask box.

    verts_pix: (V, 3) homogeneous pixel coordinates in the photo; mask: (H, W) person mask (nonzero = person).
    """
    h, w = mask.shape[:2]
    body = scale_box(square_box(vertex_box(verts_pix)), scale)
    person = clip_box(scale_box(mask_box(mask), scale), h, w)
    return union_box(body, person)


def crop_pad(image: np.ndarray, box: Box) -> np.ndarray:
    """Rows [top, top + side), columns [left, left + side) of `image` (H, W[, C]), zero outside the image."""
    side = box.side
    if side <= 0:
        raise ValueError(f"crop_pad: box {box} has no width")
    out = np.zeros((side, side) + image.shape[2:], dtype=image.dtype)
    h, w = image.shape[:2]
    y0, x0 = max(box.top, 0), max(box.left, 0)
    y1, x1 = min(box.top + side, h), min(box.left + side, w)
    if y1 > y0 and x1 > x0:
        out[y0 - box.top:y1 - box.top, x0 - box.left:x1 - box.left] = image[y0:y1, x0:x1]
    return out


def resize_pil(image: np.ndarray, size: int) -> np.ndarray:
    """DINAR's ``resize_image``: uint8 (H, W[, C]) -> Pillow bicubic resize to (size, size) -> float64 in [0, 1]."""
    if image.dtype != np.uint8:
        raise ValueError(f"resize_pil: expected uint8, got {image.dtype}")
    squeeze = image.ndim == 3 and image.shape[2] == 1
    src = image[..., 0] if squeeze else image
    out = np.asarray(Image.fromarray(src).resize((size, size), Image.BICUBIC)) / 255.0
    return out[..., None] if squeeze else out


def crop_transform(box: Box, size: int) -> np.ndarray:
    """(3, 3) matrix taking photo pixels to crop pixels: diag(s, s, 1) @ translate(-left, -top), s = size / side."""
    s = size / box.side
    return np.array([[s, 0.0, -box.left * s], [0.0, s, -box.top * s], [0.0, 0.0, 1.0]])


def extend_crop_mask(crop_mask: np.ndarray, verts_pix: np.ndarray) -> np.ndarray:
    """DINAR's ``upd_cropmask``: also mark the padded border strips beyond which no vertex projects.

    crop_mask: (S, S) float 0/1 (1 = inside the photo); verts_pix: (V, 3) homogeneous crop pixel coordinates.
    """
    xy = verts_pix[:, :2] / verts_pix[:, 2:]
    vx, vy = xy[:, 0], xy[:, 1]
    m = (crop_mask > 0).astype(np.float32)
    h, w = m.shape
    box = mask_box(m)
    l, t, r, b = box.left, box.top, box.right, box.bottom
    add_l, add_t, add_r, add_b = (vx < l).sum() == 0, (vy < t).sum() == 0, (vx > r).sum() == 0, (vy > b).sum() == 0
    fr = 0 if add_t else t
    to = h if add_b else b + 1
    if add_l:
        m[fr:to, 0:l] = 1
    if add_r:
        m[fr:to, r:] = 1
    if add_t:
        m[:t, l:r + 1] = 1
    if add_b:
        m[b:, l:r + 1] = 1
    return m


@dataclass
class DinarSample:
    """One prepared person image, as DINAR's dataloader builds it (shapes without the batch dimension).

    person_id: the frame id (file stem).
    verts: (V, 3) float32 homogeneous crop-pixel coordinates of the (UV-split) vertices.
    K: (3, 3) float32 crop-adjusted intrinsics (DINAR's ``calibration_matrix``).
    crop_mask: (1, S, S) float32, 1 where the crop shows the photo (or no body lies beyond the border).
    input_rgb: (3, S, S) float32 in [-1, 1], the person on black (encoder input).
    real_rgb: (3, S, S) float32 in [-1, 1], the person on white (the target of finetuning).
    real_segm: (1, S, S) float32 0/1 person mask.
    background: (3, S, S) float32 ones (white).
    box: the crop box in the photo.
    """

    person_id: str
    verts: torch.Tensor
    K: torch.Tensor
    crop_mask: torch.Tensor
    input_rgb: torch.Tensor
    real_rgb: torch.Tensor
    real_segm: torch.Tensor
    background: torch.Tensor
    box: Box


def prepare_sample(person_id: str, rgb: np.ndarray, segm: np.ndarray, verts_pix: np.ndarray, K: np.ndarray,
                   image_size: int = 512, scale: float = 1.2) -> DinarSample:
    """Crop and resize one photo around the person (see the module docstring).

    rgb: (H, W, 3) uint8 RGB; segm: (H, W) uint8 person mask as stored (DINAR uses the R channel: nonzero for the
    box, > 0.2 after resizing for the mask); verts_pix: (V, 3) vertices @ K^T in the photo; K: (3, 3).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"prepare_sample: expected rgb (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if segm.shape != rgb.shape[:2] or segm.dtype != np.uint8:
        raise ValueError(f"prepare_sample: expected segm {rgb.shape[:2]} uint8, got {segm.shape} {segm.dtype}")
    if K.shape != (3, 3):
        raise ValueError(f"prepare_sample: expected K (3, 3), got {K.shape}")
    box = crop_box(verts_pix, segm, scale)
    rgb_c = resize_pil(crop_pad(rgb, box), image_size)  # (S, S, 3) in [0, 1]
    segm_c = resize_pil(crop_pad(segm, box), image_size) > 0.2  # (S, S)
    inside = resize_pil(crop_pad(np.full(segm.shape + (1,), 255, np.uint8), box), image_size)[..., 0] == 1.0
    T = crop_transform(box, image_size)
    verts = verts_pix.astype(np.float64) @ T.T  # (V, 3)
    K_new = T @ K.astype(np.float64)
    crop_mask = extend_crop_mask(inside.astype(np.float32), verts)

    rgb_t = torch.from_numpy(rgb_c).permute(2, 0, 1).float()  # (3, S, S)
    segm_t = torch.from_numpy(segm_c.astype(np.float32))[None]  # (1, S, S)
    background = torch.ones(3, image_size, image_size)
    return DinarSample(
        person_id=person_id,
        verts=torch.from_numpy(verts).float(),
        K=torch.from_numpy(K_new).float(),
        crop_mask=torch.from_numpy(crop_mask)[None],
        input_rgb=rgb_t * segm_t * 2 - 1,
        real_rgb=(rgb_t * segm_t + (1 - segm_t) * background) * 2 - 1,
        real_segm=segm_t,
        background=background,
        box=box,
    )
