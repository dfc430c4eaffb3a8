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

    def pt(row):
        return int(round(float(row[0]))), int(round(float(row[1])))

    body = keypoints.body
    for a, b in BODY_25_EDGES:
        if body[a, 2] > min_confidence and body[b, 2] > min_confidence:
            cv2.line(out, pt(body[a]), pt(body[b]), _edge_colour(a, b), thick + 1, cv2.LINE_AA)
    for row in body:
        if row[2] > min_confidence:
            cv2.circle(out, pt(row), thick + 2, (255, 255, 255), -1, cv2.LINE_AA)
    for hand, colour in ((keypoints.left_hand, LEFT_COLOUR), (keypoints.right_hand, RIGHT_COLOUR)):
        for a, b in HAND_EDGES:
            if hand[a, 2] > min_confidence and hand[b, 2] > min_confidence:
                cv2.line(out, pt(hand[a]), pt(hand[b]), colour, max(1, thick // 2), cv2.LINE_AA)
    for row in keypoints.face:
        if row[2] > min_confidence:
            cv2.circle(out, pt(row), max(1, thick // 2), FACE_COLOUR, -1, cv2.LINE_AA)
    return out


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
    tris = np.round(points2d[faces[::max(1, every)]]).astype(np.int32)  # (F', 3, 2)
    cv2.polylines(layer, list(tris), True, MESH_COLOUR, 1, cv2.LINE_AA)
    out = cv2.addWeighted(layer, alpha, rgb, 1.0 - alpha, 0.0)
    out = draw_overlay(out, None, keypoints)
    if detected is not None:
        size = max(3, round(max(rgb.shape[:2]) / 150))
        for row in detected.body:
            if row[2] > 0.1:
                x, y = int(round(float(row[0]))), int(round(float(row[1])))
                cv2.drawMarker(out, (x, y), (255, 0, 255), cv2.MARKER_TILTED_CROSS, size, 1, cv2.LINE_AA)
    return out
