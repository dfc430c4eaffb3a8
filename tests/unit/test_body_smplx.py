"""The SMPL-X backend on a synthetic model file with SMPL-X's real array layout."""

import pickle

import numpy as np
import pytest
import torch

from dinar_core.body import BodyModel, SMPLXBody, SMPLXParams, find_smplx_model_file, resolve_smplx_models_dir
from dinar_core.keypoints.layout import KEYPOINT_SLICES
from dinar_core.body.smplx_model import DINAR_LEYE_POSE, DINAR_REYE_POSE, DINAR_SMPLX_KWARGS, check_smplx_arrays
from dinar_core.errors import MissingModelError, WrongModelFileError
from tests.helpers.synthetic_smplx import (  # noqa: F401  (fixture)
    NUM_FACES,
    NUM_VERTS,
    build_synthetic_smplx,
    synthetic_skeleton,
    synthetic_smplx_dir,
    write_synthetic_smplx,
)


@pytest.fixture(scope="module")
def body(synthetic_smplx_dir) -> SMPLXBody:
    return SMPLXBody(synthetic_smplx_dir, gender="neutral")


def random_params(batch: int, seed: int = 0) -> SMPLXParams:
    g = torch.Generator().manual_seed(seed)
    p = SMPLXParams.zeros(batch)
    for name, width in SMPLXParams.WIDTHS.items():
        setattr(p, name, 0.3 * torch.randn(batch, width, generator=g))
    p.transl = p.transl + torch.tensor([0.0, 0.0, 5.0])
    return p


def test_synthetic_file_loads_with_smplx_as_dinar_builds_it(synthetic_smplx_dir):
    import smplx

    model = smplx.create(str(synthetic_smplx_dir / "SMPLX_NEUTRAL.pkl"), model_type="smplx", ext="pkl",
                         **DINAR_SMPLX_KWARGS)
    out = model()
    assert out.vertices.shape == (1, NUM_VERTS, 3) and out.joints.shape == (1, 144, 3)
    assert model.faces.shape == (NUM_FACES, 3) and model.faces.min() >= 0 and model.faces.max() < NUM_VERTS
    assert model.left_hand_components.shape == (6, 45)
    # joints regressed from the template are the designed skeleton; the body is ~1.7 m tall
    rest = (model.J_regressor @ model.v_template).numpy()
    np.testing.assert_allclose(rest, synthetic_skeleton(), atol=1e-5)
    height = float(model.v_template[:, 1].max() - model.v_template[:, 1].min())
    assert 1.6 < height < 1.85


def test_every_vertex_is_used_and_skinned(body):
    assert torch.unique(body.faces).numel() == NUM_VERTS
    torch.testing.assert_close(body.skinning_weights.sum(1), torch.ones(NUM_VERTS))
    assert body.parents.tolist()[:4] == [-1, 0, 0, 0]
    assert isinstance(body, BodyModel)


def test_forward_equals_smplx_own_output(body):
    params = random_params(3)
    params.body_scale = torch.tensor([[1.0], [1.1], [0.9]])
    with torch.no_grad():
        ours = body(params)
        b = params.batch_size
        ref = body.smplx(betas=params.betas, expression=params.expression, global_orient=params.global_orient,
                         body_pose=params.body_pose, jaw_pose=params.jaw_pose,
                         left_hand_pose=params.left_hand_pose, right_hand_pose=params.right_hand_pose,
                         leye_pose=torch.tensor([DINAR_LEYE_POSE]).expand(b, 3),
                         reye_pose=torch.tensor([DINAR_REYE_POSE]).expand(b, 3),
                         transl=torch.zeros(b, 3))
    expect_v = ref.vertices * params.body_scale[:, None] + params.transl[:, None]
    expect_j = ref.joints * params.body_scale[:, None] + params.transl[:, None]
    torch.testing.assert_close(ours.vertices, expect_v)
    torch.testing.assert_close(ours.source_points, expect_j)
    torch.testing.assert_close(ours.joints, expect_j[:, :55])
    # the pose actually moved the body (not a vacuous comparison)
    assert (ours.vertices[0] - params.transl[0] - body.rest_vertices).abs().max() > 0.05


