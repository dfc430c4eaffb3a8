"""DINAR checkpoint compatibility: the full key map, a synthetic Lightning checkpoint round trip, the
adapters for DINAR's class paths, and the named errors for bad files."""

from __future__ import annotations

import sys
import types
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from dinar_core.compat.api import build_dinar_module, load_dinar_state_dict
from dinar_core.compat.checkpoint import (
    lightning_checkpoint,
    load_dinar_checkpoint,
    load_dinar_state_dict_into,
    read_checkpoint,
    to_dinar_state_dict,
)
from dinar_core.diffusion.ddim import DDIMConfig
from dinar_core.errors import (
    CheckpointError,
    CheckpointMismatchError,
    MissingModelError,
    NotACheckpointError,
    NotDinarCheckpointError,
    TruncatedCheckpointError,
)
from dinar_core.nets.dinar import DinarConfig, DinarModel, UVLayoutConfig
from dinar_core.nets.unet import UNetConfig
from dinar_core.nets.vq import VQConfig

REF_KEYS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "dinar-state-dict" / "state_dict_keys.txt"


class _Stub(nn.Module):
    """Stands in for a first-stage network in the tiny round trip: weights and a BN buffer to carry through."""

    def __init__(self, ch: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 1)
        self.bn = nn.BatchNorm2d(ch)


TINY = DinarConfig(
    encoder=None, generator=None, renderer=None,  # injected stubs
    compress_branch=VQConfig(base_channels=16, channel_mult=(1, 2), num_res_blocks=1, n_embed=32, resolution=16),
    unet=UNetConfig(model_channels=16, channel_mult=(1, 2), attention_resolutions=(2,), num_heads=2),
    uv_layout=UVLayoutConfig(num_faces=6, num_uv_verts=5),
)


def _tiny(seed: int, cfg: DinarConfig = TINY, **kw) -> DinarModel:
    torch.manual_seed(seed)
    m = DinarModel(cfg, encoder=_Stub(), generator=_Stub(), renderer=_Stub(), **kw).eval()
    with torch.no_grad():  # random everything, including DINAR's zero-initialised convs and BN statistics
        for name, t in list(m.named_parameters()) + [(n, b) for n, b in m.named_buffers() if "running" in n]:
            t.uniform_(0.5, 1.0) if name.endswith("running_var") else t.normal_(0, 0.2)
        m.uv_faces.copy_(torch.randint(0, 5, (6, 3)))
        m.normal_faces.copy_(m.uv_faces)
        m.uv_values.uniform_(0, 1)
        m.ema_num_updates.fill_(1234)
    return m


def _write(path: Path, sd, **extra) -> Path:
    ck = lightning_checkpoint(sd, epoch=24, global_step=46824)
    ck.update(extra)
    torch.save(ck, path)
    return path


def test_full_size_model_maps_one_to_one_onto_dinar_keys():
    if not REF_KEYS.is_file():
        pytest.skip(f"reference key list not found at {REF_KEYS}")
    pytest.importorskip("dinar_core.nets.stylegan2")
    pytest.importorskip("dinar_core.nets.renderer")
    ref = {}
    for line in REF_KEYS.read_text().splitlines():
        k, shape = line.split("\t")[:2]
        ref[k] = tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())
    with torch.device("meta"):
        model = DinarModel(DinarConfig())
    ours = {k: tuple(v.shape) for k, v in to_dinar_state_dict(model).items()}
    assert len(ref) == 1456
    assert sorted(set(ref) - set(ours)) == [] and sorted(set(ours) - set(ref)) == []
    assert {k: v for k, v in ours.items() if ref[k] != v} == {}


def test_full_size_second_stage_keys_equal_dinar_without_first_stage_networks():
    """Runs even before the first-stage networks exist: everything but encoder/generator/renderer."""
    if not REF_KEYS.is_file():
        pytest.skip(f"reference key list not found at {REF_KEYS}")
    first = ("first_stage.encoder.", "first_stage.generator.", "first_stage.renderer.")
    ref = {}
    for line in REF_KEYS.read_text().splitlines():
        k, shape = line.split("\t")[:2]
        if not k.startswith(first):
            ref[k] = tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())
    cfg = DinarConfig(encoder=None, generator=None, renderer=None)
    with torch.device("meta"):
        model = DinarModel(cfg, encoder=nn.Module(), generator=nn.Module(), renderer=nn.Module())
    ours = {k: tuple(v.shape) for k, v in to_dinar_state_dict(model).items()}
    assert ours == ref
    assert list(ours) == list(ref)  # DINAR's order too


