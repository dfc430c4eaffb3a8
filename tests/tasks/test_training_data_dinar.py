"""`dinar train first_stage` reads a dataset prepared for DINAR (``rgb/``, ``segm/``, ``smplx/<frame>.pkl``, no
manifest, DINAR's 5000 px camera): a synthetic SMPL-X person photographed from the front and the back, written in
DINAR's layout, gives views whose body lies on the masks (so DINAR's camera convention is the one used); a frame
without its pickle is a named error."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from dinar_core.body.dinar_pickle import write_dinar_pickle
from dinar_core.errors import TrainingDataError
from dinar_core.render import make_K
from dinar_core.texture import render_textured
from tasks.config import override
from tests.conftest import ROOT
from tests.helpers.atlas import tube_atlas
from tests.helpers.fitting_scenes import natural_pose, place
from tests.helpers.synthetic_smplx import synthetic_smplx_dir  # noqa: F401 (fixture)
from tests.helpers.texture_meshes import clothing_texture

SIZE = (256, 192)


def _dinar_folder(root, synthetic_smplx_dir):  # noqa: F811
    from dinar_core.body import SMPLXBody
    from dinar_core.fitting.adapters import SMPLXFitBody

    body = SMPLXBody(synthetic_smplx_dir)
    fb = SMPLXFitBody(body)
    layout = tube_atlas(body.rest_vertices, body.faces)
    uv_dir = root / "uv"
    uv_dir.mkdir(parents=True)
    np.save(uv_dir / "uv.npy", layout.uv.numpy())
    np.save(uv_dir / "uv_faces.npy", layout.uv_faces.numpy())
    np.save(uv_dir / "v_inds.npy", layout.vertex_index.numpy())
    texture = clothing_texture(body.rest_vertices, layout, 128)
    person = root / "data" / "man"
    for d in ("rgb", "segm", "smplx"):
        (person / d).mkdir(parents=True)
    for frame, yaw in (("front", 5.0), ("back", 185.0)):
        v = place(fb, natural_pose(fb, 1, seed=3, scale=0.06, yaw_deg=yaw), SIZE)  # DINAR's 5000 px camera
        with torch.no_grad():
            photo = render_textured(fb.forward(v).vertices, make_K(*SIZE), None, layout, texture, SIZE,
                                    [0.4] * 3)
        rgb = (photo.rgba[0, :3].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()
        mask = (photo.rgba[0, 3] > 0.5).numpy().astype(np.uint8) * 255
        cv2.imwrite(str(person / "rgb" / f"{frame}.png"), rgb[..., ::-1])
        cv2.imwrite(str(person / "segm" / f"{frame}.png"), np.repeat(mask[..., None], 3, 2))
        write_dinar_pickle(person / "smplx" / f"{frame}.pkl", fb.to_params(v), gender="neutral", index=0)
    from tasks.config import load_config

    tiny = load_config(ROOT / "configs" / "train-tiny.yaml", [])
    cfg = override(tiny, {"body": {"model": "smplx", "smplx_models": str(synthetic_smplx_dir), "device": "cpu",
                                   "uv_assets": str(uv_dir)}})
    return root / "data", cfg


def _iou(views) -> np.ndarray:
    a, b = views.uv_mask[:, 0] > 0.5, views.real_segm[:, 0] > 0.5
    return ((a & b).sum((1, 2)) / (a | b).sum((1, 2))).numpy()


def test_a_dinar_layout_dataset_is_read_in_dinars_camera(synthetic_smplx_dir, tmp_path):  # noqa: F811
    from tasks.training_data import dataset_views, needs_fitting

    data, cfg = _dinar_folder(tmp_path, synthetic_smplx_dir)
    assert needs_fitting(data) == []
    views = dataset_views(data, cfg)
    assert views.names == ("man",) and views.input_rgb.shape[0] == 2 and views.layout == "smplx-dinar"
    iou = _iou(views)
    assert (iou > 0.8).all(), iou  # (64 px crops: the resized mask is a little wider than the body)
    same = dataset_views(data / "man", cfg)  # the person's own folder: the same views
    assert torch.equal(same.uv, views.uv)
    from tasks.artifacts import write_camera
    from tasks.workspace import Workspace

    write_camera(Workspace(data / "man"), "front", make_K(*SIZE, 2000.0), SIZE)  # a camera file overrides DINAR's
    assert _iou(dataset_views(data, cfg))[1] < 0.5  # (frames sorted: back, front)
    (data / "man" / "smplx" / "back.pkl").unlink()
    with pytest.raises(TrainingDataError, match=r"man: a frame cannot be read .*back"):
        dataset_views(data, cfg)
