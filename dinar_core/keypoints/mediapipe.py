"""Mediapipe holistic -> OpenPose BODY_25, hands and 70-point face.

The tables below are the whole mapping (unit tests pin them):

- Body: mediapipe's 33 pose landmarks (BlazePose topology) -> BODY_25. Left/right are the person's own in both
  (mediapipe ``LEFT_SHOULDER`` = OpenPose ``LShoulder``). Neck = mid-point of the shoulders, MidHip = mid-point of
  the hips (confidence = the smaller of the two); big and small toe both come from mediapipe's ``FOOT_INDEX`` (it
  has no separate small toe), heel from ``HEEL``. Confidence = mediapipe's visibility.
- Hands: mediapipe's 21 hand landmarks are in OpenPose's hand order already (wrist, thumb CMC/MCP/IP/tip, then
  index, middle, ring, pinky base to tip). Mediapipe gives hand landmarks no score, so a detected hand's joints
  take the visibility of the pose's wrist on that side.
- Face: the 68 iBUG-300W landmarks as indices into mediapipe's 468-point face mesh (`FACE_MESH_TO_IBUG68`),
  + pupils (OpenPose face points 68 = right, 69 = left) as the mean of that eye's six contour points (the iris
  landmarks need refine_face_landmarks, whose model is not needed for this). Face joints take the visibility of
  the pose's nose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dinar_core.errors import MissingModelError
from dinar_core.native_logs import filtered_native_stderr
from dinar_core.keypoints.layout import BODY_25_NAMES, FACE_POINTS, HAND_NAMES
from dinar_core.keypoints.openpose import Keypoints2D

# Mediapipe pose landmark indices (BlazePose 33).
MP_POSE = {
    "nose": 0, "left_eye_inner": 1, "left_eye": 2, "left_eye_outer": 3, "right_eye_inner": 4, "right_eye": 5,
    "right_eye_outer": 6, "left_ear": 7, "right_ear": 8, "mouth_left": 9, "mouth_right": 10, "left_shoulder": 11,
    "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14, "left_wrist": 15, "right_wrist": 16,
    "left_pinky": 17, "right_pinky": 18, "left_index": 19, "right_index": 20, "left_thumb": 21, "right_thumb": 22,
    "left_hip": 23, "right_hip": 24, "left_knee": 25, "right_knee": 26, "left_ankle": 27, "right_ankle": 28,
    "left_heel": 29, "right_heel": 30, "left_foot_index": 31, "right_foot_index": 32,
}

# BODY_25 index -> the mediapipe landmarks it is the mean of (one landmark, or two for Neck and MidHip).
POSE_TO_BODY25: tuple[tuple[int, ...], ...] = (
    (0,),        # 0 Nose
    (11, 12),    # 1 Neck = mid shoulders
    (12,),       # 2 RShoulder
    (14,),       # 3 RElbow
    (16,),       # 4 RWrist
    (11,),       # 5 LShoulder
    (13,),       # 6 LElbow
    (15,),       # 7 LWrist
    (23, 24),    # 8 MidHip = mid hips
    (24,),       # 9 RHip
    (26,),       # 10 RKnee
    (28,),       # 11 RAnkle
    (23,),       # 12 LHip
    (25,),       # 13 LKnee
    (27,),       # 14 LAnkle
    (5,),        # 15 REye
    (2,),        # 16 LEye
    (8,),        # 17 REar
    (7,),        # 18 LEar
    (31,),       # 19 LBigToe   <- left foot index
    (31,),       # 20 LSmallToe <- left foot index (mediapipe has no small toe)
    (29,),       # 21 LHeel
    (32,),       # 22 RBigToe   <- right foot index
    (32,),       # 23 RSmallToe <- right foot index
    (30,),       # 24 RHeel
)

# iBUG-300W 68 landmark index -> mediapipe face-mesh vertex. Image-left is the person's right, as in iBUG.
FACE_MESH_TO_IBUG68: tuple[int, ...] = (
    # 0-16 jaw, from the person's right temple over the chin to the left temple
    127, 234, 93, 132, 58, 172, 136, 149, 152, 378, 365, 397, 288, 361, 323, 454, 356,
    # 17-21 right brow (outer -> inner), 22-26 left brow (inner -> outer)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # 27-30 nose bridge (top -> tip), 31-35 nostrils (right -> left)
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # 36-41 right eye: outer corner, upper lid x2, inner corner, lower lid x2
    33, 160, 158, 133, 153, 144,
    # 42-47 left eye: inner corner, upper lid x2, outer corner, lower lid x2
    362, 385, 387, 263, 373, 380,
    # 48-59 outer lip: right corner, upper lip to the left corner, lower lip back
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    # 60-67 inner lip: right corner, upper, left corner, lower
    78, 82, 13, 312, 308, 317, 14, 87,
)
RIGHT_EYE_IBUG = tuple(range(36, 42))
LEFT_EYE_IBUG = tuple(range(42, 48))


@dataclass
class MediapipeLandmarks:
    """Holistic output in pixels of the image it ran on (None = not detected)."""

    pose: np.ndarray | None
    """(33, 3) x, y, visibility."""
    face: np.ndarray | None
    """(468, 2) x, y."""
    left_hand: np.ndarray | None
    """(21, 2) x, y of the person's left hand."""
    right_hand: np.ndarray | None
    """(21, 2) x, y of the person's right hand."""