def test_synthetic_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    src = _tiny(0)
    path = _write(tmp_path / "ddpm-epoch=24.ckpt", to_dinar_state_dict(src))
    dst = _tiny(1)
    assert not torch.equal(dst.unet.out[2].weight, src.unet.out[2].weight)
    report = load_dinar_checkpoint(path, dst)
    assert report.epoch == 24 and report.global_step == 46824 and report.lightning_version == "1.6.5"
    assert report.uv_layout == "loaded" and report.schedule_max_abs_diff == 0.0
    assert set(report.unused) == {k for k in to_dinar_state_dict(src) if k.startswith("model.")}
    for (k, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert torch.equal(a, b), k
    tex = torch.rand(1, 21, 16, 16)
    tex[:, -2] = (torch.rand(16, 16) > 0.5).float()
    outs = [m.inpaint_texture(tex, torch.ones(1, 1, 16, 16), ddim=DDIMConfig(steps=4), generator=torch.Generator().manual_seed(7))
            for m in (src, dst)]
    assert torch.isfinite(outs[0].ntexture).all()
    assert torch.equal(outs[0].ntexture, outs[1].ntexture)
    assert torch.equal(outs[0].latent, outs[1].latent)


def test_ema_weights_drive_inference_and_training_weights_are_optional(tmp_path):
    src = _tiny(0)
    sd = to_dinar_state_dict(src)
    for k in [k for k in sd if k.startswith("model.")]:
        sd[k] = torch.zeros_like(sd[k])  # non-EMA weights differ from the EMA ones
    dst = _tiny(1, cfg=DinarConfig(**{**TINY.__dict__, "keep_training_unet": True}))
    report = load_dinar_state_dict_into(dst, sd)
    assert report.unused == {}
    assert torch.equal(dst.unet.out[2].weight, src.unet.out[2].weight)
    assert torch.all(dst.unet_train.out[2].weight == 0)
    assert int(dst.ema_num_updates) == 1234


def test_legacy_vq_branch_and_discriminator_keys(tmp_path):
    src = _tiny(0)
    sd = {k.replace("first_stage.compress_branch.", "first_stage.vq_branch."): v for k, v in to_dinar_state_dict(src).items()}
    sd["first_stage.discriminator.convs.0.0.weight"] = torch.zeros(2, 5, 1, 1)
    dst = _tiny(1)
    report = load_dinar_state_dict_into(dst, sd)
    assert report.legacy_keys == sum(1 for k in sd if "vq_branch" in k) > 0
    assert "first_stage.discriminator.convs.0.0.weight" in report.unused
    assert torch.equal(dst.compress_branch.quantize.embedding.weight, src.compress_branch.quantize.embedding.weight)
    both = dict(sd, **{"first_stage.compress_branch.quant_conv.bias": sd["first_stage.vq_branch.quant_conv.bias"]})
    with pytest.raises(CheckpointMismatchError, match="given twice"):
        load_dinar_state_dict_into(_tiny(1), both)


def test_missing_unplaced_and_misshapen_keys_are_all_listed():
    sd = to_dinar_state_dict(_tiny(0))
    del sd["model_ema.out2bias"]
    sd["first_stage.extra.weight"] = torch.zeros(1)
    sd["first_stage.renderer.conv.weight"] = torch.zeros(1, 1, 1, 1)
    with pytest.raises(CheckpointMismatchError) as err:
        load_dinar_state_dict_into(_tiny(1), sd)
    msg = str(err.value)
    assert "unet.out.2.bias" in msg and "first_stage.extra.weight" in msg and "first_stage.renderer.conv.weight" in msg
    assert "fix:" in msg


def test_uv_layout_and_schedule_checks():
    src = _tiny(0)
    sd = to_dinar_state_dict(src)
    with_assets = DinarModel(TINY, encoder=_Stub(), generator=_Stub(), renderer=_Stub(),
                             uv_faces=src.uv_faces.clone(), uv_values=src.uv_values.clone())
    assert load_dinar_state_dict_into(with_assets, sd).uv_layout == "checked"
    other = DinarModel(TINY, encoder=_Stub(), generator=_Stub(), renderer=_Stub(),
                       uv_faces=src.uv_faces.flip(0), uv_values=src.uv_values.clone())
    with pytest.raises(CheckpointMismatchError, match="UV layout"):
        load_dinar_state_dict_into(other, sd)
    sd["betas"] = sd["betas"] * 1.01
    dst = _tiny(1)
    with pytest.raises(CheckpointMismatchError, match="schedule"):
        load_dinar_state_dict_into(dst, sd, schedule="check")
    report = load_dinar_state_dict_into(dst, sd)  # DINAR's behaviour: the checkpoint's schedule wins
    assert report.schedule_max_abs_diff > 0 and torch.equal(dst.schedule.betas, sd["betas"])


def test_lightning_attribute_dict_hyper_parameters_load_safely(tmp_path, monkeypatch):
    names = ["pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing"]
    for n in names:  # pickle needs an importable class to write Lightning's AttributeDict
        monkeypatch.setitem(sys.modules, n, types.ModuleType(n))

    class AttributeDict(dict):
        pass

    AttributeDict.__module__ = "pytorch_lightning.utilities.parsing"
    AttributeDict.__qualname__ = "AttributeDict"
    sys.modules["pytorch_lightning.utilities.parsing"].AttributeDict = AttributeDict
    path = _write(tmp_path / "pl.ckpt", to_dinar_state_dict(_tiny(0)),
                  hyper_parameters=AttributeDict(linear_start=0.0003, timesteps=1000),
                  callbacks={"ModelCheckpoint{'monitor': None}": {"best_model_score": torch.tensor(0.5), "dirpath": "x"}},
                  optimizer_states=[{"state": {0: {"exp_avg": torch.zeros(2)}}, "param_groups": [{"lr": 1e-6}]}],
                  lr_schedulers=[{"base_lrs": [1e-6], "last_epoch": 3}])
    for n in names:
        monkeypatch.delitem(sys.modules, n)  # loading must not need Lightning installed
    ck = read_checkpoint(path)
    assert "hyper_parameters" in ck.extra_keys and ck.epoch == 24
    load_dinar_checkpoint(path, _tiny(1))


def test_bad_files_give_named_errors(tmp_path):
    good = _write(tmp_path / "good.ckpt", to_dinar_state_dict(_tiny(0)))
    data = good.read_bytes()
    (tmp_path / "trunc.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedCheckpointError, match="download"):
        read_checkpoint(tmp_path / "trunc.ckpt")
    (tmp_path / "page.ckpt").write_text("<!DOCTYPE html><html>Google Drive - virus scan warning</html>")
    with pytest.raises(NotACheckpointError, match="HTML"):
        read_checkpoint(tmp_path / "page.ckpt")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(NotACheckpointError, match="empty"):
        read_checkpoint(tmp_path / "empty.ckpt")
    torch.save({"state_dict": {"backbone.fc.weight": torch.zeros(2)}}, tmp_path / "other.ckpt")
    with pytest.raises(NotDinarCheckpointError, match="not DINAR's"):
        read_checkpoint(tmp_path / "other.ckpt")
    with pytest.raises(MissingModelError):
        read_checkpoint(tmp_path / "nowhere.ckpt")
    for cls in (TruncatedCheckpointError, NotACheckpointError, NotDinarCheckpointError, CheckpointMismatchError):
        assert issubclass(cls, CheckpointError)


def test_a_zip_needing_a_newer_zip_version_is_a_named_error(tmp_path):
    """zipfile raises NotImplementedError for a central directory entry that needs zip version 25.5 (make fuzz
    found it escaping read_checkpoint twice: in the member check and again while naming the error)."""
    path = tmp_path / "ddpm.ckpt"
    torch.save({"state_dict": {"model.b": torch.zeros(2)}}, path)
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")
    data[entry + 6:entry + 8] = (255).to_bytes(2, "little")  # version needed to extract: 25.5
    path.write_bytes(bytes(data))
    with pytest.raises(NotImplementedError):
        zipfile.ZipFile(path)
    assert torch.equal(read_checkpoint(path).state_dict["model.b"], torch.zeros(2))  # torch's reader ignores it
    pkl = data.index(b"\x80\x02", data.index(b"/data.pkl"))  # data.pkl's pickle (after its header's padding)
    data[pkl:pkl + 2] = b"\xff\xff"  # and now torch fails too: the error is named
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="ddpm.ckpt"):
        read_checkpoint(path)


@pytest.mark.parametrize("legacy", [False, True])
def test_a_huge_global_name_is_refused_before_torch_reads_it(tmp_path, legacy):
    """A GLOBAL of 300 KB without a space: torch's weights-only loader would quote it in its error and search the
    message with a regex quadratic in its length (minutes of CPU; found by make fuzz). The prescan refuses it."""
    path = tmp_path / "ddpm.ckpt"
    torch.save({"state_dict": {"model.b": torch.zeros(2)}}, path, _use_new_zipfile_serialization=not legacy)
    name = b"x" * 300_000
    if legacy:
        data = path.read_bytes()
        assert data.count(b"ccollections\nOrderedDict\n") >= 1
        path.write_bytes(data.replace(b"ccollections\nOrderedDict\n", b"ccollections\n" + name + b"\n"))
    else:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename: zf.read(i) for i in zf.infolist()}
        pkl = next(n for n in members if n.endswith("/data.pkl"))
        assert b"ccollections\nOrderedDict\n" in members[pkl]
        members[pkl] = members[pkl].replace(b"ccollections\nOrderedDict\n", b"ccollections\n" + name + b"\n")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            for n, d in members.items():
                zf.writestr(n, d)
    with pytest.raises(NotACheckpointError, match="GLOBAL name over 1,024 bytes"):
        read_checkpoint(path)


