"""The fit on real full-body sample photos through the real stages (mediapipe + the open Anny body).

Anny builds its model data on the first load of a machine (60-110 s, cached under the state folder)."""

import json

import pytest

from tasks.config import PipelineConfig, override
from tasks.runner import prepare_person, run_stage
from tasks.stages import stages_between


@pytest.mark.parametrize("photo", ["sports2d_2.png", "sports2d_1.png"])
def test_real_photo_fit_quality(tmp_path, samples_dir, photo):
    cfg = override(PipelineConfig(), {"body": {"model": "anny", "device": "cpu"}})
    ws = prepare_person(tmp_path / "runs" / "p", [samples_dir / photo], cfg)
    for stage in stages_between(None, "fit"):
        out = run_stage(stage, ws.root, cfg)
        assert out.status == "done", (stage.name, ws.stage_record(stage.name).get("error"))
    metrics = json.loads((ws.fit_dir / "metrics.json").read_text())["frames"]["p"]
    assert metrics["mask_iou"] > 0.8 and metrics["reprojection_error_rel"] < 0.03, metrics
    assert metrics["partial_body"] is False
    assert (ws.fit_dir / "p_overlay.png").is_file()


def test_upper_body_photo_is_flagged_partial(tmp_path, samples_dir):
    cfg = override(PipelineConfig(), {"body": {"model": "anny", "device": "cpu"}})
    ws = prepare_person(tmp_path / "runs" / "p", [samples_dir / "astronaut.png"], cfg)
    for stage in stages_between(None, "fit"):
        assert run_stage(stage, ws.root, cfg).status == "done"
    metrics = json.loads((ws.fit_dir / "metrics.json").read_text())["frames"]["p"]
    assert metrics["partial_body"] is True
    assert any("PartialBody" in w for w in ws.stage_record("fit")["warnings"])
    # mediapipe places a right knee on her glove, 24 px above the bottom edge: dropped, and said so
    assert metrics["dropped_keypoints"] == ["RKnee"], metrics
    assert any("CutLegKeypoints" in w and "RKnee" in w for w in ws.stage_record("fit")["warnings"])
