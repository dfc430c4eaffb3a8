"""GLB export: a skinned 3-bone cylinder written, loaded back (pygltflib, trimesh), skinned from the file's own
data (so node offsets, inverse bind matrices and quaternion order are checked) and validated by Khronos' validator."""

from __future__ import annotations

import numpy as np
import pygltflib
import pytest
import trimesh

from dinar_core.export.glb import (GLBAnimation, SkinnedMesh, build_glb, local_transforms, read_glb_info, top_k_weights,
                                   vertex_normals, write_glb)
from dinar_core.export.gltf_validator import find_validator, validate_gltf
from dinar_core.motion import walk
from dinar_core.motion.rotations import axis_angle_to_matrix, matrix_to_axis_angle, quat_to_matrix
from tests.helpers.gltf import accessor, skin_from_file
from tests.helpers.synthetic_smplx import PARENTS

needs_validator = pytest.mark.skipif(find_validator() is None,
                                     reason="node or tools/gltf-validator/node_modules missing (npm ci there)")


def cylinder(segments=8, rings=7, height=3.0, radius=0.3, bones=3, seam=False):
    """A vertical tube around +y, bones evenly up its axis, weights falling off linearly between bone centres.
    With ``seam`` the first column is repeated as a last one (u = 1), as a UV layout splits a seam."""
    cols = segments + 1 if seam else segments
    ang = 2 * np.pi * np.arange(cols) / segments
    ys = np.linspace(0, height, rings)
    verts = np.array([[radius * np.cos(a), y, radius * np.sin(a)] for y in ys for a in ang], np.float32)
    faces = []
    for r in range(rings - 1):
        for s in range(segments):
            a, b = r * cols + s, r * cols + (s + 1) % cols
            faces += [[a, a + cols, b], [b, a + cols, b + cols]]  # counter-clockwise seen from outside
    rest = np.array([[0, height * k / bones, 0] for k in range(bones)], np.float32)
    centre = verts[:, 1] / (height / bones)
    w = np.maximum(0, 1 - np.abs(centre[:, None] - (np.arange(bones) + 0.5)[None]))
    w /= w.sum(1, keepdims=True)
    uv = np.stack([np.tile(np.arange(cols) / segments, rings), np.repeat(1 - ys / height, cols)], 1)
    return verts, np.array(faces), w, np.arange(bones) - 1, rest, uv


