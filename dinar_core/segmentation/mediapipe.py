"""Mediapipe segmenters (legacy ``mp.solutions``, models bundled with mediapipe 0.10.21, no download).

Create one per stage call and close it (or use it as a context manager): building the graph costs more than a
prediction. Pose uses model_complexity=1, the one variant whose model ships in the wheel (0 and 2 download).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from dinar_core.errors import MissingModelError
from dinar_core.native_logs import filtered_native_stderr


def _solutions():
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - mediapipe is a dependency
        raise MissingModelError("the mediapipe package is not installed",
                                fix="pip install mediapipe==0.10.21") from exc
    return mp.solutions


class MediapipeSegmenter:
    """`PersonSegmenter` on mediapipe.

    model: ``pose`` = the segmentation of the pose model (the one detected person; `single_person`), ``selfie`` =
    selfie segmentation (every person in view, meant for people close to the camera).
    """

    def __init__(self, model: Literal["pose", "selfie"] = "pose", min_detection_confidence: float = 0.5):
        if model not in ("pose", "selfie"):
            raise ValueError(f"model must be 'pose' or 'selfie', got {model!r}")
        solutions = _solutions()
        self.model = model
        self.single_person = model == "pose"
        with filtered_native_stderr():
            if model == "pose":
                self._graph = solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                                  enable_segmentation=True,
                                                  min_detection_confidence=min_detection_confidence)
            else:
                self._graph = solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def predict(self, rgb: np.ndarray) -> np.ndarray | None:
        """rgb: (H, W, 3) uint8 -> (H, W) float32 probability, or None when pose found no person."""
        with filtered_native_stderr():
            result = self._graph.process(np.ascontiguousarray(rgb))
        prob = result.segmentation_mask
        if prob is None or (self.model == "pose" and result.pose_landmarks is None):
            return None
        return np.clip(np.asarray(prob, dtype=np.float32), 0.0, 1.0)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def __enter__(self) -> "MediapipeSegmenter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