def test_forward_is_batched_and_differentiable(body):
    params = random_params(2)
    params.body_pose.requires_grad_(True)
    out = body(params)
    out.vertices.sum().backward()
    assert params.body_pose.grad is not None and params.body_pose.grad.abs().sum() > 0
    single = body(SMPLXParams(**{k: getattr(params, k)[1:].detach() for k in SMPLXParams.WIDTHS}))
    torch.testing.assert_close(single.vertices[0], out.vertices[1].detach())


def test_keypoints_are_openpose_points_of_the_body(body):
    with torch.no_grad():
        out = body(random_params(1))
    kp = body.keypoints(out)
    assert kp.points.shape == (1, 137, 3) and bool(kp.available.all())
    torch.testing.assert_close(kp.points[0, 8], out.joints[0, 0])  # MidHip = pelvis
    torch.testing.assert_close(kp.points[0, 7], out.joints[0, 20])  # LWrist
    torch.testing.assert_close(kp.part("left_hand").points[0, 0], out.joints[0, 20])  # hand wrist
    face = kp.part("face").points[0]
    head = out.joints[0, 15]
    assert ((face - head).norm(dim=1) < 0.2).all()  # all 70 face points on the head
    assert KEYPOINT_SLICES["face"].stop == 137


def test_params_shapes_are_checked(body):
    params = random_params(2)
    params.body_pose = torch.zeros(2, 66)
    with pytest.raises(ValueError, match=r"body_pose must be \(2, 63\)"):
        body(params)
    params = random_params(2)
    params.left_hand_pose = torch.zeros(2, 45)
    with pytest.raises(ValueError, match="left_hand_pose"):
        body(params)


def test_npz_file_gives_the_same_body(tmp_path, body):
    write_synthetic_smplx(tmp_path, kind="npz", seed=0)
    npz_body = SMPLXBody(tmp_path)
    assert npz_body.model_file.suffix == ".npz"
    params = random_params(1)
    with torch.no_grad():
        torch.testing.assert_close(npz_body(params).vertices, body(params).vertices)


def test_missing_folder_names_files_and_download_site(tmp_path):
    with pytest.raises(MissingModelError) as err:
        SMPLXBody(tmp_path / "nowhere")
    msg = str(err.value)
    assert "SMPLX_NEUTRAL.pkl" in msg and "SMPLX_NEUTRAL.npz" in msg and "smpl-x.is.tue.mpg.de" in msg
    with pytest.raises(MissingModelError, match="SMPLX_FEMALE"):
        find_smplx_model_file(tmp_path, "female")  # folder exists, file does not


def test_model_folder_resolution_order(tmp_path):
    env = {"DINAR_SMPLX_MODELS": str(tmp_path / "from_env")}
    assert resolve_smplx_models_dir(tmp_path / "explicit", env) == tmp_path / "explicit"
    assert resolve_smplx_models_dir(None, env) == tmp_path / "from_env"
    with pytest.raises(MissingModelError, match="DINAR_SMPLX_MODELS"):
        resolve_smplx_models_dir(None, {})


def test_smplx_layout_subfolder_is_found(tmp_path, synthetic_smplx_dir):
    (tmp_path / "smplx").mkdir()
    (tmp_path / "smplx" / "SMPLX_NEUTRAL.pkl").symlink_to(synthetic_smplx_dir / "SMPLX_NEUTRAL.pkl")
    assert find_smplx_model_file(tmp_path).parent.name == "smplx"


@pytest.mark.parametrize("content, match", [
    (b"<html>Please log in</html>", "not a readable pickle"),
    (b"", "not a readable pickle"),
    (pickle.dumps([1, 2, 3]), "holds a list"),
    (pickle.dumps({"v_template": np.zeros((6890, 3)), "f": np.zeros((13776, 3))}), "is an SMPL model"),
    (pickle.dumps({"v_template": np.zeros((6890, 3)), "hands_componentsl": np.zeros((45, 45))}), "SMPL-H"),
    (pickle.dumps({"v_template": np.zeros((10475, 3))}), "lacks the SMPL-X arrays"),
])
def test_wrong_kind_of_file_is_named(tmp_path, content, match):
    (tmp_path / "SMPLX_NEUTRAL.pkl").write_bytes(content)
    with pytest.raises(WrongModelFileError, match=match):
        SMPLXBody(tmp_path)


