"""Neural renderer: DINAR's keys and shapes, texture sampling, hard segmentation, background and transparency."""

from __future__ import annotations


import pytest
import torch

from dinar_core.compat.first_stage import DinarRenderer, build_renderer, renderer_config_from_params
from dinar_core.compat.registry import BUILDERS, load_strict
from dinar_core.errors import CheckpointError
from dinar_core.nets.renderer import NeuralRenderer, RendererConfig, sample_texture, transparency
from tests.helpers.reference import reference_shapes as _reference


TINY = RendererConfig(in_channels_ntex=21, ngf=8, n_downsampling=2, n_blocks=1)
TINY_PARAMS = {"in_channels_ntex": 21, "segm_channels": 1, "ngf": 8, "n_downsampling": 2, "n_blocks": 1}


@pytest.mark.parametrize("build", [lambda: NeuralRenderer(RendererConfig()),
                                   lambda: build_renderer({"in_channels_ntex": 21, "segm_channels": 1})])
def test_full_size_keys_and_shapes_equal_dinar(build):
    ref = _reference("first_stage.renderer.")
    with torch.device("meta"):
        module = build()
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == ref


def _inputs(b: int = 2, size: int = 32, tex: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, 1, size, size)
    mask[:, :, 8:24, 10:22] = 1.0  # a "body" in the middle
    uv = torch.rand(b, 2, size, size, generator=g) * 2 - 1
    uv = uv * mask + (-10.0) * (1 - mask)  # DINAR's rasteriser: background uv = -10
    return torch.randn(b, 21, tex, tex, generator=g), uv, mask


def _renderer(config: RendererConfig = TINY, segm_bias: float | None = None) -> NeuralRenderer:
    torch.manual_seed(1)
    r = NeuralRenderer(config).eval()
    if segm_bias is not None:
        with torch.no_grad():  # push the soft mask to ~0 everywhere, so only the hard segmentation shows
            r.segm_head[-2].weight.zero_()
            r.segm_head[-2].bias.fill_(segm_bias)
    return r


def test_output_shapes_and_ranges():
    with torch.no_grad():
        out = _renderer()(*_inputs())
    assert out.rgb.shape == (2, 3, 32, 32) and out.segm.shape == (2, 1, 32, 32)
    assert out.foreground.shape == (2, 3, 32, 32)
    assert out.rgb.min() >= -1 and out.rgb.max() <= 1
    assert out.segm.min() >= 0 and out.segm.max() <= 1


def test_hard_segmentation_and_white_default_background():
    tex, uv, mask = _inputs()
    with torch.no_grad():
        out = _renderer(segm_bias=-100.0)(tex, uv, mask)
    body, bg = mask.bool().expand_as(out.segm), ~mask.bool().expand_as(out.segm)
    assert torch.all(out.segm[body] == 1.0)  # segm_fg = clamp(segm + uv_mask, 0, 1)
    assert out.segm[bg].max() < 1e-6
    body3, bg3 = mask.bool().expand_as(out.rgb), ~mask.bool().expand_as(out.rgb)
    assert torch.allclose(out.rgb[body3], out.foreground[body3], atol=1e-6)  # opaque body: the predicted colour
    assert torch.allclose(out.rgb[bg3], torch.ones_like(out.rgb[bg3]), atol=1e-5)  # white in [-1, 1]


def test_custom_background_and_soft_mask_without_hardsegm():
    tex, uv, mask = _inputs()
    background = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        out = _renderer(segm_bias=-100.0)(tex, uv, mask, background=background)
        soft = _renderer(RendererConfig(**{**TINY.__dict__, "hardsegm": False}), segm_bias=-100.0)(tex, uv, mask)
    bg3 = ~mask.bool().expand_as(out.rgb)
    assert torch.allclose(out.rgb[bg3], (background * 2 - 1).expand_as(out.rgb)[bg3], atol=1e-5)
    assert soft.segm.max() < 1e-6  # without hardsegm the body is not forced opaque


def test_texture_sampling_hits_texels_and_zeroes_background():
    tex = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    # texel (row 1, col 3) of a 4x4 texture sits at u = 2*3/3 - 1 = 1, v = 2*1/3 - 1 (align_corners=True)
    uv = torch.full((1, 2, 2, 2), -10.0)
    uv[0, :, 0, 0] = torch.tensor([1.0, -1.0 / 3.0])
    mask = torch.zeros(1, 1, 2, 2)
    mask[0, 0, 0, 0] = 1.0
    out = sample_texture(tex, uv, mask)
    assert torch.allclose(out[0, :, 0, 0], tex[0, :, 1, 3])
    assert torch.all(out[0, :, 1, :] == 0) and torch.all(out[0, :, 0, 1] == 0)


