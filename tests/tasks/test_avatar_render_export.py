"""Stages `avatar`, `render`, `export` with paths in and out, on a synthetic SMPL-X person whose fit stage really
ran (the fixture pattern of test_fit_stage.py), plus the `animate`, `export` and `fit-check` CLI commands."""

import json
import pickle

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dinar_core.body import SMPLXBody
from dinar_core.export.glb import read_glb_info
from dinar_core.export.gltf_validator import find_validator, validate_gltf
from dinar_core.export.video import read_video_frames, read_video_info
from dinar_core.fitting.adapters import SMPLXFitBody
from tasks.avatar import STAGE as AVATAR
from tasks.config import PipelineConfig, dump_yaml, override
from tasks.export import STAGE as EXPORT
from tasks.fit import STAGE as FIT
from tasks.render import STAGE as RENDER
from tasks.runner import prepare_person, run_stage
from tasks.workspace import DONE, FAILED, atomic_write_json, atomic_write_text
from tests.helpers.fitting_scenes import make_scene, natural_pose, place
from tests.helpers.neural_scene import cylindrical_layout
from tests.helpers.synthetic_smplx import synthetic_smplx_dir  # noqa: F401 (fixture)

SIZE = (256, 192)
FAST_FIT = {"camera_iterations": 3, "body_iterations": 4, "body_prior_schedule": [4.0, 1.0],
            "detail_iterations": 2, "lbfgs_inner": 6}
TEX = 64
RENDER_CFG = {"image_size": [96, 80], "fps": 5.0, "seconds": 1.0}  # 5 frames


