"""Built-in motions: shapes, cycles, and that their angles move the limbs the way they are documented to."""

from __future__ import annotations

import numpy as np
import pytest

from dinar_core.motion import SMPLX_BODY_JOINTS, Skeleton, procedural_motion, turntable, walk, wave
from dinar_core.motion.rotations import axis_angle_to_matrix

J = {name: i for i, name in enumerate(SMPLX_BODY_JOINTS)}
DOWN, LEFT, RIGHT = np.array([0, -1.0, 0]), np.array([1.0, 0, 0]), np.array([-1.0, 0, 0])


def _chain(motion, names, frame):
    """World rotation of the last joint in ``names`` (root first) at ``frame``: R_global R_1 ... R_n."""
    rot = axis_angle_to_matrix(motion.global_orient[frame])
    joints = motion.body_joint_rotations()[frame]
    for name in names:
        rot = rot @ axis_angle_to_matrix(joints[J[name]])
    return rot


ARM = {"left": ("spine1", "spine2", "spine3", "left_collar", "left_shoulder"),
       "right": ("spine1", "spine2", "spine3", "right_collar", "right_shoulder")}


def test_walk_moves_legs_and_arms_in_antiphase():
    fps, cycle = 40.0, 1.0
    m = walk(num_frames=81, fps=fps, cycle_seconds=cycle)
    assert m.body_pose.shape == (81, 63) and m.transl.shape == (81, 3)
    quarter = int(fps * cycle / 4)  # sin(phi) = 1: the left leg forward
    left_leg = _chain(m, ("left_hip",), quarter) @ DOWN
    right_leg = _chain(m, ("right_hip",), quarter) @ DOWN
    assert left_leg[2] > 0.2 and right_leg[2] < -0.2  # canonical +z = the body's front
    left_arm = _chain(m, ARM["left"], quarter) @ LEFT
    right_arm = _chain(m, ARM["right"], quarter) @ RIGHT
    assert left_arm[2] < -0.1 and right_arm[2] > 0.1  # each arm opposite to the leg on its side
    for frame in range(81):  # the arms hang down from the T-pose all along
        assert (_chain(m, ARM["left"], frame) @ LEFT)[1] < -0.8
        assert (_chain(m, ARM["right"], frame) @ RIGHT)[1] < -0.8
    knees = m.body_joint_rotations()[:, [J["left_knee"], J["right_knee"]], 0]
    assert knees.min() >= 0.09 and knees.max() > 0.6  # knees only bend forward, and bend a lot in swing
    # half a cycle later the legs have swapped
    np.testing.assert_allclose(m.body_pose[quarter + int(fps * cycle / 2), 3 * J["left_hip"]],
                               m.body_pose[quarter, 3 * J["right_hip"]], atol=1e-5)


def test_walk_is_cyclic_and_in_place():
    m = walk(num_frames=61, fps=30.0, cycle_seconds=1.0)
    np.testing.assert_allclose(m.body_pose[30], m.body_pose[0], atol=1e-5)
    np.testing.assert_allclose(m.body_pose[60], m.body_pose[0], atol=1e-5)
    assert np.abs(m.transl[:, [0, 2]]).max() == 0 and 0 < np.ptp(m.transl[:, 1]) < 0.05
    moving = walk(num_frames=31, fps=30.0, forward_speed=1.2)
    np.testing.assert_allclose(moving.transl[30, 2], 1.2, atol=1e-5)


@pytest.mark.parametrize("side", ["left", "right"])
def test_wave_raises_the_forearm_and_swings_it(side):
    m = wave(num_frames=60, fps=30.0, side=side)
    rest_dir = LEFT if side == "left" else RIGHT
    forearm = np.stack([_chain(m, ARM[side] + (f"{side}_elbow",), f) @ rest_dir for f in range(60)])
    assert forearm[20:, 1].min() > 0.6  # pointing up once raised
    assert np.ptp(forearm[20:, 0]) > 0.3  # swinging side to side
    other = "right" if side == "left" else "left"
    other_dir = RIGHT if side == "left" else LEFT
    assert (_chain(m, ARM[other], 30) @ other_dir)[1] < -0.8  # the other arm rests down


def test_turntable_turns_about_the_vertical_and_holds_a_pose():
    hold = np.random.default_rng(0).normal(scale=0.1, size=63)
    m = turntable(num_frames=8, fps=30.0, body_pose=hold)
    np.testing.assert_allclose(m.global_orient[:, [0, 2]], 0.0)
    np.testing.assert_allclose(m.global_orient[:, 1], np.arange(8) * np.pi / 4, atol=1e-6)
    np.testing.assert_allclose(m.body_pose, np.tile(hold, (8, 1)), atol=1e-6)


