"""User-supplied masks -> binary person masks.

Accepted (decoded as numpy arrays, (H, W), (H, W, 3) or (H, W, 4)):
- binary / soft masks: gray or equal RGB channels, foreground > 127 (0/255, 0..255 soft edges);
- Graphonomy / LIP label maps: one channel (or three equal ones) with values 0..19, 0 = background, so any value
  above 0 is the person (this also covers 0/1 masks);
- Graphonomy colour maps: RGB where the channels differ, black background; the darkest part colour of the
  Graphonomy palette has a channel of 85, so foreground = brightest channel > 24 (robust to near-black noise);
- RGBA cut-outs whose alpha varies: foreground = alpha > 127.
"""

from __future__ import annotations

import numpy as np

LABEL_MAX = 19
"""Largest class index of Graphonomy's 20-class (LIP / CIHP) label maps."""
COLOUR_FOREGROUND_MIN = 24
"""A colour-map pixel is foreground when its brightest channel exceeds this."""


def binarize_user_mask(mask: np.ndarray) -> np.ndarray:
    """Binary person mask from a user mask / label map / colour map.

    mask: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), integer or float (floats in 0..1 are scaled to 0..255).
    returns: (H, W) bool.
    """
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"expected a mask of shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr)
        arr = arr * 255.0 if arr.max(initial=0) <= 1.0 else arr
    elif arr.dtype == np.uint16:
        arr = arr / 257.0 if arr.max(initial=0) > 255 else arr  # a 16-bit 0/65535 mask
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 4:
        alpha = arr[:, :, 3]
        if alpha.min() != alpha.max():
            return alpha > 127
        arr = arr[:, :, :3]
    if arr.ndim == 3:
        if np.array_equal(arr[:, :, 0], arr[:, :, 1]) and np.array_equal(arr[:, :, 0], arr[:, :, 2]):
            arr = arr[:, :, 0]
        else:
            return arr.max(axis=2) > COLOUR_FOREGROUND_MIN
    if arr.max(initial=0) <= LABEL_MAX:
        return arr > 0
    return arr > 127
