"""Optional `onnx` backend: an RTMPose-family top-down model (rtmlib / mmpose export) with SimCC outputs.

The model is a local file (``keypoints.onnx_model``); nothing is downloaded, and onnxruntime is imported only
when this backend is used. Expected graph: one input (1, 3, H, W) float32 (RGB, ImageNet mean/std in 0..255),
two outputs simcc_x (1, K, W * r) and simcc_y (1, K, H * r) with r the SimCC split ratio (2.0 for RTMPose).
K = 17 (COCO body) or 133 (COCO-WholeBody: body 0-16, feet 17-22, face 23-90, left hand 91-111, right hand
112-132). The person box comes from the mask (the caller), so no detector model is needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dinar_core.errors import MissingModelError
from dinar_core.keypoints.openpose import Keypoints2D

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)
SIMCC_SPLIT_RATIO = 2.0
BOX_PADDING = 1.25
"""RTMPose's top-down crop: the person box enlarged by this factor, then widened to the input's aspect."""

# BODY_25 index -> COCO indices averaged (empty = not in COCO-17). COCO: 0 nose, 1 l_eye, 2 r_eye, 3 l_ear,
# 4 r_ear, 5 l_shoulder, 6 r_shoulder, 7 l_elbow, 8 r_elbow, 9 l_wrist, 10 r_wrist, 11 l_hip, 12 r_hip, 13 l_knee,
# 14 r_knee, 15 l_ankle, 16 r_ankle; WholeBody feet: 17 l_big_toe, 18 l_small_toe, 19 l_heel, 20 r_big_toe,
# 21 r_small_toe, 22 r_heel.
COCO_TO_BODY25: tuple[tuple[int, ...], ...] = (
    (0,), (5, 6), (6,), (8,), (10,), (5,), (7,), (9,), (11, 12), (12,), (14,), (16,), (11,), (13,), (15,),
    (2,), (1,), (4,), (3,),
    (17,), (18,), (19,), (20,), (21,), (22,),  # feet: WholeBody only
)


@dataclass
class SimccDecoded:
    """Argmax of SimCC logits. xy: (K, 2) in input-image pixels; score: (K,)."""

    xy: np.ndarray
    score: np.ndarray


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float = SIMCC_SPLIT_RATIO) -> SimccDecoded:
    """simcc_x: (K, Wr), simcc_y: (K, Hr) -> the argmax location / `split_ratio`, score = mean of the two maxima."""
    if simcc_x.ndim != 2 or simcc_y.ndim != 2 or simcc_x.shape[0] != simcc_y.shape[0]:
        raise ValueError(f"expected simcc_x (K, Wr) and simcc_y (K, Hr), got {simcc_x.shape} and {simcc_y.shape}")
    ix, iy = simcc_x.argmax(axis=1), simcc_y.argmax(axis=1)
    score = 0.5 * (simcc_x.max(axis=1) + simcc_y.max(axis=1))
    xy = np.stack([ix, iy], axis=1).astype(np.float32) / split_ratio
    return SimccDecoded(xy=xy, score=score.astype(np.float32))


def coco_to_keypoints(xy: np.ndarray, score: np.ndarray) -> Keypoints2D:
    """xy: (K, 2) pixels, score: (K,) with K = 17 or 133 -> `Keypoints2D` (what COCO lacks stays missing).

    Pupils of the WholeBody face (68 iBUG points, no pupils) are the means of the eye contours."""
    k = xy.shape[0]
    if k not in (17, 133) or xy.shape != (k, 2) or score.shape != (k,):
        raise ValueError(f"expected (17|133, 2) points and (K,) scores, got {xy.shape} and {score.shape}")
    pts = np.concatenate([xy, np.clip(score, 0.0, 1.0)[:, None]], axis=1).astype(np.float32)  # (K, 3)
    kp = Keypoints2D.empty()
    for j, src in enumerate(COCO_TO_BODY25):
        if max(src) >= k:
            continue
        kp.body[j, :2] = pts[list(src), :2].mean(axis=0)
        kp.body[j, 2] = pts[list(src), 2].min()
    if k == 133:
        kp.face[:68] = pts[23:91]
        kp.face[68, :2] = pts[23 + 36:23 + 42, :2].mean(axis=0)
        kp.face[69, :2] = pts[23 + 42:23 + 48, :2].mean(axis=0)
        kp.face[68:, 2] = pts[23 + 36:23 + 48, 2].min()
        kp.left_hand[:] = pts[91:112]
        kp.right_hand[:] = pts[112:133]
    return kp


def crop_transform(box: tuple[float, float, float, float], input_size: tuple[int, int]) -> np.ndarray:
    """(2, 3) affine from image pixels to the model input for `box` (x0, y0, x1, y1), input_size = (w, h):
    the box enlarged by BOX_PADDING and widened/heightened to the input's aspect ratio, no rotation."""
    w_in, h_in = input_size
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    bw, bh = max(box[2] - box[0], 1.0) * BOX_PADDING, max(box[3] - box[1], 1.0) * BOX_PADDING
    if bw / bh > w_in / h_in:
        bh = bw * h_in / w_in
    else:
        bw = bh * w_in / h_in
    s = w_in / bw
    return np.array([[s, 0.0, w_in / 2 - s * cx], [0.0, s, h_in / 2 - s * cy]], np.float32)


