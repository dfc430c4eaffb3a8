"""VQ autoencoder: shapes, quantisation, DINAR's output heads, attention, and DINAR's key layout."""

from __future__ import annotations


import pytest
import torch

from dinar_core.nets.vq import AttnBlock, VQConfig, VQModel
from tests.helpers.reference import reference_shapes as _reference

TINY = VQConfig(base_channels=16, channel_mult=(1, 2), num_res_blocks=1, n_embed=32, resolution=32)


def test_full_size_keys_and_shapes_equal_dinar():
    ref = _reference("first_stage.compress_branch.")
    with torch.device("meta"):
        model = VQModel()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == ref
    assert list(ours) == list(ref)  # same order as DINAR's module


def test_encode_decode_shapes():
    torch.manual_seed(0)
    m = VQModel(TINY).eval()
    x = torch.randn(2, 21, 32, 32)
    z = m.encode(x)
    assert z.shape == (2, 6, 16, 16)
    assert m.decode(z).shape == (2, 21, 32, 32)
    with pytest.raises(ValueError, match=r"\(B, 21, H, W\)"):
        m.encode(torch.randn(1, 20, 32, 32))
    with pytest.raises(ValueError, match="expected"):
        m.decode(torch.randn(1, 5, 16, 16))


def test_encode_is_continuous_and_decode_quantises_first():
    torch.manual_seed(0)
    m = VQModel(TINY).eval()
    with torch.no_grad():
        m.quantize.embedding.weight.normal_()
        z = m.encode(torch.randn(1, 21, 32, 32))
        codes = m.quantize.embedding.weight
        # brute-force nearest codebook vector per latent position
        flat = z.permute(0, 2, 3, 1).reshape(-1, 6)
        idx = torch.cdist(flat, codes).argmin(dim=1)
        zq = codes[idx].reshape(1, 16, 16, 6).permute(0, 3, 1, 2)
        assert not torch.allclose(z, zq)  # encode did not quantise
        torch.testing.assert_close(m.decode(z), m.decode_quantized(zq), rtol=1e-5, atol=1e-5)
        q = m.quantize(z)
        assert torch.equal(q.indices.flatten(), idx)


def test_rgb_and_mask_heads_act_on_their_channels_only():
    torch.manual_seed(0)
    m = VQModel(TINY).eval()
    z = torch.randn(1, 6, 16, 16)
    with torch.no_grad():
        before = m.decode(z)
        m.decoder.rgb_proc[2].weight.zero_()
        m.decoder.rgb_proc[2].bias.fill_(5.0)
        m.decoder.segm_proc[2].weight.zero_()
        m.decoder.segm_proc[2].bias.fill_(-3.0)
        after = m.decode(z)
    assert torch.equal(after[:, :16], before[:, :16])
    assert torch.all(after[:, 16:19] == 5.0)
    assert torch.all(after[:, 19:21] == -3.0)


def test_attention_equals_taming_formula():
    torch.manual_seed(0)
    blk = AttnBlock(16, groups=8)
    x = torch.randn(2, 16, 4, 5)
    with torch.no_grad():
        h = blk.norm(x)
        q = blk.q(h).reshape(2, 16, 20).permute(0, 2, 1)
        k = blk.k(h).reshape(2, 16, 20)
        w = torch.softmax(torch.bmm(q, k) * 16**-0.5, dim=2)
        v = blk.v(h).reshape(2, 16, 20)
        expected = x + blk.proj_out(torch.bmm(v, w.permute(0, 2, 1)).reshape(2, 16, 4, 5))
        torch.testing.assert_close(blk(x), expected, rtol=1e-5, atol=1e-5)


def test_config_validation():
    with pytest.raises(ValueError, match="out_channels"):
        VQConfig(out_channels=4)
    with pytest.raises(ValueError, match="norm_groups"):
        VQConfig(base_channels=20)
