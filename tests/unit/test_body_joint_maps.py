"""The keypoint tables, pinned: SMPL-X -> OpenPose (SMPLify-X's coco25 + hands + face) and COCO -> BODY_25."""

import torch

from dinar_core.body.joint_maps import (
    SMPLX_NUM_POINTS,
    SMPLX_PARENTS,
    SMPLX_POINT_NAMES,
    coco_to_body25_matrix,
    smplx_keypoint_indices,
    smplx_keypoint_matrix,
)
from dinar_core.keypoints.layout import BODY_25_NAMES as BODY25_NAMES
from dinar_core.keypoints.layout import KEYPOINT_SLICES, NUM_KEYPOINTS


def test_smplx_point_names_follow_smplx_output_order():
    from smplx.joint_names import JOINT_NAMES

    assert len(SMPLX_POINT_NAMES) == SMPLX_NUM_POINTS == len(JOINT_NAMES) == 144
    # joints and surface points by name; the 68 face landmarks are renamed by their iBUG index here
    assert list(SMPLX_POINT_NAMES[:76]) == list(JOINT_NAMES[:76])
    assert JOINT_NAMES[76].startswith("right_eye_brow") and JOINT_NAMES[127] == "right_contour_1"


def test_body25_from_smplx_pinned():
    idx = smplx_keypoint_indices()
    assert idx[:25].tolist() == [55, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 56, 57, 58, 59, 60, 61, 62,
                                 63, 64, 65]


def test_hands_from_smplx_pinned():
    idx = smplx_keypoint_indices()
    assert idx[KEYPOINT_SLICES["left_hand"]].tolist() == [20, 37, 38, 39, 66, 25, 26, 27, 67, 28, 29, 30, 68, 34,
                                                           35, 36, 69, 31, 32, 33, 70]
    assert idx[KEYPOINT_SLICES["right_hand"]].tolist() == [21, 52, 53, 54, 71, 40, 41, 42, 72, 43, 44, 45, 73, 49,
                                                            50, 51, 74, 46, 47, 48, 75]


def test_face_from_smplx_contour_landmarks_and_pupils():
    face = smplx_keypoint_indices()[KEYPOINT_SLICES["face"]].tolist()
    assert face[:17] == list(range(127, 144))  # iBUG 0..16 = dynamic contour
    assert face[17:68] == list(range(76, 127))  # iBUG 17..67 = the 51 static landmarks
    assert face[68:] == [56, 57]  # pupils = smplx's right/left eye surface points
    no_contour = smplx_keypoint_indices(use_face_contour=False)[KEYPOINT_SLICES["face"]]
    assert (no_contour[:17] == -1).all() and (no_contour[17:] >= 0).all()


def test_smplx_matrix_is_one_hot():
    m = smplx_keypoint_matrix()
    assert m.shape == (NUM_KEYPOINTS, 144)
    assert torch.equal(m.sum(1), torch.ones(NUM_KEYPOINTS))
    assert torch.equal(m.argmax(1), smplx_keypoint_indices())


def test_parents_by_name():
    names = SMPLX_POINT_NAMES
    parent = {names[i]: (names[p] if p >= 0 else None) for i, p in enumerate(SMPLX_PARENTS)}
    assert parent["pelvis"] is None
    assert parent["left_wrist"] == "left_elbow" and parent["right_knee"] == "right_hip"
    assert parent["jaw"] == "head" and parent["left_index1"] == "left_wrist"
    assert parent["right_thumb3"] == "right_thumb2" and parent["neck"] == "spine3"


def test_coco_to_body25_midpoints_and_gaps():
    coco = ("nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip")
    m = coco_to_body25_matrix(coco, offset=2, num_sources=7)
    pts = torch.randn(1, 7, 3)
    kp = torch.einsum("ks,bsd->bkd", m, pts)
    neck, midhip = BODY25_NAMES.index("Neck"), BODY25_NAMES.index("MidHip")
    torch.testing.assert_close(kp[0, neck], (pts[0, 3] + pts[0, 4]) / 2)
    torch.testing.assert_close(kp[0, midhip], (pts[0, 5] + pts[0, 6]) / 2)
    torch.testing.assert_close(kp[0, 0], pts[0, 2])
    available = m.abs().sum(1) > 0
    assert available[[0, 1, 2, 5, 8, 9, 12]].all()
    assert not available[BODY25_NAMES.index("LWrist")]  # not in this COCO subset
    assert not available[25:].any()  # no hands or face from COCO
