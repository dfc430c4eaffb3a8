"""The `rembg` backend: a U2-Net style salient-object ONNX model (rembg's ``u2net``, ``u2net_human_seg``,
``u2netp``, ``silueta`` files) run with onnxruntime, with rembg's U2-Net pre/post-processing.

Nothing is downloaded: the model is a local file (``segment.rembg_model``, else ``$U2NET_HOME/u2net.onnx``, else
``~/.u2net/u2net.onnx``, where rembg itself keeps its models). onnxruntime is imported only when the backend is
used; the `rembg` package itself is not needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from dinar_core.errors import MissingModelError

# rembg's U2-Net normalisation: the image divided by its maximum, then ImageNet mean/std.
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
DEFAULT_SIZE = 320


def resolve_u2net_model(path: str | os.PathLike | None, environ: dict | None = None) -> Path:
    """The ONNX file to use: `path`, else ``$U2NET_HOME/u2net.onnx``, else ``~/.u2net/u2net.onnx``.

    Raises `MissingModelError` naming the path that was looked at and how to provide it.
    """
    env = os.environ if environ is None else environ
    if path:
        candidate = Path(path).expanduser()
    else:
        home = env.get("U2NET_HOME") or str(Path.home() / ".u2net")
        candidate = Path(home).expanduser() / "u2net.onnx"
    if not candidate.is_file():
        raise MissingModelError(
            f"the rembg segmentation model {candidate} does not exist",
            fix="download a U2-Net ONNX file (e.g. rembg's u2net.onnx or u2net_human_seg.onnx) and set "
                "segment.rembg_model=/path/to/model.onnx (or U2NET_HOME), or use segment.backend=mediapipe")
    return candidate


def load_onnxruntime(purpose: str):
    """Import onnxruntime or raise `MissingModelError` saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingModelError(f"{purpose} needs the onnxruntime package, which is not installed",
                                fix="pip install onnxruntime (or onnxruntime-gpu), or choose another backend") from exc
    return onnxruntime


def onnx_providers(device: str) -> list[str]:
    """onnxruntime execution providers for `device` ('cpu' or 'cuda[:n]'), CPU always last as fallback."""
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.startswith("cuda") else ["CPUExecutionProvider"]


class RembgSegmenter:
    """`PersonSegmenter` running a U2-Net style ONNX model (sees every salient object: not single-person)."""

    single_person = False

    def __init__(self, model_path: str | os.PathLike | None = None, device: str = "cpu"):
        path = resolve_u2net_model(model_path)
        ort = load_onnxruntime("segment.backend=rembg")
        try:
            self._session = ort.InferenceSession(str(path), providers=onnx_providers(device))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise MissingModelError(f"{path} is not a loadable ONNX model ({type(exc).__name__}: {exc})",
                                    fix="point segment.rembg_model at a valid U2-Net .onnx file") from exc
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        shape = list(inp.shape)
        # Static models fix their size in the graph; dynamic ones get rembg's 320x320.
        self._size = (shape[3] if isinstance(shape[3], int) else DEFAULT_SIZE,
                      shape[2] if isinstance(shape[2], int) else DEFAULT_SIZE)  # (w, h)
        self.model_path = path

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """rgb: (H, W, 3) uint8 -> (H, W) float32 saliency in [0, 1]."""
        h, w = rgb.shape[:2]
        x = cv2.resize(rgb, self._size, interpolation=cv2.INTER_LANCZOS4).astype(np.float32)
        x = x / max(float(x.max()), 1e-6)
        x = (x - MEAN) / STD
        x = x.transpose(2, 0, 1)[None]  # (1, 3, h', w')
        out = self._session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0]
        pred = np.asarray(out, np.float32).reshape(out.shape[0], -1, *out.shape[-2:])[0, 0]  # (h', w')
        lo, hi = float(pred.min()), float(pred.max())
        pred = (pred - lo) / (hi - lo) if hi > lo else np.zeros_like(pred)
        return np.clip(cv2.resize(pred, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)

    def close(self) -> None:
        self._session = None

    def __enter__(self) -> "RembgSegmenter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
