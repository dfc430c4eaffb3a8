"""A model trained by `dinar train` drives the pipeline: `avatar.mode: neural` with its model.pt on an Anny
workspace makes a neural avatar (no SMPL-X), the render stage takes its video, export says why no GLB."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from dinar_core.export.video import read_video_info
from tasks.avatar import STAGE as AVATAR
from tasks.config import override
from tasks.export import STAGE as EXPORT
from tasks.render import STAGE as RENDER
from tasks.runner import run_stage
from tasks.workspace import DONE
from tests.tasks.test_avatar_render_export import _anny_person

TINY = str(Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """The tiny chain on a 2-person synth dataset: first_stage -> vq -> diffusion -> dinar bundle."""
    from flows.cli import app
    from tasks.synth import synth_dataset

    root = tmp_path_factory.mktemp("trained")
    synth_dataset(root / "synth", persons=2, views=3, seed=0, size=128)
    runner = CliRunner()
    steps = ["-c", TINY, "--set", "train.max_steps=3"]
    for args in (["first_stage", "--data", str(root / "synth"), "--out", str(root / "fs")],
                 ["vq", "--data", str(root / "fs" / "textures"), "--out", str(root / "vq")],
                 ["diffusion", "--data", str(root / "fs" / "textures"), "--out", str(root / "df"), "--set",
                  f"train.vq_weights={root / 'vq' / 'vq.pt'}"]):
        res = runner.invoke(app, ["train", *args, *steps])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["bundle", str(root / "fs" / "first_stage.pt"), str(root / "df" / "diffusion.pt"),
                              "--out", str(root / "model.pt")])
    assert res.exit_code == 0, res.output
    return root / "model.pt"


def test_trained_model_makes_a_neural_avatar_of_an_anny_person(model, tmp_path):
    ws, cfg, _ = _anny_person(tmp_path)
    cfg = override(cfg, {"avatar": {"mode": "neural", "checkpoint": str(model)},
                         "neural": {"device": "cpu", "ddim_steps": 4, "video": {"fps": 10, "turntable_seconds": 0.4}}})
    for stage in (AVATAR, RENDER, EXPORT):
        out = run_stage(stage, ws.root, cfg)
        assert out.status == DONE, ws.stage_record(stage.name).get("error")
    meta = json.loads((ws.avatar_dir / "avatar.json").read_text())
    assert meta["mode"] == "neural" and meta["body"] == "anny" and meta["trained"]["layout"] == "anny"
    video = ws.root / meta["videos"][0]
    info = read_video_info(video)
    assert info.num_frames == 4 and (info.width, info.height) == (64, 64)  # tiny sizes: 0.4 s at 10 fps, 64 px crops
    assert (ws.renders_dir / "video.mp4").read_bytes() == video.read_bytes()
    texture = cv2.imread(str(ws.root / meta["texture_rgb"]))
    assert texture.shape == (32, 32, 3) and texture.std() > 0
    assert "NoGLB" in json.dumps(ws.stage_record("export").get("warnings", []))


def test_a_model_of_another_body_is_a_named_error(model, tmp_path):
    """A model trained on Anny given to an SMPL-X person: the avatar stage fails with a message, not a traceback."""
    from dinar_core.training.weights import read_phase_weights, save_phase_weights

    w = read_phase_weights(model, "model")
    other = save_phase_weights(tmp_path / "smplx.pt", phase="model", layout="smplx", steps=w.steps, untrained=(),
                               neural=w.neural, train=w.train, state_dict=w.state_dict)
    ws, cfg, _ = _anny_person(tmp_path)
    cfg = override(cfg, {"avatar": {"mode": "neural", "checkpoint": str(other)}})
    assert run_stage(AVATAR, ws.root, cfg).status != DONE
    error = ws.stage_record("avatar")["error"]
    assert "trained on the 'smplx' UV layout" in error["message"] and "anny" in error["message"]
