"""Blender imports the GLB of each demo person (the shipped sample photos, through the whole pipeline with a quick
config) on each standard rig: the rig's bone names and count, every clip as an action, the texture, and a posed
frame within 1 mm of the file's glTF skinning. Skipped where Blender is absent (`make test-clients` installs it);
`python -m bench.rigs_blender` does the same on the full-size `make demo` output."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy.spatial import cKDTree

from dinar_core.export.blender import INSTALL, find_blender, probe_glb
from tests.helpers.quick import quick_pipeline

pytestmark = [pytest.mark.clients, pytest.mark.usefixtures("prefect_harness"),
              pytest.mark.skipif(find_blender() is None, reason=f"Blender not found: {INSTALL}")]

CLIPS = ["walk", "wave", "idle", "turntable"]
QUICK = quick_pipeline(CLIPS, size=128)


def test_each_demo_person_on_each_rig_imports_in_blender(tmp_path, samples_dir):
    from dataclasses import replace

    from flows.pipeline import process_folder
    from tasks.config import resolve_config, to_dict
    from tasks.discover import find_workspaces
    from tasks.export import export_avatar
    from tests.helpers.gltf import skin_from_file
    from tests.tasks.test_export_rigs import _rig_bones

    photos = tmp_path / "photos"
    photos.mkdir()
    for p in samples_dir.iterdir():
        if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
            shutil.copy(p, photos / p.name)
    cfg = resolve_config(QUICK)
    summary = process_folder(photos=str(photos), out=str(tmp_path / "runs"), config=to_dict(cfg))
    assert summary["persons"] == 4 and summary["complete"] == 4, summary["failures"]
    seen = {}
    for ws in find_workspaces(tmp_path / "runs"):
        for rig in ("game_engine", "mixamo", "cmu_mb"):
            rcfg = replace(cfg, export=replace(cfg.export, rig=rig))
            glb = export_avatar(ws, rcfg, out=tmp_path / f"{ws.person}_{rig}.glb").path
            key = 4  # 0.5 s into the first clip (8 fps)
            got = probe_glb(glb, (key / 8.0,))
            arm, mesh = got.armatures[0], got.meshes[0]
            assert sorted(arm["bones"]) == _rig_bones(rig), (ws.person, rig)
            assert sorted(a["name"].split("_")[0] for a in got.actions) == sorted(CLIPS), (ws.person, rig)
            assert mesh["skinned"] and len(mesh["images"]) == 1
            blender, ours = got.frames[key / 8.0][mesh["name"]], skin_from_file(glb, key)
            error = max(cKDTree(ours).query(blender)[0].max(), cKDTree(blender).query(ours)[0].max())
            assert error < 1e-3, (ws.person, rig, error)
            seen[(ws.person, rig)] = (len(arm["bones"]), error)
    print("demo persons x rigs in Blender: " + ", ".join(f"{p}/{r} {n} bones {e * 1000:.4f} mm"
                                                          for (p, r), (n, e) in seen.items()))
    assert len(seen) == 12 and np.isfinite([e for _, e in seen.values()]).all()
