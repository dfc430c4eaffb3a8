"""Run inside Blender (``blender -b --factory-startup --python blender_probe.py -- GLB OUT_JSON [SECONDS ...]``):
import a GLB with Blender's own glTF importer and write what Blender made of it as JSON. Standalone: Blender's
Python has neither this package nor its dependencies, so nothing here imports them.

Output: ``armatures`` (per armature: name, bone names in Blender's order, parent of each), ``meshes`` (name,
vertex count, whether an armature modifier skins it, the image textures of its materials), ``actions`` (name,
frame range), ``fps``, and ``frames``: for each requested time in seconds, every mesh's evaluated (skinned)
vertex positions in world space, converted back to glTF's Y-up axes (Blender's importer maps glTF (x, y, z) to
(x, -z, y)), with the action of the first armature playing.
"""

import json
import sys

import numpy

if not hasattr(numpy, "bool"):  # Blender 3.4's glTF importer uses numpy.bool, gone from numpy >= 1.24
    numpy.bool = bool

import bpy  # noqa: E402


def _images(obj) -> list:
    names = []
    for slot in obj.material_slots:
        mat = slot.material
        if mat is None or not mat.use_nodes:
            continue
        for node in mat.node_tree.nodes:
            if node.type == "TEX_IMAGE" and node.image is not None:
                names.append({"name": node.image.name, "size": list(node.image.size)})
    return names


def _vertices(obj, depsgraph) -> list:
    ev = obj.evaluated_get(depsgraph)
    mesh = ev.to_mesh()
    m = ev.matrix_world
    out = []
    for v in mesh.vertices:
        w = m @ v.co
        out.append([w.x, w.z, -w.y])  # Blender Z-up -> glTF Y-up
    ev.to_mesh_clear()
    return out


def main(argv: list) -> None:
    glb, out_json, seconds = argv[0], argv[1], [float(s) for s in argv[2:]]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=glb)
    scene = bpy.context.scene
    arms = [o for o in scene.objects if o.type == "ARMATURE"]
    meshes = [o for o in scene.objects if o.type == "MESH"]
    doc = {
        "blender": bpy.app.version_string,
        "armatures": [{"name": a.name, "bones": [b.name for b in a.data.bones],
                       "parents": [b.parent.name if b.parent else None for b in a.data.bones]} for a in arms],
        "meshes": [{"name": o.name, "vertices": len(o.data.vertices),
                    "skinned": any(mod.type == "ARMATURE" and mod.object is not None for mod in o.modifiers),
                    "images": _images(o)} for o in meshes],
        "actions": [{"name": a.name, "frame_range": list(a.frame_range)} for a in bpy.data.actions],
        "fps": scene.render.fps / scene.render.fps_base,
        "frames": {},
    }
    fps = doc["fps"]
    for t in seconds:
        scene.frame_set(int(round(t * fps)), subframe=t * fps - round(t * fps))
        depsgraph = bpy.context.evaluated_depsgraph_get()
        doc["frames"][repr(t)] = {o.name: _vertices(o, depsgraph) for o in meshes}
    with open(out_json, "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else [])