def test_adapters_accept_dinar_params_and_calls():
    unet = build_dinar_module("inpainting.openaimodel.UNetModel", {
        "image_size": 8, "in_channels": 13, "out_channels": 6, "model_channels": 16, "attention_resolutions": [2],
        "num_res_blocks": 1, "channel_mult": [1, 2], "num_heads": 2, "resblock_updown": True, "preproc_input": True})
    x, c, t = torch.randn(1, 6, 8, 8), torch.randn(1, 7, 8, 8), torch.tensor([10])
    eps = unet(x, t, c_concat=c)
    assert eps.shape == (1, 6, 8, 8)
    assert torch.equal(unet(x, t, c_concat=[c[:, :6], c[:, 6:]]), eps)  # LDM's list form
    vq = build_dinar_module("compress_models.vqmodel.VQModel", {
        "embed_dim": 6, "n_embed": 16, "ddconfig": {"double_z": False, "z_channels": 6, "resolution": 16, "in_channels": 21,
                                                   "out_ch": 21, "ch": 16, "ch_mult": [1, 2], "num_res_blocks": 1,
                                                   "attn_resolutions": []}}).eval()
    tex = torch.randn(1, 21, 16, 16)
    z = vq.encode(tex)
    assert z.shape == (1, 6, 8, 8) and vq.decode(z).shape == (1, 21, 16, 16)
    assert torch.equal(vq({"ntexture": tex}, compress_only=True)["compressed"], z)
    sd = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in vq.state_dict().items()}
    load_dinar_state_dict(vq, sd)
    assert torch.equal(vq.quant_conv.weight, sd["quant_conv.weight"])
    with pytest.raises(CheckpointError, match="missing"):
        load_dinar_state_dict(vq, {k: v for k, v in sd.items() if k != "quant_conv.bias"})
    with pytest.raises(ValueError, match="known targets"):
        build_dinar_module("inpainting.nothing.Here", {})
    with pytest.raises(ValueError, match="unsupported"):
        build_dinar_module("inpainting.openaimodel.UNetModel", {"image_size": 8, "bogus": 1})
