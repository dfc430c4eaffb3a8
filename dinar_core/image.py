"""Pixel conversions shared by the stages: any decoded image -> 8-bit RGB, and size limits.

Images are numpy arrays in (H, W, C) layout; 8-bit RGB means uint8 with channels in R, G, B order.
"""

from __future__ import annotations

import cv2
import numpy as np


def to_rgb8(pixels: np.ndarray, alpha_background: int = 255) -> np.ndarray:
    """Convert a decoded image to 8-bit RGB.

    pixels: (H, W), (H, W, 1), (H, W, 2) gray+alpha, (H, W, 3) RGB or (H, W, 4) RGBA, of dtype uint8, uint16
        (full 16-bit range), int32 (Pillow's 'I' mode, treated as 16-bit) or float (0..1).
    Alpha is composited over a flat background of value `alpha_background` (white by default: the person stays,
    a transparent cut-out does not turn black).
    returns: (H, W, 3) uint8.
    """
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image of shape (H, W[, 1|2|3|4]), got {arr.shape}")
    if arr.dtype == np.uint8:
        f = arr.astype(np.float32) / 255.0
    elif arr.dtype in (np.uint16, np.int32, np.int64, np.uint32):
        f = np.clip(arr.astype(np.float32) / 65535.0, 0.0, 1.0)
    elif np.issubdtype(arr.dtype, np.floating):
        f = np.nan_to_num(arr.astype(np.float32), nan=0.0)
        hi = float(f.max()) if f.size else 1.0
        f = np.clip(f / hi if hi > 1.0 else f, 0.0, 1.0)
    elif arr.dtype == bool:
        f = arr.astype(np.float32)
    else:
        raise ValueError(f"unsupported pixel type {arr.dtype}")
    channels = f.shape[2]
    if channels in (2, 4):
        color, alpha = f[:, :, :-1], f[:, :, -1:]
        f = color * alpha + (alpha_background / 255.0) * (1.0 - alpha)
        channels -= 1
    if channels == 1:
        f = np.repeat(f, 3, axis=2)
    return np.round(f * 255.0).astype(np.uint8)


def fit_within(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) scaled down so that the longer side is at most `max_side` (unchanged if it already is)."""
    longer = max(width, height)
    if longer <= max_side:
        return width, height
    scale = max_side / longer
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-filtered resize of an (H, W, 3) uint8 image to `size` = (w, h)."""
    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
