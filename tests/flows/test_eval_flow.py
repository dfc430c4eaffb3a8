"""`dinar eval` end to end on the shipped Pose2Sim frames: the protocol's outputs, its cache, and bad input.

One person is evaluated as shipped; copies of it carry defects (a calibration without a camera; a view of the
wrong size and a view without the person): each defect is a named error for that person or view, and the rest is
evaluated. The fit runs with few iterations (the protocol is under test here, not the fit's accuracy).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT

DEMO = ROOT / "data" / "multiview" / "pose2sim_demo" / "Demo_SinglePerson_f0010"
FAST = ["fit.camera_iterations=4", "fit.body_iterations=3", "fit.body_prior_schedule=[4.0, 1.0]",
        "fit.detail_iterations=0", "avatar.classic.texture_size=64", "eval.methods=[flat, mirror, classic]"]


def _dataset(root: Path) -> Path:
    data = root / "data"
    for name in ("good", "nocam", "defects"):
        shutil.copytree(DEMO, data / name)
    doc = json.loads((data / "nocam" / "cameras.json").read_text())
    del doc["cameras"]["cam04"]
    (data / "nocam" / "cameras.json").write_text(json.dumps(doc))
    view = data / "defects" / "views" / "cam03.png"
    img = cv2.imread(str(view))
    cv2.imwrite(str(view), cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2)))
    view = data / "defects" / "views" / "cam04.png"
    img = cv2.imread(str(view))
    cv2.imwrite(str(view), np.full_like(img, 128))  # an empty grey room: nobody in this view
    return data


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, prefect_harness):
    from flows.evaluate import evaluate_folder
    from tasks.config import load_config, to_dict

    root = tmp_path_factory.mktemp("eval")
    data = _dataset(root)
    config = to_dict(load_config(None, FAST))
    first = evaluate_folder(data=str(data), out=str(root / "out"), config=config)
    return root, data, config, first


def test_eval_outputs(evaluated):
    root, _, _, summary = evaluated
    out = root / "out"
    doc = json.loads((out / "eval.json").read_text())
    rows = doc["rows"]
    good = [r for r in rows if r["person"] == "good"]
    source = doc["persons"]["good"]["source"]
    assert source in ("cam01", "cam02", "cam03", "cam04")
    assert {r["view"] for r in good} == {"cam01", "cam02", "cam03", "cam04"} - {source}
    assert {r["method"] for r in good} == {"flat", "mirror", "classic"}
    # every (view, method) twice: placed by the calibrations, and scaled to the size triangulated from all views
    assert sorted((r["view"], r["method"], r["placement"]) for r in good) == sorted(
        (v, m, p) for v in {r["view"] for r in good} for m in ("flat", "mirror", "classic")
        for p in ("calibrated", "scale-aligned"))
    placement = doc["persons"]["good"]["placement"]
    assert "triangulated from 4 views" in placement["reference"] and placement["joints"] >= 10
    assert 0.6 < placement["depth_scale"] < 1.6
    for r in good:
        assert r["error"] is None
        assert r["bucket"] in ("front", "side", "back")
        assert 0 <= r["angle_deg"] <= 180
        assert 5 < r["psnr"] < 60 and -1 <= r["ssim"] <= 1 and 0 < r["ms_ssim"] <= 1 and 0 < r["iou"] <= 1
        assert r["lpips"] is None
    assert {r["bucket"] for r in good} >= {"back"}  # four cameras around the man: one of them sees his back
    md = (out / "summary.md").read_text()
    assert "| classic |" in md and "| flat |" in md and "LPIPS skipped" in md
    assert "views (" in md and "scale-aligned" in md and "Depth scale of the scale-aligned placement" in md
    assert (out / "plots" / "psnr_vs_angle.png").is_file()
    assert (out / "grids" / "good.png").is_file()
    report = (out / "runs" / "report.html").read_text()
    assert "Evaluation" in report and "grids/good.png" in report
    assert summary["evaluated"] == 2


def test_eval_bad_input_is_named_and_costs_only_its_own(evaluated):
    root, _, _, summary = evaluated
    doc = json.loads((root / "out" / "eval.json").read_text())
    errors = {e["person"]: e["error"] for e in doc["errors"]}
    assert "MissingCameraError" in errors["nocam"] and "cam04" in errors["nocam"]
    by = {(r["person"], r["view"]): r for r in doc["rows"]}
    resized = [r for (p, v), r in by.items() if p == "defects" and v == "cam03"]
    absent = [r for (p, v), r in by.items() if p == "defects" and v == "cam04"]
    assert resized and "EvalDataError" in resized[0]["error"] and "cameras.json" in resized[0]["error"]
    assert absent and "EvalDataError" in absent[0]["error"]
    others = [r for (p, v), r in by.items() if p == "defects" and v not in ("cam03", "cam04")]
    assert others and all(r["error"] is None for r in others)


def test_second_eval_recomputes_nothing(evaluated):
    from flows.evaluate import evaluate_folder

    root, data, config, _ = evaluated
    runs = root / "out" / "runs"
    before = {p.name: json.loads((p / "manifest.json").read_text()) for p in runs.iterdir() if p.is_dir()}
    again = evaluate_folder(data=str(data), out=str(root / "out"), config=config)
    assert again["cached"] == again["evaluated"] == 2
    for name, m in before.items():
        now = json.loads((runs / name / "manifest.json").read_text())
        assert {s: r.get("executions") for s, r in now["stages"].items()} == \
            {s: r.get("executions") for s, r in m["stages"].items()}


def test_eval_cli_prints_the_table(evaluated):
    from flows.cli import app

    root, data, _, _ = evaluated
    res = CliRunner().invoke(app, ["eval", str(data), "--out", str(root / "out"), *sum((["--set", s] for s in FAST),
                                                                                        [])])
    assert res.exit_code == 0, res.output
    assert "| classic |" in res.output and "2 of 3 persons evaluated (2 from the cache)" in res.output


def test_a_synthetic_person_is_scale_aligned_to_its_ground_truth(tmp_path, prefect_harness):
    """On synthetic data the scale-aligned placement measures the person against the ground-truth joints (in the
    source camera's frame): its factor is the fitted body's size error, so it agrees with the ratio of the true to
    the fitted standing height (measured on the corpus of `make eval`: within 0.03)."""
    from flows.evaluate import evaluate_folder
    from tasks.config import load_config, to_dict
    from tasks.synth import synth_dataset

    data = tmp_path / "synth"
    synth_dataset(data, persons=1, views=4, seed=0, size=256)
    config = to_dict(load_config(None, FAST))
    evaluate_folder(data=str(data), out=str(tmp_path / "out"), config=config)
    doc = json.loads((tmp_path / "out" / "eval.json").read_text())
    (person,) = doc["persons"].values()
    placement, body = person["placement"], person["body"]
    assert placement["reference"] == "ground-truth joints" and placement["joints"] >= 20
    assert abs(placement["depth_scale"] - body["gt_height_m"] / body["height_m"]) < 0.05, (placement, body)
    rows = [r for r in doc["rows"] if r["method"] == "classic" and r["error"] is None]
    assert {r["placement"] for r in rows} == {"calibrated", "scale-aligned"}
