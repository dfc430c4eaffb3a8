"""A skinned, textured, optionally animated GLB (binary glTF 2.0) that Blender, three.js or any glTF viewer can pose.

What is written (one buffer, one mesh, one skin):
- the mesh in its rest (bind) pose: POSITION, NORMAL, TEXCOORD_0 (when UVs are given), JOINTS_0 / WEIGHTS_0 (the four
  largest skinning weights of each vertex, renormalised to sum to 1) and triangle indices;
- its texture as an embedded PNG, the ``baseColorTexture`` of a metallic-roughness material (metallic 0, rough 1:
  an unlit-looking diffuse skin);
- the skeleton as a node tree, one node per joint, each placed relative to its parent. By default a joint's bind
  orientation is identity (as in SMPL-X: its local rotation is then exactly the model's pose rotation) and the nodes
  hold the bind pose; a rig whose bones have their own orientations (Anny's) passes them (``rest_rotations``), and
  may give the nodes another pose to show when nothing plays (``display_joints`` / ``display_rotations``: Anny's
  all-zero pose differs from the pose it skins from);
- a skin whose inverse bind matrices invert each joint's bind-pose world transform;
- optionally named animations (clips: walk, wave, a user's motion...), each with per-joint local rotation channels
  (unit quaternions, LINEAR) and a root translation channel; Blender imports each as an action, three.js and
  ``<model-viewer>`` list them by name.

Frames: glTF is y up, the front of an asset faces +z, metres; SMPL-X's canonical frame is the same, so pass the
model's canonical rest vertices (not DINAR's camera frame, which is y down). UVs here are v down (texture row follows
v, the image's top row is v = 0), which is also glTF's convention: they are written unchanged.

The file is assembled in memory and written under a temporary name then renamed, so an interrupted export never
leaves a truncated ``avatar.glb``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from dinar_core.fileio import atomic_target
from dinar_core.motion.rotations import axis_angle_to_quat, matrix_to_quat

# glTF enums
_FLOAT, _UBYTE, _USHORT, _UINT = 5126, 5121, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _REPEAT, _CLAMP = 9729, 9987, 10497, 33071


@dataclass
class SkinnedMesh:
    """A mesh with its skeleton, as numpy arrays in the glTF frame (y up, facing +z).

    vertices: (V, 3) float rest-pose (bind-pose) positions.
    faces: (F, 3) int triangle indices, counter-clockwise seen from outside (glTF front faces).
    skinning_weights: (V, J) float, rows summing to 1 (any number of joints per vertex; top 4 are kept).
    parents: (J,) int parent joint of each joint, -1 for a root.
    rest_joints: (J, 3) float joint positions in the rest (bind) pose.
    joint_names: J names (default joint0..).
    uv: (V, 2) float in [0, 1], v down, or None.
    normals: (V, 3) float unit normals, or None (computed, area-weighted).
    texture: (H, W, 3) or (H, W, 4) uint8 image whose top row is v = 0, or None.
    name: the mesh's name in the file.
    rest_rotations: (J, 3, 3) world orientation of each joint in the bind pose, or None (identity).
    display_joints, display_rotations: (J, 3), (J, 3, 3) the world pose the joint nodes hold when no animation
        plays, or None (the bind pose; the mesh then shows as ``vertices``).
    """

    vertices: np.ndarray
    faces: np.ndarray
    skinning_weights: np.ndarray
    parents: np.ndarray
    rest_joints: np.ndarray
    joint_names: tuple[str, ...] | None = None
    uv: np.ndarray | None = None
    normals: np.ndarray | None = None
    texture: np.ndarray | None = None
    name: str = "avatar"
    rest_rotations: np.ndarray | None = None
    display_joints: np.ndarray | None = None
    display_rotations: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.vertices = _float_array("vertices", self.vertices, (None, 3))
        v = self.vertices.shape[0]
        self.faces = np.asarray(self.faces)
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or not np.issubdtype(self.faces.dtype, np.integer):
            raise ValueError(f"faces must be (F, 3) integers, got {self.faces.shape} {self.faces.dtype}")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= v):
            raise ValueError(f"faces index vertices 0..{v - 1}, got {self.faces.min()}..{self.faces.max()}")
        self.parents = np.asarray(self.parents).astype(np.int64).reshape(-1)
        j = self.parents.shape[0]
        self.skinning_weights = _float_array("skinning_weights", self.skinning_weights, (v, j))
        self.rest_joints = _float_array("rest_joints", self.rest_joints, (j, 3))
        for name in ("rest_rotations", "display_rotations"):
            if getattr(self, name) is not None:
                setattr(self, name, _rotations(name, getattr(self, name), j))
        if self.display_joints is not None:
            self.display_joints = _float_array("display_joints", self.display_joints, (j, 3))
        _check_tree(self.parents)
        if self.joint_names is None:
            self.joint_names = tuple(f"joint{i}" for i in range(j))
        if len(self.joint_names) != j:
            raise ValueError(f"joint_names must have {j} names, got {len(self.joint_names)}")
        if self.uv is not None:
            self.uv = _float_array("uv", self.uv, (v, 2))
        if self.normals is not None:
            self.normals = _float_array("normals", self.normals, (v, 3))
        if self.texture is not None:
            tex = np.asarray(self.texture)
            if tex.dtype != np.uint8 or tex.ndim != 3 or tex.shape[2] not in (3, 4):
                raise ValueError(f"texture must be (H, W, 3|4) uint8, got {tex.shape} {tex.dtype}")
            if self.uv is None:
                raise ValueError("a texture needs per-vertex uv")
            self.texture = tex

    @property
    def num_joints(self) -> int:
        return int(self.parents.shape[0])

    def bind_transforms(self) -> np.ndarray:
        """(J, 4, 4) each joint's world transform in the bind pose."""
        return _rigid(self.rest_rotations, self.rest_joints)

    def display_transforms(self) -> np.ndarray:
        """(J, 4, 4) each joint's world transform as the nodes hold it (the bind pose unless a display pose is set)."""
        joints = self.rest_joints if self.display_joints is None else self.display_joints
        rotations = self.rest_rotations if self.display_rotations is None else self.display_rotations
        return _rigid(rotations, joints)

    @classmethod
    def from_uv_layout(cls, vertices: np.ndarray, skinning_weights: np.ndarray, parents: np.ndarray,
                       rest_joints: np.ndarray, uv: np.ndarray, uv_faces: np.ndarray, vertex_index: np.ndarray,
                       texture: np.ndarray | None = None, joint_names: tuple[str, ...] | None = None,
                       name: str = "avatar", **skeleton) -> "SkinnedMesh":
        """A mesh whose UVs are split along seams (DINAR's ``uv.npy``/``uv_faces.npy``/``v_inds.npy``, or a
        body model's ``UVLayout``): every UV vertex becomes a glTF vertex.

        vertices: (V, 3); skinning_weights: (V, J); uv: (U, 2); uv_faces: (F, 3) into uv; vertex_index: (U,) the
        mesh vertex of each UV vertex; ``skeleton``: ``rest_rotations`` / ``display_joints`` /
        ``display_rotations`` as in the class. Normals are computed on the unsplit mesh, so seams stay smooth.
        """
        vertices = _float_array("vertices", vertices, (None, 3))
        vertex_index = np.asarray(vertex_index).astype(np.int64).reshape(-1)
        uv_faces = np.asarray(uv_faces).astype(np.int64)
        if vertex_index.shape[0] != np.shape(uv)[0]:
            raise ValueError(f"vertex_index must have one entry per uv vertex ({np.shape(uv)[0]}), "
                             f"got {vertex_index.shape[0]}")
        normals = vertex_normals(vertices, vertex_index[uv_faces])[vertex_index]  # (U, 3)
        return cls(vertices=vertices[vertex_index], faces=uv_faces,
                   skinning_weights=np.asarray(skinning_weights)[vertex_index], parents=parents,
                   rest_joints=rest_joints, joint_names=joint_names, uv=uv, normals=normals, texture=texture,
                   name=name, **skeleton)


