"""Denoising UNet: shapes, DINAR's quirks (preproc on the last channels, cos/sin embedding, legacy attention
heads) and DINAR's key layout."""

from __future__ import annotations

import math

import pytest
import torch

from dinar_core.nets.unet import AttentionBlock, UNet, UNetConfig, timestep_embedding
from tests.helpers.reference import reference_shapes as _reference

TINY = UNetConfig(image_size=8, model_channels=16, channel_mult=(1, 2), attention_resolutions=(2,), num_heads=2)


def test_full_size_keys_and_shapes_equal_dinar():
    ref = _reference("model.")
    with torch.device("meta"):
        unet = UNet()
    ours = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    assert ours == ref
    assert list(ours) == list(ref)


def _randomise(m: torch.nn.Module) -> None:
    # DINAR zero-initialises the last convs; random weights make the tests sensitive to every layer.
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.2)


def test_forward_shapes_and_errors():
    torch.manual_seed(0)
    unet = UNet(TINY).eval()
    _randomise(unet)
    x, c = torch.randn(2, 6, 8, 8), torch.randn(2, 7, 8, 8)
    eps = unet(x, torch.tensor([3, 900]), c)
    assert eps.shape == (2, 6, 8, 8)
    torch.testing.assert_close(unet(x, torch.tensor(5), c), unet(x, torch.tensor([5, 5]), c))
    with pytest.raises(ValueError, match="13 channels"):
        unet(x, torch.tensor([1, 1]), c[:, :6])
    with pytest.raises(ValueError, match="divisible"):
        unet(torch.randn(1, 6, 7, 7), torch.tensor([1]), torch.randn(1, 7, 7, 7))


def test_timestep_matters_and_embedding_is_cos_first():
    t = torch.tensor([0, 7, 500])
    emb = timestep_embedding(t, 16)
    torch.testing.assert_close(emb[:, 0], torch.cos(t.float()))
    torch.testing.assert_close(emb[:, 8], torch.sin(t.float()))
    torch.testing.assert_close(emb[:, 1], torch.cos(t.float() * math.exp(-math.log(10000) / 8)))
    torch.manual_seed(0)
    unet = UNet(TINY).eval()
    _randomise(unet)
    x, c = torch.randn(1, 6, 8, 8), torch.randn(1, 7, 8, 8)
    assert not torch.allclose(unet(x, torch.tensor([10]), c), unet(x, torch.tensor([800]), c))


def test_preproc_acts_on_last_channels_of_the_13_channel_input():
    torch.manual_seed(0)
    unet = UNet(TINY).eval()
    seen = {}
    unet.preproc_rgb.register_forward_hook(lambda m, inp, out: seen.__setitem__("rgb", inp[0].clone()))
    unet.preproc_segm.register_forward_hook(lambda m, inp, out: seen.__setitem__("segm", inp[0].clone()))
    x, c = torch.randn(1, 6, 8, 8), torch.randn(1, 7, 8, 8)
    unet(x, torch.tensor([1]), c)
    full = torch.cat([x, c], dim=1)
    assert torch.equal(seen["rgb"], full[:, 8:11])
    assert torch.equal(seen["segm"], full[:, 11:13])


def test_attention_uses_legacy_head_layout():
    torch.manual_seed(0)
    blk = AttentionBlock(16, num_heads=2, num_head_channels=-1, groups=8)
    with torch.no_grad():
        blk.proj_out.weight.normal_()
    x = torch.randn(2, 16, 3, 3)
    with torch.no_grad():
        xf = x.reshape(2, 16, 9)
        qkv = blk.qkv(blk.norm(xf))  # per head: q (8 ch), k (8 ch), v (8 ch) contiguous
        outs = []
        for h in range(2):
            q, k, v = qkv[:, 24 * h: 24 * h + 8], qkv[:, 24 * h + 8: 24 * h + 16], qkv[:, 24 * h + 16: 24 * h + 24]
            w = torch.softmax(torch.einsum("bct,bcs->bts", q, k) / math.sqrt(8), dim=-1)
            outs.append(torch.einsum("bts,bcs->bct", w, v))
        expected = (xf + blk.proj_out(torch.cat(outs, dim=1))).reshape(2, 16, 3, 3)
        torch.testing.assert_close(blk(x), expected, rtol=1e-5, atol=1e-5)


def test_conv_resampling_variant_builds_and_runs():
    cfg = UNetConfig(model_channels=16, channel_mult=(1, 2), attention_resolutions=(), num_heads=2,
                     resblock_updown=False, preproc_input=False, use_scale_shift_norm=True)
    unet = UNet(cfg).eval()
    assert "input_blocks.3.0.op.weight" in unet.state_dict()
    assert unet(torch.randn(1, 6, 8, 8), torch.tensor([2]), torch.randn(1, 7, 8, 8)).shape == (1, 6, 8, 8)
