"""CLI argument errors are reported before any Prefect server starts."""

from typer.testing import CliRunner

from flows.cli import app


def test_unknown_stage_and_missing_photos(tmp_path):
    res = CliRunner().invoke(app, ["run", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = CliRunner().invoke(app, ["run", str(tmp_path), "--until", "paint"])
    assert res.exit_code == 2 and "unknown stage 'paint'" in res.output


def test_bad_config_key_is_named(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("segment:\n  treshold: 0.3\n")
    res = CliRunner().invoke(app, ["run", str(tmp_path), "--config", str(cfg)])
    assert res.exit_code == 2 and "segment.treshold" in res.output


def test_status_of_an_empty_folder(tmp_path):
    res = CliRunner().invoke(app, ["status", str(tmp_path)])
    assert res.exit_code == 1 and "no workspaces" in res.output


def test_infer_without_a_checkpoint_says_where_to_get_it(tmp_path):
    for sub in ("rgb", "segm", "smplx"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    res = CliRunner().invoke(app, ["infer", "--log_dir", str(tmp_path / "logs"), "--data_root",
                                   str(tmp_path / "data")])
    assert res.exit_code == 1, res.output
    assert "Checkpoint" in res.output and "ddpm-epoch=24.ckpt" in res.output
