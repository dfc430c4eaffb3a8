"""The Anny backend. Building Anny the first time takes ~80 s (then cached, ~3 s), so model tests are slow."""

import math

import pytest
import torch

from dinar_core.body.anny_model import ANNY_TO_CANONICAL, AnnyBody, AnnyParams, anny_cache_dir, axis_angle_to_matrix
from dinar_core.body.base import BodyModel
from dinar_core.keypoints.layout import KEYPOINT_SLICES
from dinar_core.keypoints.layout import BODY_25_NAMES as BODY25_NAMES


def test_cache_dir_resolution(tmp_path):
    assert anny_cache_dir(tmp_path / "x", {"ANNY_CACHE_DIR": "/elsewhere"}) == tmp_path / "x"
    assert anny_cache_dir(None, {"ANNY_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert anny_cache_dir(None, {"DINAR_STATE_DIR": str(tmp_path)}) == tmp_path / "anny-cache"
    assert anny_cache_dir(None, {}).parts[-3:] == ("state", "dinar-pipeline", "anny-cache")


def test_axis_angle_to_matrix():
    aa = torch.tensor([[0.0, 0.0, math.pi / 2], [0.0, 0.0, 0.0], [1e-6, 0.0, 0.0]])
    r = axis_angle_to_matrix(aa)
    torch.testing.assert_close(r[0] @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(r[1], torch.eye(3))
    aa = torch.randn(5, 3)
    r = axis_angle_to_matrix(aa)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(5, 3, 3), atol=1e-5, rtol=0)
    assert torch.allclose(torch.det(ANNY_TO_CANONICAL), torch.tensor(1.0))


@pytest.fixture(scope="module")
def anny_body() -> AnnyBody:
    return AnnyBody()


@pytest.mark.slow
def test_anny_attributes(anny_body):
    b = anny_body
    assert isinstance(b, BodyModel)
    v, j = b.rest_vertices.shape[0], b.num_joints
    assert b.faces.shape[1] == 3 and b.faces.dtype == torch.int64 and int(b.faces.max()) < v
    assert b.skinning_weights.shape == (v, j)
    torch.testing.assert_close(b.skinning_weights.sum(1), torch.ones(v))
    assert b.parents.shape == (j,) and int(b.parents[0]) == -1 and (b.parents[1:] < torch.arange(1, j)).all()
    uv = b.uv_layout
    assert uv is not None and uv.uv_faces.shape == b.faces.shape
    assert 0 <= float(uv.uv.min()) and float(uv.uv.max()) <= 1
    assert torch.equal(uv.vertex_index[uv.uv_faces], b.faces)
    height = float(b.rest_vertices[:, 1].max() - b.rest_vertices[:, 1].min())
    assert 1.4 < height < 2.0


@pytest.mark.slow
def test_anny_forward_shapes_frame_and_keypoints(anny_body):
    b = anny_body
    params = AnnyParams.zeros(2, b.num_joints)
    params.transl[1] = torch.tensor([0.0, 0.0, 3.0])
    params.global_orient[1] = torch.tensor([0.0, math.pi, 0.0])  # turned around
    with torch.no_grad():
        out = b(params)
    assert out.vertices.shape == (2, b.rest_vertices.shape[0], 3) and out.joints.shape == (2, b.num_joints, 3)
    kp = b.keypoints(out)
    assert kp.points.shape == (2, 137, 3)
    assert bool(kp.available[:25].all()) and not bool(kp.available[KEYPOINT_SLICES["face"]].any())
    body = kp.points[0, :25]
    name = {n: i for i, n in enumerate(BODY25_NAMES)}
    # canonical frame: y up, facing +z, x = the body's left
    assert body[name["Nose"], 1] > body[name["MidHip"], 1] > body[name["LAnkle"], 1]
    assert body[name["Nose"], 2] > body[name["Neck"], 2]
    assert body[name["LShoulder"], 0] > 0 > body[name["RShoulder"], 0]
    torch.testing.assert_close(body[name["Neck"]], (body[name["LShoulder"]] + body[name["RShoulder"]]) / 2)
    # turned around and moved: the left shoulder is now at -x, the body 3 m further along z
    turned = kp.points[1, :25]
    assert turned[name["LShoulder"], 0] < 0
    torch.testing.assert_close(turned[name["MidHip"], 1], body[name["MidHip"], 1], atol=1e-4, rtol=0)
    assert abs(float(turned[name["MidHip"], 2] - body[name["MidHip"], 2]) - 3.0) < 0.2
    # hands: all 21 points; each fingertip lies beyond its finger's last joint, on the body's left for the left hand
    assert bool(kp.available[KEYPOINT_SLICES["left_hand"]].all()) and bool(kp.available[KEYPOINT_SLICES["right_hand"]].all())
    hand = kp.part("left_hand").points[0]
    for tip in (4, 8, 12, 16, 20):
        assert float(((hand[tip] - hand[tip - 1]) * (hand[tip - 1] - hand[tip - 2])).sum()) > 0
        assert 0.0 < float((hand[tip] - hand[tip - 1]).norm()) < 0.05
    assert (hand[:, 0] > 0.2).all() and (kp.part("right_hand").points[0, :, 0] < -0.2).all()


@pytest.mark.slow
def test_anny_pose_and_phenotype_change_the_body(anny_body):
    b = anny_body
    params = AnnyParams.zeros(1, b.num_joints)
    params.pose.requires_grad_(True)
    out = b(params)
    knee = b.joint_names.index("lowerleg01.L")
    bent = AnnyParams.zeros(1, b.num_joints)
    bent.pose[0, knee, 0] = 1.0
    tall = AnnyParams.zeros(1, b.num_joints)
    tall.phenotype[0, 4] = 1.0  # height
    with torch.no_grad():
        assert float((b(bent).vertices - out.vertices).abs().max()) > 0.1
        h0 = out.vertices[0, :, 1].max() - out.vertices[0, :, 1].min()
        h1 = b(tall).vertices[0, :, 1].max() - b(tall).vertices[0, :, 1].min()
    assert float(h1) > float(h0) + 0.05
    out.vertices.sum().backward()
    assert params.pose.grad is not None and params.pose.grad.abs().sum() > 0
