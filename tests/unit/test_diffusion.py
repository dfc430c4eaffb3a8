"""Schedule, DDIM update and the inpainting sampler, including DINAR's known-region rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dinar_core.diffusion.ddim import ddim_parameters, ddim_step, ddim_timesteps, sample_ddim_inpaint
from dinar_core.diffusion.inpaint import copy_known_texels, erode3x3, make_condition
from dinar_core.diffusion.schedule import BUFFER_NAMES, DiffusionSchedule, ScheduleConfig
from dinar_core.nets.unet import UNet, UNetConfig
from dinar_core.nets.vq import VQConfig, VQModel

REF = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "dinar-state-dict" / "schedule_buffers_full.json"


def test_schedule_equals_dinar_reference_values():
    if not REF.is_file():
        pytest.skip(f"reference schedule not found at {REF}")
    ref = json.loads(REF.read_text())
    sched = DiffusionSchedule()
    assert set(ref) == set(BUFFER_NAMES)
    for name in BUFFER_NAMES:
        buf = getattr(sched, name)
        assert buf.dtype == torch.float32 and buf.shape == (1000,)
        assert torch.equal(buf, torch.tensor(ref[name], dtype=torch.float32)), name


def test_schedule_definition():
    s = DiffusionSchedule(ScheduleConfig(num_timesteps=10, linear_start=1e-4, linear_end=0.04))
    betas = torch.linspace(1e-2, 0.2, 10, dtype=torch.float64) ** 2
    torch.testing.assert_close(s.betas, betas.float())
    torch.testing.assert_close(s.alphas_cumprod, torch.cumprod(1 - betas, 0).float())
    x0, noise, t = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4), torch.tensor([0, 4, 9])
    xt = s.q_sample(x0, t, noise)
    a = torch.cumprod(1 - betas, 0).float()[t].view(3, 1, 1, 1)
    torch.testing.assert_close(xt, a.sqrt() * x0 + (1 - a).sqrt() * noise)
    torch.testing.assert_close(s.predict_x0(xt, t, noise), x0, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="linear"):
        ScheduleConfig(beta_schedule="cosine")  # type: ignore[arg-type]


def test_dinar_ddim_timesteps_and_parameters():
    ts = ddim_timesteps(1000, 200)
    assert ts.tolist() == list(range(1, 1000, 5))  # 1, 6, ..., 996
    s = DiffusionSchedule()
    p = ddim_parameters(s.alphas_cumprod, 200, eta=1.0)
    ac = s.alphas_cumprod.double()
    assert p.alphas_prev[0] == s.alphas_cumprod[0]
    assert torch.equal(p.alphas, s.alphas_cumprod[ts])
    assert torch.equal(p.alphas_prev[1:], s.alphas_cumprod[ts[:-1]])
    i = 100
    a, ap = ac[ts[i]], ac[ts[i - 1]]
    assert p.sigmas[i] == torch.sqrt((1 - ap) / (1 - a) * (1 - a / ap)).float()
    assert torch.all(ddim_parameters(s.alphas_cumprod, 200, eta=0.0).sigmas == 0)
    with pytest.raises(ValueError, match="divides"):
        ddim_timesteps(1000, 3)  # range(0, 1000, 333) + 1 reaches 1000


def test_one_ddim_update_matches_closed_form():
    torch.manual_seed(0)
    x, eps, z = (torch.randn(2, 6, 4, 4, dtype=torch.float64) for _ in range(3))
    a, ap, s = torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64), torch.tensor(0.2, dtype=torch.float64)
    out = ddim_step(x, eps, a, ap, s, z)
    x0 = (x - (1 - 0.3) ** 0.5 * eps) / 0.3**0.5
    expected = 0.5**0.5 * x0 + (1 - 0.5 - 0.04) ** 0.5 * eps + 0.2 * z
    torch.testing.assert_close(out.pred_x0, x0)
    torch.testing.assert_close(out.prev_sample, expected)


def _tiny_unet() -> UNet:
    torch.manual_seed(1)
    unet = UNet(UNetConfig(model_channels=16, channel_mult=(1, 2), attention_resolutions=(2,), num_heads=2)).eval()
    with torch.no_grad():
        for p in unet.parameters():
            p.normal_(0, 0.1)
    return unet


def test_known_region_is_replaced_before_every_model_call():
    sched = DiffusionSchedule()
    known = torch.full((1, 6, 8, 8), 1e4)  # far from the unknown region's values at every step
    tex_mask = torch.zeros(1, 1, 8, 8)
    tex_mask[..., 1:6, 1:6] = 1.0
    cond = torch.cat([known, tex_mask], dim=1)
    eroded = erode3x3(tex_mask)[0, 0].bool()  # the 3x3 erosion DINAR applies: rows/cols 2..4 stay known
    assert eroded.sum() == 9
    calls = []

    def eps_model(x, t, c):
        calls.append((x.clone(), int(t[0])))
        return torch.zeros_like(x)

    out = sample_ddim_inpaint(eps_model, sched, cond, steps=20, generator=torch.Generator().manual_seed(0))
    assert [t for _, t in calls] == list(range(951, 0, -50))
    for x, t in calls:
        a = sched.alphas_cumprod[t]
        dev = (x[0, :, eroded] - a.sqrt() * 1e4).abs().max()
        assert dev < 6 * (1 - a).sqrt()  # q_sample(known, t): noise of std sqrt(1 - a) around sqrt(a) * 1e4
        border = x[0, :, tex_mask[0, 0].bool() & ~eroded]  # known texels removed by the erosion are not replaced
        assert (border - a.sqrt() * 1e4).abs().min() > 100
    assert out.latent.shape == (1, 6, 8, 8)
    assert out.timesteps.tolist() == list(range(1, 1000, 50))


def test_sampling_is_reproducible_with_a_seed_and_reports_progress():
    unet, sched = _tiny_unet(), DiffusionSchedule()
    cond = torch.cat([torch.randn(1, 6, 8, 8), (torch.rand(1, 1, 8, 8) > 0.5).float()], dim=1)
    seen = []
    a = sample_ddim_inpaint(unet, sched, cond, steps=5, generator=torch.Generator().manual_seed(3),
                            progress=lambda i, n: seen.append((i, n)))
    b = sample_ddim_inpaint(unet, sched, cond, steps=5, generator=torch.Generator().manual_seed(3))
    c = sample_ddim_inpaint(unet, sched, cond, steps=5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.latent, b.latent)
    assert not torch.allclose(a.latent, c.latent)
    assert seen == [(i, 5) for i in range(5)]
    bf = sample_ddim_inpaint(unet, sched, cond, steps=5, dtype="bf16", generator=torch.Generator().manual_seed(3))
    assert bf.latent.dtype == torch.float32 and torch.isfinite(bf.latent).all()


def test_copy_known_texels_without_layout_uses_the_known_mask():
    src, dec = torch.randn(2, 21, 16, 16), torch.randn(2, 21, 16, 16)
    src[:, -2] = 0
    src[0, -2, 4:10, 4:10] = 1
    out = copy_known_texels(dec, src)
    known = src[:, -2:-1].bool().expand_as(src)
    assert torch.equal(out.ntexture[known], src[known])
    assert torch.equal(out.ntexture[~known], dec[~known])


def test_copy_known_texels_test_phase_rule():
    src, dec = torch.randn(1, 21, 16, 16), torch.randn(1, 21, 16, 16)
    src[:, -2] = 0
    src[0, -2, 2:12, 2:12] = 1  # known texels
    layout = torch.zeros(1, 1, 16, 16)
    layout[..., 1:15, 1:15] = 1  # UV layout
    out = copy_known_texels(dec, src, layout)
    m = out.mask[0, 0]
    assert torch.all(m[layout[0, 0] == 0] == 0)  # outside the layout: decoded values
    assert torch.all(m[4:10, 4:10] == 1)  # deep inside the known region: source values
    assert torch.all(m[13, 5:10] == 0)  # unknown texels inside the layout, away from the seam: decoded
    assert 0 < m[2, 6] < 1  # a soft seam at the known region's edge (eroded then blurred)
    assert torch.all(out.mask == torch.round(out.mask * 255) / 255)
    inside = (m == 1).expand_as(src[0])
    assert torch.equal(out.ntexture[0][inside], src[0][inside])
    with pytest.raises(ValueError, match="must be equal"):
        copy_known_texels(dec, src[:, :20])


def test_inpainting_end_to_end_keeps_known_texels():
    torch.manual_seed(0)
    vq = VQModel(VQConfig(base_channels=16, channel_mult=(1, 2), num_res_blocks=1, n_embed=32, resolution=16)).eval()
    unet, sched = _tiny_unet(), DiffusionSchedule()
    tex = torch.rand(1, 21, 16, 16)
    tex[:, -2] = 0
    tex[:, -2, :, :8] = 1  # left half seen in the photo
    with torch.no_grad():
        z = vq.encode(tex)
        cond = make_condition(z, tex[:, -2:-1])
        assert cond.shape == (1, 7, 8, 8) and torch.equal(cond[0, -1, :, :4], torch.ones(8, 4))
        sample = sample_ddim_inpaint(unet, sched, cond, steps=4, generator=torch.Generator().manual_seed(0))
        merged = copy_known_texels(vq.decode(sample.latent), tex, torch.ones(1, 1, 16, 16))
    keep = (merged.mask == 1).expand_as(tex)
    assert keep.any()
    assert torch.equal(merged.ntexture[keep], tex[keep])
