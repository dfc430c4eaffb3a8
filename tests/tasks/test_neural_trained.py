"""A model trained by `dinar train` drives the pipeline: `avatar.mode: neural` with its model.pt on an Anny
workspace makes a neural avatar (no SMPL-X), the render stage takes its video, export says why no GLB."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from dinar_core.export.video import read_video_info
from tasks.avatar import STAGE as AVATAR
from tasks.config import override
from tasks.export import STAGE as EXPORT
from tasks.render import STAGE as RENDER
from tasks.runner import run_stage
from tasks.workspace import DONE
from tests.helpers.trained_model import train_tiny_model
from tests.tasks.test_avatar_render_export import _anny_person

@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return train_tiny_model(tmp_path_factory.mktemp("trained"))


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
    # drawn in the photo's own camera, the avatar lies inside the crop box around the body, white elsewhere
    from tasks.neural_trained import load_trained_avatar, render_view

    trained = load_trained_avatar(ws, cfg)
    rgba = render_view(trained, trained.fit.verts_cam, trained.fit.K, (256, 192))
    assert rgba.shape == (256, 192, 4) and rgba[..., 3].any()
    rows, cols = np.nonzero(rgba[..., 3])
    xy = (trained.fit.verts_cam[0, :, :2] / trained.fit.verts_cam[0, :, 2:]) * trained.fit.K[0, 0] + trained.fit.K[:2, 2]
    (x0, y0), (x1, y1) = xy.min(0).values.tolist(), xy.max(0).values.tolist()
    pad = 0.25 * max(x1 - x0, y1 - y0)
    assert x0 - pad <= cols.min() and cols.max() <= x1 + pad and y0 - pad <= rows.min() and rows.max() <= y1 + pad


def test_a_model_of_another_body_is_a_named_error(model, tmp_path):
    """A model trained on Anny given to an SMPL-X person: the avatar stage fails with a message, not a traceback."""
    from dinar_core.training.weights import read_phase_weights, save_phase_weights

    w = read_phase_weights(model, "model")
    other = save_phase_weights(tmp_path / "smplx.pt", phase="model", layout="smplx-dinar", steps=w.steps, untrained=(),
                               neural=w.neural, train=w.train, state_dict=w.state_dict)
    ws, cfg, _ = _anny_person(tmp_path)
    cfg = override(cfg, {"avatar": {"mode": "neural", "checkpoint": str(other)}})
    assert run_stage(AVATAR, ws.root, cfg).status != DONE
    error = ws.stage_record("avatar")["error"]
    assert "trained on the 'smplx-dinar' UV layout" in error["message"] and "anny" in error["message"]
