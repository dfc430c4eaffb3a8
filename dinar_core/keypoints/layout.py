"""OpenPose's 137-point keypoint layout, defined once for the whole project.

A keypoint array is (137, 3) (or (B, 137, 3)) rows of (x, y, confidence), the parts concatenated in this order
(``PARTS``, ``KEYPOINT_SLICES``): BODY_25 (25), the person's left hand (21), right hand (21), face (70). This is
the layout of ``openpose/<frame>_keypoints.json`` (DINAR's and SMPLify-X's input), of ``Keypoints2D``, of the
body models' ``Keypoints3D`` and of the fit's targets. Everything that indexes keypoints imports from here.
"""

from __future__ import annotations

BODY_25_NAMES: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip", "RKnee",
    "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe", "LHeel",
    "RBigToe", "RSmallToe", "RHeel",
)
"""OpenPose BODY_25 order; left/right are the person's own."""
BODY_25 = {name: i for i, name in enumerate(BODY_25_NAMES)}
"""BODY_25 name -> index."""

HAND_NAMES: tuple[str, ...] = (
    "Wrist",
    "Thumb1", "Thumb2", "Thumb3", "Thumb4",
    "Index1", "Index2", "Index3", "Index4",
    "Middle1", "Middle2", "Middle3", "Middle4",
    "Ring1", "Ring2", "Ring3", "Ring4",
    "Pinky1", "Pinky2", "Pinky3", "Pinky4",
)
"""OpenPose's hand order: wrist, then each finger from base to tip (thumb, index, middle, ring, pinky); 4 = tip."""

FACE_POINTS = 70
"""68 iBUG-300W landmarks (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67) + pupils R 68, L 69."""

PARTS: tuple[tuple[str, int], ...] = (
    ("body", len(BODY_25_NAMES)), ("left_hand", len(HAND_NAMES)), ("right_hand", len(HAND_NAMES)),
    ("face", FACE_POINTS),
)
"""(part, number of points) in the order the parts are concatenated."""


def _slices() -> dict[str, slice]:
    out, start = {}, 0
    for part, n in PARTS:
        out[part] = slice(start, start + n)
        start += n
    return out


KEYPOINT_SLICES: dict[str, slice] = _slices()
"""Where each part sits in a (..., 137, 3) keypoint array."""
NUM_KEYPOINTS = KEYPOINT_SLICES["face"].stop
"""137."""
BODY = KEYPOINT_SLICES["body"]
HANDS = slice(KEYPOINT_SLICES["left_hand"].start, KEYPOINT_SLICES["right_hand"].stop)
"""Both hands (they are adjacent)."""
FACE = KEYPOINT_SLICES["face"]

BODY_25_EDGES: tuple[tuple[int, int], ...] = (
    (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12), (12, 13),
    (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19), (19, 20), (14, 21), (11, 22), (22, 23),
    (11, 24),
)
"""Skeleton edges for drawing (OpenPose's own BODY_25 pairs)."""
HAND_EDGES: tuple[tuple[int, int], ...] = tuple(
    (0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j) for f in range(5) for j in range(4))
"""Hand skeleton edges: wrist -> each finger's base, then base to tip."""
