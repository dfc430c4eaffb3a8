"""The SMPL-X avatar's GLB skins like SMPL-X: the file, skinned by the glTF equations (``skin_from_file``), equals
``SMPLXBody`` posed by the same motion frames (fitted shape, expression, scale and PCA hands with the model's mean
hand, as DINAR builds SMPL-X). glTF has no pose-corrective blend shapes, so the model's ``posedirs`` are zeroed for
the comparison; everything else (bind mesh, joints, hand expansion, root motion) must agree to float precision."""

from types import SimpleNamespace

import numpy as np
import torch

from dinar_core.body import SMPLXBody, SMPLXParams
from dinar_core.export.glb import SkinnedMesh, write_glb
from tasks.bodies import LoadedBody
from tasks.config import PipelineConfig, override
from tasks.export import smplx_animation, smplx_rest_mesh
from tasks.motions import resolve_motion
from tests.helpers.synthetic_smplx import synthetic_smplx_dir  # noqa: F401 (fixture)
from tests.helpers.gltf import skin_from_file


def test_smplx_glb_animation_skins_like_the_model(synthetic_smplx_dir, tmp_path):  # noqa: F811
    model = SMPLXBody(synthetic_smplx_dir)
    model.smplx.posedirs.zero_()
    body = LoadedBody("smplx", model, None)
    g = torch.Generator().manual_seed(0)
    p = SMPLXParams.zeros(1)
    p.betas, p.expression = torch.randn(1, 10, generator=g), torch.randn(1, 10, generator=g) * 0.5
    p.left_hand_pose, p.right_hand_pose = torch.randn(1, 6, generator=g), torch.randn(1, 6, generator=g)
    p.body_scale = torch.tensor([[1.07]])
    fit = SimpleNamespace(params=p)
    cfg = override(PipelineConfig(), {"render": {"fps": 10.0, "seconds": 1.0}})
    rest = smplx_rest_mesh(body, fit)
    anim = smplx_animation(body, fit, cfg, "walk")
    faces = model.faces.numpy()
    mesh = SkinnedMesh(rest.vertices, faces, model.skinning_weights.numpy(), model.parents.numpy(), rest.joints)
    path = tmp_path / "smplx.glb"
    write_glb(path, mesh, anim)

    m = resolve_motion("walk", body, fit, 10.0, 1.0, frame="canonical")
    T = m.num_frames
    frames = SMPLXParams(
        betas=p.betas.expand(T, -1), expression=p.expression.expand(T, -1),
        global_orient=torch.as_tensor(m.global_orient).float(), body_pose=torch.as_tensor(m.body_pose).float(),
        jaw_pose=torch.zeros(T, 3), left_hand_pose=p.left_hand_pose.expand(T, -1),
        right_hand_pose=p.right_hand_pose.expand(T, -1), transl=torch.as_tensor(m.transl - m.transl[:1]).float(),
        body_scale=p.body_scale.expand(T, -1))
    with torch.no_grad():
        expected = model(frames).vertices.numpy()  # (T, V, 3)
    dense = model.skinning_weights.numpy().astype(np.float64)
    assert (model.skinning_weights > 0).sum(1).max() <= 4  # the synthetic weights fit glTF's four
    for t in (0, T // 2, T - 1):
        np.testing.assert_allclose(skin_from_file(path, t, dense), expected[t], atol=2e-5)
        np.testing.assert_allclose(skin_from_file(path, t), expected[t], atol=2e-5)
    assert np.ptp(expected[:, :, 2], axis=0).max() > 0.05  # the walk moves the legs