def _texture(size=32):
    y, x = np.mgrid[0:size, 0:size]
    return np.stack([x * 255 // size, y * 255 // size, np.full_like(x, 90)], -1).astype(np.uint8)


def test_cylinder_glb_counts_texture_and_trimesh(tmp_path):
    v, f, w, p, rest, uv = cylinder()
    mesh = SkinnedMesh(v, f, w, p, rest, ("hip", "knee", "ankle"), uv=uv, texture=_texture())
    info = write_glb(tmp_path / "avatar.glb", mesh)
    back = read_glb_info(tmp_path / "avatar.glb")
    assert (back.num_vertices, back.num_faces, back.num_joints) == (56, 96, 3) == \
           (info.num_vertices, info.num_faces, info.num_joints)
    assert back.texture_size == (32, 32) and back.num_animations == 0 and back.size_bytes == info.size_bytes
    scene = trimesh.load(tmp_path / "avatar.glb")
    geom = next(iter(scene.geometry.values()))
    assert geom.vertices.shape == (56, 3) and geom.faces.shape == (96, 3)
    np.testing.assert_allclose(np.sort(geom.vertices[:, 1]), np.sort(v[:, 1]), atol=1e-6)
    assert np.asarray(geom.visual.material.baseColorTexture).shape[:2] == (32, 32)
    np.testing.assert_allclose(geom.visual.uv[:, 0], uv[:, 0], atol=1e-6)
    radial = geom.vertices * [1, 0, 1]
    assert (np.sum(geom.vertex_normals * radial, axis=1) > 0).all()  # front faces point out of the tube
    gltf = pygltflib.GLTF2().load_binary(str(tmp_path / "avatar.glb"))
    assert [n.name for n in gltf.nodes[:3]] == ["hip", "knee", "ankle"]
    assert gltf.materials[0].pbrMetallicRoughness.baseColorTexture.index == 0
    assert not list(tmp_path.glob("*.tmp-*"))


def test_animation_in_the_file_skins_as_expected(tmp_path):
    v, f, w, p, rest, uv = cylinder()
    t = 5
    rot = np.zeros((t, 3, 3))
    rot[:, 1, 2] = np.linspace(0, np.pi / 2, t)  # the middle joint bends to 90 degrees about z
    shift = np.zeros((t, 3))
    shift[:, 0] = np.linspace(0, 0.5, t)
    path = tmp_path / "anim.glb"
    write_glb(path, SkinnedMesh(v, f, w, p, rest, uv=uv), GLBAnimation(rot, 24.0, root_translation=shift))
    gltf = pygltflib.GLTF2().load_binary(str(path))
    times = accessor(gltf, gltf.animations[0].samplers[0].input)[:, 0]
    np.testing.assert_allclose(times, np.arange(t) / 24.0, atol=1e-7)
    np.testing.assert_allclose(skin_from_file(path, 0), v, atol=1e-5)  # keyframe 0 = the bind pose
    posed = skin_from_file(path, t - 1)
    top = v[:, 1] >= 2.5  # fully on the last joint: rigidly rotated about the middle joint (at y = 1)
    rel = v[top] - rest[1]
    expected = np.stack([-rel[:, 1], rel[:, 0], rel[:, 2]], 1) + rest[1] + [0.5, 0, 0]
    np.testing.assert_allclose(posed[top], expected, atol=1e-5)
    bottom = v[:, 1] <= 0.5  # on the root only: just translated
    np.testing.assert_allclose(posed[bottom], v[bottom] + [0.5, 0, 0], atol=1e-5)


def _random_rotations(rng, n: int, scale: float) -> np.ndarray:
    return axis_angle_to_matrix(rng.normal(scale=scale, size=(n, 3)))


def test_a_rig_with_bone_orientations_skins_as_its_model(tmp_path):
    """Bones with their own bind orientations (as Anny's), nodes showing another pose than the bind pose, and an
    animation of whole local rotations taken from a model's posed bone frames: the file skins exactly as linear
    blend skinning from those frames, W_c B_c^-1."""
    v, f, w, p, rest, uv = cylinder()
    rng = np.random.default_rng(3)
    bind = np.tile(np.eye(4), (3, 1, 1))
    bind[:, :3, :3] = _random_rotations(rng, 3, 1.0)
    bind[:, :3, 3] = rest

    def posed():
        """(3, 4, 4) world frames of a random pose: the root moved rigidly, each child turned about its own
        origin, so its offset from its parent is the bind offset (rigid bones, as a body model's)."""
        frames = np.zeros((3, 4, 4))
        for j in range(3):
            turn = np.eye(4)
            turn[:3, :3] = _random_rotations(rng, 1, 0.5)[0]
            if p[j] < 0:
                turn[:3, 3] = rng.normal(scale=0.1, size=3)
                frames[j] = turn @ bind[j]
            else:
                frames[j] = frames[p[j]] @ np.linalg.inv(bind[p[j]]) @ bind[j] @ turn
        return frames

    display = posed()
    T = 4
    world = np.stack([posed() for _ in range(T)])  # (T, 3, 4, 4)
    local = local_transforms(world, p)
    anim = GLBAnimation(matrix_to_axis_angle(local[..., :3, :3]), 10.0,
                        root_translation=world[:, 0, :3, 3] - display[0, :3, 3])
    mesh = SkinnedMesh(v, f, w, p, rest, rest_rotations=bind[:, :3, :3], display_joints=display[:, :3, 3],
                       display_rotations=display[:, :3, :3], uv=uv)
    path = tmp_path / "oriented.glb"
    write_glb(path, mesh, anim)
    hom = np.concatenate([v, np.ones((len(v), 1))], 1)

    def lbs(frames):
        return np.einsum("vj,jab,vb->va", w, frames @ np.linalg.inv(bind), hom)[:, :3]

    np.testing.assert_allclose(skin_from_file(path, None), lbs(display), atol=2e-5)
    for t in range(T):
        np.testing.assert_allclose(skin_from_file(path, t), lbs(world[t]), atol=2e-5)
    if find_validator() is not None:
        report = validate_gltf(path)
        assert report.errors == 0, report.summary("error")


def test_bone_orientations_must_be_rotations():
    v, f, w, p, rest, uv = cylinder()
    with pytest.raises(ValueError, match="rotation"):
        SkinnedMesh(v, f, w, p, rest, rest_rotations=np.tile(2 * np.eye(3), (3, 1, 1)))
    with pytest.raises(ValueError, match=r"\(3, 3, 3\)"):
        SkinnedMesh(v, f, w, p, rest, display_rotations=np.eye(3))


@needs_validator
def test_validator_accepts_cylinder_with_animation(tmp_path):
    v, f, w, p, rest, uv = cylinder()
    rot = np.random.default_rng(0).normal(scale=0.4, size=(6, 3, 3))
    path = tmp_path / "cyl.glb"
    write_glb(path, SkinnedMesh(v, f, w, p, rest, uv=uv, texture=_texture()),
              GLBAnimation(rot, 30.0, root_translation=np.zeros((6, 3))))
    report = validate_gltf(path)
    assert report.errors == 0, report.summary("error")
    assert report.warnings == 0, report.summary("warning")


@needs_validator
def test_validator_reports_a_broken_file(tmp_path):
    v, f, w, p, rest, uv = cylinder()
    data = bytearray(build_glb(SkinnedMesh(v, f, w, p, rest)))
    data[-40:] = b"\xff" * 40  # corrupt the tail of the binary chunk (index data)
    path = tmp_path / "broken.glb"
    path.write_bytes(bytes(data))
    assert validate_gltf(path).errors > 0  # the wrapper reports errors, it does not just say 0


@needs_validator
def test_smplx_skeleton_with_a_walk(tmp_path):
    """55 SMPL-X joints (real parents), a small mesh around them, a full-pose walk: valid, right channel count."""
    rng = np.random.default_rng(1)
    rest = np.cumsum(rng.normal(scale=0.05, size=(55, 3)), 0).astype(np.float32)
    verts = (rest[rng.integers(0, 55, 400)] + rng.normal(scale=0.02, size=(400, 3))).astype(np.float32)
    faces = rng.integers(0, 400, size=(300, 3))
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    weights = rng.random((400, 55)) ** 8
    motion = walk(num_frames=12, fps=30.0)
    full = motion.smplx_full_pose()  # (T, 55, 3)
    path = tmp_path / "smplx.glb"
    write_glb(path, SkinnedMesh(verts, faces, weights, PARENTS, rest),
              GLBAnimation(full, motion.fps, root_translation=motion.transl))
    gltf = pygltflib.GLTF2().load_binary(str(path))
    assert len(gltf.animations[0].channels) == 55 + 1 and len(gltf.skins[0].joints) == 55
    q = accessor(gltf, gltf.animations[0].samplers[1 + 3].output)  # left_knee = joint 4
    np.testing.assert_allclose(quat_to_matrix(q.astype(np.float64)), axis_angle_to_matrix(full[:, 4]), atol=1e-5)
    report = validate_gltf(path)
    assert report.errors == 0, report.summary("error")


def test_uv_layout_split_and_weights():
    v, f, w, p, rest, uv = cylinder(seam=True)  # the seam column duplicated, as in a UV layout
    segments, cols = 8, 9
    vertex_index = np.array([r * segments + (c % segments) for r in range(7) for c in range(cols)])
    base_v = v[[r * cols + c for r in range(7) for c in range(segments)]]
    base_w = w[[r * cols + c for r in range(7) for c in range(segments)]]
    mesh = SkinnedMesh.from_uv_layout(base_v, base_w, p, rest, uv, f, vertex_index)
    assert mesh.vertices.shape == (63, 3)
    seam = np.arange(7) * cols
    np.testing.assert_allclose(mesh.normals[seam], mesh.normals[seam + segments], atol=1e-6)  # smooth across
    np.testing.assert_allclose(mesh.normals[:, 1], 0.0, atol=0.5)
    # top-4 weights: distinct joints, renormalised, largest first, zero slots point at joint 0
    weights = np.random.default_rng(2).random((50, 10)) ** 3
    idx, top = top_k_weights(weights)
    assert idx.shape == top.shape == (50, 4)
    np.testing.assert_allclose(top.sum(1), 1.0, atol=1e-7)
    assert (np.diff(top, axis=1) <= 1e-7).all()
    np.testing.assert_array_equal(np.take_along_axis(weights, idx, 1).argmax(1), 0)
    assert all(len(set(row)) == 4 for row in idx)
    idx3, top3 = top_k_weights(np.array([[0.2, 0.0, 0.6], [0, 0, 0]]))
    assert idx3.tolist() == [[2, 0, 0, 0], [0, 0, 0, 0]]
    np.testing.assert_allclose(top3, [[0.75, 0.25, 0, 0], [1, 0, 0, 0]], atol=1e-7)
    n = vertex_normals(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5.0]]), np.array([[0, 1, 2]]))
    np.testing.assert_allclose(n, [[0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 1, 0]], atol=1e-7)


