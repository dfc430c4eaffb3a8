"""Fuzz: DINAR's fit pickles smplx/<frame>.pkl (opcode streams mutated) -> read_dinar_pickle."""

from __future__ import annotations

import pickle

import numpy as np
import torch
from hypothesis import given, strategies as st

from dinar_core.body.dinar_pickle import read_dinar_pickle, to_dinar_dict
from dinar_core.body.smplx_model import SMPLXParams
from tests.fuzz.conftest import decode_file, fuzz_settings
from tests.fuzz.mutators import mutated_pickle

_params = SMPLXParams.zeros(1)
_params.body_scale = torch.ones(1, 1)
_plain = to_dinar_dict(_params, "female")
_plain["ltrb"] = np.array([1.0, 2.0, 30.0, 40.0])
SEEDS = [pickle.dumps(_plain, protocol=4), pickle.dumps({"result": {"smplx": _plain}}, protocol=2)]


@fuzz_settings
@given(data=st.sampled_from(SEEDS).flatmap(mutated_pickle))
def test_fuzz_dinar_pickle(data):
    result = decode_file(read_dinar_pickle, data, "frame.pkl")
    if result is not None:
        result.params.validate()
        assert all(torch.isfinite(v).all() for v in (result.params.betas, result.params.transl))
