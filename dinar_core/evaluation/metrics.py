"""Image metrics of a rendered view against the real one, inside the union of their person masks.

PSNR, SSIM and MS-SSIM are torchmetrics' (``torchmetrics.functional.image``); LPIPS is the ``lpips`` package's
VGG variant (``dinar_core.avatar.lpips``, weights from a local file: torchmetrics' own LPIPS needs torchvision and
downloads its backbone). How the mask is applied, the one choice that is ours:

- PSNR: the mean squared error over the pixels of the union only (background pixels never count, so a small
  person in a large image is not flattered by matching white walls).
- SSIM, MS-SSIM, LPIPS: both images are set to 0 outside the union and cropped to the union's bounding box (plus a
  margin of half a window), so windows at the outline compare body with body or body with nothing, never the
  photo's background with the render's. MS-SSIM needs a side of at least 176 px for its 5 scales: smaller crops
  are zero-padded to that size (the padding is identical in both images).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.image import (multiscale_structural_similarity_index_measure,
                                           peak_signal_noise_ratio, structural_similarity_index_measure)

MS_SSIM_MIN_SIDE = 176  # torchmetrics: side // 16 > kernel 11 - 1 for five scales
CROP_MARGIN = 5


@dataclass
class ImageScores:
    """One view's scores. psnr in dB (inf for identical pixels), ssim and ms_ssim in [-1, 1] (1 = identical),
    lpips >= 0 (0 = identical; None when no LPIPS weights are configured), iou of the two masks in [0, 1]."""

    psnr: float
    ssim: float
    ms_ssim: float
    lpips: float | None
    iou: float


def _as_image(x, name: str) -> Tensor:
    """(H, W, 3) uint8 or float in [0, 1] (numpy or torch) -> (1, 3, H, W) float32 in [0, 1]."""
    t = torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x)
    if t.ndim != 3 or t.shape[-1] != 3:
        raise ValueError(f"{name} must be (H, W, 3), got {tuple(t.shape)}")
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    return t.permute(2, 0, 1)[None].contiguous()


def _as_mask(m, shape: tuple[int, int], name: str) -> Tensor:
    t = torch.as_tensor(np.ascontiguousarray(m) if isinstance(m, np.ndarray) else m)
    if t.ndim == 3:
        t = t[..., 0]
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must be {tuple(shape)} like the images, got {tuple(t.shape)}")
    return t > (127 if t.dtype == torch.uint8 else 0.5) if t.dtype != torch.bool else t


def mask_iou(a, b) -> float:
    """Intersection over union of two (H, W) masks (bool, 0/1 or 0/255); 1.0 when both are empty."""
    a = np.asarray(a) > (127 if np.asarray(a).dtype == np.uint8 else 0.5)
    b = np.asarray(b) > (127 if np.asarray(b).dtype == np.uint8 else 0.5)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _crop_box(mask: Tensor, margin: int) -> tuple[int, int, int, int]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    H, W = mask.shape
    return (max(0, int(ys.min()) - margin), min(H, int(ys.max()) + 1 + margin),
            max(0, int(xs.min()) - margin), min(W, int(xs.max()) + 1 + margin))


def _pad_to(x: Tensor, side: int) -> Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, max(0, side - w), 0, max(0, side - h)))


def masked_image_scores(pred, target, pred_mask, target_mask, lpips_model: torch.nn.Module | None = None
                        ) -> ImageScores:
    """Scores of the render `pred` against the real view `target` inside the union of their masks.

    pred, target: (H, W, 3) uint8 or float in [0, 1]; pred_mask, target_mask: (H, W) bool / 0-1 / 0-255;
    lpips_model: an LPIPS module taking two (B, 3, H, W) images in [-1, 1] (``load_lpips_vgg``), or None.
    An empty union (nobody in either image) raises ValueError: there is nothing to compare.
    """
    p, t = _as_image(pred, "pred"), _as_image(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred {tuple(p.shape[2:])} and target {tuple(t.shape[2:])} differ in size")
    shape = tuple(p.shape[2:])
    pm, tm = _as_mask(pred_mask, shape, "pred_mask"), _as_mask(target_mask, shape, "target_mask")
    union = pm | tm
    if not bool(union.any()):
        raise ValueError("both masks are empty: no person to compare")
    iou = float((pm & tm).sum()) / float(union.sum())
    sel = union[None, None].expand_as(p)
    psnr = float(peak_signal_noise_ratio(p[sel], t[sel], data_range=1.0))
    y0, y1, x0, x1 = _crop_box(union, CROP_MARGIN)
    keep = union[None, None].float()
    pc, tc = (p * keep)[..., y0:y1, x0:x1], (t * keep)[..., y0:y1, x0:x1]
    ssim = float(structural_similarity_index_measure(pc, tc, data_range=1.0))
    side = max(MS_SSIM_MIN_SIDE, *pc.shape[-2:])
    ms = float(multiscale_structural_similarity_index_measure(_pad_to(pc, side), _pad_to(tc, side), data_range=1.0))
    lp = None
    if lpips_model is not None:
        with torch.no_grad():
            dev = next(lpips_model.parameters()).device
            lp = float(lpips_model(pc.to(dev) * 2 - 1, tc.to(dev) * 2 - 1)[0])
    return ImageScores(psnr=psnr, ssim=ssim, ms_ssim=ms, lpips=lp, iou=iou)
