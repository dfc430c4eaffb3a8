"""Stage `fit` with paths in and out: a synthetic SMPL-X person (synthetic model file, keypoints JSON, mask)."""

import json
import pickle

import cv2
import numpy as np
import pytest
import torch

from dinar_core.body import SMPLXBody
from dinar_core.body.dinar_pickle import read_dinar_pickle
from dinar_core.fitting.adapters import SMPLXFitBody
from tasks.config import PipelineConfig, override
from tasks.fit import STAGE as FIT
from tasks.runner import prepare_person, run_stage
from tasks.workspace import DONE, FAILED, atomic_write_json
from tests.helpers.fitting_scenes import make_scene, natural_pose, place
from tests.helpers.synthetic_smplx import synthetic_smplx_dir  # noqa: F401 (fixture)

SIZE = (256, 192)
FAST_FIT = {"camera_iterations": 3, "body_iterations": 4, "body_prior_schedule": [4.0, 1.0],
            "detail_iterations": 2, "lbfgs_inner": 6}


@pytest.fixture(scope="module")
def person_files(synthetic_smplx_dir, tmp_path_factory):  # noqa: F811
    """A workspace whose rgb/segm/openpose hold a synthetic person, as the earlier stages would write them."""
    body = SMPLXFitBody(SMPLXBody(synthetic_smplx_dir))
    scene = make_scene(body, place(body, natural_pose(body, 1, seed=3, scale=0.06, yaw_deg=8.0), SIZE), SIZE,
                       seed=1)[0]
    root = tmp_path_factory.mktemp("ws")
    src = root / "photo.png"
    rgb = np.full((*SIZE, 3), 90, np.uint8)
    rgb[scene.mask] = (200, 150, 120)
    cv2.imwrite(str(src), rgb)
    return synthetic_smplx_dir, scene, rgb, src


def _workspace(tmp_path, person_files):
    models, scene, rgb, src = person_files
    cfg = override(PipelineConfig(), {"body": {"model": "smplx", "smplx_models": str(models), "device": "cpu"},
                                      "fit": FAST_FIT})
    ws = prepare_person(tmp_path / "runs" / "p", [src], cfg)
    ws.rgb_dir.mkdir(parents=True)
    ws.segm_dir.mkdir(parents=True)
    assert cv2.imwrite(str(ws.rgb("p")), rgb)
    assert cv2.imwrite(str(ws.segm("p")), np.repeat(scene.mask[:, :, None].astype(np.uint8) * 255, 3, 2))
    atomic_write_json(ws.keypoints("p"), {"version": 1.3, "people": [scene.keypoints.to_openpose_person()]})
    manifest = ws.read_manifest()  # the earlier stages are done
    for stage in ("ingest", "segment", "keypoints"):
        manifest["stages"][stage] = {"status": DONE}
    ws.write_manifest(manifest)
    return ws, cfg


def test_fit_writes_dinar_pickle_overlay_views_and_metrics(tmp_path, person_files):
    ws, cfg = _workspace(tmp_path, person_files)
    out = run_stage(FIT, ws.root, cfg)
    assert out.status == DONE, ws.stage_record("fit").get("error")
    with open(ws.smplx("p"), "rb") as fh:  # plain pickle, as DINAR reads it
        raw = pickle.load(fh)
    assert raw["betas"].shape == (1, 10) and raw["body_pose"].shape == (1, 63) and raw["gender"] == "neutral"
    assert raw["left_hand_pose"].shape == (1, 6) and raw["transl"].dtype == np.float32
    read_dinar_pickle(ws.smplx("p"))  # and our strict reader accepts it
    assert not {"K", "focal", "camera", "calibration_matrix"} & set(raw)  # DINAR's format, no camera in it
    camera = json.loads((ws.smplx_dir / "p_camera.json").read_text())  # the camera beside it
    assert camera["focal"] == cfg.fit.focal and camera["image_size"] == list(SIZE)
    assert np.allclose(camera["K"], [[cfg.fit.focal, 0, SIZE[1] // 2], [0, cfg.fit.focal, SIZE[0] // 2], [0, 0, 1]])
    for name in ("overlay", "front", "side"):
        img = cv2.imread(str(ws.fit_dir / f"p_{name}.png"))
        assert img is not None and img.std() > 5  # a picture, not a blank
    metrics = json.loads((ws.fit_dir / "metrics.json").read_text())
    frame = metrics["frames"]["p"]
    assert metrics["body"] == "smplx" and frame["partial_body"] is False
    assert frame["mask_iou"] > 0.8 and frame["reprojection_error_rel"] < 0.03
    assert [s["name"] for s in metrics["stages"]][:1] == ["camera"]
    assert not run_stage(FIT, ws.root, cfg).executed  # cached


def test_fit_cache_key_includes_the_fit_check_it_reads(tmp_path, person_files):
    ws, cfg = _workspace(tmp_path, person_files)
    from tasks.runner import cache_key

    assert cache_key(FIT, ws, override(cfg, {"fit_check": {"min_mask_iou": 0.5}})) != cache_key(FIT, ws, cfg)


def test_fit_cache_key_includes_the_model_file(tmp_path, person_files):
    ws, cfg = _workspace(tmp_path, person_files)
    from tasks.runner import cache_key

    k0 = cache_key(FIT, ws, cfg)
    model = next(person_files[0].glob("SMPLX_NEUTRAL.*"))
    other = tmp_path / "models"
    other.mkdir()
    (other / model.name).write_bytes(model.read_bytes() + b"\0")
    assert cache_key(FIT, ws, override(cfg, {"body": {"smplx_models": str(other)}})) != k0


def test_missing_smplx_files_are_named(tmp_path, person_files):
    ws, cfg = _workspace(tmp_path, person_files)
    cfg = override(cfg, {"body": {"smplx_models": str(tmp_path / "nowhere")}})
    out = run_stage(FIT, ws.root, cfg)
    assert out.status == FAILED
    err = ws.stage_record("fit")["error"]
    assert err["type"] == "MissingModelError" and "SMPLX_NEUTRAL" in err["message"] and "smpl-x.is.tue.mpg.de" in \
        err["message"]
