"""Fixed tables from a body model's points to the OpenPose keypoint layout (BODY_25, hands 21+21, face 70).

The tables are written by *name* and turned into (137, S) matrices, so a keypoint can be one source point
(a selection) or an average of several (Anny's neck = midpoint of the shoulders). Rows of keypoints a backend
cannot provide are all zeros and flagged unavailable.

SMPL-X source points: the 144 points ``smplx.SMPLX(..., use_face_contour=True)`` returns as ``joints``, named by
``SMPLX_POINT_NAMES``: 55 skeleton joints, 5 face + 6 foot surface points and 10 fingertips (smplx's vertex joint
selector), 51 face landmarks (iBUG-68 points 17..67, in order) and 17 dynamic face-contour landmarks (iBUG points
0..16, in order). This is the same correspondence SMPLify-X uses for OpenPose ``coco25`` with hands and face.
"""

from __future__ import annotations

import torch

from dinar_core.keypoints.layout import BODY_25_NAMES, HAND_NAMES, NUM_KEYPOINTS

SMPLX_NUM_POINTS = 144  # with use_face_contour=True; 127 without

_SMPLX_JOINTS = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw", "left_eye_smplhf",
    "right_eye_smplhf",
) + tuple(
    f"{side}_{finger}{k}"
    for side in ("left", "right")
    for finger in ("index", "middle", "pinky", "ring", "thumb")
    for k in (1, 2, 3)
)
SMPLX_JOINT_NAMES: tuple[str, ...] = _SMPLX_JOINTS
"""The 55 SMPL-X skeleton joints in model order (the kinematic tree's order)."""

SMPLX_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
)
"""SMPL-X kinematic tree (``kintree_table[0]``): parent of each of the 55 joints."""

SMPLX_POINT_NAMES: tuple[str, ...] = (
    SMPLX_JOINT_NAMES
    + ("nose", "right_eye", "left_eye", "right_ear", "left_ear")
    + ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
    + tuple(f"{side}_{f}" for side in ("left", "right") for f in ("thumb", "index", "middle", "ring", "pinky"))
    + tuple(f"face_landmark_{k}" for k in range(17, 68))  # iBUG-68 numbering
    + tuple(f"face_landmark_{k}" for k in range(0, 17))  # the dynamic contour
)
"""Names of smplx's 144 output points (face landmarks named by their iBUG-68 index)."""

_BODY25_FROM_SMPLX = {
    "Nose": "nose", "Neck": "neck", "RShoulder": "right_shoulder", "RElbow": "right_elbow",
    "RWrist": "right_wrist", "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist",
    "MidHip": "pelvis", "RHip": "right_hip", "RKnee": "right_knee", "RAnkle": "right_ankle",
    "LHip": "left_hip", "LKnee": "left_knee", "LAnkle": "left_ankle", "REye": "right_eye", "LEye": "left_eye",
    "REar": "right_ear", "LEar": "left_ear", "LBigToe": "left_big_toe", "LSmallToe": "left_small_toe",
    "LHeel": "left_heel", "RBigToe": "right_big_toe", "RSmallToe": "right_small_toe", "RHeel": "right_heel",
}


def _smplx_hand(side: str) -> list[str]:
    """The SMPL-X points of one hand in OpenPose's hand order: joints 1-3 of each finger, its tip (4) a surface
    point."""
    names = []
    for name in (n.lower() for n in HAND_NAMES):
        finger, step = name[:-1], name[-1]
        names.append(f"{side}_wrist" if name == "wrist" else f"{side}_{finger}" if step == "4" else f"{side}_{name}")
    return names


def _smplx_face() -> list[str]:
    # OpenPose face 0..67 is iBUG-68; 68/69 are the right/left pupils, which are what the body's REye/LEye
    # surface points mark on SMPL-X (smplx's vertex ids 'reye'/'leye').
    return [f"face_landmark_{k}" for k in range(68)] + ["right_eye", "left_eye"]


