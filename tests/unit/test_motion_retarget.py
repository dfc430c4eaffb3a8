"""A SMPL-X motion file (AMASS .npz, DINAR pickle) on Anny's rig (`retarget_smplx`, used by `resolve_motion` for
Anny avatars): the mapped joints move as in SMPL-X. A motion of known rotations is posed on Anny and its limbs'
world directions compared with SMPL-X's (its bind orientations are identity, so a limb's direction is its chain's
rotations applied to the T-pose direction); the two file formats give the same retargeted motion."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dinar_core.motion import SMPLX_BODY_JOINTS, Motion, anny_skeleton, retarget_smplx, save_dinar_animation
from dinar_core.motion.rotations import axis_angle_to_matrix

J = {name: i for i, name in enumerate(SMPLX_BODY_JOINTS)}
DOWN, LEFT, RIGHT = np.array([0, -1.0, 0]), np.array([1.0, 0, 0]), np.array([-1.0, 0, 0])
CHAINS = {  # SMPL-X chain (root excluded), Anny bones (from, to) of the limb, the T-pose direction
    "left thigh": (("left_hip",), ("upperleg01.L", "lowerleg01.L"), DOWN),
    "left shin": (("left_hip", "left_knee"), ("lowerleg01.L", "foot.L"), DOWN),
    "right thigh": (("right_hip",), ("upperleg01.R", "lowerleg01.R"), DOWN),
    "left upper arm": (("spine1", "spine2", "spine3", "left_collar", "left_shoulder"),
                       ("upperarm01.L", "lowerarm01.L"), LEFT),
    "right upper arm": (("spine1", "spine2", "spine3", "right_collar", "right_shoulder"),
                        ("upperarm01.R", "lowerarm01.R"), RIGHT),
    # Anny rests with its elbows bent ~43 degrees forward of SMPL-X's straight T-pose arm: the retargeting
    # straightens the rest forearm (`Skeleton.rest_forearm`) before the motion's elbow turns it
    "left forearm": (("spine1", "spine2", "spine3", "left_collar", "left_shoulder", "left_elbow"),
                     ("lowerarm01.L", "wrist.L"), LEFT),
    "right forearm": (("spine1", "spine2", "spine3", "right_collar", "right_shoulder", "right_elbow"),
                      ("lowerarm01.R", "wrist.R"), RIGHT),
}
# The legs keep Anny's 6.5-degree splay.


def _motion() -> Motion:
    """Three frames of known SMPL-X rotations: the left hip forward 0.8 rad, the knee bent 1.2 rad, the right arm
    lowered to the front, the left arm lowered to the side, the spine bent forward; the root still."""
    T = 3
    pose = np.zeros((T, 21, 3))
    s = np.linspace(0.3, 1.0, T)
    pose[:, J["left_hip"], 0] = -0.8 * s
    pose[:, J["left_knee"], 0] = 1.2 * s
    pose[:, J["right_hip"], 0] = 0.4 * s
    pose[:, J["left_shoulder"], 2] = -1.1 * s
    pose[:, J["right_shoulder"]] = np.stack([0 * s, -1.0 * s, 0.3 * s], 1)
    pose[:, J["right_elbow"], 1] = 0.9 * s
    pose[:, J["left_elbow"], 1] = -0.7 * s
    pose[:, J["spine2"], 0] = 0.25 * s
    return Motion(np.zeros((T, 3)), pose.reshape(T, -1), 30.0, source="test")


def _expected(motion: Motion, chain, rest_dir) -> np.ndarray:
    rots = axis_angle_to_matrix(motion.body_joint_rotations())
    out = []
    for t in range(motion.num_frames):
        R = np.eye(3)
        for name in chain:
            R = R @ rots[t, J[name]]
        out.append(R @ rest_dir)
    return np.stack(out)


@pytest.fixture(scope="module")
def anny():
    from dinar_core.body.anny_model import AnnyBody

    return AnnyBody()


def _anny_joints(anny, motion: Motion) -> np.ndarray:
    from dinar_core.body.anny_model import AnnyParams

    params = AnnyParams.zeros(motion.num_frames, anny.num_joints)
    params.pose = torch.from_numpy(motion.body_pose.reshape(motion.num_frames, anny.num_joints, 3)).float()
    params.global_orient = torch.from_numpy(motion.global_orient).float()
    with torch.no_grad():
        return anny(params).joints.numpy()


def test_a_smplx_motion_moves_annys_limbs_as_in_smplx(anny):
    idx = {n: i for i, n in enumerate(anny.joint_names)}
    sk = anny_skeleton(anny.joint_names, anny.frame.cpu().numpy(), anny.rest_joints.cpu().numpy())
    m = _motion()
    joints = _anny_joints(anny, retarget_smplx(m, sk))
    for limb, (chain, (a, b), rest_dir) in CHAINS.items():
        got = joints[:, idx[b]] - joints[:, idx[a]]
        got /= np.linalg.norm(got, axis=1, keepdims=True)
        want = _expected(m, chain, rest_dir)
        angle = np.degrees(np.arccos(np.clip((got * want).sum(1), -1, 1)))
        print(f"{limb}: up to {angle.max():.1f} degrees from SMPL-X's")
        assert angle.max() < 10, (limb, angle)  # Anny's bones are not SMPL-X's: near, not equal (measured <= 6.6)
    moved = _expected(m, CHAINS["left shin"][0], DOWN)
    assert np.degrees(np.arccos(moved[-1] @ DOWN)) > 20  # the test motion really bends the limbs


def test_amass_and_dinar_files_retarget_alike(anny, tmp_path):
    from tasks.bodies import LoadedBody
    from tasks.motions import resolve_motion

    m = _motion()
    upright = np.tile([np.pi, 0.0, 0.0], (m.num_frames, 1))  # DINAR's pickles are in its camera frame (y down)
    pkl = save_dinar_animation(tmp_path / "m.pkl", m.replace(global_orient=upright))
    poses = np.zeros((m.num_frames, 165))
    poses[:, 3:66] = m.body_pose
    poses[:, 0] = np.pi / 2  # AMASS is z-up: the standing body's root turned by +90 degrees about x
    npz = tmp_path / "m.npz"
    np.savez(npz, poses=poses, trans=np.zeros((m.num_frames, 3)), mocap_frame_rate=30.0)
    body = LoadedBody("anny", anny, None)
    from dinar_core.body.anny_model import AnnyParams

    fit = SimpleNamespace(params=AnnyParams.zeros(1, anny.num_joints))
    a = resolve_motion(str(pkl), body, fit, 30.0, 0.1, frame="canonical")
    b = resolve_motion(str(npz), body, fit, 30.0, 0.1, frame="canonical")
    assert a.num_body_joints == anny.num_joints - 1 or a.num_body_joints == anny.num_joints
    np.testing.assert_allclose(a.body_pose, b.body_pose, atol=1e-5)
    for motion in (a, b):  # both stand upright in the canonical frame, as the motion was made
        np.testing.assert_allclose(axis_angle_to_matrix(motion.global_orient), np.eye(3)[None].repeat(3, 0),
                                   atol=1e-4)
    assert "retargeted onto Anny" in a.source
