"""dinar_core.keypoints.mediapipe: the pinned mapping tables and the holistic detector on a real face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dinar_core.keypoints import BODY_25, BODY_25_NAMES
from dinar_core.keypoints.mediapipe import (
    FACE_MESH_TO_IBUG68,
    MP_POSE,
    POSE_TO_BODY25,
    MediapipeKeypointDetector,
    MediapipeLandmarks,
    face_mesh_to_face70,
    hand_to_hand21,
    landmarks_to_keypoints,
    pose_to_body25,
)

# The mapping written out by name, independently of the index table under test.
EXPECTED_BY_NAME = {
    "Nose": ("nose",), "Neck": ("left_shoulder", "right_shoulder"), "RShoulder": ("right_shoulder",),
    "RElbow": ("right_elbow",), "RWrist": ("right_wrist",), "LShoulder": ("left_shoulder",),
    "LElbow": ("left_elbow",), "LWrist": ("left_wrist",), "MidHip": ("left_hip", "right_hip"),
    "RHip": ("right_hip",), "RKnee": ("right_knee",), "RAnkle": ("right_ankle",), "LHip": ("left_hip",),
    "LKnee": ("left_knee",), "LAnkle": ("left_ankle",), "REye": ("right_eye",), "LEye": ("left_eye",),
    "REar": ("right_ear",), "LEar": ("left_ear",), "LBigToe": ("left_foot_index",),
    "LSmallToe": ("left_foot_index",), "LHeel": ("left_heel",), "RBigToe": ("right_foot_index",),
    "RSmallToe": ("right_foot_index",), "RHeel": ("right_heel",),
}


def test_pose_table_by_name():
    assert len(POSE_TO_BODY25) == 25
    for name, mp_names in EXPECTED_BY_NAME.items():
        assert sorted(POSE_TO_BODY25[BODY_25[name]]) == sorted(MP_POSE[n] for n in mp_names), name
    assert MP_POSE["left_shoulder"] == 11 and MP_POSE["right_foot_index"] == 32 and len(MP_POSE) == 33


def test_pose_to_body25_midpoints_and_confidence():
    rng = np.random.default_rng(0)
    pose = np.concatenate([rng.random((33, 2)) * 300, rng.random((33, 1))], axis=1).astype(np.float32)
    body = pose_to_body25(pose)
    assert body.shape == (25, 3) and body.dtype == np.float32
    np.testing.assert_allclose(body[BODY_25["Neck"], :2], (pose[11, :2] + pose[12, :2]) / 2, rtol=1e-6)
    assert body[BODY_25["Neck"], 2] == min(pose[11, 2], pose[12, 2])
    np.testing.assert_allclose(body[BODY_25["MidHip"], :2], (pose[23, :2] + pose[24, :2]) / 2, rtol=1e-6)
    assert tuple(body[BODY_25["RHeel"]]) == tuple(pose[30])
    with pytest.raises(ValueError, match=r"\(33, 3\)"):
        pose_to_body25(pose[:25])


def test_face_table_pins():
    t = FACE_MESH_TO_IBUG68
    assert len(t) == 68 and len(set(t)) == 68 and all(0 <= i < 468 for i in t)
    # Anchor points of the iBUG layout on mediapipe's canonical mesh.
    assert t[8] == 152  # chin
    assert (t[36], t[39], t[42], t[45]) == (33, 133, 362, 263)  # eye corners: R outer, R inner, L inner, L outer
    assert (t[48], t[51], t[54], t[57]) == (61, 0, 291, 17)  # mouth corners, upper / lower lip centre
    assert (t[27], t[30], t[33]) == (168, 4, 2)  # nose bridge top, tip, base


def test_face_and_hand_conversion():
    face = np.arange(468 * 2, dtype=np.float32).reshape(468, 2)
    f70 = face_mesh_to_face70(face, 0.7)
    assert f70.shape == (70, 3)
    assert tuple(f70[8, :2]) == tuple(face[152])
    np.testing.assert_allclose(f70[68, :2], face[[33, 160, 158, 133, 153, 144]].mean(axis=0))  # right pupil
    np.testing.assert_allclose(f70[69, :2], face[[362, 385, 387, 263, 373, 380]].mean(axis=0))
    assert np.all(f70[:, 2] == np.float32(0.7))
    hand = np.arange(42, dtype=np.float32).reshape(21, 2)
    h21 = hand_to_hand21(hand, 0.9)
    assert np.array_equal(h21[:, :2], hand)  # mediapipe's hand order is OpenPose's


def test_landmarks_to_keypoints_drops_out_of_image_and_weak_joints():
    pose = np.zeros((33, 3), np.float32)
    pose[:, :2] = 50
    pose[:, 2] = 0.9
    pose[MP_POSE["left_ankle"]] = (50, 150, 0.9)  # below a 100-px-high image
    pose[MP_POSE["nose"], 2] = 0.01
    kp = landmarks_to_keypoints(MediapipeLandmarks(pose, None, None, np.full((21, 2), 40.0, np.float32)),
                                width=100, height=100, min_confidence=0.05)
    assert not kp.body[BODY_25["LAnkle"]].any() and not kp.body[BODY_25["Nose"]].any()
    assert kp.body[BODY_25["RAnkle"], 2] == np.float32(0.9)
    assert not kp.face.any() and not kp.left_hand.any()
    assert np.all(kp.right_hand[:, 2] == np.float32(0.9))  # right wrist's visibility


@pytest.fixture(scope="module")
def astronaut_keypoints(samples_dir):
    rgb = cv2.cvtColor(cv2.imread(str(samples_dir / "astronaut.png")), cv2.COLOR_BGR2RGB)
    with MediapipeKeypointDetector() as det:
        return det.detect(rgb)


def test_real_face_landmarks_are_in_ibug_order(astronaut_keypoints):
    f = astronaut_keypoints.face
    assert (f[:, 2] > 0.5).all()
    x, y = f[:, 0], f[:, 1]
    assert x[0] < x[8] < x[16]  # jaw runs from the image left (person's right) over the chin
    assert np.argmax(y[:17]) in (7, 8, 9)  # the chin is the lowest jaw point
    assert x[36] < x[39] < x[42] < x[45]  # eye corners left to right
    assert y[19] < y[37] < y[30] < y[51] < y[57] < y[8]  # brow, eye, nose tip, lips, chin, top to bottom
    assert x[48] < x[51] < x[54]
    assert x[36] < x[68] < x[39] and x[42] < x[69] < x[45]  # pupils inside their eyes
    body = astronaut_keypoints.body
    assert body[BODY_25["RShoulder"], 0] < body[BODY_25["LShoulder"], 0]  # frontal photo: person's right on the left
    assert body[BODY_25["REye"], 0] < body[BODY_25["LEye"], 0]
    # The face mesh's eyes agree with the pose's eyes.
    assert np.linalg.norm(f[68, :2] - body[BODY_25["REye"], :2]) < 0.3 * (x[45] - x[36])
    assert BODY_25_NAMES[15] == "REye"
