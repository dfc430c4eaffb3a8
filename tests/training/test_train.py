"""dinar train: each phase at the tiny sizes on a seeded texture set learns (its loss on a fixed batch falls), two
seeded runs are bit-identical, a resumed run equals a straight one, and bad data or checkpoints are named errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dinar_core.avatar.config import NeuralAvatarConfig
from dinar_core.errors import (MissingModelError, NotACheckpointError, TrainingCheckpointError, TrainingDataError)
from dinar_core.training.config import TrainConfig
from dinar_core.training.textures import merge_textures, read_texture_set
from dinar_core.training.trainer import build_phase, train_phase
from dinar_core.training.weights import read_phase_weights
from tests.helpers.texture_sets import write_texture_set

NEURAL = NeuralAvatarConfig.tiny()
TRAIN = TrainConfig(max_steps=40, batch_size=4, lr=1e-3, ema_decay=0.9, checkpoint_every=20, log_every=5,
                    accelerator="cpu", progress=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_texture_set(tmp_path_factory.mktemp("texset") / "data")


@pytest.fixture(scope="module")
def vq_weights(data, tmp_path_factory) -> Path:
    return train_phase("vq", data, tmp_path_factory.mktemp("vq"), NEURAL, TRAIN).weights


def _config(phase: str, vq_weights: Path) -> TrainConfig:
    return replace(TRAIN, vq_weights=str(vq_weights)) if phase == "diffusion" else TRAIN


def _fixed_batch_loss(phase: str, module, state: dict[str, torch.Tensor]) -> float:
    """The phase's loss on all its samples with fixed draws, for the weights in `state` (``<phase>.pt`` tensors)."""
    from dinar_core.training.diffusion import eps_loss
    from dinar_core.training.vq import vq_loss

    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        if phase == "vq":
            module.compress_branch.load_state_dict({k[16:]: v for k, v in state.items()
                                                    if k.startswith("compress_branch.")})
            return vq_loss(module.compress_branch, module.samples, 1.0).item()
        module.unet.load_state_dict({k[11:]: v for k, v in state.items() if k.startswith("unet_train.")})
        x0, cond = module.pairs.x0, module.pairs.cond
        t = torch.randint(0, module.schedule.num_timesteps, (x0.shape[0],), generator=g)
        return eps_loss(module.unet, module.schedule, x0, cond, t, torch.randn(x0.shape, generator=g)).item()


def test_merge_textures_weights_the_squarest_view():
    views = torch.zeros(2, 6, 1, 3)
    views[0, 0], views[1, 0] = 1.0, 3.0
    views[0, -2, 0] = torch.tensor([1.0, 1.0, 0.0])  # view 0 knows texels 0 and 1
    views[1, -2, 0] = torch.tensor([1.0, 0.0, 0.0])  # view 1 knows texel 0 only
    cos = torch.tensor([[[0.9, 0.2, 1.0]], [[0.7, 1.0, 1.0]]])
    merged = merge_textures(views, cos)
    w0 = torch.softmax(torch.tensor([9.0, 7.0]), 0)[0].item()  # softmax(10 * cos) over the views that know texel 0
    assert merged[0, 0, 0].item() == pytest.approx(w0 * 1.0 + (1 - w0) * 3.0, rel=1e-6)
    assert merged[0, 0, 1].item() == pytest.approx(1.0)  # only view 0 knows it, whatever its cosine
    assert merged[0, 0, 2].item() == 0.0 and merged[-2, 0].tolist() == [1.0, 1.0, 0.0]


