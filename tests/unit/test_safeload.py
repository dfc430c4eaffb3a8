"""Hostile files: crafted pickles, npz archives and checkpoints run no code (a marker file is not created) and get
named errors; zip and pickle bombs are refused before their memory is spent."""

from __future__ import annotations

import io
import os
import pickle
import resource
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch

from dinar_core.body.dinar_pickle import UnsafeDinarPickleError, read_dinar_pickle
from dinar_core.body.smplx_model import SMPLXBody, check_smplx_model_file
from dinar_core.compat.checkpoint import read_checkpoint
from dinar_core.errors import (
    CheckpointLimitError,
    FileLimitError,
    MotionError,
    MotionLimitError,
    UnsafeCheckpointError,
    UnsafeFileError,
    UnsafeModelFileError,
    UnsafeMotionError,
    UnsupportedCheckpointObjectError,
    WrongModelFileError,
)
from dinar_core.motion import load_motion
from dinar_core.motion.formats import AMASS_NPZ
from dinar_core.safeload import MB, FileKind, load_npz, load_pickle
from tests.helpers.synthetic_smplx import build_synthetic_smplx, synthetic_smplx_dir  # noqa: F401 - fixture


class _Touch:
    """Unpickling this runs ``touch <marker>`` (what a crafted model file did before)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Exec:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _assert_no_marker(marker: Path) -> None:
    assert not marker.exists(), "the crafted file ran code"


def _npz_with_object_member(path: Path, marker: Path, key: str, **arrays) -> Path:
    obj = np.empty(1, dtype=object)
    obj[0] = _Touch(marker)
    np.savez(path, **arrays, **{key: obj})
    return path


# ---- SMPL-X model files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [_Touch, _Exec])
def test_crafted_smplx_pickle_runs_no_code(tmp_path, payload):
    marker = tmp_path / "marker"
    path = tmp_path / "SMPLX_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": np.zeros((10475, 3)), "f": payload(marker)}, protocol=2))
    with pytest.raises(UnsafeModelFileError, match=r"SMPLX_NEUTRAL.pkl.*never holds") as err:
        check_smplx_model_file(path)
    _assert_no_marker(marker)
    assert isinstance(err.value, WrongModelFileError) and isinstance(err.value, UnsafeFileError)
    assert "npz" in err.value.fix  # says how to convert the file


def test_crafted_smplx_npz_runs_no_code(tmp_path):
    marker = tmp_path / "marker"
    path = _npz_with_object_member(tmp_path / "SMPLX_NEUTRAL.npz", marker, "v_template")
    with pytest.raises(UnsafeModelFileError, match="dtype object"):
        check_smplx_model_file(path)
    _assert_no_marker(marker)


def test_smplx_gets_the_checked_arrays_not_the_file(tmp_path):
    """A valid model file with an extra pickled member: smplx itself would unpickle every member of the file
    (np.load(allow_pickle=True) + Struct(**data)); the body is built and the member never runs."""
    marker = tmp_path / "marker"
    arrays = build_synthetic_smplx()
    path = _npz_with_object_member(tmp_path / "SMPLX_NEUTRAL.npz", marker, "extra_dict", **arrays)
    body = SMPLXBody(path)
    _assert_no_marker(marker)
    assert body.model_file == path
    np.testing.assert_allclose(body.rest_vertices.numpy(), arrays["v_template"], atol=1e-6)


def test_chumpy_pickle_says_how_to_get_a_loadable_file(tmp_path):
    path = tmp_path / "SMPLX_NEUTRAL.pkl"
    # what an old SMPL-style pickle holds: a chumpy array (the class is referenced by name only)
    path.write_bytes(b"\x80\x02}q\x00X\x0a\x00\x00\x00v_templateq\x01cchumpy.ch\nCh\nq\x02)\x81q\x03s.")
    with pytest.raises(UnsafeModelFileError, match="chumpy") as err:
        check_smplx_model_file(path)
    assert ".npz" in err.value.fix and "smpl-x.is.tue.mpg.de" in err.value.fix and "clean_ch.py" in err.value.fix
    assert "pickle.load" not in err.value.fix  # the advice never loads the file unsafely


def test_sparse_matrices_are_densified(tmp_path):
    """Real SMPL-X pickles store J_regressor as a scipy csc_matrix (protocol 2, as Python 2 wrote them)."""
    dense = np.random.default_rng(0).random((5, 7)) * (np.random.default_rng(1).random((5, 7)) > 0.6)
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"J_regressor": scipy.sparse.csc_matrix(dense), "f": np.arange(6)}, protocol=2))
    kind = FileKind(label="", format="pickle", fix="x", error=WrongModelFileError, sparse=True)
    out = load_pickle(path, kind)
    assert isinstance(out["J_regressor"], np.ndarray)
    np.testing.assert_array_equal(out["J_regressor"], dense)
    with pytest.raises(UnsafeFileError, match="csc_matrix"):  # not allowed where the kind does not say so
        load_pickle(path, FileKind(label="", format="pickle", fix="x", error=WrongModelFileError))


# ---- other pickles ----------------------------------------------------------------------------------------------
def test_crafted_motion_and_fit_pickles_run_no_code(tmp_path):
    marker = tmp_path / "marker"
    motion = tmp_path / "walk.pkl"
    motion.write_bytes(pickle.dumps({"body_params_list": [{"body_pose": _Touch(marker)}]}))
    with pytest.raises(UnsafeMotionError, match="posix.system|os.system"):
        load_motion(motion)
    fit = tmp_path / "frame.pkl"
    fit.write_bytes(pickle.dumps({"betas": _Exec(marker)}))
    with pytest.raises(UnsafeDinarPickleError, match="exec"):
        read_dinar_pickle(fit)
    _assert_no_marker(marker)


def test_crafted_checkpoint_runs_no_code_and_is_not_called_truncated(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "ddpm.ckpt"
    torch.save({"state_dict": {"model.x": torch.zeros(2)}, "callbacks": _Touch(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match="wants to run code") as err:
        read_checkpoint(path)
    _assert_no_marker(marker)
    assert "do not use" in err.value.fix


def test_foreign_data_class_in_checkpoint_is_unsupported_not_unsafe(tmp_path):
    import argparse

    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": {"model.x": torch.zeros(2)}, "hparams": argparse.Namespace(lr=1)}, path)
    with pytest.raises(UnsupportedCheckpointObjectError, match="Namespace") as err:
        read_checkpoint(path)
    assert not isinstance(err.value, UnsafeCheckpointError)


# ---- bombs ------------------------------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _zip_bomb(path: Path, member: str, megabytes: int, npy: bool = True) -> Path:
    """``megabytes`` of zeros deflated (1000:1) in one member, as a float32 .npy when ``npy``."""
    header = io.BytesIO()
    count = megabytes * MB // 4
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (count,)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
            zf.open(member, "w", force_zip64=True) as fp:
        if npy:
            fp.write(header.getvalue())
        chunk = bytes(16 * MB)
        for _ in range(megabytes // 16):
            fp.write(chunk)
    return path


def test_npz_zip_bomb_is_refused_before_decompressing(tmp_path):
    """The declared uncompressed size is refused before any of it is inflated (a smaller budget keeps it quick;
    the slow test below uses the real loader's limit)."""
    path = _zip_bomb(tmp_path / "bomb.npz", "poses.npy", 256)
    assert path.stat().st_size < 2 * MB
    kind = replace(AMASS_NPZ, max_array_bytes=128 * MB)
    before = _peak_rss_mb()
    with pytest.raises(MotionLimitError, match="uncompressed bytes"):
        load_npz(path, kind, keys=["poses"])
    assert _peak_rss_mb() - before < 100


@pytest.mark.slow
def test_full_size_npz_zip_bomb_is_refused(tmp_path):
    """What the issue found: a ~2 MB npz inflating to 2.2 GB."""
    path = _zip_bomb(tmp_path / "bomb.npz", "poses.npy", 2240)
    before = _peak_rss_mb()
    with pytest.raises(MotionLimitError, match="uncompressed bytes"):
        load_motion(path)
    assert _peak_rss_mb() - before < 200


def test_npz_member_lying_about_its_size_is_refused(tmp_path):
    """A member whose .npy header declares more data than the zip entry holds."""
    path = tmp_path / "liar.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 6, 165)})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("poses.npy", header.getvalue() + bytes(800))
    with pytest.raises(MotionError, match="declares"):
        load_motion(path)
    kind = FileKind(label="", format=".npz", fix="x", error=MotionError, max_array_bytes=1 * MB)
    np.savez(tmp_path / "big.npz", poses=np.zeros((1000, 165)))
    with pytest.raises(FileLimitError):
        load_npz(tmp_path / "big.npz", kind)


def _pickle_bomb_laughs(levels: int, fan: int) -> bytes:
    """A billion-laughs list: each level holds the previous one ``fan`` times (~2 bytes per reference,
    fan**levels leaves)."""
    out = bytearray(b"\x80\x04]\x94")  # PROTO 4, EMPTY_LIST, MEMOIZE (memo 0)
    for i in range(levels):
        out += b"(" + (b"h" + bytes([i])) * fan + b"l\x94"  # MARK, BINGET i x fan, LIST, MEMOIZE
    return bytes(out + b".")


def test_pickle_bombs_give_named_errors(tmp_path):
    laughs = tmp_path / "laughs.pkl"
    laughs.write_bytes(pickle.dumps({"body_params_list": pickle.loads(_pickle_bomb_laughs(6, 20))}))
    with pytest.raises(MotionLimitError, match="objects"):
        load_motion(laughs)
    deep = tmp_path / "deep.pkl"
    deep.write_bytes(b"\x80\x04" + b"]" * 100_000 + b"a" * 99_999 + b".")  # 100,000 nested lists
    with pytest.raises(MotionLimitError, match="nested"):
        load_motion(deep)
    many = tmp_path / "many.pkl"
    many.write_bytes(b"\x80\x04(" + b"]" * 5000 + b"l.")  # a list of 5000 empty lists: 5003 opcodes
    kind = FileKind(label="", format="pickle", fix="x", error=MotionError, too_large=MotionLimitError, max_ops=5000)
    with pytest.raises(MotionLimitError, match="opcodes"):
        load_pickle(many, kind)
    assert len(load_pickle(many, FileKind(label="", format="pickle", fix="x", error=MotionError))) == 5000
    huge = tmp_path / "huge.pkl"  # an array whose constructor asks for 8 TB
    huge.write_bytes(b"\x80\x04cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
                     b"\x8a\x05\x00\x00\x00\x00\x02\x85cnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R\x87R.")
    before = _peak_rss_mb()
    with pytest.raises(MotionError, match="without its data"):
        load_motion(huge)
    memo = tmp_path / "memo.pkl"  # LONG_BINPUT at index 2**31: CPython would grow its memo table to 16 GB
    memo.write_bytes(b"\x80\x04]r\x00\x00\x00\x80.")
    with pytest.raises(MotionLimitError, match="memo index"):
        load_motion(memo)
    assert _peak_rss_mb() - before < 200


def test_checkpoint_zip_bomb_is_refused(tmp_path):
    path = _zip_bomb(tmp_path / "bomb.ckpt", "archive/data/0", 32, npy=False)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"state_dict": {}}))
    with pytest.raises(CheckpointLimitError, match="uncompressed"):
        read_checkpoint(path)



@pytest.mark.parametrize("filler, per_op", [(pickle.MEMOIZE, 1), (pickle.BINPUT + b"\x00", 2),
                                            (pickle.MEMOIZE + pickle.BINPUT + b"\x01", 3)])
def test_opcode_runs_are_counted_exactly(tmp_path, filler, per_op):
    """The prescan skips runs of argument-less and one-byte-argument opcodes by regex: the opcode limit still
    counts every one of them (the same stream passes at the limit and fails one opcode over it)."""
    from dinar_core.errors import FileLimitError

    n = 5000
    ops_per_filler = 2 if per_op == 3 else 1
    body = pickle.PROTO + b"\x04" + pickle.EMPTY_DICT + filler * n + pickle.STOP  # {} then n fillers
    path = tmp_path / "runs.pkl"
    path.write_bytes(body)
    total = 3 + n * ops_per_filler  # PROTO, EMPTY_DICT, STOP + the fillers
    kind = FileKind(label="", format="pickle", fix="x", error=WrongModelFileError, max_ops=total)
    assert load_pickle(path, kind) == {}
    with pytest.raises(FileLimitError, match="pickle opcodes"):
        load_pickle(path, replace(kind, max_ops=total - 1))