@pytest.fixture(scope="module")
def fitted(synthetic_smplx_dir, tmp_path_factory):  # noqa: F811
    """A workspace whose fit stage ran on a synthetic person, and UV assets for the synthetic model."""
    model = SMPLXBody(synthetic_smplx_dir)
    body = SMPLXFitBody(model)
    scene = make_scene(body, place(body, natural_pose(body, 1, seed=3, scale=0.06, yaw_deg=8.0), SIZE), SIZE,
                       seed=1)[0]
    root = tmp_path_factory.mktemp("ws")
    uv_dir = root / "uv"
    uv_dir.mkdir()
    layout = cylindrical_layout(model.rest_vertices, model.faces)
    np.save(uv_dir / "uv.npy", layout.uv.numpy())
    np.save(uv_dir / "uv_faces.npy", layout.uv_faces.numpy())
    np.save(uv_dir / "v_inds.npy", layout.vertex_index.numpy())
    src = root / "photo.png"
    # a photo whose left and right halves differ, so the texture is not uniform
    rgb = np.full((*SIZE, 3), 90, np.uint8)
    colour = np.zeros((*SIZE, 3), np.uint8)
    colour[:, : SIZE[1] // 2] = (200, 60, 40)
    colour[:, SIZE[1] // 2:] = (40, 90, 210)
    rgb[scene.mask] = colour[scene.mask]
    cv2.imwrite(str(src), rgb[..., ::-1])
    cfg = override(PipelineConfig(), {
        "body": {"model": "smplx", "smplx_models": str(synthetic_smplx_dir), "device": "cpu",
                 "uv_assets": str(uv_dir)},
        "fit": FAST_FIT, "avatar": {"classic": {"texture_size": TEX}}, "render": RENDER_CFG})
    ws = prepare_person(root / "runs" / "p", [src], cfg)
    ws.rgb_dir.mkdir(parents=True)
    ws.segm_dir.mkdir(parents=True)
    assert cv2.imwrite(str(ws.rgb("p")), rgb[..., ::-1])
    assert cv2.imwrite(str(ws.segm("p")), np.repeat(scene.mask[:, :, None].astype(np.uint8) * 255, 3, 2))
    atomic_write_json(ws.keypoints("p"), {"version": 1.3, "people": [scene.keypoints.to_openpose_person()]})
    manifest = ws.read_manifest()
    for stage in ("ingest", "segment", "keypoints"):
        manifest["stages"][stage] = {"status": DONE}
    ws.write_manifest(manifest)
    assert run_stage(FIT, ws.root, cfg).status == DONE, ws.stage_record("fit").get("error")
    return ws, cfg, uv_dir


@pytest.fixture(scope="module")
def built(fitted):
    ws, cfg, _ = fitted
    out = run_stage(AVATAR, ws.root, cfg)
    assert out.status == DONE, ws.stage_record("avatar").get("error")
    return fitted


def _error(ws, stage):
    return ws.stage_record(stage).get("error") or {}


def test_avatar_writes_a_full_texture_and_its_facts(built):
    ws, cfg, _ = built
    tex = cv2.imread(str(ws.avatar_dir / "texture.png"))
    assert tex.shape == (TEX, TEX, 3)
    assert tex.std() > 10  # red and blue halves of the photo, not one flat colour
    assert cv2.imread(str(ws.avatar_dir / "provenance.png")).shape == (TEX, TEX, 3)
    meta = json.loads((ws.avatar_dir / "avatar.json").read_text())
    assert meta["body"] == "smplx" and meta["texture_size"] == TEX and meta["params_files"] == ["smplx/p.pkl"]
    f = meta["fractions"]
    assert 0.03 < f["observed"] < 0.9 and abs(sum(f.values()) - 1.0) < 1e-3
    info = ws.stage_record("avatar")["info"]
    assert info["observed"] == f["observed"]
    assert not run_stage(AVATAR, ws.root, cfg).executed  # cached


def test_interrupted_avatar_folder_reruns(built):
    """A missing texture.png, or a file replaced by a leftover partial write, is not 'done'."""
    ws, cfg, _ = built
    tex = ws.avatar_dir / "texture.png"
    tex.unlink()
    assert run_stage(AVATAR, ws.root, cfg).executed and tex.is_file()
    tex.write_bytes(tex.read_bytes()[:100])  # a half-written file under the final name
    (ws.avatar_dir / "texture.png.tmp-123").write_bytes(b"partial")  # and a leftover temporary
    out = run_stage(AVATAR, ws.root, cfg)
    assert out.executed and out.status == DONE
    assert cv2.imread(str(tex)).shape == (TEX, TEX, 3)
    assert not run_stage(AVATAR, ws.root, cfg).executed


def test_render_writes_video_and_views(built):
    ws, cfg, _ = built
    out = run_stage(RENDER, ws.root, cfg)
    assert out.status == DONE, _error(ws, "render")
    info = read_video_info(ws.renders_dir / "video.mp4")
    assert info.num_frames == 5 and (info.height, info.width) == (96, 80) and info.codec == "h264"
    frames = read_video_frames(ws.renders_dir / "video.mp4")
    for frame in frames:  # the body is in every frame (white background, coloured avatar)
        assert (frame.min(-1) < 200).mean() > 0.05
    # the turntable turns: the first and a later frame differ
    assert np.abs(frames[0].astype(int) - frames[2].astype(int)).mean() > 2
    views = {}
    for name in ("front", "back", "side"):
        img = cv2.imread(str(ws.renders_dir / f"{name}.png"))
        assert img.shape == (*SIZE, 3) and img.std() > 10  # views at the photo's size (render.view_size unset)
        views[name] = img
    assert np.abs(views["front"].astype(int) - views["back"].astype(int)).mean() > 2
    assert ws.stage_record("render")["info"]["frames"] == 5
    assert not run_stage(RENDER, ws.root, cfg).executed
    small = override(cfg, {"render": {"view_size": [64, 48]}})
    assert run_stage(RENDER, ws.root, small).status == DONE
    assert cv2.imread(str(ws.renders_dir / "side.png")).shape == (64, 48, 3)
    run_stage(RENDER, ws.root, cfg)  # back to the module's config for the tests after this one


def test_render_walk_keeps_feet_on_the_ground(built):
    from tasks.artifacts import load_fit
    from tasks.bodies import load_body
    from tasks.motions import pose_motion, resolve_motion
    from tasks.render import frame_motion

    ws, cfg, _ = built
    body = load_body(cfg.body)
    fit = load_fit(ws, body, ["p"])[0]
    motion = resolve_motion("walk", body, fit, 10.0, 1.0)
    verts, K = frame_motion(pose_motion(body, fit, motion), (96, 80), 0.85, True)
    lowest = verts[..., 1].amax(1)  # y points down in the camera frame
    assert float(lowest.max() - lowest.min()) < 1e-4
    proj = verts @ K.T
    xy = proj[..., :2] / proj[..., 2:]
    assert float(xy[..., 0].min()) >= 0 and float(xy[..., 0].max()) <= 80
    assert float(xy[..., 1].min()) >= 0 and float(xy[..., 1].max()) <= 96
    assert float((verts[0] - verts[5]).abs().max()) > 0.05  # it moves


def test_a_motion_longer_than_one_chunk_poses_every_frame(built):
    """SMPL-X motions are posed CHUNK frames at a time; the second chunk keeps the fitted avatar (it once took the
    first chunk's hand pose for it and failed)."""
    from tasks.artifacts import load_fit
    from tasks.bodies import load_body
    from tasks.motions import CHUNK, pose_motion, resolve_motion

    ws, cfg, _ = built
    body = load_body(cfg.body)
    fit = load_fit(ws, body, ["p"])[0]
    motion = resolve_motion("walk", body, fit, 10.0, (CHUNK + 8) / 10.0)
    verts = pose_motion(body, fit, motion)
    assert verts.shape == (CHUNK + 8, fit.verts_cam.shape[1], 3)
    assert torch.isfinite(verts).all()


def _bad_motion(path, kind):
    frames = {"body_pose": np.zeros((1, 63), np.float32), "global_orient": np.zeros((1, 3), np.float32),
              "jaw_pose": np.zeros((1, 3), np.float32), "left_hand_pose": np.zeros((1, 6), np.float32),
              "right_hand_pose": np.zeros((1, 6), np.float32)}
    if kind == "joints":
        frames["body_pose"] = np.zeros((1, 60), np.float32)
        data = {"body_params_list": [frames] * 3}
    elif kind == "nan":
        bad = dict(frames, body_pose=np.full((1, 63), np.nan, np.float32))
        data = {"body_params_list": [frames, bad]}
    else:
        data = {"body_params_list": []}
    path.write_bytes(pickle.dumps(data))
    return path


@pytest.mark.parametrize("kind", ["joints", "nan", "empty"])
def test_bad_motion_file_is_a_motion_error(built, tmp_path, kind):
    ws, cfg, _ = built
    motion = _bad_motion(tmp_path / f"{kind}.pkl", kind)
    out = run_stage(RENDER, ws.root, override(cfg, {"render": {"motion": str(motion)}}))
    assert out.status == FAILED
    err = _error(ws, "render")
    assert err["type"] == "MotionError" and motion.name in err["message"], err
    run_stage(RENDER, ws.root, cfg)  # back to the good state for the other tests


def test_export_writes_a_valid_skinned_glb(built):
    ws, cfg, _ = built
    out = run_stage(EXPORT, ws.root, cfg)
    assert out.status == DONE, _error(ws, "export")
    glb = ws.avatar_dir / "avatar.glb"
    info = read_glb_info(glb)
    U = np.load(cfg.body.uv_assets + "/uv.npy").shape[0]
    assert info.num_vertices == U and info.num_joints == 55 and info.num_faces == 20908
    assert info.texture_size == (TEX, TEX) and info.num_keyframes == 5
    assert info.animation_names == ("walk", "wave", "idle", "turntable")  # export.clips, each 1 s at 5 fps
    rec = ws.stage_record("export")["info"]
    if find_validator() is not None:
        report = validate_gltf(glb)
        assert report.errors == 0 and rec["validation"]["errors"] == 0
    assert not run_stage(EXPORT, ws.root, cfg).executed


def test_missing_uv_assets_is_a_missing_model_error(built, tmp_path):
    ws, cfg, uv_dir = built
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run_stage(AVATAR, ws.root, override(cfg, {"body": {"uv_assets": str(empty)}}))
    assert out.status == FAILED
    err = _error(ws, "avatar")
    assert err["type"] == "MissingModelError" and "uv.npy" in err["message"]
    out = run_stage(AVATAR, ws.root, override(cfg, {"body": {"uv_assets": None}}))
    assert _error(ws, "avatar")["type"] == "MissingModelError"
    assert run_stage(AVATAR, ws.root, cfg).status == DONE


def test_neural_mode_without_checkpoint_says_what_to_supply(built):
    ws, cfg, _ = built
    out = run_stage(AVATAR, ws.root, override(cfg, {"avatar": {"mode": "neural"}}))
    assert out.status == FAILED
    err = _error(ws, "avatar")
    assert err["type"] == "MissingCheckpointError" and "ddpm-epoch=24.ckpt" in err["message"]
    assert "SMPL-X" in err["message"]
    assert run_stage(AVATAR, ws.root, cfg).status == DONE


def test_cli_animate_and_export(built, tmp_path):
    from flows.cli import app

    ws, cfg, _ = built
    atomic_write_text(ws.config_path, dump_yaml(cfg))
    video = tmp_path / "wave.mp4"
    res = CliRunner().invoke(app, ["animate", str(ws.root), "--motion", "wave", "--out", str(video)])
    assert res.exit_code == 0, res.output
    assert read_video_info(video).num_frames == 5
    glb = tmp_path / "a.glb"
    res = CliRunner().invoke(app, ["export", str(ws.root), "--glb", "--out", str(glb)])
    assert res.exit_code == 0, res.output
    assert read_glb_info(glb).num_joints == 55
    # one more clip, named (a motion file's clip is named by its stem unless --clip says otherwise)
    res = CliRunner().invoke(app, ["export", str(ws.root), "--out", str(glb), "--motion", "rest", "--clip", "stand"])
    assert res.exit_code == 0, res.output
    assert read_glb_info(glb).animation_names == ("walk", "wave", "idle", "turntable", "stand")
    assert "5 clip(s): walk, wave, idle, turntable, stand" in res.output
    res = CliRunner().invoke(app, ["export", str(ws.root), "--out", str(glb), "--motion", "walk"])
    assert res.exit_code != 0 and "clip names given twice: walk" in res.output
    res = CliRunner().invoke(app, ["animate", str(ws.root), "--motion", str(tmp_path / "none.pkl")])
    assert res.exit_code != 0 and "MotionError" in res.output


def test_cli_fit_check_lists_poor_fits(tmp_path):
    from flows.cli import app

    runs = tmp_path / "runs"
    for person, iou in (("good", 0.95), ("bad", 0.5)):
        fit_dir = runs / person / "fit"
        fit_dir.mkdir(parents=True)
        (runs / person / "manifest.json").write_text(json.dumps({"person": person, "stages": {}}))
        (fit_dir / "metrics.json").write_text(json.dumps({"frames": {"f1": {
            "reprojection_error_rel": 0.01, "mask_iou": iou}}}))
    res = CliRunner().invoke(app, ["fit-check", str(runs)])
    assert res.exit_code == 0, res.output
    assert "bad" in res.output and "f1_overlay.png" in res.output and "good" not in res.output
    res = CliRunner().invoke(app, ["fit-check", str(runs), "--set", "fit_check.min_mask_iou=0.4"])
    assert "bad" not in res.output


def _anny_person(root, hair_m: float = 0.0, **config):
    """A workspace of the Anny body standing in front of the camera (a hand-placed fit instead of the fit stage),
    its photo's mask the body's silhouette with a scalp shell of `hair_m` metres (hair volume). Returns (ws, cfg,
    body)."""
    from dinar_core.body import AnnyBody, AnnyParams, anny_cache_dir
    from dinar_core.body.parts import body_parts
    from dinar_core.render.camera import make_K
    from dinar_core.texture.hair_volume import camera_silhouette, offset_shell, scalp_weights

    if not anny_cache_dir().exists():
        pytest.skip("Anny's model cache is not built")
    body = AnnyBody()
    H, W = 256, 192
    p = AnnyParams.zeros(1, body.num_joints)
    p.phenotype[:] = 0.5
    p.global_orient = torch.tensor([[np.pi, 0.0, 0.0]])  # upright in DINAR's camera, facing it
    with torch.no_grad():
        v = body(p).vertices
    c, h = 0.5 * (v[0].amin(0) + v[0].amax(0)), float(v[0, :, 1].max() - v[0, :, 1].min())
    p.transl = (-c + torch.tensor([0.0, 0.0, 5000 * h / (0.8 * H)]))[None]
    with torch.no_grad():
        v = body(p).vertices
    K = make_K(H, W)
    shell = offset_shell(v, body.faces, scalp_weights(body.rest_vertices, body_parts(body)), hair_m)
    mask = camera_silhouette(shell, K, body.faces, (H, W))
    rgb = np.full((H, W, 3), 90, np.uint8)
    rgb[mask] = (200, 60, 40)
    rgb[mask & (np.arange(W)[None] > W // 2)] = (40, 90, 210)
    cv2.imwrite(str(root / "photo.png"), rgb[..., ::-1])
    cfg = override(PipelineConfig(), {"body": {"model": "anny", "device": "cpu"},
                                      "avatar": {"classic": {"texture_size": TEX}},
                                      "render": dict(RENDER_CFG, motion="walk")})
    cfg = override(cfg, config) if config else cfg
    ws = prepare_person(root / "runs" / "p", [root / "photo.png"], cfg)
    for d in (ws.rgb_dir, ws.segm_dir, ws.smplx_dir):
        d.mkdir(parents=True)
    cv2.imwrite(str(ws.rgb("p")), rgb[..., ::-1])
    cv2.imwrite(str(ws.segm("p")), np.repeat(mask[:, :, None].astype(np.uint8) * 255, 3, 2))
    np.savez(ws.smplx_dir / "p_anny.npz", phenotype=p.phenotype.numpy(), pose=p.pose.numpy(),
             global_orient=p.global_orient.numpy(), transl=p.transl.numpy(), K=K.numpy())
    manifest = ws.read_manifest()
    for stage in ("ingest", "segment", "keypoints", "fit"):
        manifest["stages"][stage] = {"status": DONE}
    ws.write_manifest(manifest)
    return ws, cfg, body


def test_hair_volume_is_measured_and_drawn(tmp_path):
    """A head whose mask shows 4 cm of hair gets a 4 cm scalp shell (avatar.json), drawn in the views; a bald
    head's mask measures no shell."""
    tops = {}
    for hair in (0.0, 0.04):
        (tmp_path / str(hair)).mkdir()
        ws, cfg, _ = _anny_person(tmp_path / str(hair), hair, render={"motion": "rest", "view_size": [256, 192]})
        for stage in (AVATAR, RENDER):
            assert run_stage(stage, ws.root, cfg).status == DONE, _error(ws, stage.name)
        vol = json.loads((ws.avatar_dir / "avatar.json").read_text())["hair_volume"]
        assert abs(vol["thickness_m"] - hair) <= 0.0051, vol
        if hair:
            assert vol["head_iou"][1] > vol["head_iou"][0]
        figure = cv2.imread(str(ws.renders_dir / "front.png")).min(-1) < 200
        rows = np.nonzero(figure.any(1))[0]
        top = figure[rows.min():rows.min() + int(0.12 * (rows.max() - rows.min()))]
        tops[hair] = int(top.sum())  # figure pixels in the top 12 % of its height: the head
    # Framed to the same height, the haired head is fuller in the view.
    assert tops[0.04] > 1.1 * tops[0.0], tops


@pytest.mark.slow  # Anny's model takes ~100 s to build when its cache is cold
def test_anny_avatar_render_export(tmp_path):
    """The Anny body end to end (a hand-placed fit instead of the fit stage): its own UVs, walk, animated GLB."""
    ws, cfg, body = _anny_person(tmp_path)
    for stage in (AVATAR, RENDER, EXPORT):
        assert run_stage(stage, ws.root, cfg).status == DONE, _error(ws, stage.name)
    assert ws.stage_record("avatar")["info"]["observed"] > 0.1
    assert read_video_info(ws.renders_dir / "video.mp4").num_frames == 5
    info = read_glb_info(ws.avatar_dir / "avatar.glb")
    assert info.num_joints == body.num_joints and info.num_vertices == body.uv_layout.uv.shape[0]
    assert info.animation_names == ("walk", "wave", "idle", "turntable") and info.num_keyframes == 5  # (the walk:
    # tests/tasks/test_export_anny_glb.py checks that it skins like the model)
    assert not any("NoAnimation" in w for w in ws.stage_record("export")["warnings"])
    # a SMPL-X motion file is retargeted onto Anny's rig (tests/unit/test_motion_retarget.py checks the joints);
    # a file of another joint count is a MotionError naming the counts
    smplx_motion = tmp_path / "smplx.pkl"
    frames = {name: np.zeros((1, n), np.float32) for name, n in (("body_pose", 63), ("global_orient", 3),
                                                                   ("jaw_pose", 3), ("left_hand_pose", 6),
                                                                   ("right_hand_pose", 6))}
    frames["body_pose"][0, 3 * 3] = 1.0  # the left knee bent
    smplx_motion.write_bytes(pickle.dumps({"body_params_list": [frames] * 2}))
    out = run_stage(RENDER, ws.root, override(cfg, {"render": {"motion": str(smplx_motion)}}))
    assert out.status == DONE, _error(ws, "render")
    odd = _bad_motion(tmp_path / "odd.pkl", "joints")
    out = run_stage(RENDER, ws.root, override(cfg, {"render": {"motion": str(odd)}}))
    assert out.status == FAILED and _error(ws, "render")["type"] == "MotionError"
    assert "20 body joints" in _error(ws, "render")["message"]