@pytest.mark.parametrize("phase", ["vq", "diffusion"])
def test_each_phase_learns_and_is_reproducible(phase, data, vq_weights, tmp_path):
    """Loss on a fixed batch falls over 40 steps; a second seeded run writes bit-identical weights."""
    cfg = _config(phase, vq_weights)
    first = read_phase_weights(train_phase(phase, data, tmp_path / "a", NEURAL, cfg).weights, phase)
    again = read_phase_weights(train_phase(phase, data, tmp_path / "b", NEURAL, cfg).weights, phase)
    assert first.steps == 40 and first.layout == "anny" and first.untrained == ()
    assert first.state_dict.keys() == again.state_dict.keys()
    assert all(torch.equal(first.state_dict[k], again.state_dict[k]) for k in first.state_dict)
    module = build_phase(phase, data, NEURAL, cfg)
    before = _fixed_batch_loss(phase, module, {f"{p}.{k}": v for p, m in (("compress_branch", getattr(
        module, "compress_branch")), ("unet_train", getattr(module, "unet", torch.nn.Module())))
        for k, v in m.state_dict().items()})
    after = _fixed_batch_loss(phase, module, first.state_dict)
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("phase", ["vq", "diffusion"])
def test_resumed_run_equals_a_straight_one(phase, data, vq_weights, tmp_path):
    cfg = _config(phase, vq_weights)
    straight = train_phase(phase, data, tmp_path / "straight", NEURAL, cfg)
    halfway = tmp_path / "straight" / "checkpoints" / "step-0000020.ckpt"
    assert halfway.is_file()
    resumed = train_phase(phase, data, tmp_path / "resumed", NEURAL, cfg, resume=halfway)
    a, b = read_phase_weights(straight.weights, phase), read_phase_weights(resumed.weights, phase)
    assert b.steps == 40
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    if phase == "diffusion":  # the EMA is part of the resumed state (it differs from the raw weights)
        assert not torch.equal(a.state_dict["unet.out.2.weight"], a.state_dict["unet_train.out.2.weight"])


def test_bad_data_and_checkpoints_are_named_errors(data, vq_weights, tmp_path):
    single = write_texture_set(tmp_path / "single", persons=2, views=1)
    with pytest.raises(TrainingDataError, match="has 1 view.*at least 2 per person"):
        build_phase("diffusion", single, NEURAL, _config("diffusion", vq_weights))
    mixed = write_texture_set(tmp_path / "mixed", persons=2)
    write_texture_set(tmp_path / "other", persons=1, layout="smplx-dinar")
    (tmp_path / "other" / "p0.npz").rename(mixed / "q0.npz")
    with pytest.raises(TrainingDataError, match="layout 'smplx-dinar'.*one UV layout"):
        read_texture_set(mixed)
    small = write_texture_set(tmp_path / "small", persons=2, size=16)
    with pytest.raises(TrainingDataError, match="configured for 21 channels at 32 px"):
        build_phase("vq", small, NEURAL, TRAIN)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "p.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(TrainingDataError, match="p.npz"):
        read_texture_set(tmp_path / "junk")
    with pytest.raises(MissingModelError, match="train.vq_weights"):
        build_phase("diffusion", data, NEURAL, TRAIN)
    # the VQ weights of the wrong phase, of another layout, or a damaged file
    diffusion = train_phase("diffusion", data, tmp_path / "d", NEURAL,
                            replace(TRAIN, max_steps=2, vq_weights=str(vq_weights))).weights
    with pytest.raises(TrainingCheckpointError, match="phase 'diffusion', not of 'vq'"):
        build_phase("diffusion", data, NEURAL, replace(TRAIN, vq_weights=str(diffusion)))
    smplx = write_texture_set(tmp_path / "smplx", persons=2, layout="smplx-dinar")
    with pytest.raises(TrainingCheckpointError, match="UV layout 'anny', this data is 'smplx-dinar'"):
        build_phase("diffusion", smplx, NEURAL, replace(TRAIN, vq_weights=str(vq_weights)))
    (tmp_path / "cut.pt").write_bytes(vq_weights.read_bytes()[:3000])
    with pytest.raises(NotACheckpointError, match="cut.pt"):
        build_phase("diffusion", data, NEURAL, replace(TRAIN, vq_weights=str(tmp_path / "cut.pt")))
    # resuming from a checkpoint of another phase, or from a damaged one
    other = tmp_path / "d" / "checkpoints" / "last.ckpt"
    with pytest.raises(TrainingCheckpointError, match="phase 'diffusion'.*this run trains phase 'vq'"):
        train_phase("vq", data, tmp_path / "v", NEURAL, TRAIN, resume=other)
    (tmp_path / "bad.ckpt").write_bytes(other.read_bytes()[:5000])
    with pytest.raises(TrainingCheckpointError, match="bad.ckpt"):
        train_phase("diffusion", data, tmp_path / "v", NEURAL, _config("diffusion", vq_weights),
                    resume=tmp_path / "bad.ckpt")


