"""Fuzz: DINAR animation pickles (opcode streams mutated) -> load_motion."""

from __future__ import annotations

import pickle

import numpy as np
import torch
from hypothesis import given, strategies as st

from dinar_core.motion import Motion, load_motion
from tests.fuzz.conftest import decode_file, fuzz_settings
from tests.fuzz.mutators import mutated_pickle


def _frames(n: int, tensors: bool) -> bytes:
    rng = np.random.default_rng(n)
    widths = {"body_pose": 63, "global_orient": 3, "jaw_pose": 3, "left_hand_pose": 12, "right_hand_pose": 6}
    make = (lambda a: torch.from_numpy(a)) if tensors else (lambda a: a)
    frames = [{k: make(rng.normal(0, 0.2, (1, w)).astype(np.float32)) for k, w in widths.items()} for _ in range(n)]
    return pickle.dumps({"body_params_list": frames}, protocol=4 if not tensors else 2)


SEEDS = [_frames(2, False), _frames(1, True)]


@fuzz_settings
@given(data=st.sampled_from(SEEDS).flatmap(mutated_pickle))
def test_fuzz_motion_pickle(data):
    result = decode_file(load_motion, data, "motion.pkl")
    if result is not None:
        assert isinstance(result, Motion) and result.hand_format == "pca"  # DINAR's hands: PCA, cut to 6
        assert result.left_hand_pose.shape[1] <= 6 and np.isfinite(result.global_orient).all()
