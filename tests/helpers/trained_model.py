"""A tiny model of `dinar train` for pipeline tests: the chain first_stage -> vq -> diffusion -> dinar bundle on a
2-person synth dataset, 3 steps a phase at the sizes of ``configs/train-tiny.yaml`` (seconds on a CPU)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

TINY = str(Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml")


def train_tiny_model(root: Path, steps: int = 3) -> Path:
    """``root/model.pt`` (Anny layout) trained through the CLI."""
    from flows.cli import app
    from tasks.synth import synth_dataset

    synth_dataset(root / "synth", persons=2, views=3, seed=0, size=128)
    runner = CliRunner()
    common = ["-c", TINY, "--set", f"train.max_steps={steps}"]
    for args in (["first_stage", "--data", str(root / "synth"), "--out", str(root / "fs")],
                 ["vq", "--data", str(root / "fs" / "textures"), "--out", str(root / "vq")],
                 ["diffusion", "--data", str(root / "fs" / "textures"), "--out", str(root / "df"), "--set",
                  f"train.vq_weights={root / 'vq' / 'vq.pt'}"]):
        res = runner.invoke(app, ["train", *args, *common])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["bundle", str(root / "fs" / "first_stage.pt"), str(root / "df" / "diffusion.pt"),
                              "--out", str(root / "model.pt")])
    assert res.exit_code == 0, res.output
    return root / "model.pt"
