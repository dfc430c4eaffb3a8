"""The whole neural-avatar chain on a synthetic person with tiny networks: photo + mask + SMPL-X params ->
texture -> DDIM inpainting -> renders at new poses -> a short video; seeded runs are bit-identical."""

import time
from pathlib import Path

import pytest
import torch

from dinar_core.avatar.config import NeuralAvatarConfig
from dinar_core.avatar.dataset import prepare_sample
from dinar_core.avatar.neural import NeuralAvatarPipeline, project_vertices
from dinar_core.nets.dinar import DinarModel
from tests.helpers.neural_scene import make_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("smplx_models"))


@pytest.fixture(scope="module")
def setup(scene):
    cfg = NeuralAvatarConfig.tiny(num_faces=scene.layout.uv_faces.shape[0], num_uv_verts=scene.layout.uv.shape[0])
    torch.manual_seed(0)
    model = DinarModel(cfg.dinar_config(with_discriminator=False)).eval()
    pipe = NeuralAvatarPipeline(model, scene.layout, cfg)
    with torch.no_grad():
        verts = project_vertices(scene.body(scene.params).vertices, scene.K, scene.layout.vertex_index)
    sample = prepare_sample("p0", scene.rgb, scene.segm, verts[0].double().numpy(), scene.K.double().numpy(),
                            cfg.image_size, cfg.crop_scale)
    return cfg, pipe, sample


def test_chain_end_to_end_with_video(scene, setup, tmp_path):
    from dinar_core.export.video import read_video_info, write_mp4

    cfg, pipe, sample = setup
    t0 = time.perf_counter()
    avatar = pipe.run(sample)
    T, S = cfg.texture_size, cfg.image_size
    assert avatar.ntexture.shape == (1, 21, T, T) and avatar.diffusion_ntexture.shape == (1, 21, T, T)
    known = avatar.source_ntexture[:, -2:-1]
    assert 0.02 < known.mean() < 0.6  # the photo covers part of the texture, not all of it
    # sampled colours are the photo's: the known RGB texels are not black and lie in [0, 1]
    rgb = avatar.source_ntexture[:, -5:-2]
    assert rgb.min() >= 0 and rgb.max() <= 1 and (rgb * known).sum() / known.sum() > 0.2
    assert avatar.normal_angles.shape == (1, 1, T, T) and avatar.normal_angles.max() > 0.8
    # the copy-back keeps the source where seen (mask 1 inside the known region, away from its edge)
    inner = (avatar.mask == 1)
    assert inner.any() and torch.allclose(avatar.ntexture[inner.expand_as(avatar.ntexture)],
                                          avatar.source_ntexture[inner.expand_as(avatar.ntexture)])
    assert avatar.render.rgb.shape == (1, 3, S, S) and avatar.render.segm.shape == (1, 1, S, S)
    assert set(avatar.times.seconds) >= {"encoder", "generator", "vq_encode", "ddim", "vq_decode", "render"}

    # a new pose with the same K: arms lowered changes the render
    p = scene.params
    p2 = type(p)(**{k: v.clone() if v is not None else None for k, v in vars(p).items()})
    p2.body_pose[:, 15 * 3 + 2] = -1.0
    p2.body_pose[:, 16 * 3 + 2] = 1.0
    v_new = pipe.posed_vertices(scene.body, p2, avatar.K[0])
    frames = list(pipe.frames(avatar.ntexture, iter([avatar.verts, v_new])))
    assert frames[0].rgb.shape == (S, S, 3) and frames[0].rgb.dtype == torch.uint8
    assert not torch.equal(frames[0].alpha, frames[1].alpha)

    n = 5
    turn = [f.rgb.numpy() for f in pipe.frames(avatar.ntexture, pipe.turntable(avatar.verts, avatar.K, n))]
    info = write_mp4(tmp_path / "turntable.mp4", turn)
    back = read_video_info(tmp_path / "turntable.mp4")
    assert (back.num_frames, back.width, back.height) == (n, S, S) and info.num_frames == n
    assert time.perf_counter() - t0 < 60


def test_seeded_runs_are_identical(setup):
    cfg, pipe, sample = setup
    a = pipe.run(sample, pipe.generator(5))
    b = pipe.run(sample, pipe.generator(5))
    c = pipe.run(sample, pipe.generator(6))
    assert torch.equal(a.ntexture, b.ntexture) and torch.equal(a.render.rgb, b.render.rgb)
    assert torch.equal(a.style, b.style)
    assert not torch.equal(a.diffusion_ntexture, c.diffusion_ntexture)


def test_config_checks_and_device():
    with pytest.raises(ValueError, match="renderer.in_channels_ntex"):
        NeuralAvatarConfig.tiny(renderer=NeuralAvatarConfig.tiny().renderer.__class__(in_channels_ntex=20))
    assert NeuralAvatarConfig(device="cpu").resolve_device() == torch.device("cpu")
    auto = NeuralAvatarConfig().resolve_device()
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert NeuralAvatarConfig().texture_channels == 21
