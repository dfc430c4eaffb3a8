"""The compat key table is one table read both ways: what ``to_dinar_state_dict`` writes, ``plan_dinar_keys``
maps back onto every model key exactly once."""

import dataclasses

import torch
from torch import nn

from dinar_core.compat.keys import KEY_TABLE, plan_dinar_keys, rule_for, to_dinar_state_dict
from dinar_core.nets.dinar import DinarConfig, DinarModel, UVLayoutConfig
from dinar_core.nets.unet import UNetConfig
from dinar_core.nets.vq import VQConfig

TINY = DinarConfig(
    encoder=None, generator=None, renderer=None,  # injected
    compress_branch=VQConfig(base_channels=16, channel_mult=(1, 2), num_res_blocks=1, n_embed=32, resolution=16),
    unet=UNetConfig(model_channels=16, channel_mult=(1, 2), attention_resolutions=(2,), num_heads=2),
    uv_layout=UVLayoutConfig(num_faces=6, num_uv_verts=5),
)


def _model(cfg: DinarConfig = TINY, **kw) -> DinarModel:
    parts = {name: nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)) for name in ("encoder", "generator", "renderer")}
    return DinarModel(cfg, **parts, **kw)


def test_written_keys_read_back_onto_every_model_key_once():
    model = _model(dataclasses.replace(TINY, keep_training_unet=True), discriminator=nn.Conv2d(3, 1, 1))
    written = to_dinar_state_dict(model)
    plan = plan_dinar_keys(list(written), model)
    assert plan.unplaced == [] and plan.unused == {} and plan.duplicates == []
    own = model.state_dict()
    assert sorted(plan.targets.values()) == sorted(own)
    assert all(written[k].shape == own[v].shape for k, v in plan.targets.items())


def test_optional_parts_are_unused_when_read_and_fall_back_when_written():
    model = _model()  # no training UNet, no discriminator
    written = to_dinar_state_dict(model)
    assert not any(k.startswith("first_stage.discriminator.") for k in written)
    sd = dict(written, **{"first_stage.discriminator.convs.0.0.weight": torch.zeros(1)})
    plan = plan_dinar_keys(list(sd), model)
    assert set(plan.unused) == {k for k in sd if k.startswith(("model.", "first_stage.discriminator."))}
    assert sorted(plan.targets.values()) == sorted(model.state_dict())


def test_exact_keys_win_over_prefixes_and_legacy_names_are_read_only():
    assert rule_for("model_ema.decay").ours == "ema_decay"
    assert rule_for("model_ema.out2bias").ours == "unet." and rule_for("model.out.2.bias").ours == "unet_train."
    assert rule_for("first_stage.vq_branch.quant_conv.bias").legacy
    assert rule_for("first_stage.extra.weight") is None
    assert [r.dinar for r in KEY_TABLE].count("first_stage.vq_branch.") == 1
