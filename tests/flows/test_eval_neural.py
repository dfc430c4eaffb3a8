"""`dinar eval` scores a model of `dinar train` (method `neural`, avatar.checkpoint = its model.pt): its renders in
the other views of a synthetic person are scored beside the texture methods'."""

from __future__ import annotations

import json
import math

import pytest

from tests.helpers.trained_model import train_tiny_model

pytestmark = pytest.mark.usefixtures("prefect_harness")
FAST = ["fit.camera_iterations=4", "fit.body_iterations=3", "fit.body_prior_schedule=[4.0, 1.0]",
        "fit.detail_iterations=0", "avatar.classic.texture_size=64", "eval.methods=[flat, neural]",
        "neural.ddim_steps=4"]


def test_eval_scores_the_trained_neural_avatar(tmp_path):
    from flows.evaluate import evaluate_folder
    from tasks.config import load_config, to_dict
    from tasks.synth import synth_dataset

    model = train_tiny_model(tmp_path / "model")
    synth_dataset(tmp_path / "synth", persons=1, views=4, seed=5, size=256)
    config = to_dict(load_config(None, [*FAST, f"avatar.checkpoint={model}"]))
    evaluate_folder(data=str(tmp_path / "synth"), out=str(tmp_path / "out"), config=config)
    doc = json.loads((tmp_path / "out" / "eval.json").read_text())
    rows = [r for r in doc["rows"] if r["placement"] == "calibrated" and r["error"] is None]
    neural = [r for r in rows if r["method"] == "neural"]
    assert len(neural) == 3 and {r["method"] for r in rows} == {"flat", "neural"}
    assert all(math.isfinite(r["psnr"]) for r in neural)
    assert all((tmp_path / "out" / "renders" / "p000" / f"neural_{r['view']}.png").is_file() for r in neural)