def test_two_ddp_processes_follow_one_process_on_the_same_global_batch(data, tmp_path):
    """2 CPU processes (gloo, ddp_spawn) of batch 2 against 1 of batch 4: the same samples, timesteps and noise
    per step (drawn for the global batch, sliced per rank), so the logged loss (averaged over the processes) and
    the weights agree up to the order of float sums: within 1e-5."""
    import csv

    cfg = replace(TRAIN, max_steps=8, log_every=1, allow_untrained=True)
    one = train_phase("diffusion", data, tmp_path / "one", NEURAL, cfg)
    two = train_phase("diffusion", data, tmp_path / "two", NEURAL,
                      replace(cfg, batch_size=2, devices=2, strategy="ddp_spawn"))

    def curve(path):
        return [float(row["loss"]) for row in csv.DictReader(path.open()) if row.get("loss")]

    a, b = curve(one.metrics), curve(two.metrics)
    assert len(a) == len(b) == 8 and a[0] != a[-1]
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-5, (a, b)
    wa, wb = read_phase_weights(one.weights, "diffusion"), read_phase_weights(two.weights, "diffusion")
    assert max((wa.state_dict[k] - wb.state_dict[k]).abs().max().item()
               for k in wa.state_dict if wa.state_dict[k].is_floating_point()) < 1e-5


