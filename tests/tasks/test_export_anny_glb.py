"""The Anny avatar's GLB carries its animation, and a viewer's glTF skinning of it reproduces Anny's own posed mesh.

Anny skins from a bind pose that is not its all-zero pose and its bones have their own orientations; the GLB holds
the bind mesh, the bind frames as inverse bind matrices, nodes in the zero pose and each keyframe's local bone
rotations. Here the file is skinned from its own contents (``skin_from_file``: the glTF equations) and compared
with ``AnnyBody.forward`` for the same motion frames. The difference left is glTF's four weights per vertex (Anny
uses up to 9): reported, and bounded.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dinar_core.body import AnnyBody, AnnyParams
from dinar_core.export.glb import SkinnedMesh, write_glb
from dinar_core.export.gltf_validator import find_validator, validate_gltf
from tasks.bodies import LoadedBody
from tasks.config import PipelineConfig, override
from tasks.export import anny_animation, anny_rest_mesh
from tasks.motions import resolve_motion
from tests.helpers.gltf import skin_from_file


@pytest.fixture(scope="module")
def anny():
    return LoadedBody("anny", AnnyBody(), None)


def test_anny_glb_animation_skins_like_the_model(anny, tmp_path):
    body = anny.model
    p = AnnyParams.zeros(1, body.num_joints)
    p.phenotype = torch.tensor([[0.3, 0.6, 0.7, 0.4, 0.55, 0.45]])
    fit = SimpleNamespace(params=p)
    cfg = override(PipelineConfig(), {"render": {"fps": 10.0, "seconds": 1.0}})
    rest, skeleton = anny_rest_mesh(anny, fit)
    anim = anny_animation(anny, fit, cfg, "walk", skeleton)
    layout = body.uv_layout
    vi = layout.vertex_index.numpy()
    mesh = SkinnedMesh.from_uv_layout(
        rest.vertices, body.skinning_weights.numpy(), body.parents.numpy(), rest.joints, layout.uv.numpy(),
        layout.uv_faces.numpy(), vi, joint_names=tuple(body.joint_names), rest_rotations=skeleton.bind[:, :3, :3],
        display_joints=skeleton.zero[:, :3, 3], display_rotations=skeleton.zero[:, :3, :3])
    path = tmp_path / "anny.glb"
    write_glb(path, mesh, anim)

    # the model's own vertices for the same frames (forward, not the bone frames the export used)
    m = resolve_motion("walk", anny, fit, 10.0, 1.0, frame="canonical")
    T = m.num_frames
    params = AnnyParams(p.phenotype.expand(T, -1).clone(), torch.as_tensor(m.body_pose).float().reshape(T, -1, 3),
                        torch.as_tensor(m.global_orient).float(), torch.as_tensor(m.transl - m.transl[:1]).float())
    with torch.no_grad():
        expected = body(params).vertices.numpy()[:, vi]  # (T, U, 3)
        zero = body(AnnyParams(p.phenotype, torch.zeros(1, body.num_joints, 3), torch.zeros(1, 3),
                               torch.zeros(1, 3))).vertices.numpy()[0, vi]
    height = float(np.ptp(zero[:, 1]))
    errors = [np.abs(skin_from_file(path, None) - zero).max()]
    errors += [np.abs(skin_from_file(path, t) - expected[t]).max() for t in (0, T // 2, T - 1)]
    mean = np.mean([np.linalg.norm(skin_from_file(path, t) - expected[t], axis=1).mean() for t in (0, T // 2)])
    print(f"Anny GLB vs model: max vertex error {max(errors) * 1000:.2f} mm (zero pose {errors[0] * 1000:.2f} mm), "
          f"mean {mean * 1000:.3f} mm, body height {height:.2f} m")
    dense = body.skinning_weights.numpy()[vi].astype(np.float64)
    exact = max(np.abs(skin_from_file(path, t, dense) - expected[t]).max() for t in (0, T // 2, T - 1))
    print(f"  with all of Anny's weights instead of the file's four: {exact * 1000:.4f} mm")
    assert exact < 1e-4  # the skeleton, bind frames and animation are exact: only the weight limit differs
    assert np.ptp(expected[:, :, 0], axis=0).max() > 0.05  # the walk moves the body (not a trivial check)
    assert max(errors) < 0.01 and mean < 0.0005, (errors, mean)  # four weights per vertex: < 1 cm, mean < 0.5 mm
    if find_validator() is not None:
        report = validate_gltf(path)
        assert report.errors == 0, report.summary("error")
