"""Stages `segment` and `keypoints`: paths in, paths out, on a tiny workspace built from the sample photos."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from dinar_core.errors import KeypointsError, MaskError, NoPersonError
from dinar_core.keypoints import BODY_25, read_openpose_json
from tasks import keypoints as kp_stage
from tasks import segment as seg_stage
from tasks.config import PipelineConfig
from tasks.runner import run_stage
from tasks.workspace import DONE, FAILED, Workspace

FULL_BODY = ("sports2d_1", "sports2d_2", "sports2d_3")
REQUIRED = ("Nose", "Neck", "RShoulder", "LShoulder", "RHip", "LHip", "RKnee", "LKnee", "RAnkle", "LAnkle")


def _cfg(**sections) -> PipelineConfig:
    cfg = PipelineConfig()
    for name, changes in sections.items():
        cfg = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **changes)})
    return cfg


def _workspace(root: Path, frames: dict[str, Path | np.ndarray]) -> Workspace:
    ws = Workspace(root / "p")
    ws.rgb_dir.mkdir(parents=True)
    for frame, src in frames.items():
        if isinstance(src, np.ndarray):
            cv2.imwrite(str(ws.rgb(frame)), cv2.cvtColor(src, cv2.COLOR_RGB2BGR))
        else:
            shutil.copy(src, ws.rgb(frame))
    return ws


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def done_ws(tmp_path_factory, samples_dir):
    """The three full-body samples through segment and keypoints with the default (mediapipe) backends."""
    ws = _workspace(tmp_path_factory.mktemp("full"), {n: samples_dir / f"{n}.png" for n in FULL_BODY})
    cfg = PipelineConfig()
    seg = seg_stage.segment(ws, cfg)
    kps = kp_stage.keypoints(ws, cfg)
    return ws, seg, kps


def test_segment_writes_binary_three_channel_masks(done_ws):
    ws, seg, _ = done_ws
    assert sorted(p.name for p in seg.outputs) == [f"{n}.png" for n in FULL_BODY]
    assert seg.warnings == []
    for frame in FULL_BODY:
        m = cv2.imread(str(ws.segm(frame)), cv2.IMREAD_UNCHANGED)
        rgb = cv2.imread(str(ws.rgb(frame)))
        assert m.shape == rgb.shape and m.dtype == np.uint8
        assert set(np.unique(m)) <= {0, 255}
        assert np.array_equal(m[:, :, 0], m[:, :, 1]) and np.array_equal(m[:, :, 0], m[:, :, 2])
        assert seg.info["frames"][frame]["people"] == 1


@pytest.mark.parametrize("frame", FULL_BODY)
def test_full_body_mask_and_keypoints_agree(done_ws, frame):
    ws, _, _ = done_ws
    mask = cv2.imread(str(ws.segm(frame)), cv2.IMREAD_GRAYSCALE) > 127
    data = json.loads(ws.keypoints(frame).read_text())
    body = read_openpose_json(data).keypoints.body
    for name in REQUIRED:
        assert body[BODY_25[name], 2] > 0.5, name
    nose_y, hip_y = body[BODY_25["Nose"], 1], body[BODY_25["MidHip"], 1]
    ankle_y = max(body[BODY_25["RAnkle"], 1], body[BODY_25["LAnkle"], 1])
    assert nose_y < hip_y < ankle_y
    # The mask covers the box of the confident body joints (a few pixels of slack for joints on the outline)
    # and is far from the whole image.
    ok = body[:, 2] > 0.5
    x0, y0 = body[ok, :2].min(axis=0)
    x1, y1 = body[ok, :2].max(axis=0)
    ys, xs = np.nonzero(mask)
    slack = 0.02 * max(mask.shape)
    assert xs.min() <= x0 + slack and ys.min() <= y0 + slack and xs.max() >= x1 - slack and ys.max() >= y1 - slack
    assert mask.mean() < 0.6
    # Most confident joints lie on the mask itself (the crop found the masked person).
    xi, yi = np.round(body[ok, 0]).astype(int), np.round(body[ok, 1]).astype(int)
    near = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert near[yi, xi].mean() > 0.8


def test_keypoints_outputs_json_layout_and_overlay(done_ws):
    ws, _, kps = done_ws
    names = sorted(ws.rel(p) for p in kps.outputs)
    assert names == sorted([f"openpose/{n}_keypoints.json" for n in FULL_BODY]
                           + [f"report/{n}_overlay.png" for n in FULL_BODY])
    data = json.loads(ws.keypoints("sports2d_2").read_text())
    person = data["people"][0]
    assert data["version"] == 1.3 and person["person_id"] == [-1]
    assert [len(person[k]) for k in ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d",
                                     "hand_right_keypoints_2d")] == [75, 210, 63, 63]
    overlay = cv2.imread(str(ws.overlay("sports2d_2")))
    rgb = cv2.imread(str(ws.rgb("sports2d_2")))
    assert overlay.shape == rgb.shape and (overlay != rgb).any()
    assert kps.info["seconds_per_frame"] > 0


def test_no_person_fails_with_no_person_error(tmp_path):
    yy, xx = np.mgrid[0:400, 0:300]
    gradient = np.stack([xx * 255 // 300, yy * 255 // 400, np.full_like(xx, 128)], -1).astype(np.uint8)
    ws = _workspace(tmp_path, {"empty": gradient})
    with pytest.raises(NoPersonError, match=r"rgb/empty\.png.*fix:"):
        seg_stage.segment(ws, PipelineConfig())
    # Through the runner the failure is recorded with its type, and keypoints is blocked.
    ws.write_manifest({"person": "p", "sources": [], "stages": {"ingest": {"status": DONE}}})
    assert run_stage(seg_stage.STAGE, ws.root, PipelineConfig()).status == FAILED
    assert ws.stage_record("segment")["error"]["type"] == "NoPersonError"
    assert run_stage(kp_stage.STAGE, ws.root, PipelineConfig()).status == "blocked"


def test_two_people_keep_the_largest_with_a_warning(tmp_path, samples_dir):
    a = _rgb(samples_dir / "sports2d_2.png")
    b = _rgb(samples_dir / "sports2d_1.png")
    b = cv2.resize(b, (round(b.shape[1] * a.shape[0] / b.shape[0]), a.shape[0]), interpolation=cv2.INTER_AREA)
    ws = _workspace(tmp_path, {"pair": np.concatenate([a, b], axis=1)})
    out = seg_stage.segment(ws, PipelineConfig())
    assert any(w.startswith("MultiplePeople:") and "pair.png" in w for w in out.warnings)
    assert out.info["frames"]["pair"]["people"] == 2
    mask = cv2.imread(str(ws.segm("pair")), cv2.IMREAD_GRAYSCALE) > 127
    left, right = mask[:, :a.shape[1]].sum(), mask[:, a.shape[1]:].sum()
    assert min(left, right) == 0 and max(left, right) > 0  # one person kept, whole
    # Keypoints follow the kept person (the crop comes from its mask).
    kp_stage.keypoints(ws, PipelineConfig())
    body = read_openpose_json(json.loads(ws.keypoints("pair").read_text())).keypoints.body
    neck_x = body[BODY_25["Neck"], 0]
    assert (neck_x >= a.shape[1]) == (right > 0)


@pytest.fixture(scope="module")
def reference_mask(done_ws):
    ws, _, _ = done_ws
    return cv2.imread(str(ws.segm("sports2d_2")), cv2.IMREAD_GRAYSCALE) > 127


@pytest.mark.parametrize("kind", ["binary", "label", "colour", "binary_2x"])
def test_precomputed_masks(tmp_path, samples_dir, reference_mask, kind):
    ref = reference_mask
    masks = tmp_path / "masks"
    masks.mkdir()
    rng = np.random.default_rng(0)
    if kind == "binary":
        img = ref.astype(np.uint8) * 255
    elif kind == "label":
        img = np.where(ref, rng.integers(1, 20, ref.shape), 0).astype(np.uint8)
    elif kind == "colour":
        palette = np.array([(255, 0, 0), (0, 85, 85), (0, 0, 255), (255, 170, 0)], np.uint8)
        img = np.zeros(ref.shape + (3,), np.uint8)
        img[ref] = palette[rng.integers(0, 4, int(ref.sum()))]
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    else:  # the user's mask of the original, larger photo (ingest downscaled it)
        img = cv2.resize(ref.astype(np.uint8) * 255, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(masks / "photo.png"), img)
    ws = _workspace(tmp_path, {"photo": samples_dir / "sports2d_2.png"})
    cfg = _cfg(segment={"backend": "precomputed", "masks_dir": str(masks)})
    assert seg_stage.segment_inputs(ws, cfg) == [ws.rgb("photo"), masks / "photo.png"]
    seg_stage.segment(ws, cfg)
    out = cv2.imread(str(ws.segm("photo")), cv2.IMREAD_GRAYSCALE) > 127
    assert (out != ref).mean() < 0.002  # identical up to specks away from the person


def test_precomputed_mask_missing_or_wrong_shape(tmp_path, samples_dir):
    masks = tmp_path / "masks"
    masks.mkdir()
    ws = _workspace(tmp_path, {"photo": samples_dir / "sports2d_2.png"})
    cfg = _cfg(segment={"backend": "precomputed", "masks_dir": str(masks)})
    with pytest.raises(MaskError, match=r"no mask for frame 'photo'.*photo\.png"):
        seg_stage.segment(ws, cfg)
    cv2.imwrite(str(masks / "photo.png"), np.full((100, 100), 255, np.uint8))
    with pytest.raises(MaskError, match="100x100 but its photo is stored as 460x620"):
        seg_stage.segment(ws, cfg)
    with pytest.raises(MaskError, match="masks_dir"):
        seg_stage.segment(ws, _cfg(segment={"backend": "precomputed"}))
    # A mask named after the user's original photo (recorded by ingest) is found too.
    (masks / "photo.png").unlink()
    cv2.imwrite(str(masks / "IMG 0001.png"), np.zeros((620, 460), np.uint8))
    ws.write_manifest({"person": "p", "sources": [], "stages": {"ingest": {
        "status": DONE, "info": {"frames": {"photo": {"source": "IMG 0001.jpg"}}}}}})
    assert seg_stage.segment_inputs(ws, cfg)[-1] == masks / "IMG 0001.png"
    with pytest.raises(NoPersonError, match=r"IMG 0001\.png"):  # found, and it is empty
        seg_stage.segment(ws, cfg)


def test_openpose_import_round_trip(tmp_path, samples_dir, done_ws):
    src_ws, _, _ = done_ws
    theirs = read_openpose_json(json.loads(src_ws.keypoints("sports2d_3").read_text())).keypoints
    small = theirs.scaled(0.2, 0.2)  # a second, smaller person
    folder = tmp_path / "op"
    folder.mkdir()
    doc = {"version": 1.3, "people": [small.to_openpose_person(), theirs.to_openpose_person()]}
    (folder / "frame_keypoints.json").write_text(json.dumps(doc))
    ws = _workspace(tmp_path, {"frame": samples_dir / "sports2d_3.png"})
    shutil.copytree(src_ws.segm_dir, ws.segm_dir)
    (ws.segm_dir / "sports2d_3.png").rename(ws.segm("frame"))
    cfg = _cfg(keypoints={"backend": "openpose", "openpose_dir": str(folder)})
    assert folder / "frame_keypoints.json" in kp_stage.keypoints_inputs(ws, cfg)
    out = kp_stage.keypoints(ws, cfg)
    assert any(w.startswith("MultiplePeople") for w in out.warnings)
    got = read_openpose_json(json.loads(ws.keypoints("frame").read_text())).keypoints
    for part in ("body", "left_hand", "right_hand", "face"):
        assert np.array_equal(getattr(got, part), getattr(theirs, part)), part  # lossless
    # Wrong lengths name the file.
    doc["people"] = [{"pose_keypoints_2d": [1.0] * 72}]
    (folder / "frame_keypoints.json").write_text(json.dumps(doc))
    with pytest.raises(KeypointsError, match=r"frame_keypoints\.json: pose_keypoints_2d has 72 values"):
        kp_stage.keypoints(ws, cfg)


def test_no_torso_raises_keypoints_error(tmp_path, samples_dir, done_ws):
    src_ws, _, _ = done_ws
    data = json.loads(src_ws.keypoints("sports2d_2").read_text())
    pose = np.asarray(data["people"][0]["pose_keypoints_2d"]).reshape(25, 3)
    pose[[BODY_25["RShoulder"], BODY_25["LShoulder"]], 2] = 0.0  # shoulders gone
    data["people"][0]["pose_keypoints_2d"] = pose.reshape(-1).tolist()
    folder = tmp_path / "op"
    folder.mkdir()
    (folder / "sports2d_2_keypoints.json").write_text(json.dumps(data))
    ws = _workspace(tmp_path, {"sports2d_2": samples_dir / "sports2d_2.png"})
    ws.segm_dir.mkdir()
    shutil.copy(src_ws.segm("sports2d_2"), ws.segm("sports2d_2"))
    with pytest.raises(KeypointsError, match=r"no torso found in p/rgb/sports2d_2\.png"):
        kp_stage.keypoints(ws, _cfg(keypoints={"backend": "openpose", "openpose_dir": str(folder)}))


def test_removed_frames_lose_their_outputs(tmp_path, samples_dir):
    ws = _workspace(tmp_path, {n: samples_dir / f"{n}.png" for n in ("sports2d_2", "sports2d_3")})
    cfg = PipelineConfig()
    seg_stage.segment(ws, cfg)
    kp_stage.keypoints(ws, cfg)
    ws.rgb("sports2d_3").unlink()
    seg = seg_stage.segment(ws, cfg)
    kps = kp_stage.keypoints(ws, cfg)
    assert [p.name for p in seg.outputs] == ["sports2d_2.png"]
    assert not ws.segm("sports2d_3").exists() and not ws.keypoints("sports2d_3").exists()
    assert not ws.overlay("sports2d_3").exists() and ws.overlay("sports2d_2").exists()
    assert len(kps.outputs) == 2


def test_stage_definitions(tmp_path, samples_dir):
    assert seg_stage.STAGE.name == "segment" and seg_stage.STAGE.after == ("ingest",)
    assert kp_stage.STAGE.name == "keypoints" and kp_stage.STAGE.after == ("segment",)
    assert seg_stage.STAGE.sections == ("segment",) and kp_stage.STAGE.sections == ("keypoints",)
    ws = _workspace(tmp_path, {"a": samples_dir / "sports2d_2.png"})
    assert seg_stage.segment_inputs(ws, PipelineConfig()) == [ws.rgb("a")]
    assert kp_stage.keypoints_inputs(ws, PipelineConfig()) == [ws.rgb("a"), ws.segm("a")]


def test_rembg_backend_without_model_is_a_clear_failure(tmp_path, samples_dir):
    from dinar_core.errors import MissingModelError

    ws = _workspace(tmp_path, {"a": samples_dir / "sports2d_2.png"})
    cfg = _cfg(segment={"backend": "rembg", "rembg_model": str(tmp_path / "u2net.onnx")})
    with pytest.raises(MissingModelError, match=r"u2net\.onnx does not exist.*fix:"):
        seg_stage.segment(ws, cfg)
