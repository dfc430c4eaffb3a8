"""Frame-rate retargeting (slerp through quaternions), ground offsets and the rotation helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation, Slerp

from dinar_core.motion import Motion, apply_ground_offsets, ground_offsets, resample
from dinar_core.motion.rotations import (axis_angle_to_matrix, axis_angle_to_quat, matrix_to_axis_angle,
                                         matrix_to_quat, quat_to_axis_angle)


def _random_motion(t, fps, seed=0, hands="pca"):
    rng = np.random.default_rng(seed)
    return Motion(global_orient=rng.normal(size=(t, 3)), body_pose=rng.normal(scale=0.5, size=(t, 63)), fps=fps,
                  jaw_pose=rng.normal(scale=0.1, size=(t, 3)), left_hand_pose=rng.normal(size=(t, 6)),
                  right_hand_pose=rng.normal(size=(t, 6)), hand_format=hands, transl=rng.normal(size=(t, 3)))


def _same_rotation(a, b, atol=1e-5):
    np.testing.assert_allclose(axis_angle_to_matrix(a), axis_angle_to_matrix(b), atol=atol)


def test_60_to_30_fps_halves_frames_and_keeps_the_even_ones():
    src = _random_motion(60, 60.0)
    out = resample(src, 30.0)
    assert out.num_frames == 30 and out.fps == 30.0
    _same_rotation(out.body_pose.reshape(-1, 3), src.body_pose[::2].reshape(-1, 3))
    _same_rotation(out.global_orient, src.global_orient[::2])
    np.testing.assert_allclose(out.transl, src.transl[::2], atol=1e-6)
    np.testing.assert_allclose(out.left_hand_pose, src.left_hand_pose[::2], atol=1e-6)
    assert out.duration == pytest.approx(src.duration)


def test_upsampled_frames_lie_on_the_slerp_path():
    src = _random_motion(5, 10.0, seed=1, hands="axis_angle")
    src = src.replace(left_hand_pose=np.random.default_rng(2).normal(size=(5, 45)), right_hand_pose=None)
    out = resample(src, 40.0)  # 4 frames between each source pair
    assert out.num_frames == 17
    times = np.arange(5) / 10.0
    new_times = np.arange(17) / 40.0
    for name, width in (("global_orient", 3), ("body_pose", 63), ("left_hand_pose", 45)):
        src_rot = getattr(src, name).reshape(5, -1, 3)
        got = getattr(out, name).reshape(17, -1, 3)
        for j in range(width // 3):
            ref = Slerp(times, Rotation.from_rotvec(src_rot[:, j].astype(np.float64)))(new_times)
            np.testing.assert_allclose(axis_angle_to_matrix(got[:, j]), ref.as_matrix(), atol=1e-5)
    # linear interpolation of translation, and not of the axis-angle vectors (which would leave the path)
    np.testing.assert_allclose(out.transl[2], 0.5 * (src.transl[0] + src.transl[1]), atol=1e-6)


def test_resample_keeps_a_constant_speed_rotation_linear():
    angle = np.linspace(0, 3.0, 61)  # constant angular speed about a fixed axis, beyond pi/2 per step pair
    axis = np.array([1.0, 2.0, 2.0]) / 3.0
    src = Motion(angle[:, None] * axis, np.zeros((61, 63)), 60.0)
    out = resample(src, 24.0)
    expected_angle = np.arange(out.num_frames) / 24.0 * 60.0 * (3.0 / 60)
    _same_rotation(out.global_orient, expected_angle[:, None] * axis)


def test_ground_offsets_put_the_lowest_vertex_on_the_ground():
    rng = np.random.default_rng(3)
    verts = rng.normal(size=(6, 50, 3)).astype(np.float32)
    for up in ("y", "-y", "z"):
        offsets = ground_offsets(verts, up)
        moved = apply_ground_offsets(verts, offsets, up)
        axis, sign = "xyz".index(up[-1]), (-1 if up.startswith("-") else 1)
        np.testing.assert_allclose((moved[..., axis] * sign).min(axis=1), 0.0, atol=1e-6)
        others = [a for a in range(3) if a != axis]
        np.testing.assert_array_equal(moved[..., others], verts[..., others])
    const = ground_offsets(verts, "y", mode="constant")
    assert np.ptp(const) == 0 and apply_ground_offsets(verts, const)[..., 1].min() == pytest.approx(0, abs=1e-6)
    t_off = ground_offsets(torch.from_numpy(verts), "-y", ground=0.5)
    assert isinstance(t_off, torch.Tensor)
    np.testing.assert_allclose(t_off.numpy(), ground_offsets(verts, "-y") + 0.5, atol=1e-6)
    with pytest.raises(ValueError, match="up_axis"):
        ground_offsets(verts, "w")
    with pytest.raises(ValueError, match=r"\(T, V, 3\)"):
        ground_offsets(verts[0], "y")


def test_rotation_helpers_agree_with_scipy():
    rng = np.random.default_rng(4)
    aa = rng.normal(size=(200, 3)) * 1.5
    aa[0] = 0.0
    aa[1] = [np.pi - 1e-9, 0, 0]
    ref = Rotation.from_rotvec(aa)
    np.testing.assert_allclose(axis_angle_to_matrix(aa), ref.as_matrix(), atol=1e-9)
    q = axis_angle_to_quat(aa)
    sref = ref.as_quat()
    sref = np.where(sref[:, 3:] < 0, -sref, sref)
    np.testing.assert_allclose(np.abs(np.sum(q * sref, axis=1)), 1.0, atol=1e-9)
    np.testing.assert_allclose(axis_angle_to_matrix(quat_to_axis_angle(q)), ref.as_matrix(), atol=1e-9)
    np.testing.assert_allclose(axis_angle_to_matrix(matrix_to_axis_angle(ref.as_matrix())), ref.as_matrix(),
                               atol=1e-9)
    np.testing.assert_allclose(np.abs(np.sum(matrix_to_quat(ref.as_matrix()) * sref, axis=1)), 1.0, atol=1e-9)
