"""dinar train, phase first_stage, at the tiny sizes: views of a synthetic SMPL-X person rendered from four sides;
the texture made from one view learns to render the others (the loss on fixed pairs falls), the run is
reproducible, and the trained networks write a texture set that the vq phase then trains on."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from dinar_core.avatar.config import NeuralAvatarConfig
from dinar_core.avatar.dataset import prepare_sample
from dinar_core.errors import TrainingCheckpointError, TrainingDataError
from dinar_core.training.config import TrainConfig
from dinar_core.training.first_stage import FirstStagePhase, prepare_views, render_loss, texture_set
from dinar_core.training.textures import read_texture_set
from dinar_core.training.trainer import fit_phase, train_phase
from dinar_core.training.weights import read_phase_weights
from tests.helpers.neural_scene import make_scene

NEURAL = NeuralAvatarConfig.tiny()
TRAIN = TrainConfig(max_steps=30, batch_size=4, lr=2e-3, checkpoint_every=30, log_every=5, accelerator="cpu",
                    progress=False)


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    models = tmp_path_factory.mktemp("smplx_models")
    persons, layout = {}, None
    for name, yaws in (("front_back", (0.0, math.pi)), ("sides", (0.0, math.pi / 2, math.pi, 3 * math.pi / 2))):
        samples = []
        for i, yaw in enumerate(yaws):
            scene = make_scene(models, yaw=yaw)
            layout = scene.layout
            with torch.no_grad():
                verts = scene.body(scene.params).vertices @ scene.K.T
            samples.append(prepare_sample(f"{name}_{i}", scene.rgb, scene.segm, verts[0].double().numpy(),
                                          scene.K.double().numpy(), image_size=NEURAL.image_size))
        persons[name] = samples
    return prepare_views(persons, layout, "smplx-test", NEURAL)


def _fixed_loss(module: FirstStagePhase) -> float:
    """The render loss on every (view, other view) pair with the stored generator noise (on a copy: the renderer's
    batch-norm statistics of `module` stay as training left them)."""
    import copy

    module = copy.deepcopy(module)
    v = module.views
    src, tgt = torch.nonzero(module._others, as_tuple=True)
    with torch.no_grad():
        g = torch.Generator().manual_seed(5)
        style = module.encoder(v.input_rgb[src], v.real_segm[src], generator=g)
        from dinar_core.avatar.neural import assemble_ntexture
        from dinar_core.training.first_stage import _pixels

        ntex = assemble_ntexture(module.generator(style, randomize_noise=False), _pixels(v.pixels, src))
        out = module.renderer(ntex, v.uv[tgt], v.uv_mask[tgt])
        return render_loss(out, v.real_rgb[tgt], v.real_segm[tgt], v.uv_mask[tgt], 1.0, None, 0.0).item()


def test_first_stage_learns_is_reproducible_and_feeds_the_vq_phase(views, tmp_path):
    torch.manual_seed(TRAIN.seed)
    module = FirstStagePhase(NEURAL, TRAIN, views)
    before = _fixed_loss(module)
    result = fit_phase(module, tmp_path / "a", NEURAL, TRAIN)
    after = _fixed_loss(module)
    assert after < 0.7 * before, (before, after)
    torch.manual_seed(TRAIN.seed)
    again = fit_phase(FirstStagePhase(NEURAL, TRAIN, views), tmp_path / "b", NEURAL, TRAIN)
    a, b = read_phase_weights(result.weights, "first_stage"), read_phase_weights(again.weights, "first_stage")
    assert a.steps == 30 and {k.split(".")[0] for k in a.state_dict} == {"encoder", "generator", "renderer"}
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    # the trained networks make the texture set of these views, which the next phase reads
    files = texture_set(module.encoder, module.generator, views, tmp_path / "textures")
    assert [f.name for f in files] == ["front_back.npz", "sides.npz"]
    textures = read_texture_set(tmp_path / "textures")
    assert textures.layout == "smplx-test" and textures.channels == NEURAL.texture_channels
    assert [p.views.shape[0] for p in textures.persons] == [2, 4]
    vq = train_phase("vq", tmp_path / "textures", tmp_path / "vq", NEURAL, replace(TRAIN, max_steps=3))
    assert read_phase_weights(vq.weights, "vq", "smplx-test").steps == 3


def test_first_stage_resumed_equals_straight(views, tmp_path):
    from dinar_core.training.trainer import build_first_stage

    cfg = replace(TRAIN, max_steps=6, checkpoint_every=3)
    straight = fit_phase(build_first_stage(views, NEURAL, cfg), tmp_path / "s", NEURAL, cfg)
    resumed = fit_phase(build_first_stage(views, NEURAL, cfg), tmp_path / "r", NEURAL, cfg,
                        resume=tmp_path / "s" / "checkpoints" / "step-0000003.ckpt")
    a, b = read_phase_weights(straight.weights, "first_stage"), read_phase_weights(resumed.weights, "first_stage")
    assert b.steps == 6 and all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_adversarial_first_stage_trains_resumes_and_keeps_its_discriminator(views, tmp_path):
    """With train.adversarial_weight > 0: a discriminator step per training step (R1 every r1_every), renders under
    random rotations judged too; the run is reproducible, resumes exactly, and writes the discriminator."""
    import csv

    from dinar_core.training.trainer import build_first_stage

    cfg = replace(TRAIN, max_steps=6, checkpoint_every=3, log_every=1, adversarial_weight=0.1, r1_every=2)
    straight = fit_phase(build_first_stage(views, NEURAL, cfg), tmp_path / "s", NEURAL, cfg)
    a = read_phase_weights(straight.weights, "first_stage")
    assert a.steps == 6 and any(k.startswith("discriminator.") for k in a.state_dict)
    rows = list(csv.DictReader(straight.metrics.open()))
    d_losses = [float(r["d_loss"]) for r in rows if r.get("d_loss")]
    assert len(d_losses) == 6 and all(math.isfinite(x) for x in d_losses)
    halfway = tmp_path / "s" / "checkpoints" / "step-0000006.ckpt"  # 3 training steps = 6 optimiser steps
    resumed = fit_phase(build_first_stage(views, NEURAL, cfg), tmp_path / "r", NEURAL, cfg, resume=halfway)
    b = read_phase_weights(resumed.weights, "first_stage")
    assert b.steps == 6 and all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    plain = read_phase_weights(fit_phase(build_first_stage(views, NEURAL, replace(cfg, adversarial_weight=0.0)),
                                         tmp_path / "p", NEURAL, replace(cfg, adversarial_weight=0.0)).weights,
                               "first_stage")
    key = next(k for k in plain.state_dict if k.startswith("renderer."))  # the adversarial terms changed it
    assert not torch.equal(plain.state_dict[key], a.state_dict[key])


def test_single_view_persons_are_refused(views):
    one = {"solo": []}
    with pytest.raises(TrainingDataError, match="fewer than 2 views: solo"):
        prepare_views(one, None, "x", NEURAL)


def test_cli_trains_the_whole_chain_on_a_synth_dataset(tmp_path):
    """dinar synth -> dinar train first_stage (writes the texture set) -> vq -> diffusion, at the tiny sizes."""
    from typer.testing import CliRunner

    from flows.cli import app
    from tasks.synth import synth_dataset

    synth_dataset(tmp_path / "synth", persons=2, views=3, seed=0, size=128)
    tiny = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml")
    runner = CliRunner()
    res = runner.invoke(app, ["train", "first_stage", "--data", str(tmp_path / "synth"), "--out",
                              str(tmp_path / "fs"), "-c", tiny, "--set", "train.max_steps=3"])
    assert res.exit_code == 0, res.output
    fs = read_phase_weights(tmp_path / "fs" / "first_stage.pt", "first_stage", "anny")
    assert fs.steps == 3
    textures = read_texture_set(tmp_path / "fs" / "textures")
    assert len(textures.persons) == 2 and textures.layout == "anny"
    assert all(p.views.shape[0] == 3 and float(p.complete[-2].mean()) > 0.2 for p in textures.persons)
    for phase, extra in (("vq", []), ("diffusion", ["--set", f"train.vq_weights={tmp_path / 'vq' / 'vq.pt'}"])):
        res = runner.invoke(app, ["train", phase, "--data", str(tmp_path / "fs" / "textures"), "--out",
                                  str(tmp_path / phase), "-c", tiny, "--set", "train.max_steps=3", *extra])
        assert res.exit_code == 0, res.output
    assert read_phase_weights(tmp_path / "diffusion" / "diffusion.pt", "diffusion", "anny").steps == 3


def test_trained_phases_export_to_dinars_key_layout_and_load_back(views, tmp_path):
    """first_stage.pt + diffusion.pt -> DinarModel -> DINAR's checkpoint layout -> load_dinar_checkpoint: every
    tensor equal; a model of another layout is refused."""
    from dinar_core.compat.checkpoint import load_dinar_checkpoint
    from dinar_core.nets.dinar import DinarModel
    from dinar_core.training.bundle import build_model, bundle_weights, export_dinar_checkpoint
    from dinar_core.training.first_stage import texture_set
    from dinar_core.training.trainer import build_first_stage

    cfg = replace(TRAIN, max_steps=2)
    dinar_views = replace(views, layout="smplx-dinar")
    module = build_first_stage(dinar_views, NEURAL, cfg)
    fs = fit_phase(module, tmp_path / "fs", NEURAL, cfg).weights
    with torch.no_grad():
        texture_set(module.encoder, module.generator, dinar_views, tmp_path / "tex")
    vq = train_phase("vq", tmp_path / "tex", tmp_path / "vq", NEURAL, cfg).weights
    df = train_phase("diffusion", tmp_path / "tex", tmp_path / "df", NEURAL,
                     replace(cfg, vq_weights=str(vq))).weights
    F, U = NEURAL.uv_layout.num_faces, NEURAL.uv_layout.num_uv_verts
    g = torch.Generator().manual_seed(0)
    uv_faces, uv = torch.randint(0, U, (F, 3), generator=g), torch.rand(U, 2, generator=g)
    bundle = read_phase_weights(bundle_weights(fs, df, tmp_path / "model.pt"), "model", "smplx-dinar")
    model = build_model(bundle, NEURAL, uv_faces, uv)
    ckpt = export_dinar_checkpoint(model, bundle.layout, tmp_path / "dinar.ckpt", steps=2)
    back = DinarModel(replace(NEURAL.dinar_config(with_discriminator=False), keep_training_unet=True))
    report = load_dinar_checkpoint(ckpt, back)
    assert report.num_loaded > 0 and not report.unused
    mine, theirs = model.state_dict(), back.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    trained = read_phase_weights(df, "diffusion").state_dict
    assert torch.equal(theirs["unet.out.2.weight"], trained["unet.out.2.weight"])  # EMA
    assert torch.equal(theirs["unet_train.out.2.weight"], trained["unet_train.out.2.weight"])  # raw
    with pytest.raises(TrainingCheckpointError, match="UV layout 'anny'"):
        export_dinar_checkpoint(model, "anny", tmp_path / "x.ckpt")
    with pytest.raises(TrainingCheckpointError, match="phase 'model', not of 'first_stage'"):
        bundle_weights(tmp_path / "model.pt", df, tmp_path / "y.pt")
