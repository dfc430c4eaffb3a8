"""Reading a GLB back with nothing but pygltflib and the glTF equations, to check what a viewer would show."""

from __future__ import annotations

import numpy as np
import pygltflib

from dinar_core.motion.rotations import quat_to_matrix


def accessor(gltf, index) -> np.ndarray:
    """(count, width) array of accessor ``index`` from the GLB's binary chunk."""
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    dtype = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}[acc.componentType]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    return np.frombuffer(gltf.binary_blob(), dtype, acc.count * width, start).reshape(acc.count, width)


def skin_from_file(path, frame, dense_weights=None):
    """Vertices at animation keyframe ``frame`` (None: the nodes' own pose, no animation) computed from the GLB
    alone, by the glTF skinning equations; ``dense_weights`` (V, J) replaces the file's four weights per vertex."""
    gltf = pygltflib.GLTF2().load_binary(str(path))
    prim = gltf.meshes[0].primitives[0]
    pos = accessor(gltf, prim.attributes.POSITION).astype(np.float64)
    joints = accessor(gltf, prim.attributes.JOINTS_0).astype(int)
    weights = accessor(gltf, prim.attributes.WEIGHTS_0).astype(np.float64)
    skin = gltf.skins[0]
    ibm = accessor(gltf, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major
    local = {}
    for i, node in enumerate(gltf.nodes):
        local[i] = {"t": np.array(node.translation or [0, 0, 0.0]), "r": np.array(node.rotation or [0, 0, 0, 1.0])}
    for channel in (gltf.animations[0].channels if frame is not None else []):
        sampler = gltf.animations[0].samplers[channel.sampler]
        key = {"translation": "t", "rotation": "r"}[channel.target.path]
        local[channel.target.node][key] = accessor(gltf, sampler.output)[frame].astype(np.float64)
    parent = {c: i for i, n in enumerate(gltf.nodes) for c in (n.children or [])}

    def world(i):
        m = np.eye(4)
        m[:3, :3] = quat_to_matrix(local[i]["r"] / np.linalg.norm(local[i]["r"]))
        m[:3, 3] = local[i]["t"]
        return world(parent[i]) @ m if i in parent else m

    mats = np.stack([world(j) @ ibm[k] for k, j in enumerate(skin.joints)])  # (J, 4, 4)
    hom = np.concatenate([pos, np.ones((len(pos), 1))], 1)
    if dense_weights is not None:
        return np.einsum("vj,jab,vb->va", dense_weights, mats, hom)[:, :3]
    per = np.einsum("vkab,vb->vka", mats[joints], hom)[..., :3]  # (V, 4, 3)
    return np.einsum("vk,vka->va", weights, per)