class OnnxPoseDetector:
    """RTMPose-style ONNX model on onnxruntime; `detect(rgb, box)` -> `Keypoints2D` in image pixels."""

    def __init__(self, model_path: str | os.PathLike | None, device: str = "cpu"):
        from dinar_core.segmentation.rembg import load_onnxruntime, onnx_providers

        if not model_path or not Path(model_path).expanduser().is_file():
            raise MissingModelError(
                f"the ONNX pose model {model_path or '(keypoints.onnx_model not set)'} does not exist",
                fix="download an RTMPose ONNX model (e.g. from rtmlib/mmpose releases) and set "
                    "keypoints.onnx_model=/path/to/rtmpose.onnx, or use keypoints.backend=mediapipe")
        path = Path(model_path).expanduser()
        ort = load_onnxruntime("keypoints.backend=onnx")
        try:
            self._session = ort.InferenceSession(str(path), providers=onnx_providers(device))
        except Exception as exc:
            raise MissingModelError(f"{path} is not a loadable ONNX model ({type(exc).__name__}: {exc})",
                                    fix="point keypoints.onnx_model at a valid RTMPose .onnx file") from exc
        inp = self._session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or not isinstance(shape[2], int) or not isinstance(shape[3], int):
            raise MissingModelError(f"{path}: input {inp.name} has shape {shape}, expected (1, 3, H, W) with a "
                                    f"fixed H, W", fix="export the model with a static input size (e.g. 256x192)")
        self._input = inp.name
        self.input_size = (int(shape[3]), int(shape[2]))  # (w, h)
        outs = self._session.get_outputs()
        if len(outs) < 2:
            raise MissingModelError(f"{path} has {len(outs)} output(s), expected SimCC simcc_x and simcc_y",
                                    fix="use an RTMPose (SimCC) model")
        self.model_path = path

    def detect(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> Keypoints2D:
        """rgb: (H, W, 3) uint8, box: the person's (x0, y0, x1, y1) -> keypoints in pixels of `rgb`."""
        affine = crop_transform(box, self.input_size)
        crop = cv2.warpAffine(rgb, affine, self.input_size, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        x = ((crop.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]  # (1, 3, h, w)
        simcc_x, simcc_y = self._session.run(None, {self._input: np.ascontiguousarray(x)})[:2]
        dec = decode_simcc(np.asarray(simcc_x)[0], np.asarray(simcc_y)[0])
        s, dx, dy = float(affine[0, 0]), float(affine[0, 2]), float(affine[1, 2])
        xy = (dec.xy - np.array([dx, dy], np.float32)) / s  # back to image pixels
        return coco_to_keypoints(xy, dec.score)

    def close(self) -> None:
        self._session = None

    def __enter__(self) -> "OnnxPoseDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["COCO_TO_BODY25", "OnnxPoseDetector", "SimccDecoded", "coco_to_keypoints", "crop_transform",
           "decode_simcc"]
