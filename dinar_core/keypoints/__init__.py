"""2D keypoints in OpenPose's layout (BODY_25, two 21-point hands, 70-point face).

`layout`: the 137-point layout (names, part slices, skeleton edges), defined once; `openpose`: the `Keypoints2D`
container and the JSON format; `mediapipe`: the default detector (holistic)
and its mapping tables; `onnx`: an optional RTMPose-style ONNX detector. `detect_in_box` runs any detector on the
person's box (from the mask) and maps the result back to the full image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dinar_core.keypoints.layout import (
    BODY_25,
    BODY_25_EDGES,
    BODY_25_NAMES,
    FACE_POINTS,
    HAND_EDGES,
    HAND_NAMES,
    KEYPOINT_SLICES,
    NUM_KEYPOINTS,
)
from dinar_core.keypoints.openpose import Keypoints2D, OpenPoseImport, load_openpose_json, read_openpose_json

__all__ = [
    "BODY_25", "BODY_25_EDGES", "BODY_25_NAMES", "FACE_POINTS", "HAND_EDGES", "HAND_NAMES", "KEYPOINT_SLICES",
    "NUM_KEYPOINTS", "CropBox", "FullImageDetector", "Keypoints2D", "OpenPoseImport", "crop_box", "detect_in_box",
    "load_openpose_json",
    "read_openpose_json",
]


class FullImageDetector(Protocol):
    """A detector that finds the person itself: rgb (H, W, 3) uint8 -> keypoints in its pixels, or None."""

    def detect(self, rgb: np.ndarray) -> Keypoints2D | None: ...


@dataclass(frozen=True)
class CropBox:
    """Integer crop (x0, y0, x1, y1), x1/y1 exclusive, inside the image."""

    x0: int
    y0: int
    x1: int
    y1: int


def crop_box(box: tuple[float, float, float, float], width: int, height: int, margin: float) -> CropBox:
    """`box` (x0, y0, x1, y1) enlarged by `margin` of its width/height on every side, clipped to the image."""
    x0, y0, x1, y1 = box
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    return CropBox(max(0, int(np.floor(x0 - mx))), max(0, int(np.floor(y0 - my))),
                   min(width, int(np.ceil(x1 + mx))), min(height, int(np.ceil(y1 + my))))


def detect_in_box(detector: FullImageDetector, rgb: np.ndarray, box: tuple[float, float, float, float] | None,
                  margin: float = 0.15) -> Keypoints2D | None:
    """Run `detector` on the part of `rgb` (H, W, 3) uint8 inside `box` enlarged by `margin` (the whole image when
    `box` is None) and return keypoints in pixels of the whole image.

    Cropping to the person makes the detector see that person, large: the one picked by the mask when several
    are in view, and at a useful resolution when the photo is much larger than the detector's input."""
    h, w = rgb.shape[:2]
    c = CropBox(0, 0, w, h) if box is None else crop_box(box, w, h, margin)
    if c.x1 - c.x0 < 2 or c.y1 - c.y0 < 2:
        raise ValueError(f"person box {box} is empty inside a {w}x{h} image")
    kp = detector.detect(np.ascontiguousarray(rgb[c.y0:c.y1, c.x0:c.x1]))
    if kp is None:
        return None
    return kp.scaled(1.0, 1.0, float(c.x0), float(c.y0))