def test_wrong_array_shape_and_bad_npz(tmp_path, synthetic_smplx_dir):
    with open(synthetic_smplx_dir / "SMPLX_NEUTRAL.pkl", "rb") as fh:
        arrays = pickle.load(fh)
    arrays["J_regressor"] = arrays["J_regressor"][:52]
    (tmp_path / "SMPLX_NEUTRAL.pkl").write_bytes(pickle.dumps(arrays))
    with pytest.raises(WrongModelFileError, match="J_regressor has shape"):
        SMPLXBody(tmp_path)
    other = tmp_path / "npz"
    other.mkdir()
    (other / "SMPLX_NEUTRAL.npz").write_bytes(b"not a zip")
    with pytest.raises(WrongModelFileError, match="not a NumPy .npz"):
        SMPLXBody(other)


def test_dinar_uv_layout_attaches(synthetic_smplx_dir, uv_assets, tmp_path):
    body = SMPLXBody(synthetic_smplx_dir, uv_assets=uv_assets)
    uv = body.uv_layout
    assert uv.uv.shape == (11438, 2) and uv.uv_faces.shape == (NUM_FACES, 3)
    assert uv.vertex_index.dtype == torch.int64 and int(uv.vertex_index.max()) == NUM_VERTS - 1
    with pytest.raises(MissingModelError, match="uv.npy"):
        SMPLXBody(synthetic_smplx_dir, uv_assets=tmp_path)


def test_gender_picks_its_file(tmp_path, synthetic_smplx_dir):
    write_synthetic_smplx(tmp_path, gender="female")
    female = SMPLXBody(tmp_path, gender="female")
    assert female.model_file.name == "SMPLX_FEMALE.pkl"
    neutral = SMPLXBody(synthetic_smplx_dir)

    def height(b: SMPLXBody) -> float:
        return float(b.rest_vertices[:, 1].max() - b.rest_vertices[:, 1].min())

    assert height(female) < height(neutral) - 0.05
    with pytest.raises(MissingModelError, match="SMPLX_MALE"):
        SMPLXBody(tmp_path, gender="male")


def test_synthetic_body_is_laid_out_like_a_person(body):
    """The helper's body must make fitting tests meaningful: OpenPose points where their names say."""
    with torch.no_grad():
        kp = body.keypoints(body(SMPLXParams.zeros(1))).points[0]
    from dinar_core.keypoints.layout import BODY_25_NAMES as BODY25_NAMES

    at = {n: kp[i] for i, n in enumerate(BODY25_NAMES)}
    y, x, z = 1, 0, 2
    assert at["Nose"][y] > at["Neck"][y] > at["MidHip"][y] > at["LKnee"][y] > at["LAnkle"][y]
    assert at["LShoulder"][x] > 0.1 and at["RShoulder"][x] < -0.1 and at["LWrist"][x] > at["LElbow"][x]
    assert at["Nose"][z] > at["LEar"][z] and at["LEye"][x] > 0 > at["REye"][x]
    assert at["LBigToe"][z] > at["LAnkle"][z] > at["LHeel"][z] and at["LSmallToe"][x] > at["LBigToe"][x]
    tips = kp[25:46][[4, 8, 12, 16, 20]]
    assert (tips[:, x] > at["LWrist"][x] + 0.05).all()  # fingertips beyond the wrist
    face = kp[67:137]
    assert (face[:, z] > at["LEar"][z]).all()  # face points on the front of the head
    assert face[8, y] < face[30, y] < face[27, y]  # chin below nose tip below nose bridge
    assert face[36, x] < face[39, x] < 0 < face[42, x] < face[45, x]  # right eye corners, then left eye corners


@pytest.mark.parametrize("key, index, value, match", [
    ("v_template", (5, 1), 1e39, "beyond-float32"),  # finite in float64, inf in the float32 smplx uses
    ("weights", (3, 3), np.nan, "NaN"),
    ("f", (7, 2), 10475, r"indices outside \[0, 10475\)"),
    ("lmk_faces_idx", (0,), -1, "indices outside"),
])
def test_values_are_checked_before_smplx_sees_them(key, index, value, match):
    arrays = dict(build_synthetic_smplx())
    check_smplx_arrays(arrays, "SMPLX_NEUTRAL.npz")  # the synthetic arrays pass
    arrays[key] = arrays[key].copy()
    arrays[key][index] = value
    with pytest.raises(WrongModelFileError, match=match):
        check_smplx_arrays(arrays, "SMPLX_NEUTRAL.npz")
