"""StyleGAN2 ops, encoder, generator and discriminator: DINAR's keys, shapes, maths against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d

from dinar_core.compat.first_stage import (
    DinarDiscriminator,
    DinarEncoder,
    DinarGenerator,
    build_discriminator,
    build_encoder,
    build_generator,
)
from dinar_core.compat.registry import BUILDERS, load_strict
from dinar_core.errors import CheckpointError
from dinar_core.nets.ops import (
    Blur,
    ModulatedConv2d,
    Upsample,
    fused_leaky_relu,
    make_blur_kernel,
    modulated_weight,
    upfirdn2d,
)
from dinar_core.nets.stylegan2 import (
    Discriminator,
    DiscriminatorConfig,
    Encoder,
    EncoderConfig,
    Generator,
    GeneratorConfig,
    stylegan2_channels,
)
from tests.helpers.reference import reference_shapes as _reference


TINY_ENC = EncoderConfig(image_size=32, style_dim=16, channel_base=8)
TINY_GEN = GeneratorConfig(texture_size=32, style_dim=16, channel_base=8)
TINY_DISC = DiscriminatorConfig(image_size=32, channel_base=8)


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# ------------------------------------------------------------------------------------------ state_dict layout


@pytest.mark.parametrize("prefix,build", [
    ("first_stage.encoder.", lambda: Encoder(EncoderConfig())),
    ("first_stage.generator.", lambda: Generator(GeneratorConfig())),
    ("first_stage.encoder.", lambda: build_encoder({"image_size": 512, "channel_multiplier": 2})),
    ("first_stage.generator.", lambda: build_generator({"texture_size": 256, "output_channels": 16,
                                                        "channel_multiplier": 2, "ainp_path": None})),
])
def test_full_size_keys_and_shapes_equal_dinar(prefix, build):
    ref = _reference(prefix)
    with torch.device("meta"):
        module = build()
    assert _shapes(module) == ref


def test_discriminator_layout_is_the_encoder_trunk_with_rgb_input_and_one_logit():
    # DINAR's D and encoder are the same StyleGAN2 trunk: D reads 3 channels (not rgb+mask+noise) and ends in 1
    # logit (not a 512 style); its keys are not in the reference list (eval.yaml drops them), the encoder's are.
    enc = _reference("first_stage.encoder.")
    expected = dict(enc)
    expected["convs.0.0.weight"] = (32, 3, 1, 1)
    expected["final_linear.1.weight"] = (1, 256)
    expected["final_linear.1.bias"] = (1,)
    with torch.device("meta"):
        disc = build_discriminator({"image_size": 512, "activation_layer": 2, "channel_multiplier": 2})
    assert _shapes(disc) == expected


def test_channel_table_matches_stylegan2():
    assert [stylegan2_channels(r, 2) for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)] == \
        [256, 256, 256, 256, 256, 128, 64, 32, 16]
    assert stylegan2_channels(64, 8) == 1024  # not capped at 64x64, as in DINAR
    with pytest.raises(ValueError):
        stylegan2_channels(1024, 1, channel_base=8)  # 8 * 64 / 1024 < 1 channel


# ------------------------------------------------------------------------------------------------------- ops


def _upfirdn_numpy(x: np.ndarray, k: np.ndarray, up: int, down: int, pad: tuple[int, int]) -> np.ndarray:
    """Textbook definition on one 2D plane: zero insertion, pad/crop, full 2D convolution ('valid'), decimation."""
    h, w = x.shape
    z = np.zeros((h * up, w * up))
    z[::up, ::up] = x
    p0, p1 = pad
    z = np.pad(z, ((max(p0, 0), max(p1, 0)), (max(p0, 0), max(p1, 0))))
    z = z[max(-p0, 0): z.shape[0] - max(-p1, 0), max(-p0, 0): z.shape[1] - max(-p1, 0)]
    y = convolve2d(z, k, mode="valid")
    return y[::down, ::down]


@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2)), (2, 1, (2, 1)), (1, 2, (1, 1)), (2, 2, (0, 1)),
                                         (1, 1, (-1, 2))])
def test_upfirdn2d_matches_numpy_reference(up, down, pad):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64)
    k = torch.randn(4, 3, generator=g, dtype=torch.float64)  # asymmetric: catches a missing kernel flip
    got = upfirdn2d(x, k, up=up, down=down, pad=pad)
    want = np.stack([np.stack([_upfirdn_numpy(x[b, c].numpy(), k.numpy(), up, down, pad) for c in range(3)])
                     for b in range(2)])
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, atol=1e-10)


def test_blur_and_upsample_keep_size_and_dc_gain():
    k = make_blur_kernel([1, 3, 3, 1])
    assert k.shape == (4, 4) and torch.allclose(k.sum(), torch.tensor(1.0))
    ones = torch.ones(1, 2, 8, 8)
    up = Upsample([1, 3, 3, 1])(ones)
    assert up.shape == (1, 2, 16, 16)
    assert torch.allclose(up[:, :, 2:-2, 2:-2], torch.ones(1, 2, 12, 12))  # interior: constant stays constant
    blurred = Blur([1, 3, 3, 1], pad=(2, 1))(ones)
    assert blurred.shape == (1, 2, 8, 8)
    assert torch.allclose(blurred[:, :, 2:-2, 2:-2], torch.ones(1, 2, 4, 4))


def test_fused_leaky_relu():
    x = torch.tensor([[-2.0, 0.5], [1.0, -0.1]])
    b = torch.tensor([1.0, -1.0])
    want = torch.tensor([[-1.0 * 0.2, -0.5 * 0.2], [2.0, -1.1 * 0.2]]) * math.sqrt(2)
    assert torch.allclose(fused_leaky_relu(x, b), want)


def test_demodulated_weights_have_unit_norm_per_output_channel():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 4, 3, 3, generator=g)
    s = torch.rand(2, 4, generator=g) * 3 + 0.1
    norms = modulated_weight(w, s, demodulate=True).pow(2).sum(dim=(2, 3, 4)).sqrt()
    assert norms.shape == (2, 5)
    assert torch.allclose(norms, torch.ones(2, 5), atol=1e-5)
    raw = modulated_weight(w, s, demodulate=False)
    assert torch.allclose(raw, w[None] * s[:, None, :, None, None])


@pytest.mark.parametrize("upsample", [False, True])
def test_modulated_conv_equals_per_sample_convolution(upsample):
    torch.manual_seed(2)
    conv = ModulatedConv2d(4, 6, 3, style_dim=8, upsample=upsample)
    x, style = torch.randn(3, 4, 8, 8), torch.randn(3, 8)
    got = conv(x, style)
    weights = conv.per_sample_weight(style)  # (B, O, I, k, k)
    if upsample:
        want = torch.cat([F.conv_transpose2d(x[i:i + 1], weights[i].transpose(0, 1), stride=2) for i in range(3)])
        want = conv.blur(want)
    else:
        want = torch.cat([F.conv2d(x[i:i + 1], weights[i], padding=1) for i in range(3)])
    assert got.shape == ((3, 6, 16, 16) if upsample else (3, 6, 8, 8))
    assert torch.allclose(got, want, atol=1e-5)


# -------------------------------------------------------------------------------------------------- encoder


def test_encoder_output_and_noise_dependence():
    torch.manual_seed(3)
    enc = Encoder(TINY_ENC).eval()
    img = torch.rand(2, 3, 32, 32) * 2 - 1
    segm = (torch.rand(2, 1, 32, 32) > 0.5).float()
    noise = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        a, b = enc(img, segm, noise), enc(img, segm, noise)
        c = enc(img, segm, torch.randn(2, 1, 32, 32))
        d = enc(img, segm, generator=torch.Generator().manual_seed(5))
        e = enc(img, segm, generator=torch.Generator().manual_seed(5))
    assert a.shape == (2, 16) and torch.isfinite(a).all()
    assert torch.equal(a, b) and torch.equal(d, e)
    assert not torch.allclose(a, c)
    with pytest.raises(ValueError, match="expected shape"):
        enc(img[:, :, :16], segm)


# ------------------------------------------------------------------------------------------------ generator


def _tiny_generator() -> Generator:
    torch.manual_seed(4)
    gen = Generator(TINY_GEN)
    with torch.no_grad():  # noise weights start at 0 (no effect); make the noise matter for these tests
        for m in gen.modules():
            if type(m).__name__ == "NoiseInjection":
                m.weight.fill_(0.5)
    return gen.eval()


def test_generator_shapes_and_noise_buffers():
    gen = _tiny_generator()
    assert [tuple(n.shape[-2:]) for n in gen.stored_noise()] == [(4, 4), (8, 8), (8, 8), (16, 16), (16, 16),
                                                                (32, 32), (32, 32)]
    with torch.no_grad():
        out = gen(torch.randn(2, 16), randomize_noise=False)
    assert out.shape == (2, 16, 32, 32) and torch.isfinite(out).all()


def test_generator_noise_is_reproducible_with_a_seeded_torch_generator():
    gen = _tiny_generator()
    w = torch.randn(2, 16)
    with torch.no_grad():
        a = gen(w, generator=torch.Generator().manual_seed(7))
        b = gen(w, generator=torch.Generator().manual_seed(7))
        c = gen(w, generator=torch.Generator().manual_seed(8))
        s1 = gen(w, randomize_noise=False)
        s2 = gen(w, noise=gen.stored_noise())
        gen.noises.noise_6.add_(1.0)
        s3 = gen(w, randomize_noise=False)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.equal(s1, s2)
    assert not torch.allclose(s1, s3)  # the stored buffers are what randomize_noise=False uses


def test_generator_rejects_bad_style():
    with pytest.raises(ValueError, match="style"):
        _tiny_generator()(torch.randn(2, 15))


# -------------------------------------------------------------------------------------------- discriminator


def test_discriminator_logits_and_stddev_variant():
    torch.manual_seed(5)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        out = Discriminator(TINY_DISC).run(x)
        std = Discriminator(DiscriminatorConfig(image_size=32, channel_base=8, std_features=True))(x)
    assert out.logits.shape == (4, 1) and std.shape == (4, 1)
    assert len(out.activations) == 5  # first conv + 3 resblocks (32 -> 4) + final_conv
    assert out.activations[2].shape == (4, 16, 8, 8)


# ------------------------------------------------------------------------------------------- compat adapters


def _tiny_params():
    enc = {"image_size": 32, "channel_multiplier": 2, "style_dim": 16}
    gen = {"texture_size": 32, "output_channels": 16, "channel_multiplier": 2, "ainp_path": None, "style_dim": 16}
    return enc, gen


def test_registered_targets():
    for target in ("generators.style_gan_v2.Encoder", "generators.style_gan_v2.Generator",
                   "discriminators.style_gan_v2.Discriminator", "renderers.pix2pix.Renderer"):
        assert target in BUILDERS


def test_dinar_encoder_generator_round_trip():
    torch.manual_seed(6)
    enc_params, gen_params = _tiny_params()
    enc, gen = BUILDERS["generators.style_gan_v2.Encoder"](enc_params), build_generator(gen_params)
    assert isinstance(enc, DinarEncoder) and isinstance(gen, DinarGenerator)
    batch = {"input_rgb": torch.rand(1, 3, 32, 32) * 2 - 1, "real_segm": torch.ones(1, 1, 32, 32)}
    noise = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        style = enc.eval()(batch, noise=noise)["style"]
        core = Encoder.forward(enc, batch["input_rgb"], batch["real_segm"], noise)
        batch.update({"style": style})
        out = gen.eval()(batch, randomize_noise=False, return_latents=True)
        core_tex = Generator.forward(gen, style[0], randomize_noise=False)
    assert isinstance(style, list) and style[0].shape == (1, 16) and torch.equal(style[0], core)
    assert out["ntexture"].shape == (1, 16, 32, 32) and torch.equal(out["ntexture"], core_tex)
    assert out["w_real"].shape == (1, 8, 16)  # DINAR's n_latent = 2 * log2(32) - 2


def test_dinar_discriminator_round_trip():
    disc = build_discriminator({"image_size": 32, "channel_multiplier": 2, "activation_layer": 2})
    assert isinstance(disc, DinarDiscriminator)
    with torch.no_grad():
        out = disc.eval()({"disc_input": torch.rand(2, 3, 32, 32)})
    assert out["score"].shape == (2, 1)
    assert out["activations"].shape == (2, 256, 8, 8)  # DINAR's activations[2]: after the 2nd ResBlock


def test_builders_reject_unknown_and_unsupported_params():
    with pytest.raises(ValueError, match="bogus"):
        build_encoder({"image_size": 32, "bogus": 1})
    with pytest.raises(ValueError, match="ainp_path"):
        build_generator({"texture_size": 32})  # DINAR's default would load xyz_512.pth
    with pytest.raises(ValueError, match="replicate_pad"):
        build_discriminator({"image_size": 32, "replicate_pad": True})
    with pytest.raises(ValueError, match="image_size"):
        build_encoder({"channel_multiplier": 2})


def test_dinar_defaults_follow_the_class_signature():
    # DINAR's classes default to channel_multiplier 4 (eval.yaml overrides it to 2)
    with torch.device("meta"):
        enc = build_encoder({"image_size": 32})
    assert enc.config.channel_multiplier == 4 and enc.state_dict()["convs.0.0.weight"].shape == (512, 5, 1, 1)


def test_load_strict_reports_a_renamed_key():
    enc_params, gen_params = _tiny_params()
    gen = build_generator(gen_params)
    sd = dict(gen.state_dict())
    load_strict(build_generator(gen_params), sd)  # round trip loads
    sd["conv1.noise.strength"] = sd.pop("conv1.noise.weight")
    with pytest.raises(CheckpointError) as err:
        load_strict(build_generator(gen_params), sd)
    assert "conv1.noise.weight" in str(err.value) and "conv1.noise.strength" in str(err.value)