def openpose_names_from_smplx() -> list[str]:
    """For each of the 137 OpenPose keypoints, the SMPL-X point name it is taken from."""
    return (
        [_BODY25_FROM_SMPLX[n] for n in BODY_25_NAMES]
        + _smplx_hand("left")
        + _smplx_hand("right")
        + _smplx_face()
    )


def smplx_keypoint_indices(use_face_contour: bool = True) -> torch.Tensor:
    """(137,) int64 index of each OpenPose keypoint into smplx's joints; -1 where unavailable.

    Without the face contour smplx returns 127 points and OpenPose face points 0..16 are unavailable.
    """
    names = SMPLX_POINT_NAMES if use_face_contour else SMPLX_POINT_NAMES[:127]
    index = {n: i for i, n in enumerate(names)}
    return torch.tensor([index.get(n, -1) for n in openpose_names_from_smplx()], dtype=torch.int64)


def selection_matrix(indices: torch.Tensor, num_sources: int) -> torch.Tensor:
    """(K, S) float32 one-hot rows from (K,) indices (-1 = all-zero row)."""
    matrix = torch.zeros(len(indices), num_sources, dtype=torch.float32)
    ok = indices >= 0
    matrix[torch.nonzero(ok).squeeze(1), indices[ok]] = 1.0
    return matrix


def smplx_keypoint_matrix(use_face_contour: bool = True) -> torch.Tensor:
    """(137, 144) (or (137, 127) without contour) matrix from smplx's joints to the OpenPose keypoints."""
    num = SMPLX_NUM_POINTS if use_face_contour else 127
    return selection_matrix(smplx_keypoint_indices(use_face_contour), num)


# --- Anny: its COCO regressor (17 COCO body points + 6 foot points) to BODY_25 ------------------------------

ANNY_COCO_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe", "left_heel", "right_heel",
)
"""The labels of Anny's shipped ``coco.pth`` regressor, in its order (COCO-17 + the 6 COCO-WholeBody feet)."""

_BODY25_FROM_COCO: dict[str, tuple[str, ...]] = {
    "Nose": ("nose",), "Neck": ("left_shoulder", "right_shoulder"), "RShoulder": ("right_shoulder",),
    "RElbow": ("right_elbow",), "RWrist": ("right_wrist",), "LShoulder": ("left_shoulder",),
    "LElbow": ("left_elbow",), "LWrist": ("left_wrist",), "MidHip": ("left_hip", "right_hip"),
    "RHip": ("right_hip",), "RKnee": ("right_knee",), "RAnkle": ("right_ankle",), "LHip": ("left_hip",),
    "LKnee": ("left_knee",), "LAnkle": ("left_ankle",), "REye": ("right_eye",), "LEye": ("left_eye",),
    "REar": ("right_ear",), "LEar": ("left_ear",), "LBigToe": ("left_big_toe",),
    "LSmallToe": ("left_small_toe",), "LHeel": ("left_heel",), "RBigToe": ("right_big_toe",),
    "RSmallToe": ("right_small_toe",), "RHeel": ("right_heel",),
}
"""BODY_25 from COCO: Neck and MidHip are midpoints (COCO has neither), the rest are the same anatomical point."""


def coco_to_body25_matrix(coco_names: tuple[str, ...] = ANNY_COCO_NAMES, offset: int = 0,
                          num_sources: int | None = None) -> torch.Tensor:
    """(137, S) matrix from source points whose COCO part starts at ``offset`` to the OpenPose keypoints.

    Only the 25 BODY_25 rows are filled (hands and face stay zero = unavailable); a BODY_25 point whose COCO
    names are missing from ``coco_names`` stays unavailable too.
    """
    num_sources = num_sources if num_sources is not None else offset + len(coco_names)
    index = {n: offset + i for i, n in enumerate(coco_names)}
    matrix = torch.zeros(NUM_KEYPOINTS, num_sources, dtype=torch.float32)
    for row, name in enumerate(BODY_25_NAMES):
        parts = _BODY25_FROM_COCO[name]
        if all(p in index for p in parts):
            for p in parts:
                matrix[row, index[p]] = 1.0 / len(parts)
    return matrix
