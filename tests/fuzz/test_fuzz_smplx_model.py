"""Fuzz: SMPL-X model files. Small .pkl (with scipy sparse matrices, as the official pickles hold) and .npz files
with opcode streams / zip members mutated -> check_smplx_model_file; and the real-shaped synthetic arrays with one
array's values, dtype or shape mutated -> check_smplx_arrays (the checks before smplx sees them)."""

from __future__ import annotations

import io
import pickle

import numpy as np
import scipy.sparse
from hypothesis import given, settings, strategies as st

from dinar_core.body.smplx_model import _REQUIRED, check_smplx_arrays, check_smplx_model_file
from tests.fuzz.conftest import FUZZ_EXAMPLES, decode_file, fuzz_settings, run_decoder
from tests.fuzz.mutators import mutated_pickle, mutated_zip, npz_members
from tests.helpers.synthetic_smplx import build_synthetic_smplx


def _small_model() -> dict:
    rng = np.random.default_rng(0)
    j = scipy.sparse.random(55, 10475, density=0.0005, format="csc", random_state=1)
    w = scipy.sparse.random(10475, 55, density=0.0002, format="csr", random_state=2)
    return {"v_template": rng.random((10475, 3)).astype(np.float32), "f": np.arange(30).reshape(10, 3),
            "J_regressor": j, "weights": w, "kintree_table": np.stack([np.arange(-1, 54), np.arange(55)]),
            "hands_componentsl": np.eye(45), "hands_componentsr": np.eye(45), "hands_meanl": np.zeros(45),
            "hands_meanr": np.zeros(45), "shapedirs": np.zeros((4, 3, 2)), "posedirs": np.zeros((4, 486)),
            "lmk_faces_idx": np.arange(3), "lmk_bary_coords": np.ones((3, 3)) / 3,
            "dynamic_lmk_faces_idx": np.zeros((2, 17), int), "dynamic_lmk_bary_coords": np.ones((2, 17, 3)) / 3,
            "vt": np.zeros((5, 2)), "joint2num": {"pelvis": 0}}


def _npz(data: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: v.toarray() if scipy.sparse.issparse(v) else v for k, v in data.items()
                     if not isinstance(v, dict)})
    return buf.getvalue()


PKL_SEEDS = [pickle.dumps(_small_model(), protocol=2), pickle.dumps(_small_model(), protocol=4)]
NPZ_SEED = npz_members(_npz({k: v for k, v in _small_model().items() if k not in ("J_regressor", "weights")}))


@fuzz_settings
@given(data=st.sampled_from(PKL_SEEDS).flatmap(mutated_pickle))
def test_fuzz_smplx_pickle(data):
    decode_file(check_smplx_model_file, data, "SMPLX_NEUTRAL.pkl")


@fuzz_settings
@given(data=mutated_zip(NPZ_SEED))
def test_fuzz_smplx_npz(data):
    decode_file(check_smplx_model_file, data, "SMPLX_NEUTRAL.npz")


_ARRAYS = None


def _arrays() -> dict:
    global _ARRAYS
    if _ARRAYS is None:
        _ARRAYS = {k: v.astype(np.float32) if v.dtype.kind == "f" else v
                   for k, v in build_synthetic_smplx().items() if k in _REQUIRED}
    return _ARRAYS


@st.composite
def mutated_arrays(draw) -> dict:
    arrays = dict(_arrays())
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(sorted(arrays)))
        value = arrays[key]
        op = draw(st.sampled_from(["value", "value", "dtype", "shape", "empty"]))
        if value.dtype.kind not in "biuf" or (op == "value" and value.nbytes > 8 << 20):
            op = "shape"  # values of the two large bases (posedirs, shapedirs) go through the same checks as the rest
        if op == "value":
            value = value.copy()
        if op == "value" and value.size:
            index = draw(st.integers(0, value.size - 1))
            flat = value.reshape(-1)
            bad = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e39, -1, 10 ** 6, 2 ** 40, 0.5, 10474, 10475,
                                        20908, 55, 54]))
            if flat.dtype.kind in "iu":
                bad = int(bad) if np.isfinite(bad) and abs(bad) < 2 ** 62 else -1
                if flat.dtype.kind == "u" and bad < 0:
                    bad = np.iinfo(flat.dtype).max
                flat[index] = np.asarray(bad).astype(flat.dtype)
            else:
                flat[index] = bad
        elif op == "dtype":
            value = value.astype(draw(st.sampled_from(["<U3", "complex64", "bool", "float16", "int8"])))
        elif op == "shape":
            value = value.reshape(-1) if value.ndim > 1 else value[:, None]
        elif op == "empty":
            value = value[:0]
        arrays[key] = value
    return arrays


@settings(fuzz_settings, max_examples=max(10, FUZZ_EXAMPLES // 10))  # each case checks ~100 MB of arrays
@given(arrays=mutated_arrays())
def test_fuzz_smplx_arrays(arrays):
    result = run_decoder(check_smplx_arrays, arrays, "SMPLX_NEUTRAL.npz")
    if result is not None:
        for key, value in result.items():
            if value.dtype.kind == "f":
                assert np.isfinite(value.astype(np.float32)).all(), key
