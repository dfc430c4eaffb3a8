"""A diagnostic picture: the photo with the person mask tinted and the OpenPose skeleton, hands and face drawn."""

from __future__ import annotations

import cv2
import numpy as np

from dinar_core.keypoints.layout import BODY_25_EDGES, BODY_25_NAMES, HAND_EDGES
from dinar_core.keypoints.openpose import Keypoints2D

MASK_TINT = (0, 200, 255)  # RGB
LEFT_COLOUR, RIGHT_COLOUR, CENTRE_COLOUR = (255, 80, 80), (80, 160, 255), (255, 220, 0)  # person's left = red
FACE_COLOUR = (255, 255, 255)


def _edge_colour(a: int, b: int) -> tuple[int, int, int]:
    """A limb's colour by the side of its joints (OpenPose names start with L or R; Nose/Neck/MidHip are centre)."""
    sides = {BODY_25_NAMES[a][0], BODY_25_NAMES[b][0]}
    return LEFT_COLOUR if "L" in sides else RIGHT_COLOUR if "R" in sides else CENTRE_COLOUR


def draw_overlay(rgb: np.ndarray, mask: np.ndarray | None, keypoints: Keypoints2D | None,
                 min_confidence: float = 0.1, tint: float = 0.4) -> np.ndarray:
    """rgb: (H, W, 3) uint8, mask: (H, W) bool or None -> (H, W, 3) uint8 RGB picture.

    The mask is blended with MASK_TINT (weight `tint`); joints with confidence above `min_confidence` are drawn,
    with lines and dots scaled to the image size."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    out = rgb.copy()
    if mask is not None:
        if mask.shape != rgb.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match image {rgb.shape[:2]}")
        m = mask.astype(bool)
        out[m] = (out[m] * (1 - tint) + np.array(MASK_TINT, np.float32) * tint).astype(np.uint8)
    if keypoints is None:
        return out
    thick = max(1, round(max(rgb.shape[:2]) / 250))
    canvas = _Canvas(out)
    body = keypoints.body
    for a, b in BODY_25_EDGES:
        if body[a, 2] > min_confidence and body[b, 2] > min_confidence:
            canvas.line(body[a], body[b], _edge_colour(a, b), thick + 1)
    for row in body:
        if row[2] > min_confidence:
            canvas.dot(row, thick + 2, (255, 255, 255))
    for hand, colour in ((keypoints.left_hand, LEFT_COLOUR), (keypoints.right_hand, RIGHT_COLOUR)):
        for a, b in HAND_EDGES:
            if hand[a, 2] > min_confidence and hand[b, 2] > min_confidence:
                canvas.line(hand[a], hand[b], colour, max(1, thick // 2))
    for row in keypoints.face:
        if row[2] > min_confidence:
            canvas.dot(row, max(1, thick // 2), FACE_COLOUR)
    return out


class _Canvas:
    """Draws on an (H, W, 3) image with coordinates clipped to it first, so any finite or non-finite value costs
    the same bounded time (OpenCV's own clipping is slow for coordinates of ~1e9 and overflows beyond int32)."""

    def __init__(self, image: np.ndarray):
        self.image = image
        h, w = image.shape[:2]
        self.rect = (0, 0, w, h)
        self.reach = 4.0 * max(h, w) + 16  # beyond this a point is as good as infinitely far

    def _xy(self, row) -> tuple[float, float] | None:
        x, y = float(row[0]), float(row[1])
        return (x, y) if np.isfinite(x) and np.isfinite(y) else None

    def line(self, a, b, colour, thickness: int) -> None:
        pa, pb = self._xy(a), self._xy(b)
        if pa is None or pb is None:
            return
        pa, pb = _clip_segment(pa, pb, self.reach)
        if pa is not None:
            cv2.line(self.image, pa, pb, colour, thickness, cv2.LINE_AA)

    def dot(self, row, radius: int, colour) -> None:
        p = self._xy(row)
        w, h = self.rect[2], self.rect[3]
        if p is None or not (-radius <= p[0] <= w + radius and -radius <= p[1] <= h + radius):
            return
        cv2.circle(self.image, (int(round(p[0])), int(round(p[1]))), radius, colour, -1, cv2.LINE_AA)


def _clip_segment(a: tuple[float, float], b: tuple[float, float], reach: float):
    """The part of segment a-b inside the square |x|, |y| <= reach (Liang-Barsky), as int points; (None, None)
    when it misses the square."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0 + reach), (dx, reach - x0), (-dy, y0 + reach), (dy, reach - y0)):
        if p == 0:
            if q < 0:
                return None, None
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None, None
    return ((int(round(x0 + t0 * dx)), int(round(y0 + t0 * dy))),
            (int(round(x0 + t1 * dx)), int(round(y0 + t1 * dy))))


MESH_COLOUR = (120, 255, 120)


def draw_fit_overlay(rgb: np.ndarray, points2d: np.ndarray, faces: np.ndarray, keypoints: Keypoints2D | None,
                     detected: Keypoints2D | None = None, every: int = 3, alpha: float = 0.35) -> np.ndarray:
    """The fitted mesh's edges and its projected joints over the photo.

    rgb: (H, W, 3) uint8; points2d: (V, 2) projected vertices in pixels; faces: (F, 3); keypoints: the fitted
    body's projected keypoints (drawn as the skeleton); detected: the detector's keypoints, drawn as small crosses
    so the reprojection error is visible. Every `every`-th face's edges are drawn, blended with weight `alpha`.
    Returns (H, W, 3) uint8.
    """
    if points2d.ndim != 2 or points2d.shape[1] != 2:
        raise ValueError(f"points2d must be (V, 2), got {points2d.shape}")
    layer = rgb.copy()
    reach = 4.0 * max(rgb.shape[:2]) + 16
    tris = points2d[faces[::max(1, every)]]  # (F', 3, 2)
    tris = tris[np.isfinite(tris).all(axis=(1, 2))]
    tris = np.round(np.clip(tris, -reach, reach)).astype(np.int32)  # clipped: bounded drawing time
    cv2.polylines(layer, list(tris), True, MESH_COLOUR, 1, cv2.LINE_AA)
    out = cv2.addWeighted(layer, alpha, rgb, 1.0 - alpha, 0.0)
    out = draw_overlay(out, None, keypoints)
    if detected is not None:
        size = max(3, round(max(rgb.shape[:2]) / 150))
        h, w = rgb.shape[:2]
        for row in detected.body:
            x, y = float(row[0]), float(row[1])
            if row[2] > 0.1 and -size <= x <= w + size and -size <= y <= h + size:
                cv2.drawMarker(out, (int(round(x)), int(round(y))), (255, 0, 255), cv2.MARKER_TILTED_CROSS, size, 1,
                               cv2.LINE_AA)
    return out
