"""`dinar synth`: deterministic files in the multi-view layout, and ground truth that agrees with itself: joints
project inside the masks, the renders are reproduced from body.json + texture + cameras, the print is on the front
only. Small corpora (2 persons x 4 views at 128 px, 256 px textures); Anny's model loads once per process."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dinar_core.cameras.multiview import list_persons, read_cameras, read_dataset
from dinar_core.errors import MultiViewDataError
from dinar_core.render.rasterizer import interpolate
from dinar_core.synth.scene import SynthConfig, render_view
from dinar_core.texture.render import render_textured
from tasks.synth import lighting_from_meta, params_from_body_json, synth_dataset

SMALL = SynthConfig(texture_size=256)


def _synth(out: Path, seed: int, persons: int = 2, views: int = 4, size: int = 128) -> Path:
    synth_dataset(out, persons, views, seed, size, config=SMALL)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return _synth(tmp_path_factory.mktemp("synth") / "data", seed=3)


@pytest.fixture(scope="module")
def body():
    from tasks.bodies import load_body
    from tasks.config import BodyConfig

    return load_body(BodyConfig(model="anny", device="cpu")).model


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read(path: Path, flags=cv2.IMREAD_UNCHANGED) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    assert img is not None, path
    return img


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(_read(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_same_seed_same_bytes_other_seed_other_people(corpus, tmp_path):
    again = _files(_synth(tmp_path / "again", seed=3))
    first = _files(corpus)
    assert sorted(again) == sorted(first) and len(first) == 2 * (4 * 3 + 1 + 7) + 1  # views, cameras, gt
    assert [k for k in first if first[k] != again[k]] == []
    other = _files(_synth(tmp_path / "other", seed=4))
    assert sorted(other) == sorted(first)
    differ = {k for k in first if first[k] != other[k]}
    for name in ("p000/views/cam01.png", "p000/gt/body.json", "p000/gt/texture.png", "p001/cameras.json"):
        assert name in differ


def test_layout_follows_the_contract(corpus):
    info = read_dataset(corpus)
    assert info.kind == "synth" and info.persons == ["p000", "p001"] and info.licence
    persons = list_persons(corpus)
    assert [p.name for p in persons] == ["p000", "p001"]
    for person in persons:
        cams = read_cameras(person)
        assert cams.names == ["cam01", "cam02", "cam03", "cam04"] and cams.up == (0.0, 0.0, 1.0)
        meta = json.loads((person / "gt" / "meta.json").read_text())
        assert 1.4 < meta["height_m"] < 2.05 and meta["seed"] == 3 and meta["generator"].startswith("dinar synth")
        joints = np.load(person / "gt" / "joints.npy", allow_pickle=False)
        names = json.loads((person / "gt" / "joints.json").read_text())
        assert joints.shape == (25, 3) and joints.dtype == np.float32 and len(names["names"]) == 25
        assert names["layout"] == "body25"
        # standing on the ground (z up), the nose about a body height above the feet
        assert abs(float(joints[:, 2].min())) < 0.15 and 0.8 * meta["height_m"] < joints[0, 2] < meta["height_m"]
        for cam in cams:
            view = _rgb(person / "views" / f"{cam.name}.png")
            mask = _read(person / "gt" / "masks" / f"{cam.name}.png")
            render = _read(person / "gt" / "renders" / f"{cam.name}.png")
            assert view.shape == (128, 128, 3) and mask.shape == (128, 128) and render.shape == (128, 128, 4)
            assert set(np.unique(mask)) <= {0, 255} and (render[..., 3] == mask).all()
            assert cam.size == (128, 128) and not cam.dist.any()
            # the body fills a good part of the height and is not cut by the border
            rows = np.nonzero(mask.any(1))[0]
            assert 0.5 * 128 < rows[-1] - rows[0] + 1 < 0.9 * 128 and rows[0] > 0 and rows[-1] < 127
            # a ring at 3-4 m, looking at the body
            centre = cam.centre
            assert 2.8 < np.hypot(centre[0], centre[1]) < 4.2
            assert float(cam.direction @ (np.array([0, 0, meta["height_m"] / 2]) - centre)) > 0.99 * np.linalg.norm(
                np.array([0, 0, meta["height_m"] / 2]) - centre)
        front = cams["cam01"].centre
        assert front[1] < -2.5 and abs(front[0]) < 0.5  # view 1 in front of the person (who faces -y)
        for k in ("texture", "prints_mask", "back_mask"):
            assert _read(person / "gt" / f"{k}.png").shape[:2] == (256, 256)


def test_joints_project_inside_the_masks(corpus):
    for person in list_persons(corpus):
        joints = np.load(person / "gt" / "joints.npy", allow_pickle=False).astype(np.float64)
        for cam in read_cameras(person):
            mask = _read(person / "gt" / "masks" / f"{cam.name}.png") > 0
            grown = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # 2 px for surface points
            px = cam.project(joints)  # (25, 2), pixel (i, j) centred at (j + 0.5, i + 0.5)
            ij = np.floor(px).astype(int)
            assert ((ij >= 0) & (ij < 128)).all(), (person.name, cam.name)
            inside = grown[ij[:, 1], ij[:, 0]]
            assert inside.all(), (person.name, cam.name, np.nonzero(~inside)[0])
            # the internal joints (hips, knees, shoulders...) land inside the mask itself
            assert mask[ij[[1, 2, 5, 8, 9, 10, 12, 13], 1], ij[[1, 2, 5, 8, 9, 10, 12, 13], 0]].all()


def _saved_scene(person: Path, body):
    params = params_from_body_json(json.loads((person / "gt" / "body.json").read_text()))
    with torch.no_grad():
        verts = body(params).vertices[0]
    texture = _rgb(person / "gt" / "texture.png")
    meta = json.loads((person / "gt" / "meta.json").read_text())
    return verts, texture, lighting_from_meta(meta)


def test_renders_equal_a_rerender_from_the_saved_ground_truth(corpus, body):
    """Tolerance: at most 1 grey level anywhere (PNG rounding), identical masks."""
    for person in list_persons(corpus):
        verts, texture, lighting = _saved_scene(person, body)
        for cam in read_cameras(person):
            again = render_view(verts, body, texture, cam, lighting).rgba8()
            saved = _read(person / "gt" / "renders" / f"{cam.name}.png")
            saved = np.concatenate([cv2.cvtColor(saved[..., :3], cv2.COLOR_BGR2RGB), saved[..., 3:]], -1)
            assert (again[..., 3] == saved[..., 3]).all()
            assert int(np.abs(again.astype(int) - saved.astype(int)).max()) <= 1
            # the photo is the render plus background and mild noise
            view = _rgb(person / "views" / f"{cam.name}.png").astype(float)
            body_px = saved[..., 3] > 0
            assert np.abs(view - saved[..., :3])[body_px].mean() < 4.0


def _visible_texels(verts, body, cam, size: int) -> np.ndarray:
    """(N, 2) int texel (row, col) of every body pixel seen by ``cam``."""
    layout = body.uv_layout
    faces = layout.vertex_index[layout.uv_faces]
    R, t = torch.as_tensor(cam.R, dtype=torch.float32), torch.as_tensor(cam.t, dtype=torch.float32)
    r = render_textured((verts @ R.T + t)[None], torch.as_tensor(cam.K, dtype=torch.float32), faces, layout,
                        np.zeros((8, 8, 3), np.uint8), (cam.height, cam.width), "transparent")
    uv = interpolate(r.fragments, layout.uv_faces, layout.uv)[0]  # (2, H, W)
    m = r.fragments.mask[0, 0]
    u, v = uv[0][m].numpy(), uv[1][m].numpy()
    return np.stack([np.clip((v * size).astype(int), 0, size - 1), np.clip((u * size).astype(int), 0, size - 1)], 1)


def test_the_print_is_on_the_front_only(corpus, body):
    for person in list_persons(corpus):
        prints = _read(person / "gt" / "prints_mask.png") > 0
        back = _read(person / "gt" / "back_mask.png") > 0
        assert prints.sum() > 50 and back.sum() > 1000 and not (prints & back).any()
        verts, _, _ = _saved_scene(person, body)
        cams = read_cameras(person)
        front_tex = _visible_texels(verts, body, cams["cam01"], prints.shape[0])
        back_tex = _visible_texels(verts, body, cams["cam03"], prints.shape[0])  # 180 degrees: the back view
        seen_front = prints[front_tex[:, 0], front_tex[:, 1]]
        seen_back = prints[back_tex[:, 0], back_tex[:, 1]]
        assert seen_front.sum() >= 5 and seen_back.sum() == 0, (person.name, seen_front.sum(), seen_back.sum())
        # the back mask is what the back camera sees, hardly what the front one sees
        assert back[back_tex[:, 0], back_tex[:, 1]].mean() > 0.5
        assert back[front_tex[:, 0], front_tex[:, 1]].mean() < 0.1


def test_out_folder_is_checked_and_a_rerun_replaces_stale_persons(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(MultiViewDataError, match="not a `dinar synth` dataset"):
        synth_dataset(user, 1, 1, 0, 64, config=SMALL)
    assert (user / "notes.txt").read_text() == "mine"
    out = tmp_path / "data"
    synth_dataset(out, 2, 2, 0, 64, config=SMALL)
    synth_dataset(out, 1, 1, 0, 64, config=SMALL)
    assert read_dataset(out).persons == ["p000"] and not (out / "p001").exists()
    assert sorted(p.name for p in (out / "p000" / "views").iterdir()) == ["cam01.png"]


@pytest.mark.slow  # ~12 s: the CLI's default 512 px texture
def test_cli_synth(tmp_path):
    from flows.cli import app

    result = CliRunner().invoke(app, ["synth", str(tmp_path / "d"), "--persons", "1", "--views", "2", "--seed", "5",
                                      "--size", "64"])
    assert result.exit_code == 0, result.output
    assert read_dataset(tmp_path / "d").persons == ["p000"]
    assert read_cameras(tmp_path / "d" / "p000").names == ["cam01", "cam02"]
    assert _read(tmp_path / "d" / "p000" / "gt" / "texture.png").shape[:2] == (512, 512)  # the CLI's default
    bad = CliRunner().invoke(app, ["synth", str(tmp_path / "e"), "--persons", "0"])
    assert bad.exit_code != 0


def test_poses_keep_forearms_and_hands_off_the_trunk(body):
    """No self-penetration where it is likely (arms down on heavy bodies): every forearm/hand vertex stays a few
    centimetres away from the trunk and thighs, for a dozen sampled persons of all three pose kinds."""
    from scipy.spatial import cKDTree

    from dinar_core.synth.scene import _POSE, _SHAPE, _rng, pose_params, sample_phenotype, sample_pose

    dominant = body.skinning_weights.argmax(1).cpu().numpy()

    def part(*prefixes):
        return np.isin(dominant, [i for i, n in enumerate(body.joint_names) if n.startswith(prefixes)])

    arm, trunk = part("lowerarm", "wrist", "finger", "metacarpal"), part("spine", "pelvis", "upperleg", "root")
    kinds = set()
    for index in range(12):
        phenotype = sample_phenotype(_rng(0, index, _SHAPE))
        pose = sample_pose(_rng(0, index, _POSE), phenotype["weight"])
        kinds.add(pose.kind)
        with torch.no_grad():
            verts = body(pose_params(body, phenotype, pose)).vertices[0].cpu().numpy()
        gap, _ = cKDTree(verts[trunk]).query(verts[arm])
        assert gap.min() > 0.03, (index, pose.kind, phenotype["weight"], float(gap.min()))
        assert abs(float(verts[:, 2].min())) < 1e-5  # standing on the ground
    assert kinds == {"standing", "walking", "arms_out"}