@dataclass
class GLBAnimation:
    """Per-joint local rotations over time.

    rotations: (T, J, 3) axis-angle of each joint node's rotation relative to its parent (joint order = the
        mesh's joints; for SMPL-X, whose bind orientations are identity, ``Motion.smplx_full_pose()``: joint 0 =
        pelvis = the motion's global_orient; for a rig with bone orientations, the whole local rotation).
    fps: frames per second; frame k is at k / fps seconds.
    root_translation: (T, 3) added to each root joint node's displayed position, or None.
    name: the animation's name.
    """

    rotations: np.ndarray
    fps: float
    root_translation: np.ndarray | None = None
    name: str = "motion"

    def __post_init__(self) -> None:
        self.rotations = _float_array("rotations", self.rotations, (None, None, 3), ndim=3)
        if self.rotations.shape[0] == 0:
            raise ValueError("an animation needs at least one frame")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.root_translation is not None:
            self.root_translation = _float_array("root_translation", self.root_translation,
                                                 (self.rotations.shape[0], 3))


@dataclass
class GLBInfo:
    """What a GLB holds. path; size_bytes; num_vertices; num_faces; num_joints; num_animations; num_keyframes
    (of the first animation, 0 without); texture_size (W, H) or None; animation_names (the clips, in order)."""

    path: Path
    size_bytes: int
    num_vertices: int
    num_faces: int
    num_joints: int
    num_animations: int
    num_keyframes: int
    texture_size: tuple[int, int] | None
    animation_names: tuple[str, ...] = ()


