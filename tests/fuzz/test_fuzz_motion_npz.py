"""Fuzz: AMASS-style motion .npz files (zip members, declared sizes, .npy headers mutated) -> load_motion."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import given, strategies as st

from dinar_core.motion import Motion, load_motion
from tests.fuzz.conftest import decode_file, fuzz_settings
from tests.fuzz.mutators import mutated_zip, npz_members


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


rng = np.random.default_rng(0)
SEEDS = [
    npz_members(_npz(poses=rng.normal(0, 0.3, (4, 165)), trans=rng.normal(0, 1, (4, 3)),
                     mocap_frame_rate=np.array(30.0), betas=np.zeros(16), gender=np.array("neutral"))),
    npz_members(_npz(poses=rng.normal(0, 0.3, (3, 156)), trans=np.zeros((3, 3)), mocap_framerate=np.array(60.0))),
    npz_members(_npz(root_orient=np.zeros((2, 3)), pose_body=np.zeros((2, 63)), pose_hand=np.zeros((2, 90)),
                     pose_jaw=np.zeros((2, 3)), trans=np.zeros((2, 3)), mocap_frame_rate=np.array(30.0))),
]


@fuzz_settings
@given(data=st.sampled_from(SEEDS).flatmap(mutated_zip))
def test_fuzz_motion_npz(data):
    result = decode_file(load_motion, data, "motion.npz")
    if result is not None:
        assert isinstance(result, Motion) and result.hand_format == "axis_angle"
        assert result.num_frames >= 1 and np.isfinite(result.body_pose).all()
