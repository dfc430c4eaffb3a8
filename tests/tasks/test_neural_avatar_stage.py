"""The `avatar` stage in `neural` mode runs DINAR's pipeline on the workspace (a synthetic checkpoint, tiny sizes);
`render` then takes the neural renderer's video; `export` (GLB on, the default) is done without a GLB and says why
in a warning that the run's summary counts as no failure and the report shows."""

import dataclasses
import json

import cv2
import numpy as np
import pytest

from dinar_core.body.dinar_pickle import write_dinar_pickle
from dinar_core.export.video import read_video_info
from tasks.config import PipelineConfig, override
from tasks.report import write_report
from tasks.runner import prepare_person, run_stage
from tasks.stages import get_stage
from tasks.status import runs_status, summarize
from tasks.workspace import DONE
from tests.helpers.neural_scene import make_scene, write_tiny_checkpoint


def test_neural_mode_through_the_stages(tmp_path):
    models = tmp_path / "smplx_models"
    scene = make_scene(models)
    ckpt = tmp_path / "ddpm-epoch=24.ckpt"
    neural = write_tiny_checkpoint(scene, ckpt)

    cfg = override(PipelineConfig(), {"body": {"model": "smplx", "smplx_models": str(models), "device": "cpu"},
                                      "avatar": {"mode": "neural", "checkpoint": str(ckpt)},
                                      "render": {"fps": 2.0, "seconds": 1.0}})
    cfg = dataclasses.replace(cfg, neural=dataclasses.replace(
        neural, video=dataclasses.replace(neural.video, max_frames=3)))
    src = tmp_path / "p0.png"
    cv2.imwrite(str(src), cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR))
    ws = prepare_person(tmp_path / "runs" / "p0", [src], cfg)
    for d in (ws.rgb_dir, ws.segm_dir, ws.smplx_dir):
        d.mkdir(parents=True)
    cv2.imwrite(str(ws.rgb("p0")), cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(ws.segm("p0")), np.repeat(scene.segm[..., None], 3, 2))
    write_dinar_pickle(ws.smplx("p0"), scene.params)
    manifest = ws.read_manifest()
    for stage in ("ingest", "segment", "keypoints", "fit"):
        manifest["stages"][stage] = {"status": DONE}
    ws.write_manifest(manifest)

    out = run_stage(get_stage("avatar"), ws.root, cfg)
    assert out.status == DONE, ws.stage_record("avatar").get("error")
    meta = json.loads((ws.avatar_dir / "avatar.json").read_text())
    assert meta["mode"] == "neural" and meta["frames"] == ["p0"] and len(meta["data_dicts"]) == 1
    assert (ws.root / meta["data_dicts"][0]).is_file()

    assert run_stage(get_stage("render"), ws.root, cfg).status == DONE
    info = read_video_info(ws.renders_dir / "video.mp4")
    assert info.num_frames >= 1 and info.width == neural.image_size

    assert cfg.export.glb  # the default
    (ws.avatar_dir / "avatar.glb").write_bytes(b"glTF from an earlier classic run")  # not this avatar's: removed
    out = run_stage(get_stage("export"), ws.root, cfg)
    rec = ws.stage_record("export")
    assert out.status == DONE, rec.get("error")
    assert rec["outputs"] == {} and not (ws.avatar_dir / "avatar.glb").exists()
    no_glb = [w for w in rec["warnings"] if w.startswith("NoGLB")]
    assert len(no_glb) == 1 and "neural renderer" in no_glb[0] and "export.glb=false" in no_glb[0]
    summary = summarize(runs_status(ws.root.parent))  # `dinar run` exits 1 only when this counts a failure
    assert summary["with_failures"] == 0 and summary["complete"] == 1
    assert "NoGLB" in write_report(ws.root.parent).read_text()
    from dinar_core.errors import DatasetError
    from tasks.export import export_avatar

    with pytest.raises(DatasetError, match="neural"):  # `dinar export` on it says what it is, not "texture missing"
        export_avatar(ws, cfg)
    cfg = override(cfg, {"export": {"glb": False}})
    assert run_stage(get_stage("export"), ws.root, cfg).status == DONE
    assert ws.stage_record("export")["warnings"] == []