def _float_array(name: str, value, shape: tuple, ndim: int = 2) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != ndim or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must be {want}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has NaN or infinite values")
    return arr


def _rotations(name: str, value, j: int) -> np.ndarray:
    """(J, 3, 3) proper rotations, or ValueError."""
    R = np.asarray(value, dtype=np.float64)
    if R.shape != (j, 3, 3) or not np.isfinite(R).all():
        raise ValueError(f"{name} must be ({j}, 3, 3) finite rotations, got {R.shape}")
    if np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)).max() > 1e-3 or (np.linalg.det(R) < 0).any():
        raise ValueError(f"{name} must be rotation matrices (orthonormal, determinant +1)")
    return R


def _rigid(rotations: np.ndarray | None, translations: np.ndarray) -> np.ndarray:
    """(J, 4, 4) from (J, 3, 3) rotations (None: identity) and (J, 3) translations."""
    H = np.tile(np.eye(4), (len(translations), 1, 1))
    if rotations is not None:
        H[:, :3, :3] = rotations
    H[:, :3, 3] = translations
    return H


def local_transforms(world: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """(..., J, 4, 4) world transforms -> each relative to its parent's (roots: unchanged). Rigid inputs only."""
    local = world.copy()
    for j, p in enumerate(parents):
        if p >= 0:
            Rp, tp = world[..., p, :3, :3], world[..., p, :3, 3]
            RpT = np.swapaxes(Rp, -1, -2)
            local[..., j, :3, :3] = RpT @ world[..., j, :3, :3]
            local[..., j, :3, 3] = (RpT @ (world[..., j, :3, 3] - tp)[..., None])[..., 0]
    return local


def _check_tree(parents: np.ndarray) -> None:
    """Raise ValueError unless ``parents`` (J,) describes a forest (every chain reaches -1 without a cycle)."""
    j = parents.shape[0]
    if j == 0:
        raise ValueError("a skeleton needs at least one joint")
    if ((parents < -1) | (parents >= j)).any():
        raise ValueError(f"parents must be -1 or in 0..{j - 1}, got {parents.min()}..{parents.max()}")
    for start in range(j):
        node, steps = start, 0
        while node != -1:
            node, steps = int(parents[node]), steps + 1
            if steps > j:
                raise ValueError(f"parents has a cycle through joint {start}")


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals. vertices (V, 3), faces (F, 3) -> (V, 3) float32; a vertex on no face (or
    only on degenerate faces) gets +y."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # (F, 3), length = 2 * area
    normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(normals, f[:, k], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 1e-12, normals / np.maximum(length, 1e-12), np.array([0.0, 1.0, 0.0]))
    return normals.astype(np.float32)


def top_k_weights(weights: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The k largest skinning weights per vertex, renormalised.

    weights: (V, J). Returns joints (V, k) int64 (distinct per row) and weights (V, k) float32 summing to 1, in
    decreasing order; slots with zero weight name joint 0 (as glTF recommends); a vertex with no positive weight
    is bound fully to joint 0.
    """
    w = np.clip(np.asarray(weights, np.float64), 0.0, None)
    k_eff = min(k, w.shape[1])
    idx = np.argsort(-w, axis=1, kind="stable")[:, :k_eff]  # (V, k_eff)
    top = np.take_along_axis(w, idx, axis=1)
    total = top.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    top[empty] = 0.0
    top[empty, 0] = 1.0
    idx[empty, 0] = 0
    top = top / top.sum(axis=1, keepdims=True)
    if k_eff < k:  # fewer joints than slots: pad with zero weights on distinct-but-unused slots
        pad = k - k_eff
        idx = np.concatenate([idx, np.zeros((idx.shape[0], pad), np.int64)], axis=1)
        top = np.concatenate([top, np.zeros((top.shape[0], pad))], axis=1)
    top32 = top.astype(np.float32)
    # float32 rounding can leave the sum a few ulps off 1; put the residual on the largest weight
    top32[:, 0] += (1.0 - top32.astype(np.float64).sum(axis=1)).astype(np.float32)
    idx[top32 == 0] = 0  # the glTF validator warns about unused slots that name a joint other than 0
    return idx, top32


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


class _BufferBuilder:
    """Accumulates binary chunks (4-byte aligned) and their bufferViews / accessors."""

    def __init__(self, gltf) -> None:
        self.gltf = gltf
        self.data = bytearray()

    def view(self, payload: bytes, target: int | None = None) -> int:
        import pygltflib as g

        while len(self.data) % 4:
            self.data.append(0)
        offset = len(self.data)
        self.data.extend(payload)
        self.gltf.bufferViews.append(g.BufferView(buffer=0, byteOffset=offset, byteLength=len(payload),
                                                  target=target))
        return len(self.gltf.bufferViews) - 1

    def accessor(self, array: np.ndarray, component: int, kind: str, target: int | None = None,
                 minmax: bool = False) -> int:
        import pygltflib as g

        view = self.view(np.ascontiguousarray(array).tobytes(), target)
        acc = g.Accessor(bufferView=view, componentType=component, count=int(array.shape[0]), type=kind)
        if minmax:
            flat = array.reshape(array.shape[0], -1)
            acc.min = [float(x) for x in flat.min(axis=0)]
            acc.max = [float(x) for x in flat.max(axis=0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def _clips(animation) -> list[GLBAnimation]:
    """None, one GLBAnimation or a sequence of them -> a list; names must differ (a viewer picks clips by name)."""
    clips = [] if animation is None else [animation] if isinstance(animation, GLBAnimation) else list(animation)
    names = [c.name for c in clips]
    if len(set(names)) != len(names):
        raise ValueError(f"animation names must be unique, got {names}")
    return clips


def build_glb(mesh: SkinnedMesh, animation: GLBAnimation | Sequence[GLBAnimation] | None = None) -> bytes:
    """The GLB file's bytes for ``mesh`` and its clips (``animation``: one, several with distinct names, or
    None); see the module docstring."""
    import pygltflib as g

    clips = _clips(animation)
    for clip in clips:
        if clip.rotations.shape[1] != mesh.num_joints:
            raise ValueError(f"animation {clip.name!r} has {clip.rotations.shape[1]} joints, the skeleton "
                             f"{mesh.num_joints}")
    gltf = g.GLTF2(asset=g.Asset(version="2.0", generator="dinar-pipeline"))
    buf = _BufferBuilder(gltf)
    nj = mesh.num_joints
    v = mesh.vertices.shape[0]

    # -- mesh attributes ------------------------------------------------------------------------------------------
    normals = mesh.normals if mesh.normals is not None else vertex_normals(mesh.vertices, mesh.faces)
    normals = normals / np.linalg.norm(normals, axis=1, keepdims=True).clip(1e-12)
    joints, weights = top_k_weights(mesh.skinning_weights, 4)
    joint_type = _UBYTE if nj <= 256 else _USHORT
    attrs = g.Attributes(
        POSITION=buf.accessor(mesh.vertices.astype(np.float32), _FLOAT, g.VEC3, _ARRAY_BUFFER, minmax=True),
        NORMAL=buf.accessor(normals.astype(np.float32), _FLOAT, g.VEC3, _ARRAY_BUFFER),
        JOINTS_0=buf.accessor(joints.astype(np.uint8 if joint_type == _UBYTE else np.uint16), joint_type, g.VEC4,
                              _ARRAY_BUFFER),
        WEIGHTS_0=buf.accessor(weights, _FLOAT, g.VEC4, _ARRAY_BUFFER),
    )
    if mesh.uv is not None:
        attrs.TEXCOORD_0 = buf.accessor(mesh.uv.astype(np.float32), _FLOAT, g.VEC2, _ARRAY_BUFFER)
    index_type, index_dtype = (_USHORT, np.uint16) if v <= 65535 else (_UINT, np.uint32)
    indices = buf.accessor(mesh.faces.astype(index_dtype).reshape(-1, 1)[:, 0], index_type, g.SCALAR,
                           _ELEMENT_ARRAY_BUFFER, minmax=True)

    # -- material and texture -------------------------------------------------------------------------------------
    pbr = g.PbrMetallicRoughness(metallicFactor=0.0, roughnessFactor=1.0)
    if mesh.texture is not None:
        image_view = buf.view(_png_bytes(mesh.texture))
        gltf.images.append(g.Image(bufferView=image_view, mimeType="image/png", name=f"{mesh.name}_texture"))
        gltf.samplers.append(g.Sampler(magFilter=_LINEAR, minFilter=_LINEAR_MIPMAP_LINEAR, wrapS=_CLAMP,
                                       wrapT=_CLAMP))
        gltf.textures.append(g.Texture(sampler=0, source=0))
        pbr.baseColorTexture = g.TextureInfo(index=0, texCoord=0)
    else:
        pbr.baseColorFactor = [0.8, 0.8, 0.8, 1.0]
    gltf.materials.append(g.Material(name=f"{mesh.name}_material", pbrMetallicRoughness=pbr, doubleSided=False))
    gltf.meshes.append(g.Mesh(name=mesh.name, primitives=[g.Primitive(attributes=attrs, indices=indices,
                                                                       material=0, mode=4)]))

    # -- skeleton: joint nodes 0..J-1, then the mesh node ---------------------------------------------------------
    children: list[list[int]] = [[] for _ in range(nj)]
    roots = []
    for j, p in enumerate(mesh.parents):
        (roots if p < 0 else children[p]).append(j)
    local = local_transforms(mesh.display_transforms(), mesh.parents)  # (J, 4, 4)
    for j in range(nj):
        node = g.Node(name=mesh.joint_names[j], translation=[float(x) for x in local[j, :3, 3]])
        if mesh.rest_rotations is not None or mesh.display_rotations is not None:
            q = matrix_to_quat(local[j, :3, :3])  # xyzw
            node.rotation = [float(x) for x in q / np.linalg.norm(q)]
        if children[j]:
            node.children = children[j]
        gltf.nodes.append(node)
    ibm = np.linalg.inv(mesh.bind_transforms())  # (J, 4, 4) inverse bind matrices
    ibm[:, 3] = (0.0, 0.0, 0.0, 1.0)  # exact: the validator checks the last row
    ibm_acc = buf.accessor(np.transpose(ibm, (0, 2, 1)).reshape(nj, 16).astype(np.float32), _FLOAT, g.MAT4)
    gltf.skins.append(g.Skin(name=f"{mesh.name}_skeleton", joints=list(range(nj)), inverseBindMatrices=ibm_acc,
                             skeleton=roots[0] if len(roots) == 1 else None))
    gltf.nodes.append(g.Node(name=mesh.name, mesh=0, skin=0))
    gltf.scenes.append(g.Scene(name="scene", nodes=roots + [nj]))
    gltf.scene = 0

    # -- animations -----------------------------------------------------------------------------------------------
    for animation in clips:
        t = animation.rotations.shape[0]
        times = buf.accessor((np.arange(t) / animation.fps).astype(np.float32), _FLOAT, g.SCALAR, minmax=True)
        quats = axis_angle_to_quat(animation.rotations.astype(np.float64)).astype(np.float32)  # (T, J, 4) xyzw
        quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
        anim = g.Animation(name=animation.name, samplers=[], channels=[])
        for j in range(nj):
            out = buf.accessor(np.ascontiguousarray(quats[:, j]), _FLOAT, g.VEC4)
            anim.samplers.append(g.AnimationSampler(input=times, output=out, interpolation="LINEAR"))
            anim.channels.append(g.AnimationChannel(sampler=len(anim.samplers) - 1,
                                                    target=g.AnimationChannelTarget(node=j, path="rotation")))
        if animation.root_translation is not None:
            for r in roots:
                track = (local[r, :3, 3][None] + animation.root_translation.astype(np.float64)).astype(np.float32)
                out = buf.accessor(track, _FLOAT, g.VEC3)
                anim.samplers.append(g.AnimationSampler(input=times, output=out, interpolation="LINEAR"))
                anim.channels.append(g.AnimationChannel(sampler=len(anim.samplers) - 1,
                                                        target=g.AnimationChannelTarget(node=r, path="translation")))
        gltf.animations.append(anim)

    while len(buf.data) % 4:
        buf.data.append(0)
    gltf.buffers.append(g.Buffer(byteLength=len(buf.data)))
    gltf.set_binary_blob(bytes(buf.data))
    return b"".join(gltf.save_to_bytes())


def write_glb(path: str | Path, mesh: SkinnedMesh,
              animation: GLBAnimation | Sequence[GLBAnimation] | None = None) -> GLBInfo:
    """Write ``mesh`` (and its clips, ``animation``) as a GLB at ``path`` (atomically) and return what it holds."""
    clips = _clips(animation)
    data = build_glb(mesh, clips)
    path = Path(path)
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)
    tex = None if mesh.texture is None else (int(mesh.texture.shape[1]), int(mesh.texture.shape[0]))
    return GLBInfo(path=path, size_bytes=len(data), num_vertices=int(mesh.vertices.shape[0]),
                   num_faces=int(mesh.faces.shape[0]), num_joints=mesh.num_joints,
                   num_animations=len(clips),
                   num_keyframes=int(clips[0].rotations.shape[0]) if clips else 0, texture_size=tex,
                   animation_names=tuple(c.name for c in clips))


def read_glb_info(path: str | Path) -> GLBInfo:
    """Read a GLB back with pygltflib: counts of its first mesh primitive, skin, animations and texture."""
    import pygltflib as g
    from PIL import Image

    path = Path(path)
    gltf = g.GLTF2().load_binary(str(path))
    prim = gltf.meshes[0].primitives[0]
    num_vertices = gltf.accessors[prim.attributes.POSITION].count
    num_faces = gltf.accessors[prim.indices].count // 3
    num_joints = len(gltf.skins[0].joints) if gltf.skins else 0
    keyframes = gltf.accessors[gltf.animations[0].samplers[0].input].count if gltf.animations else 0
    tex = None
    if gltf.images:
        view = gltf.bufferViews[gltf.images[0].bufferView]
        blob = gltf.binary_blob()
        start = view.byteOffset or 0
        with Image.open(io.BytesIO(blob[start:start + view.byteLength])) as image:
            tex = image.size
    return GLBInfo(path=path, size_bytes=path.stat().st_size, num_vertices=num_vertices, num_faces=num_faces,
                   num_joints=num_joints, num_animations=len(gltf.animations), num_keyframes=keyframes,
                   texture_size=tex, animation_names=tuple(a.name or "" for a in gltf.animations))
