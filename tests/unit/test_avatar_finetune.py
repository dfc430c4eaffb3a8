"""Per-avatar finetuning: the L2 loss on the person falls, DINAR's schedule and optimiser behaviour, LPIPS-VGG
from a local file only."""

import dataclasses

import pytest
import torch

from dinar_core.avatar.config import FinetuneConfig, NeuralAvatarConfig
from dinar_core.avatar.dataset import prepare_sample
from dinar_core.avatar.finetune import FinetuneInputs, ZeroAdam, box_blur, finetune_texture, gradient_mask
from dinar_core.avatar.lpips import LPIPSVGG, load_lpips_vgg
from dinar_core.avatar.neural import NeuralAvatarPipeline, project_vertices
from dinar_core.errors import MissingModelError, WrongModelFileError
from dinar_core.nets.dinar import DinarModel
from tests.helpers.neural_scene import make_scene


@pytest.fixture(scope="module")
def avatar(tmp_path_factory):
    scene = make_scene(tmp_path_factory.mktemp("smplx_models"))
    cfg = NeuralAvatarConfig.tiny(num_faces=scene.layout.uv_faces.shape[0], num_uv_verts=scene.layout.uv.shape[0])
    torch.manual_seed(1)
    model = DinarModel(cfg.dinar_config()).eval()
    pipe = NeuralAvatarPipeline(model, scene.layout, cfg)
    with torch.no_grad():
        verts = project_vertices(scene.body(scene.params).vertices, scene.K, scene.layout.vertex_index)
    sample = prepare_sample("p0", scene.rgb, scene.segm, verts[0].double().numpy(), scene.K.double().numpy(),
                            cfg.image_size, cfg.crop_scale)
    a = pipe.run(sample)
    inputs = FinetuneInputs(ntexture=a.ntexture, mask=a.mask, normal_angles=a.normal_angles, uv=a.uv,
                            real_rgb=sample.real_rgb[None], real_segm=sample.real_segm[None], verts=a.verts,
                            diffusion_ntexture=a.diffusion_ntexture, binary_uv_map=pipe.uv_coverage)
    return cfg, model, inputs


def test_l2_falls_over_the_steps(avatar):
    cfg, model, inputs = avatar
    ft = dataclasses.replace(cfg.finetune, steps=12, lr_texture=2e-2)
    disc_before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    r = finetune_texture(model.renderer, model.discriminator, inputs, ft, generator=torch.Generator().manual_seed(0))
    assert r.steps == 12 and len(r.l2) == 12 and len(r.discriminator) == 12
    assert r.l2[-1] < r.l2[0] * 0.98, r.l2
    assert r.ntexture.shape == inputs.ntexture.shape
    # only the RGB channels change; the others come from the diffusion texture (DINAR's source)
    assert torch.allclose(r.ntexture[:, :16], inputs.diffusion_ntexture[:, :16], atol=1e-6)
    assert not torch.equal(r.ntexture[:, -5:-2], inputs.ntexture[:, -5:-2])
    # the checkpoint's discriminator and the frozen renderer are left as they were
    assert all(torch.equal(v, model.discriminator.state_dict()[k]) for k, v in disc_before.items())
    assert all(p.requires_grad for p in model.renderer.parameters())


def test_back_schedule_rescales_first(avatar):
    cfg, model, inputs = avatar
    ft = dataclasses.replace(cfg.finetune, back_steps=4, back_rescale_steps=2)
    r = finetune_texture(model.renderer, model.discriminator, inputs, ft, finetune_back=True)
    assert r.steps == 4
    assert not torch.equal(r.scales, torch.ones(1, 3, 1, 1)) or not torch.equal(r.shifts, torch.zeros(1, 3, 1, 1))
    assert cfg.finetune.schedule(True) == (cfg.finetune.back_steps, cfg.finetune.back_rescale_steps)
    assert FinetuneConfig().schedule(False) == (64, 0) and FinetuneConfig().schedule(True) == (128, 64)


def test_zero_adam_skips_zero_gradients():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = ZeroAdam([a, b], lr=0.1, betas=(0.0, 0.99))
    (a * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    b.grad = torch.zeros(3)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(3)) and b not in opt.state
    # first Adam step with beta1 = 0 moves each coordinate by lr (bias-corrected), against the gradient sign
    assert torch.allclose(a.detach(), torch.full((3,), 0.9), atol=1e-6)


def test_gradient_mask_and_blur():
    n = torch.zeros(1, 1, 9, 9)
    n[..., 4, 4] = 1.0
    m = gradient_mask(n, blur=1)
    assert m[..., 4, 4] == pytest.approx(1 - torch.exp(torch.tensor(-8.0)).item()) and m.sum() == m[..., 4, 4]
    assert gradient_mask(torch.full((1, 1, 4, 4), 0.5), blur=1).max() == 0  # below the threshold: frozen
    assert torch.allclose(box_blur(torch.ones(1, 1, 6, 6), 4), torch.ones(1, 1, 6, 6))
    assert box_blur(n, 3)[..., 4, 4] == pytest.approx(1 / 9)


def test_lpips_from_local_weights_only(tmp_path, avatar):
    with pytest.raises(MissingModelError, match="lpips"):
        load_lpips_vgg(tmp_path / "missing.pth")
    torch.save({"net.slice1.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(WrongModelFileError):
        load_lpips_vgg(tmp_path / "bad.pth")
    torch.manual_seed(0)
    # LPIPS's linear heads are non-negative (a distance); random ones are made so
    sd = {k: v.abs() if k.startswith("lin") else v for k, v in LPIPSVGG().state_dict().items()
          if not k.startswith("scaling_layer")}
    torch.save(sd, tmp_path / "lpips.pth")
    lp = load_lpips_vgg(tmp_path / "lpips.pth")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert lp(x, x).abs().max() < 1e-6 and (lp(x, -x) > 0).all()
    cfg, model, inputs = avatar
    r = finetune_texture(model.renderer, model.discriminator, inputs, dataclasses.replace(cfg.finetune, steps=2),
                         lpips=lp)
    assert len(r.lpips) == 2
