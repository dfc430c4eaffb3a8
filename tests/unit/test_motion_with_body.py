"""Built-in motions on a real SMPL-X layer (the synthetic model file with SMPL-X's layout), then exported as a GLB:
the documented joint conventions hold through smplx's own skinning, and the exported animation matches it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dinar_core.body.smplx_model import SMPLXBody, SMPLXParams
from dinar_core.export.glb import GLBAnimation, SkinnedMesh, write_glb
from dinar_core.export.gltf_validator import find_validator, validate_gltf
from dinar_core.motion import apply_ground_offsets, ground_offsets, walk, wave
from tests.helpers.synthetic_smplx import write_synthetic_smplx
from tests.helpers.gltf import skin_from_file

pytestmark = pytest.mark.slow  # builds a 10k-vertex model (~5 s) and skins 40 frames


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    folder = write_synthetic_smplx(tmp_path_factory.mktemp("smplx")).parent
    return SMPLXBody(folder)


def _pose(body, motion):
    t = motion.num_frames
    params = SMPLXParams.zeros(t)
    params.global_orient = torch.from_numpy(motion.global_orient)
    params.body_pose = torch.from_numpy(motion.body_pose)
    if motion.transl is not None:
        params.transl = torch.from_numpy(motion.transl)
    with torch.no_grad():
        return body(params)


def test_walk_on_smplx_feet_alternate_and_touch_the_ground(body, tmp_path):
    m = walk(num_frames=40, fps=40.0, cycle_seconds=1.0)
    out = _pose(body, m)
    joints = out.joints.numpy()
    left_ankle, right_ankle, left_wrist, left_shoulder = 7, 8, 20, 16
    assert joints[10, left_ankle, 2] > joints[10, right_ankle, 2] + 0.1  # quarter cycle: left foot ahead
    assert joints[30, right_ankle, 2] > joints[30, left_ankle, 2] + 0.1  # three quarters: right foot ahead
    assert (joints[:, left_wrist, 1] < joints[:, left_shoulder, 1] - 0.3).all()  # arms hang down
    offsets = ground_offsets(out.vertices, "y")
    grounded = apply_ground_offsets(out.vertices, offsets, "y")
    assert torch.allclose(grounded[..., 1].min(dim=1).values, torch.zeros(40), atol=1e-6)
    assert float(offsets.max() - offsets.min()) < 0.1  # the body does not jump around

    # the same motion through the GLB: skinning the file's data reproduces smplx's vertices (no pose correctives
    # in glTF, and the synthetic model's are small)
    path = tmp_path / "walk.glb"
    mesh = SkinnedMesh(body.rest_vertices.numpy(), body.faces.numpy(), body.skinning_weights.numpy(),
                       body.parents.numpy(), body.rest_joints.numpy())
    full = m.smplx_full_pose(left_hand_mean=body.smplx.left_hand_mean.numpy(),  # flat_hand_mean=False, as DINAR
                             right_hand_mean=body.smplx.right_hand_mean.numpy())
    full[:, 23] = body.leye_pose.numpy()  # DINAR's fixed eyes, as the body layer applies them
    full[:, 24] = body.reye_pose.numpy()
    write_glb(path, mesh, GLBAnimation(full, m.fps, root_translation=m.transl))
    from_file = skin_from_file(path, 10)
    error = np.linalg.norm(from_file - out.vertices[10].numpy(), axis=1)
    # measured: median 0.4 mm, max 3 mm (the pose correctives glTF does not carry)
    assert np.median(error) < 0.002 and error.max() < 0.01, (np.median(error), error.max())
    if find_validator() is not None:
        report = validate_gltf(path)
        assert report.errors == 0, report.summary("error")


def test_wave_on_smplx_raises_the_right_hand(body):
    out = _pose(body, wave(num_frames=30, fps=30.0, side="right"))
    joints = out.joints.numpy()
    head, right_wrist, left_wrist = 15, 21, 20
    assert joints[-1, right_wrist, 1] > joints[-1, head, 1]  # above the head
    assert joints[-1, left_wrist, 1] < joints[0, 16, 1] - 0.3  # the other hand down


def test_walk_and_wave_on_anny():
    """Anny's rig through ``anny_skeleton``: same gait conventions (its bone rotations act about its z-up axes)."""
    from dinar_core.body.anny_model import AnnyBody, AnnyParams
    from dinar_core.motion import anny_skeleton

    anny = AnnyBody()
    idx = {n: i for i, n in enumerate(anny.joint_names)}
    sk = anny_skeleton(anny.joint_names, anny.frame.cpu().numpy(), anny.rest_joints.cpu().numpy())
    assert 0.5 < sk.rest_arm_angle < 1.1 and len(sk.aliases) == 19  # an A-pose; every semantic joint mapped

    def joints(motion):
        params = AnnyParams.zeros(motion.num_frames, anny.num_joints)
        params.pose = torch.from_numpy(motion.body_pose.reshape(motion.num_frames, anny.num_joints, 3))
        params.global_orient = torch.from_numpy(motion.global_orient)
        with torch.no_grad():
            return anny(params).joints.numpy()

    j = joints(walk(num_frames=40, fps=40.0, cycle_seconds=1.0, skeleton=sk))
    assert j[10, idx["foot.L"], 2] > j[10, idx["foot.R"], 2] + 0.1
    assert j[30, idx["foot.R"], 2] > j[30, idx["foot.L"], 2] + 0.1
    for side in "LR":
        assert (j[:, idx[f"wrist.{side}"], 1] < j[:, idx[f"upperarm01.{side}"], 1] - 0.25).all()
    j = joints(wave(num_frames=30, fps=30.0, side="right", skeleton=sk))
    assert j[-1, idx["wrist.R"], 1] > j[-1, idx["head"], 1]
