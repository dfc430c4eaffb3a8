"""Pixel conversions shared by the stages: any decoded image -> 8-bit RGB, and size limits.

Images are numpy arrays in (H, W, C) layout; 8-bit RGB means uint8 with channels in R, G, B order.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

CHUNK_PIXELS = 1 << 20
"""Pixels converted at a time by `to_rgb8`: its float32 working copies stay a few MB whatever the image size."""


def float_peak(pixels: np.ndarray) -> float:
    """The value a float image is normalised by in `to_rgb8`: its largest value after NaN -> 0 (infinities become
    the largest float32), taken row block by row block. pixels: (H, W[, C]) float."""
    arr = np.asarray(pixels)
    if arr.size == 0:
        return 1.0
    rows = max(1, CHUNK_PIXELS // max(1, arr[0].size))
    return max(float(np.nan_to_num(arr[y:y + rows].astype(np.float32), nan=0.0).max())
               for y in range(0, arr.shape[0], rows))


def to_rgb8(pixels: np.ndarray, alpha_background: int = 255, peak: float | None = None) -> np.ndarray:
    """Convert a decoded image to 8-bit RGB, a block of rows at a time (no full-size float copy).

    pixels: (H, W), (H, W, 1), (H, W, 2) gray+alpha, (H, W, 3) RGB or (H, W, 4) RGBA, of dtype uint8, uint16
        (full 16-bit range), int32 (Pillow's 'I' mode, treated as 16-bit) or float (0..1, or 0..peak when the
        largest value is over 1).
    Alpha is composited over a flat background of value `alpha_background` (white by default: the person stays,
    a transparent cut-out does not turn black).
    peak: for float pixels, the value to normalise by when over 1 (default: `float_peak(pixels)`); a caller
        converting an image piece by piece passes the whole image's peak.
    returns: (H, W, 3) uint8 (the input itself when it already is contiguous (H, W, 3) uint8).
    """
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image of shape (H, W[, 1|2|3|4]), got {arr.shape}")
    if not (arr.dtype in (np.uint8, np.uint16, np.int32, np.int64, np.uint32, bool)
            or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"unsupported pixel type {arr.dtype}")
    if arr.dtype == np.uint8 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating) and peak is None:
        peak = float_peak(arr)
    out = np.empty(arr.shape[:2] + (3,), np.uint8)  # (H, W, 3)
    rows = max(1, CHUNK_PIXELS // max(1, arr.shape[1]))
    for y in range(0, arr.shape[0], rows):
        out[y:y + rows] = _rows_to_rgb8(arr[y:y + rows], alpha_background, peak)
    return out


def _rows_to_rgb8(arr: np.ndarray, alpha_background: int, peak: float | None) -> np.ndarray:
    """`to_rgb8` of a block of rows. arr: (h, W, C) -> (h, W, 3) uint8."""
    if arr.dtype == np.uint8:
        f = arr.astype(np.float32) / 255.0
    elif arr.dtype in (np.uint16, np.int32, np.int64, np.uint32):
        f = np.clip(arr.astype(np.float32) / 65535.0, 0.0, 1.0)
    elif arr.dtype == bool:
        f = arr.astype(np.float32)
    else:
        f = np.nan_to_num(arr.astype(np.float32), nan=0.0)
        f = np.clip(f / peak if peak > 1.0 else f, 0.0, 1.0)
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


def reduction_factor(width: int, height: int, max_side: int) -> int:
    """The largest whole factor k that a decoder may shrink a (width, height) image by while its longer side stays
    above `max_side`: ceil(longer / k) > max_side, so the final area-filtered resize to `max_side` still starts from
    more pixels than it makes. 1 (no reduction) when the longer side is at most 2 * max_side; the reduced longer
    side is at most 2 * max_side."""
    longer = max(width, height)
    if longer <= max_side:
        return 1
    return max(1, math.ceil(longer / max_side) - 1)