def test_cli_trains_both_phases_in_order(data, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    tiny = Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml"
    res = runner.invoke(app, ["train", "vq", "--data", str(data), "--out", str(tmp_path / "vq"), "-c", str(tiny),
                              "--set", "train.max_steps=4"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "vq" / "vq.pt").is_file() and (tmp_path / "vq" / "vq.config.yaml").is_file()
    res = runner.invoke(app, ["train", "diffusion", "--data", str(data), "--out", str(tmp_path / "d"), "-c",
                              str(tiny), "--set", "train.max_steps=4"])
    assert res.exit_code != 0 and "MissingModelError" in res.output and "train.vq_weights" in res.output
    res = runner.invoke(app, ["train", "diffusion", "--data", str(data), "--out", str(tmp_path / "d"), "-c",
                              str(tiny), "--set", "train.max_steps=4", "--set",
                              f"train.vq_weights={tmp_path / 'vq' / 'vq.pt'}"])
    assert res.exit_code == 0, res.output
    w = read_phase_weights(tmp_path / "d" / "diffusion.pt", "diffusion", "anny")
    assert w.steps == 4 and w.train["vq_weights"].endswith("vq.pt") and w.neural["texture_size"] == 32
    res = runner.invoke(app, ["train", "gan", "--data", str(data), "--out", str(tmp_path / "g")])
    assert res.exit_code != 0 and "unknown phase" in res.output


def test_latents_are_scaled_to_unit_std_and_decode_as_before(data, vq_weights):
    """train.scale_by_std: the diffusion phase's latents have std 1, its VQ decodes a scaled latent exactly as the
    trained VQ decodes the unscaled one; off, the latents are the trained VQ's own (far from std 1 here)."""
    from dinar_core.nets.vq import VQModel, scale_latents

    scaled = build_phase("diffusion", data, NEURAL, _config("diffusion", vq_weights))
    plain = build_phase("diffusion", data, NEURAL, replace(_config("diffusion", vq_weights), scale_by_std=False))
    assert abs(float(scaled.pairs.x0.std()) - 1.0) < 1e-4
    s = scaled.latent_scale
    assert abs(float(plain.pairs.x0.std()) * s - 1.0) < 1e-4 and not 0.5 < s < 2  # a real rescale, not a no-op
    torch.testing.assert_close(scaled.pairs.x0, plain.pairs.x0 * s, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(scaled.pairs.cond[:, :-1], plain.pairs.cond[:, :-1] * s, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(scaled.pairs.cond[:, -1], plain.pairs.cond[:, -1])  # the mask is not scaled
    z = plain.pairs.x0[:2]
    with torch.no_grad():
        torch.testing.assert_close(scaled.compress_branch.decode(z * s), plain.compress_branch.decode(z),
                                   rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="positive"):
        scale_latents(VQModel(NEURAL.vq), 0.0)


def _generated_lpips(path: Path) -> Path:
    from dinar_core.avatar.lpips import LPIPSVGG

    torch.manual_seed(0)
    net = LPIPSVGG()
    for p in net.parameters():
        p.data.normal_(0, 0.05).abs_()
    torch.save({k: v for k, v in net.state_dict().items() if not k.startswith("scaling_layer")}, path)
    return path


def test_vq_perceptual_and_adversarial_terms(data, tmp_path):
    """train.lpips_weights: LPIPS of the RGB channels joins the vq loss; train.vq_adversarial_weight > 0: a
    PatchGAN discriminator judges from vq_adversarial_start on, the run resumes exactly, vq.pt keeps the
    discriminator and the diffusion phase still reads it."""
    import csv
    import math

    from dinar_core.training.vq import vq_loss

    lp = replace(TRAIN, lpips_weights=str(_generated_lpips(tmp_path / "vgg.pth")))
    module = build_phase("vq", data, NEURAL, lp)
    x = module.samples[:4]
    with torch.no_grad():
        plain = vq_loss(module.compress_branch, x, 1.0)
        perceptual = vq_loss(module.compress_branch, x, 1.0, module.lpips, 1.0)
    assert perceptual > plain + 1e-4

    cfg = replace(lp, max_steps=8, checkpoint_every=4, log_every=1, vq_adversarial_weight=0.5,
                  vq_adversarial_start=2, vq_discriminator_channels=8, vq_discriminator_layers=2)
    straight = train_phase("vq", data, tmp_path / "s", NEURAL, cfg)
    a = read_phase_weights(straight.weights, "vq")
    assert a.steps == 8 and any(k.startswith("discriminator.") for k in a.state_dict)
    d_losses = [float(r["d_loss"]) for r in csv.DictReader(straight.metrics.open()) if r.get("d_loss")]
    assert len(d_losses) == 6 and all(math.isfinite(v) for v in d_losses)  # steps 2..7
    halfway = tmp_path / "s" / "checkpoints" / "step-0000008.ckpt"  # 4 training steps = 8 optimiser steps
    resumed = read_phase_weights(train_phase("vq", data, tmp_path / "r", NEURAL, cfg, resume=halfway).weights, "vq")
    assert all(torch.equal(a.state_dict[k], resumed.state_dict[k]) for k in a.state_dict)
    no_adv = read_phase_weights(train_phase("vq", data, tmp_path / "n", NEURAL,
                                            replace(cfg, vq_adversarial_weight=0.0)).weights, "vq")
    key = "compress_branch.decoder.conv_out.weight"
    assert key in a.state_dict and not torch.equal(no_adv.state_dict[key], a.state_dict[key])
    diffusion = build_phase("diffusion", data, NEURAL, replace(TRAIN, vq_weights=str(straight.weights)))
    assert diffusion.pairs.x0.shape[0] > 0