def test_bad_meshes_raise():
    v, f, w, p, rest, uv = cylinder()
    with pytest.raises(ValueError, match="cycle"):
        SkinnedMesh(v, f, w, np.array([2, 0, 1]), rest)
    with pytest.raises(ValueError, match=r"skinning_weights must be \(56, 3\)"):
        SkinnedMesh(v, f, w[:, :2], p, rest)
    with pytest.raises(ValueError, match="faces index"):
        SkinnedMesh(v, f + 100, w, p, rest)
    with pytest.raises(ValueError, match="needs per-vertex uv"):
        SkinnedMesh(v, f, w, p, rest, texture=_texture())
    with pytest.raises(ValueError, match="animation 'motion' has 2 joints"):
        build_glb(SkinnedMesh(v, f, w, p, rest), GLBAnimation(np.zeros((3, 2, 3)), 30.0))
    with pytest.raises(ValueError, match="names must be unique"):
        build_glb(SkinnedMesh(v, f, w, p, rest), [GLBAnimation(np.zeros((3, 3, 3)), 30.0)] * 2)


def test_several_named_clips_in_one_file(tmp_path):
    """Each clip is its own glTF animation with its name, frames and rate; each skins as written."""
    v, f, w, p, rest, uv = cylinder()
    bend = np.zeros((5, 3, 3))
    bend[:, 1, 2] = np.linspace(0, np.pi / 2, 5)
    twist = np.zeros((3, 3, 3))
    twist[:, 0, 1] = np.linspace(0, np.pi, 3)
    path = tmp_path / "clips.glb"
    info = write_glb(path, SkinnedMesh(v, f, w, p, rest, uv=uv), [GLBAnimation(bend, 24.0, name="bend"),
                                                                  GLBAnimation(twist, 10.0, name="twist")])
    back = read_glb_info(path)
    assert info.animation_names == back.animation_names == ("bend", "twist") and back.num_animations == 2
    gltf = pygltflib.GLTF2().load_binary(str(path))
    times = [accessor(gltf, a.samplers[0].input)[:, 0] for a in gltf.animations]
    np.testing.assert_allclose(times[0], np.arange(5) / 24.0, atol=1e-7)
    np.testing.assert_allclose(times[1], np.arange(3) / 10.0, atol=1e-7)
    q = accessor(gltf, gltf.animations[1].samplers[0].output)  # joint 0 of twist: about y by 0, pi/2, pi
    np.testing.assert_allclose(quat_to_matrix(q.astype(np.float64)), axis_angle_to_matrix(twist[:, 0]), atol=1e-5)
    report = validate_gltf(path) if find_validator() is not None else None
    assert report is None or report.errors == 0, report.summary("error")