def pose_to_body25(pose: np.ndarray) -> np.ndarray:
    """pose: (33, 3) mediapipe x, y, visibility -> (25, 3) BODY_25 x, y, confidence (float32)."""
    if pose.shape != (33, 3):
        raise ValueError(f"expected (33, 3) pose landmarks, got {pose.shape}")
    out = np.zeros((len(BODY_25_NAMES), 3), np.float32)
    for j, src in enumerate(POSE_TO_BODY25):
        pts = pose[list(src)]
        out[j, :2] = pts[:, :2].mean(axis=0)
        out[j, 2] = pts[:, 2].min()
    return out


def face_mesh_to_face70(face: np.ndarray, confidence: float) -> np.ndarray:
    """face: (468, 2) (or more, with iris points) mesh x, y -> (70, 3) OpenPose face with `confidence`."""
    if face.ndim != 2 or face.shape[0] < 468 or face.shape[1] < 2:
        raise ValueError(f"expected (468, 2) face-mesh landmarks, got {face.shape}")
    out = np.zeros((FACE_POINTS, 3), np.float32)
    out[:68, :2] = face[list(FACE_MESH_TO_IBUG68), :2]
    out[68, :2] = out[list(RIGHT_EYE_IBUG), :2].mean(axis=0)
    out[69, :2] = out[list(LEFT_EYE_IBUG), :2].mean(axis=0)
    out[:, 2] = confidence
    return out


def hand_to_hand21(hand: np.ndarray, confidence: float) -> np.ndarray:
    """hand: (21, 2) mediapipe hand x, y -> (21, 3) OpenPose hand with `confidence` (same joint order)."""
    if hand.ndim != 2 or hand.shape[0] != len(HAND_NAMES):
        raise ValueError(f"expected ({len(HAND_NAMES)}, 2) hand landmarks, got {hand.shape}")
    out = np.zeros((len(HAND_NAMES), 3), np.float32)
    out[:, :2] = hand[:, :2]
    out[:, 2] = confidence
    return out


def landmarks_to_keypoints(lm: MediapipeLandmarks, width: int, height: int,
                           min_confidence: float = 0.05) -> Keypoints2D:
    """Map holistic landmarks (pixels) to `Keypoints2D`. Joints outside the (width, height) image or below
    `min_confidence` become missing (0, 0, 0), as OpenPose writes joints it did not find."""
    kp = Keypoints2D.empty()
    if lm.pose is None:
        return kp
    pose = np.asarray(lm.pose, np.float32)
    vis = np.clip(pose[:, 2], 0.0, 1.0)
    pose = np.concatenate([pose[:, :2], vis[:, None]], axis=1)
    body = pose_to_body25(pose)
    left_hand = hand_to_hand21(lm.left_hand, float(vis[MP_POSE["left_wrist"]])) if lm.left_hand is not None \
        else kp.left_hand
    right_hand = hand_to_hand21(lm.right_hand, float(vis[MP_POSE["right_wrist"]])) if lm.right_hand is not None \
        else kp.right_hand
    face = face_mesh_to_face70(lm.face, float(vis[MP_POSE["nose"]])) if lm.face is not None else kp.face
    arr = np.concatenate([body, left_hand, right_hand, face])  # (137, 3) in the layout's order
    inside = (arr[:, 0] >= 0) & (arr[:, 0] <= width - 1) & (arr[:, 1] >= 0) & (arr[:, 1] <= height - 1)
    arr[~inside | (arr[:, 2] < min_confidence)] = 0.0
    return Keypoints2D.from_array(arr)


def _to_pixels(landmarks, width: int, height: int, with_visibility: bool) -> np.ndarray | None:
    if landmarks is None:
        return None
    rows = [(p.x * width, p.y * height) + ((p.visibility,) if with_visibility else ())
            for p in landmarks.landmark]
    return np.asarray(rows, np.float32)


class MediapipeKeypointDetector:
    """Holistic (pose + hands + face, model_complexity=1, models bundled with mediapipe) as a detector.

    Build one per stage call and `close()` it (or use `with`).
    """

    def __init__(self, min_detection_confidence: float = 0.5):
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - a dependency
            raise MissingModelError("the mediapipe package is not installed",
                                    fix="pip install mediapipe==0.10.21") from exc
        with filtered_native_stderr():
            self._graph = mp.solutions.holistic.Holistic(
                static_image_mode=True, model_complexity=1, refine_face_landmarks=False,
                min_detection_confidence=min_detection_confidence)

    def landmarks(self, rgb: np.ndarray) -> MediapipeLandmarks:
        """rgb: (H, W, 3) uint8 -> landmarks in pixels of `rgb`."""
        h, w = rgb.shape[:2]
        with filtered_native_stderr():
            r = self._graph.process(np.ascontiguousarray(rgb))
        return MediapipeLandmarks(
            pose=_to_pixels(r.pose_landmarks, w, h, True),
            face=_to_pixels(r.face_landmarks, w, h, False),
            left_hand=_to_pixels(r.left_hand_landmarks, w, h, False),
            right_hand=_to_pixels(r.right_hand_landmarks, w, h, False),
        )

    def detect(self, rgb: np.ndarray, min_confidence: float = 0.05) -> Keypoints2D | None:
        """rgb: (H, W, 3) uint8 -> keypoints in pixels of `rgb`, None when no person is found."""
        lm = self.landmarks(rgb)
        if lm.pose is None:
            return None
        return landmarks_to_keypoints(lm, rgb.shape[1], rgb.shape[0], min_confidence)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def __enter__(self) -> "MediapipeKeypointDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
