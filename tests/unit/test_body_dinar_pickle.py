"""DINAR's smplx/<frame>.pkl: written exactly, read as DINAR reads it, malformed files refused by name."""

import os
import pickle

import numpy as np
import pytest
import torch

from dinar_core.body import SMPLXBody, SMPLXParams
from dinar_core.body.dinar_pickle import DinarPickleError, from_dinar_dict, read_dinar_pickle, write_dinar_pickle
from dinar_core.body.smplx_model import DINAR_LEYE_POSE, DINAR_REYE_POSE
from tests.helpers.synthetic_smplx import synthetic_smplx_dir  # noqa: F401  (fixture)

WIDTHS = {"betas": 10, "expression": 10, "global_orient": 3, "body_pose": 63, "jaw_pose": 3,
          "left_hand_pose": 6, "right_hand_pose": 6, "transl": 3}


def fitted_params(batch: int = 2) -> SMPLXParams:
    g = torch.Generator().manual_seed(3)
    p = SMPLXParams(**{k: 0.3 * torch.randn(batch, w, generator=g) for k, w in WIDTHS.items()})
    p.transl = p.transl + torch.tensor([0.0, 0.2, 8.0])
    p.body_scale = torch.full((batch, 1), 1.05)
    return p


def test_written_pickle_is_dinars_format(tmp_path):
    path = write_dinar_pickle(tmp_path / "frame.pkl", fitted_params(), gender="female", index=1)
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    assert data["gender"] == "female"
    for key, width in WIDTHS.items():
        assert data[key].dtype == np.float32 and data[key].shape == (1, width), key
    assert data["body_scale"].shape == (1, 1)
    np.testing.assert_array_equal(data["transl"][0], fitted_params().transl[1].numpy())


def test_round_trip_with_plain_pickle_and_smplx_create(tmp_path, synthetic_smplx_dir):
    """What DINAR does: pickle.load, torch.FloatTensor every value, smplx.create(use_pca, 6 comps, ...), fixed eye
    poses, body_scale before transl. The vertices must match ours within 1 mm."""
    import smplx

    body = SMPLXBody(synthetic_smplx_dir)
    params = fitted_params(2)
    with torch.no_grad():
        ours = body(params).vertices[1]
    path = write_dinar_pickle(tmp_path / "f.pkl", params, index=1)

    with open(path, "rb") as fh:
        data = pickle.load(fh)
    model = smplx.create(str(synthetic_smplx_dir / "SMPLX_NEUTRAL.pkl"), model_type="smplx",
                         gender=data.pop("gender"), ext="pkl", use_pca=True, num_pca_comps=6,
                         flat_hand_mean=False, num_betas=10, num_expression_coeffs=10, use_face_contour=True)
    tensors = {k: torch.FloatTensor(v) for k, v in data.items()}
    scale, transl = tensors.pop("body_scale"), tensors.pop("transl")
    with torch.no_grad():
        out = model(**tensors, leye_pose=torch.FloatTensor([DINAR_LEYE_POSE]),
                    reye_pose=torch.FloatTensor([DINAR_REYE_POSE]))
    theirs = out.vertices[0] * scale + transl
    assert float((theirs - ours).abs().max()) < 1e-3

    back = read_dinar_pickle(path)
    for key in WIDTHS:
        torch.testing.assert_close(getattr(back.params, key), getattr(params, key)[1:])
    with torch.no_grad():
        assert float((body(back.params).vertices[0] - ours).abs().max()) < 1e-5


def _dinar_dict(**over):
    d = {k: np.zeros((1, w), np.float32) for k, w in WIDTHS.items()}
    d.update(over)
    return d


def test_reads_dinar_variants():
    nested = {"result": {"smplx": _dinar_dict()}}
    assert from_dinar_dict(nested).params.betas.shape == (1, 10)
    d = _dinar_dict()
    d["camera_translation"] = np.array([[0.1, 0.2, 9.0]], np.float64)
    del d["transl"]
    d["left_hand_pose"] = np.arange(12, dtype=np.float32)[None]  # 12 PCA comps: DINAR keeps 6
    d["right_hand_pose"] = np.ones(45, np.float32)  # 1-D is read as (1, N)
    d.update(gender="male", frame_fns=["a.png"], camera_rotation=np.eye(3), leye_pose=np.ones((1, 3)),
             ltrb=[1, 2, 30, 40], body_scale=np.ones((1, 3)))
    out = from_dinar_dict(d)
    assert out.gender == "male" and out.ltrb.tolist() == [1, 2, 30, 40]
    torch.testing.assert_close(out.params.transl, torch.tensor([[0.1, 0.2, 9.0]]))
    torch.testing.assert_close(out.params.left_hand_pose, torch.arange(6.0)[None])
    assert out.params.right_hand_pose.shape == (1, 6) and out.params.body_scale.shape == (1, 3)
    assert out.params.transl.dtype == torch.float32


@pytest.mark.parametrize("data, match", [
    ([1, 2], "holds a list"),
    ({"result": {"other": 1}}, "'result' -> 'smplx'"),
    ({k: v for k, v in _dinar_dict().items() if k != "left_hand_pose"}, "lacks"),
    (_dinar_dict(betas=np.zeros((1, 16))), r"betas has shape \(1, 16\)"),
    (_dinar_dict(body_pose=np.zeros((2, 63))), r"body_pose has shape \(2, 63\)"),
    (_dinar_dict(left_hand_pose=np.zeros((1, 4))), "left_hand_pose"),
    (_dinar_dict(jaw_pose=np.array([[0.0, np.nan, 0.0]])), "NaN"),
    (_dinar_dict(gender="robot"), "gender"),
    (_dinar_dict(betas="tall"), "not numeric"),
])
def test_malformed_dicts_are_refused_by_name(data, match):
    with pytest.raises(DinarPickleError, match=match):
        from_dinar_dict(data)


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_malformed_files_are_refused(tmp_path):
    (tmp_path / "garbage.pkl").write_bytes(b"\x89PNG not a pickle")
    with pytest.raises(DinarPickleError, match="not a readable pickle"):
        read_dinar_pickle(tmp_path / "garbage.pkl")
    (tmp_path / "code.pkl").write_bytes(pickle.dumps({"betas": _Evil()}))
    with pytest.raises(DinarPickleError, match="never holds"):
        read_dinar_pickle(tmp_path / "code.pkl")
    with pytest.raises(DinarPickleError, match="cannot read"):
        read_dinar_pickle(tmp_path / "missing.pkl")
