"""The CLI's one config path and one error path: --set on run and rerun, infer's flags as --set shortcuts, wrong
overrides exit 2 naming the key, and file names with rich markup printed as written."""

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app

BAD_OVERRIDES = [(["fit=3", "fit.ftol=0.1"], "fit"), (["nosection.x=1"], "nosection"),
                 (["fit.ftol=abc"], "fit.ftol"), (["fit"], "fit")]


def _sets(items: list[str]) -> list[str]:
    return [a for item in items for a in ("--set", item)]


def _saved(runs: Path, person: str) -> dict:
    return yaml.safe_load((runs / person / "config.yaml").read_text())


@pytest.mark.parametrize("items, key", BAD_OVERRIDES)
def test_wrong_override_exits_2_naming_the_key(tmp_path, items, key):
    (tmp_path / "photos").mkdir()
    for command in (["run", str(tmp_path / "photos"), "--out", str(tmp_path / "runs")],
                    ["rerun", str(tmp_path / "runs")], ["fit-check", str(tmp_path / "runs")],
                    ["serve", str(tmp_path / "photos")],
                    ["infer", "--data_root", str(tmp_path), "--log_dir", str(tmp_path / "logs")]):
        res = CliRunner().invoke(app, command + _sets(items), env={"PREFECT_API_URL": "http://127.0.0.1:9/api"})
        assert res.exit_code == 2, (command, res.output)
        assert f"config error: --set {items[0]}:" in res.output and key in res.output, (command, res.output)
        assert res.exception is None or isinstance(res.exception, SystemExit)  # no traceback


def test_wrong_override_of_a_person_command_exits_2(tmp_path):
    person = tmp_path / "p"
    (person / "avatar").mkdir(parents=True)
    (person / "avatar" / "avatar.json").write_text("{}")
    (person / "config.yaml").write_text("segment:\n  threshold: 0.4\n")
    for command in ("animate", "export"):
        res = CliRunner().invoke(app, [command, str(person), "--set", "render.fps=fast"])
        assert res.exit_code == 2 and "render.fps" in res.output, res.output


def test_infer_flags_are_set_shortcuts(tmp_path, monkeypatch):
    import tasks.neural_inference

    calls = []
    monkeypatch.setattr(tasks.neural_inference, "infer", lambda ckpt, log_dir, data_root, options: calls.append(
        (ckpt, options)) or tasks.neural_inference.InferResult(Path(log_dir), [], [], [], []))
    common = ["--data_root", str(tmp_path), "--log_dir", str(tmp_path / "logs")]
    flags = ["--ckpt_path", str(tmp_path / "ddpm.ckpt"), "--steps", "7", "--seed", "5", "--device", "cpu",
             "--smplx-models", str(tmp_path / "models"), "--uv-assets", str(tmp_path / "uv"), "--no-finetune",
             "--lpips-weights", str(tmp_path / "vgg.pth"), "--max-frames", "4", "--finetune_back"]
    sets = [f"avatar.checkpoint={tmp_path / 'ddpm.ckpt'}", "neural.ddim_steps=7", "neural.seed=5",
            "neural.device=cpu", f"body.smplx_models={tmp_path / 'models'}", f"body.uv_assets={tmp_path / 'uv'}",
            "neural.finetune.enabled=false", f"neural.finetune.lpips_weights={tmp_path / 'vgg.pth'}",
            "neural.video.max_frames=4", "neural.finetune.back=true"]
    for args in (common + flags, common + _sets(sets), common):
        res = CliRunner().invoke(app, ["infer", *args])
        assert res.exit_code == 0, res.output
    (ckpt, by_flags), (ckpt_set, by_set), (ckpt_default, default) = calls
    assert ckpt == ckpt_set == str(tmp_path / "ddpm.ckpt") and ckpt_default is None
    assert by_flags == by_set and by_flags != default
    n = by_flags.neural
    assert (n.ddim_steps, n.seed, n.device, n.video.max_frames) == (7, 5, "cpu", 4)
    assert not n.finetune.enabled and n.finetune.back and n.finetune.lpips_weights == str(tmp_path / "vgg.pth")
    assert by_flags.smplx_models == tmp_path / "models" and by_flags.uv_assets == tmp_path / "uv"
    # a --set of the same field comes first, the flag after it wins (as `dinar run --body` over --set body.model)
    res = CliRunner().invoke(app, ["infer", *common, "--set", "neural.ddim_steps=3", "--steps", "9"])
    assert res.exit_code == 0 and calls[-1][1].neural.ddim_steps == 9


@pytest.mark.usefixtures("prefect_harness")
def test_run_set_float_and_rerun_set_keeps_each_persons_config(tmp_path, samples_dir):
    photos, runs = tmp_path / "photos", tmp_path / "runs"
    photos.mkdir()
    shutil.copy(samples_dir / "sports2d_1.png", photos / "p.png")
    res = CliRunner().invoke(app, ["run", str(photos), "--out", str(runs), "--until", "segment",
                                   "--set", "body.model=anny", "--set", "segment.threshold=0.4",
                                   "--set", "fit.ftol=1e-7"])
    assert res.exit_code == 0, res.output
    ftol = _saved(runs, "p")["fit"]["ftol"]
    assert ftol == 1e-7 and isinstance(ftol, float)
    res = CliRunner().invoke(app, ["rerun", str(runs), "--set", "keypoints.min_detection_confidence=0.6",
                                   "--stage", "keypoints"])
    assert res.exit_code == 0, res.output
    saved = _saved(runs, "p")
    assert saved["body"]["model"] == "anny" and saved["segment"]["threshold"] == 0.4
    assert saved["keypoints"]["min_detection_confidence"] == 0.6 and saved["fit"]["ftol"] == 1e-7
    import json

    manifest = json.loads((runs / "p" / "manifest.json").read_text())
    assert manifest["stages"]["keypoints"]["status"] == "done"
    assert manifest["stages"]["segment"]["executions"] == 1  # the kept config left segment fresh


@pytest.mark.usefixtures("prefect_harness")
def test_rich_markup_in_names_is_printed_literally(tmp_path, samples_dir):
    photos = tmp_path / "in[red]x[/red]"  # the folders `in[red]x[` / `red]`
    (photos / "[red]x[").mkdir(parents=True)
    shutil.copy(samples_dir / "sports2d_1.png", photos / "a[b].png")
    shutil.copy(samples_dir / "sports2d_2.png", photos / "[red]x[/red].png")  # the person folder `[red]x[`
    (photos / "bad[").mkdir()
    (photos / "bad[" / "b].png").write_bytes(b"not an image [/i]")  # a person whose ingest fails
    (photos / "c[d].txt").write_text("ignored")
    runs = tmp_path / "out[/b]"
    res = CliRunner().invoke(app, ["run", str(photos), "--out", str(runs), "--until", "ingest"])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 1, res.output  # the bad photo fails its ingest; the others are done
    assert f"results: {runs}" in res.output
    assert f"ignored (not a photo (.txt file)): {photos / 'c[d].txt'}" in res.output
    assert "b].png" in res.output and "3 persons" in res.output
    res = CliRunner().invoke(app, ["status", str(runs)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 0 and str(runs) in res.output, res.output  # the title: the runs folder as written
    assert "InvalidImageError: b].png is not a readable image" in res.output
