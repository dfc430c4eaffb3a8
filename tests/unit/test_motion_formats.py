"""Motion files: DINAR's animation pickle and AMASS .npz round trips, and named errors for bad files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from dinar_core.errors import MotionError, MotionLimitError
from dinar_core.motion import formats
from dinar_core.motion import Motion, load_amass_npz, load_dinar_animation, load_motion, save_dinar_animation
from dinar_core.motion.rotations import axis_angle_to_matrix


def _dinar_frames(t: int, rng: np.random.Generator, hand: int = 12, as_tensor: bool = False) -> list[dict]:
    def arr(n):
        a = rng.normal(scale=0.3, size=(1, n)).astype(np.float32)
        return torch.from_numpy(a) if as_tensor else a

    return [{"body_pose": arr(63), "global_orient": arr(3), "jaw_pose": arr(3), "left_hand_pose": arr(hand),
             "right_hand_pose": arr(hand)} for _ in range(t)]


@pytest.mark.parametrize("as_tensor", [False, True])
def test_dinar_pickle_is_read_as_dinar_does(tmp_path, as_tensor):
    rng = np.random.default_rng(0)
    frames = _dinar_frames(5, rng, hand=12, as_tensor=as_tensor)
    path = tmp_path / "seq.pickle"
    path.write_bytes(pickle.dumps({"body_params_list": frames}))
    motion = load_motion(path)
    assert motion.num_frames == 5 and motion.fps == 30.0 and motion.hand_format == "pca"
    assert motion.transl is None  # translation comes from the avatar
    for i in (0, 4):
        np.testing.assert_array_equal(motion.body_pose[i], np.asarray(frames[i]["body_pose"])[0])
        np.testing.assert_array_equal(motion.global_orient[i], np.asarray(frames[i]["global_orient"])[0])
        # hands cut to DINAR's first 6 PCA coefficients
        np.testing.assert_array_equal(motion.left_hand_pose[i], np.asarray(frames[i]["left_hand_pose"])[0, :6])


def test_dinar_pickle_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "seq.pkl"
    path.write_bytes(pickle.dumps({"body_params_list": _dinar_frames(4, rng, hand=6)}))
    first = load_dinar_animation(path)
    out = save_dinar_animation(tmp_path / "copy.pkl", first)
    again = load_dinar_animation(out)
    for name in ("global_orient", "body_pose", "jaw_pose", "left_hand_pose", "right_hand_pose"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    raw = pickle.loads(out.read_bytes())  # what DINAR itself reads: (1, N) float32 per frame
    assert raw["body_params_list"][0]["body_pose"].shape == (1, 63)
    assert raw["body_params_list"][0]["body_pose"].dtype == np.float32
    assert not list(tmp_path.glob("*.tmp-*"))


def test_animation_pickle_frame_cap_and_its_opcode_budget(tmp_path, monkeypatch):
    """A pickle builds one object per value, so its frames are capped well below the .npz's (the limit keeps a
    hostile stream's cost near a legal file's); a frame costs ~125 opcodes, inside the budget per frame."""
    rng = np.random.default_rng(2)
    path = tmp_path / "long.pkl"
    data = pickle.dumps({"body_params_list": _dinar_frames(7, rng, hand=6)}, protocol=4)
    path.write_bytes(data)
    import pickletools

    many = pickle.dumps({"body_params_list": _dinar_frames(300, rng, hand=6)}, protocol=4)
    per_frame = sum(1 for _ in pickletools.genops(many)) / 300
    assert per_frame * formats.MAX_PICKLE_FRAMES <= formats.ANIMATION_PICKLE.max_ops
    assert formats.ANIMATION_PICKLE.max_ops <= 130 * formats.MAX_PICKLE_FRAMES < 130 * formats.MAX_FRAMES
    monkeypatch.setattr(formats, "MAX_PICKLE_FRAMES", 6)
    with pytest.raises(MotionLimitError, match="7 frames, more than the 6") as err:
        load_motion(path)
    assert ".npz" in err.value.fix
    monkeypatch.setattr(formats, "MAX_PICKLE_FRAMES", 7)
    assert load_motion(path).num_frames == 7


def _amass_poses(t: int, rng: np.random.Generator, width: int) -> np.ndarray:
    return rng.normal(scale=0.3, size=(t, width)).astype(np.float32)


def test_amass_smplx_npz_layout_and_up_axis(tmp_path):
    rng = np.random.default_rng(2)
    poses = _amass_poses(7, rng, 165)
    trans = rng.normal(size=(7, 3)).astype(np.float32)
    path = tmp_path / "clip_stageii.npz"
    np.savez(path, poses=poses, trans=trans, mocap_frame_rate=np.array(120.0), betas=np.zeros(16),
             gender=np.array("female"), surface_model_type=np.array("smplx"))
    y_up = load_amass_npz(path, up="y")
    assert y_up.fps == 120.0 and y_up.gender == "female" and y_up.betas.shape == (16,)
    np.testing.assert_array_equal(y_up.global_orient, poses[:, 0:3])
    np.testing.assert_array_equal(y_up.body_pose, poses[:, 3:66])
    np.testing.assert_array_equal(y_up.jaw_pose, poses[:, 66:69])
    np.testing.assert_array_equal(y_up.left_hand_pose, poses[:, 75:120])
    np.testing.assert_array_equal(y_up.right_hand_pose, poses[:, 120:165])
    np.testing.assert_array_equal(y_up.transl, trans)
    # default: AMASS's z-up turned y-up; the body's up (+z in the file) ends up along +y
    z_up = load_motion(path)
    r_file = axis_angle_to_matrix(poses[:, :3])
    r_ours = axis_angle_to_matrix(z_up.global_orient)
    up_change = r_ours @ np.linalg.inv(r_file)  # (7, 3, 3): the same world rotation for every frame
    np.testing.assert_allclose(up_change @ np.array([0, 0, 1.0]), np.tile([0, 1.0, 0], (7, 1)), atol=1e-5)
    np.testing.assert_allclose(z_up.transl[:, 1], trans[:, 2], atol=1e-5)  # file z -> our y
    np.testing.assert_array_equal(z_up.body_pose, y_up.body_pose)  # only the root changes


@pytest.mark.parametrize("width,has_hands", [(156, True), (72, False)])
def test_amass_smplh_and_smpl_layouts(tmp_path, width, has_hands):
    rng = np.random.default_rng(3)
    poses = _amass_poses(3, rng, width)
    path = tmp_path / "clip_poses.npz"
    np.savez(path, poses=poses, trans=np.zeros((3, 3)), mocap_framerate=np.array(60.0))
    motion = load_motion(path, amass_up="y")
    assert motion.fps == 60.0 and motion.num_body_joints == 21 and motion.jaw_pose is None
    np.testing.assert_array_equal(motion.body_pose, poses[:, 3:66])
    if has_hands:
        np.testing.assert_array_equal(motion.left_hand_pose, poses[:, 66:111])
        np.testing.assert_array_equal(motion.right_hand_pose, poses[:, 111:156])
    else:
        assert motion.left_hand_pose is None


def test_amass_split_keys(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "split.npz"
    hands = _amass_poses(2, rng, 90)
    np.savez(path, root_orient=_amass_poses(2, rng, 3), pose_body=_amass_poses(2, rng, 63), pose_hand=hands,
             pose_jaw=_amass_poses(2, rng, 3), trans=np.zeros((2, 3)), mocap_frame_rate=np.array(30.0))
    motion = load_amass_npz(path, up="y")
    np.testing.assert_array_equal(motion.right_hand_pose, hands[:, 45:])


# ---- errors, each naming the file ------------------------------------------------------------------------------
def _expect_error(path, match: str, **kw):
    with pytest.raises(MotionError, match=match) as info:
        load_motion(path, **kw)
    assert str(path) in str(info.value)
    return info.value


def test_wrong_joint_count_is_named(tmp_path):
    rng = np.random.default_rng(5)
    frames = _dinar_frames(2, rng)
    for f in frames:
        f["body_pose"] = np.zeros((1, 69), np.float32)  # SMPL's 23 joints
    pkl = tmp_path / "smpl_seq.pkl"
    pkl.write_bytes(pickle.dumps({"body_params_list": frames}))
    _expect_error(pkl, "23 body joints")
    npz = tmp_path / "odd.npz"
    np.savez(npz, poses=np.zeros((4, 99)), mocap_frame_rate=np.array(30.0))
    _expect_error(npz, "99 values per frame")
    # a model with another skeleton rejects an SMPL-X motion
    good = tmp_path / "good.npz"
    np.savez(good, poses=np.zeros((4, 165)), mocap_frame_rate=np.array(30.0))
    _expect_error(good, "21 body joints.*needs 30", num_body_joints=30)


def test_nan_and_zero_frames_are_named(tmp_path):
    poses = np.zeros((6, 165))
    poses[3, 10] = np.nan
    nan = tmp_path / "nan.npz"
    np.savez(nan, poses=poses, mocap_frame_rate=np.array(30.0))
    _expect_error(nan, "NaN.*frame 3")
    empty = tmp_path / "empty.npz"
    np.savez(empty, poses=np.zeros((0, 165)), mocap_frame_rate=np.array(30.0))
    _expect_error(empty, "zero frames")
    empty_pkl = tmp_path / "empty.pkl"
    empty_pkl.write_bytes(pickle.dumps({"body_params_list": []}))
    _expect_error(empty_pkl, "zero frames")
    frames = _dinar_frames(2, np.random.default_rng(6))
    frames[1]["global_orient"] = np.full((1, 3), np.nan, np.float32)
    nan_pkl = tmp_path / "nan.pkl"
    nan_pkl.write_bytes(pickle.dumps({"body_params_list": frames}))
    _expect_error(nan_pkl, "global_orient has NaN.*frame 1")


def test_malformed_files_are_named(tmp_path):
    frames = _dinar_frames(2, np.random.default_rng(7))
    del frames[1]["jaw_pose"]
    missing = tmp_path / "missing_key.pkl"
    missing.write_bytes(pickle.dumps({"body_params_list": frames}))
    _expect_error(missing, "frame 1 has no 'jaw_pose'")
    not_dict = tmp_path / "list.pkl"
    not_dict.write_bytes(pickle.dumps([1, 2, 3]))
    _expect_error(not_dict, "no 'body_params_list'")
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"body_params_list": [print]}))  # a global that must not be resolved
    _expect_error(evil, "not a readable animation pickle")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    _expect_error(garbage, "not a readable .npz")
    no_fps = tmp_path / "nofps.npz"
    np.savez(no_fps, poses=np.zeros((2, 165)))
    _expect_error(no_fps, "no frame rate")
    assert load_motion(no_fps, fps=24.0).fps == 24.0
    _expect_error(tmp_path / "motion.bvh", "unknown format")
    _expect_error(tmp_path / "absent.pkl", "does not exist")


def test_motion_checks_consistency():
    with pytest.raises(MotionError, match="4 frames but global_orient has 3"):
        Motion(np.zeros((3, 3)), np.zeros((4, 63)), 30.0, source="x")
    with pytest.raises(MotionError, match="frame rate"):
        Motion(np.zeros((3, 3)), np.zeros((3, 63)), 0.0)
