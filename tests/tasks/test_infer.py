"""`dinar infer` end to end on a tiny prepared dataset with a synthetic checkpoint in DINAR's key layout."""

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from dinar_core.avatar.config import NeuralAvatarConfig
from dinar_core.body.dinar_pickle import write_dinar_pickle
from dinar_core.errors import CheckpointError, DatasetError, MissingModelError
from tasks.config import override, resolve_config
from tasks.neural_inference import InferOptions, infer
from tests.helpers.neural_scene import make_scene, write_tiny_checkpoint

DATA_DICT_KEYS = {"ntexture", "normal_angles", "calibration_matrix", "verts", "person_id", "fake_rgb", "fake_segm",
                  "diffusion_ntexture", "mask", "smplx_param"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer")
    models = root / "smplx_models"
    scene = make_scene(models)
    ckpt = root / "ddpm-epoch=24.ckpt"
    cfg = write_tiny_checkpoint(scene, ckpt)
    data = root / "data"
    for d in ("rgb", "segm", "smplx"):
        (data / d).mkdir(parents=True)
    cv2.imwrite(str(data / "rgb" / "p0.png"), cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(data / "segm" / "p0.png"), np.repeat(scene.segm[..., None], 3, 2))
    write_dinar_pickle(data / "smplx" / "p0.pkl", scene.params)
    return root, models, cfg, ckpt, data


def test_infer_writes_dinar_layout(prepared):
    from dinar_core.export.video import read_video_info

    root, models, cfg, ckpt, data = prepared
    opts = InferOptions(neural=override(cfg, {"video": {"max_frames": 3}, "seed": 3}), smplx_models=models,
                        run_name="run_test")
    res = infer(ckpt, root / "logs", data, opts)
    tex = root / "logs" / "eval" / "run_test" / "textures"
    assert res.run_dir == root / "logs" / "eval" / "run_test" and res.persons == ["p0"]
    assert res.data_dicts == [tex / "data_dict" / "p0.pkl"]
    steps = cfg.finetune.steps
    assert res.finetuned == [tex / "finetuned" / f"s{steps:07}_p0.pkl"]
    assert res.videos == [tex / "videos" / f"s{steps:07}_p0.mp4"]
    dd = pickle.loads(res.data_dicts[0].read_bytes())
    assert set(dd) == DATA_DICT_KEYS
    T, S, U = cfg.texture_size, cfg.image_size, cfg.uv_layout.num_uv_verts
    assert dd["ntexture"].shape == (1, 21, T, T) and dd["ntexture"].dtype == np.float32
    assert dd["diffusion_ntexture"].shape == (1, 21, T, T) and dd["mask"].shape == (1, 1, T, T)
    assert dd["normal_angles"].shape == (1, 1, T, T) and dd["calibration_matrix"].shape == (1, 3, 3)
    assert dd["verts"].shape == (1, U, 3) and dd["person_id"] == ["p0"]
    assert dd["fake_rgb"].shape == (1, 3, S, S) and dd["fake_rgb"].dtype == np.uint8
    assert dd["fake_segm"].shape == (1, 1, S, S) and dd["fake_segm"].dtype == np.uint8
    assert dd["smplx_param"]["betas"].shape == (1, 10) and dd["smplx_param"]["gender"] == "neutral"
    tuned = pickle.loads(res.finetuned[0].read_bytes())
    assert set(tuned) == DATA_DICT_KEYS and tuned["person_id"] == [f"s{steps:07}_p0"]
    assert not np.array_equal(tuned["ntexture"], dd["ntexture"])
    info = read_video_info(res.videos[0])
    assert (info.num_frames, info.width, info.height) == (3, S, S)
    assert sorted(p.name for p in (tex / "videos" / f"s{steps:07}_p0").iterdir()) == ["0.png", "1.png", "2.png"]
    # the same seed gives the same texture
    quick = override(cfg, {"video": {"max_frames": 1}, "seed": 3, "finetune": {"enabled": False}})
    again = infer(ckpt, root / "logs", data, InferOptions(neural=quick, smplx_models=models, run_name="run_again"))
    dd2 = pickle.loads(again.data_dicts[0].read_bytes())
    assert np.array_equal(dd2["ntexture"], dd["ntexture"])
    assert again.finetuned == [tex.parents[1] / "run_again" / "textures" / "finetuned" / "p0.pkl"]


def test_infer_with_animation(prepared):
    from dinar_core.motion.formats import save_dinar_animation
    from dinar_core.motion.motion import Motion

    root, models, cfg, ckpt, data = prepared
    scene_orient = pickle.loads((data / "smplx" / "p0.pkl").read_bytes())["global_orient"]
    n = 2
    body = np.zeros((n, 63), np.float32)
    body[1, 16 * 3 + 2] = 1.0
    motion = Motion(global_orient=np.repeat(scene_orient, n, 0), body_pose=body, fps=30.0,
                    left_hand_pose=np.zeros((n, 6), np.float32), right_hand_pose=np.zeros((n, 6), np.float32),
                    jaw_pose=np.zeros((n, 3), np.float32), hand_format="pca")
    anim = save_dinar_animation(root / "anim.pickle", motion)
    res = infer(ckpt, root / "logs", data, InferOptions(neural=override(cfg, {"finetune": {"enabled": False}}),
                                                          smplx_models=models, animation=anim, run_name="run_anim"))
    from dinar_core.export.video import read_video_info

    assert read_video_info(res.videos[0]).num_frames == n
    assert (res.videos[0].parent / "p0_segm" / "1.png").is_file()


def test_infer_errors(prepared, tmp_path):
    root, models, cfg, ckpt, data = prepared
    opts = InferOptions(neural=cfg, smplx_models=models)
    with pytest.raises(CheckpointError, match="ddpm-epoch=24.ckpt"):
        infer(None, tmp_path, data, opts)
    with pytest.raises(CheckpointError, match="not found"):
        infer(tmp_path / "nope.ckpt", tmp_path, data, opts)
    html = tmp_path / "page.ckpt"
    html.write_text("<html>download</html>")
    with pytest.raises(CheckpointError):
        infer(html, tmp_path, data, opts)
    with pytest.raises(CheckpointError, match="does not match"):  # the checkpoint of another size
        bigger = NeuralAvatarConfig.tiny(num_faces=cfg.uv_layout.num_faces, num_uv_verts=cfg.uv_layout.num_uv_verts,
                                         renderer=type(cfg.renderer)(ngf=16, n_downsampling=2, n_blocks=1))
        infer(ckpt, tmp_path, data, InferOptions(neural=bigger, smplx_models=models))
    with pytest.raises(MissingModelError, match="SMPL-X"):
        infer(ckpt, tmp_path, data, InferOptions(neural=cfg, smplx_models=tmp_path / "no_models"))
    with pytest.raises(DatasetError, match="rgb"):
        infer(ckpt, tmp_path, tmp_path, opts)


def test_neural_yaml_is_the_official_config():
    path = Path(__file__).resolve().parents[2] / "configs" / "neural.yaml"
    assert resolve_config(None, path).neural == NeuralAvatarConfig()
