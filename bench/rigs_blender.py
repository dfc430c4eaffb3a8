"""Each demo person's GLB on each standard rig, imported by Blender (headless): bone count and names as the rig's
JSON defines them, the clips as actions, the texture, and a posed frame's distance to the file's glTF skinning
(nearest points both ways). Run after `make demo`, with Blender installed: ``python -m bench.rigs_blender [RUNS]``
(default runs/demo); results in bench/results/rigs_blender_demo.json, the GLBs in a temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

RIGS = ("game_engine", "mixamo", "cmu_mb")
KEY_SECONDS, FPS = 1.0, 30.0  # the frame compared: 1 s into the first clip (render.fps 30)


def check(runs: Path) -> dict:
    from scipy.spatial import cKDTree

    from dinar_core.export.blender import probe_glb
    from tests.helpers.gltf import skin_from_file
    from tests.tasks.test_export_rigs import _rig_bones

    out, tmp = {}, Path(tempfile.mkdtemp(prefix="rigs-"))
    dinar = str(Path(sys.executable).parent / "dinar")
    for ws in sorted(p for p in runs.iterdir() if (p / "manifest.json").is_file()):
        for rig in RIGS:
            glb = tmp / f"{ws.name}_{rig}.glb"
            done = subprocess.run([dinar, "export", str(ws), "--out", str(glb), "--set", f"export.rig={rig}"],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"dinar export {ws} ({rig}) failed:\n{done.stderr[-2000:]}")
            got = probe_glb(glb, (KEY_SECONDS,))
            arm, mesh = got.armatures[0], got.meshes[0]
            blender, ours = got.frames[KEY_SECONDS][mesh["name"]], skin_from_file(glb, int(KEY_SECONDS * FPS))
            error = max(cKDTree(ours).query(blender)[0].max(), cKDTree(blender).query(ours)[0].max())
            out[f"{ws.name}/{rig}"] = {
                "bones": len(arm["bones"]), "names_as_rig": sorted(arm["bones"]) == _rig_bones(rig),
                "actions": sorted(a["name"].split("_")[0] for a in got.actions), "images": len(mesh["images"]),
                "skinned": mesh["skinned"], "posed_frame_mm": round(float(error) * 1000, 4)}
            print(ws.name, rig, out[f"{ws.name}/{rig}"], flush=True)
    return out


def main() -> None:
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo")
    result = check(runs)
    Path("bench/results/rigs_blender_demo.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