def test_other_skeletons():
    generic = turntable(num_frames=4, skeleton=40)  # only a joint count: turntable works
    assert generic.body_pose.shape == (4, 120)
    with pytest.raises(ValueError, match="walk motion needs"):
        walk(num_frames=4, skeleton=40)
    # a named skeleton with its own rest frames: local axis-angle = R_rest^T (canonical axis-angle)
    names = ("root_child", "thigh.L", "thigh.R", "shin.L", "shin.R", "arm.L", "arm.R", "spineA", "spineB")
    aliases = {"left_hip": ("thigh.L",), "right_hip": ("thigh.R",), "left_knee": ("shin.L",),
               "right_knee": ("shin.R",), "left_shoulder": ("arm.L",), "right_shoulder": ("arm.R",),
               "spine1": ("spineA", "spineB")}
    rest_frames = axis_angle_to_matrix(np.random.default_rng(1).normal(size=(len(names), 3)))
    sk = Skeleton(names, aliases, rest_frames, "test rig")
    ours = walk(num_frames=10, skeleton=sk).body_joint_rotations()
    smplx = walk(num_frames=10).body_joint_rotations()
    for target, semantic in (("thigh.L", "left_hip"), ("shin.R", "right_knee"), ("arm.L", "left_shoulder")):
        j = names.index(target)
        np.testing.assert_allclose(ours[:, j] @ rest_frames[j].T, smplx[:, J[semantic]], atol=1e-5)
    # an angle shared by two bones is split evenly
    np.testing.assert_allclose(2 * ours[:, names.index("spineA")] @ rest_frames[names.index("spineA")].T,
                               smplx[:, J["spine1"]], atol=1e-5)
    assert np.abs(ours[:, 0]).max() == 0  # unmapped joints stay at rest
    assert procedural_motion("wave", num_frames=3).num_frames == 3
    with pytest.raises(ValueError, match="unknown built-in motion"):
        procedural_motion("dance", num_frames=3)


def test_anny_skeleton_from_names_frame_and_rest_arms():
    from dinar_core.motion import ANNY_ALIASES, anny_skeleton

    names = ["root"] + sorted({b for bones in ANNY_ALIASES.values() for b in bones})
    frame = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # canonical-from-z-up
    rest = np.zeros((len(names), 3))
    rest[names.index("wrist.L")] = [0.3, -0.3, 0.0]  # 45 degrees below the horizontal
    sk = anny_skeleton(names, frame, rest)
    assert sk.rest_arm_angle == pytest.approx(np.pi / 4) and len(sk.aliases) == len(ANNY_ALIASES)
    np.testing.assert_allclose(sk.rest_frames, np.broadcast_to(frame, (len(names), 3, 3)))
    a_pose = walk(num_frames=5, skeleton=sk).body_joint_rotations()
    t_pose = walk(num_frames=5).body_joint_rotations()
    # the hips: the same canonical rotation, written about the z-up axes (local = frame^T a)
    np.testing.assert_allclose(a_pose[:, names.index("upperleg01.L")] @ frame.T, t_pose[:, J["left_hip"]], atol=1e-6)
    # the A-pose arms are lowered less, to the same final angle
    lowered = a_pose[0, names.index("upperarm01.L")] @ frame.T
    assert abs(lowered[2]) == pytest.approx(1.25 - np.pi / 4, abs=1e-3) and abs(t_pose[0, J["left_shoulder"], 2]) > 1.2


def test_idle_stands_at_ease_breathes_and_loops():
    from dinar_core.motion.procedural import idle

    fps, breath = 30.0, 4.0
    m = idle(num_frames=int(2 * breath * fps) + 1, fps=fps, breath_seconds=breath)
    for frame in (0, 60, 120):  # the arms hang down at every time
        assert (_chain(m, ARM["left"], frame) @ LEFT)[1] < -0.8
        assert (_chain(m, ARM["right"], frame) @ RIGHT)[1] < -0.8
    shoulder = m.body_joint_rotations()[:, J["left_shoulder"], 2]
    assert 0.03 < np.ptp(shoulder) < 0.05  # the breath lifts the shoulders ~0.04 rad
    np.testing.assert_allclose(m.body_pose[-1], m.body_pose[0], atol=1e-6)  # two breaths: one loop
    np.testing.assert_allclose(m.transl[-1], m.transl[0], atol=1e-6)
    assert 0.015 < np.ptp(m.transl[:, 0]) < 0.025 and np.abs(m.transl[:, 1:]).max() == 0  # the weight shifts
    assert procedural_motion("idle", 10, 30.0).source == "idle"
