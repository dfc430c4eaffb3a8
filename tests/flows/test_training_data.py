"""The first stage's training data from real captures and from runs folders (``tasks/training_data.py``,
``flows/training_data.py``): the shipped Pose2Sim frame (four calibrated views of one man, no ground-truth body) is
fitted by the pipeline as one person of four frames, and `dinar train first_stage` learns from it; the same views
come out of the runs folder given as data; a `dinar synth` person's views lie on its masks; bad data is named."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dinar_core.errors import TrainingDataError
from tests.conftest import ROOT

DEMO = ROOT / "data" / "multiview" / "pose2sim_demo" / "Demo_SinglePerson_f0010"
TINY = ROOT / "configs" / "train-tiny.yaml"
FAST = ["fit.camera_iterations=4", "fit.body_iterations=3", "fit.body_prior_schedule=[4.0, 1.0]",
        "fit.detail_iterations=0", "train.max_steps=2", "train.checkpoint_every=2"]


def _iou(views) -> np.ndarray:
    """Per view: IoU of the body's UV render and the person mask in the crop."""
    a, b = views.uv_mask[:, 0] > 0.5, views.real_segm[:, 0] > 0.5
    return ((a & b).sum((1, 2)) / (a | b).sum((1, 2)).clamp(min=1)).numpy()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, prefect_harness):
    from flows.cli import app

    root = tmp_path_factory.mktemp("train_real")
    data = root / "data"
    shutil.copytree(DEMO, data / "man")
    res = CliRunner().invoke(app, ["train", "first_stage", "--data", str(data), "--out", str(root / "out"),
                                   "-c", str(TINY), *sum((["--set", s] for s in FAST), [])])
    assert res.exit_code == 0, res.output
    return root, data, res.output


def test_a_real_capture_is_fitted_then_trained_on(trained):
    root, _, output = trained
    out = root / "out"
    manifest = json.loads((out / "prepared" / "man" / "manifest.json").read_text())
    assert manifest["stages"]["fit"]["status"] == "done"
    assert sorted(p.stem for p in (out / "prepared" / "man" / "rgb").glob("*.png")) == \
        ["cam01", "cam02", "cam03", "cam04"]
    assert "without a ground-truth body" in output and "texture set of 1 persons" in output
    assert (out / "first_stage.pt").is_file() and (out / "textures" / "man.npz").is_file()


def test_the_runs_folder_gives_each_view_on_its_own_fit(trained):
    from tasks.config import load_config
    from tasks.training_data import dataset_views

    root, data, _ = trained
    cfg = load_config(TINY, FAST)
    views = dataset_views(root / "out" / "prepared", cfg)
    assert views.names == ("man",) and views.input_rgb.shape[0] == 4
    iou = _iou(views)
    assert (iou > 0.6).all(), iou  # each view's own fit lies on its photo's person
    again = dataset_views(data, cfg, root / "out" / "prepared")  # the dataset and its prepared runs: the same
    assert torch.equal(again.uv, views.uv) and torch.equal(again.input_rgb, views.input_rgb)


def test_bad_training_data_is_named(trained, tmp_path):
    from tasks.config import load_config
    from tasks.training_data import dataset_views

    root, data, _ = trained
    cfg = load_config(TINY, FAST)
    with pytest.raises(TrainingDataError, match="no ground-truth .* body .* and no fitted workspace"):
        dataset_views(data, cfg)  # a real capture, not fitted
    runs = tmp_path / "runs"
    shutil.copytree(root / "out" / "prepared" / "man", runs / "man")
    doc = json.loads((runs / "man" / "manifest.json").read_text())
    doc["stages"]["fit"].update(status="failed", error={"type": "FitError", "message": "diverged"})
    (runs / "man" / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(TrainingDataError, match=r"man: the fit is not done \(diverged\).*--until fit"):
        dataset_views(runs, cfg)
    shutil.rmtree(runs / "man")
    shutil.copytree(root / "out" / "prepared" / "man", runs / "man")
    for frame in ("cam02", "cam03", "cam04"):  # one photo left: nothing to learn other views from
        (runs / "man" / "rgb" / f"{frame}.png").unlink()
    with pytest.raises(TrainingDataError, match="fewer than 2 views: man"):
        dataset_views(runs, cfg)


def test_a_synthetic_persons_views_lie_on_its_masks(tmp_path):
    from tasks.config import load_config
    from tasks.synth import synth_dataset
    from tasks.training_data import dataset_views, needs_fitting

    synth_dataset(tmp_path / "synth", persons=1, views=3, seed=3, size=192)
    assert needs_fitting(tmp_path / "synth") == []
    views = dataset_views(tmp_path / "synth", load_config(TINY, []))
    assert views.input_rgb.shape[0] == 3
    iou = _iou(views)
    assert (iou > 0.8).all(), iou