def test_transparency_curves():
    s = torch.linspace(0, 1, 101).view(1, 1, 1, 101)
    assert torch.equal(transparency(s, 0.0, True), s)
    exp = transparency(s, 0.5, True)
    assert torch.all(exp[s <= 0.5] == 0)
    assert torch.allclose(exp[s >= 0.8], torch.ones_like(exp[s >= 0.8]))
    assert torch.all(exp.diff(dim=-1) >= -1e-6)  # monotone fade-in
    assert 0 < exp[0, 0, 0, 55].item() < 1  # smooth just above the threshold
    hard = transparency(s, 0.5, False)
    assert torch.all(hard[s < 0.5] == 0) and torch.equal(hard[s >= 0.5], s[s >= 0.5])


def test_threshold_override_changes_only_the_soft_region():
    tex, uv, mask = _inputs()
    r = _renderer(RendererConfig(**{**TINY.__dict__, "hardsegm": False}))
    with torch.no_grad():
        base, cut = r(tex, uv, mask), r(tex, uv, mask, segm_threshold=0.99)
    assert torch.all(cut.segm <= base.segm + 1e-6)
    assert (cut.segm == 0).sum() > (base.segm == 0).sum()


def test_input_validation():
    tex, uv, mask = _inputs(size=30)
    with pytest.raises(ValueError, match="divisible"):
        _renderer()(tex, uv, mask)
    tex, uv, mask = _inputs()
    with pytest.raises(ValueError, match="ntexture"):
        _renderer()(tex[:, :20], uv, mask)
    with pytest.raises(ValueError, match="uv_mask"):
        _renderer()(tex, uv, mask[:, :, :16])


# ------------------------------------------------------------------------------------------- compat adapter


def test_dinar_renderer_round_trip():
    torch.manual_seed(2)
    r = BUILDERS["renderers.pix2pix.Renderer"](TINY_PARAMS).eval()
    assert isinstance(r, DinarRenderer)
    tex, uv, mask = _inputs()
    with torch.no_grad():
        with_bg = r({"ntexture": tex, "uv": uv, "uv_mask": mask, "background": torch.ones(2, 3, 32, 32)})
        core = NeuralRenderer.forward(r, tex, uv, mask)
        no_bg = r({"ntexture": tex, "uv": uv, "uv_mask": mask})
    assert set(with_bg) == {"fake_rgb", "fake_segm"}
    assert with_bg["fake_rgb"].shape == (2, 3, 32, 32) and with_bg["fake_segm"].shape == (2, 1, 32, 32)
    assert torch.allclose(with_bg["fake_rgb"], core.rgb) and torch.equal(with_bg["fake_segm"], core.segm)
    # DINAR without a background composites over black: rgb = to_tanh(to_sigm(fg) * segm)
    assert torch.allclose(no_bg["fake_rgb"], (core.foreground + 1) / 2 * core.segm * 2 - 1, atol=1e-6)


def test_dinar_renderer_threshold_is_a_mutable_attribute_used_with_a_background():
    r = build_renderer({**TINY_PARAMS, "hardsegm": False}).eval()
    tex, uv, mask = _inputs()
    d = {"ntexture": tex, "uv": uv, "uv_mask": mask, "background": torch.ones(2, 3, 32, 32)}
    with torch.no_grad():
        before = r(dict(d))["fake_segm"]
        r.segm_threshold = 0.99  # what DINAR's video maker does (with 0.5)
        after = r(dict(d))["fake_segm"]
        no_bg = r({k: v for k, v in d.items() if k != "background"})["fake_segm"]
    assert not torch.equal(before, after)
    assert torch.equal(no_bg, before)  # DINAR applies the threshold only when compositing over a background


def test_renderer_params():
    cfg = renderer_config_from_params({"in_channels_ntex": 21, "segm_channels": 1})
    assert (cfg.ngf, cfg.n_downsampling, cfg.n_blocks, cfg.normalization, cfg.hardsegm, cfg.segm_threshold,
            cfg.exponential_transparency) == (64, 3, 3, "batch", True, 0.0, True)
    with pytest.raises(ValueError, match="ngff"):
        build_renderer({**TINY_PARAMS, "ngff": 8})
    with pytest.raises(ValueError, match="segm_channels"):
        build_renderer({"in_channels_ntex": 21})
    inst = build_renderer({**TINY_PARAMS, "normalization": "instance"})
    assert "ntex_preproc.1.running_mean" not in inst.state_dict()  # instance norm keeps no statistics
    assert "model.start.2.running_mean" in inst.state_dict()  # the U-Net always uses batch norm, as DINAR's


def test_load_strict_reports_a_renamed_key():
    sd = dict(build_renderer(TINY_PARAMS).state_dict())
    load_strict(build_renderer(TINY_PARAMS), sd)
    sd["rgb_head.8.w"] = sd.pop("rgb_head.8.weight")
    with pytest.raises(CheckpointError, match="rgb_head.8.weight"):
        load_strict(build_renderer(TINY_PARAMS), sd)
