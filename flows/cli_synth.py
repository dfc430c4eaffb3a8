"""`dinar synth OUT --persons N --views K --seed S [--size 512]`: a synthetic multi-view corpus with ground truth.

``flows/cli.py`` mounts it with one line: ``from flows.cli_synth import register; register(app)``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def synth(
    out: Path = typer.Argument(..., help="Dataset folder to write (new, empty, or an earlier `dinar synth` one)."),
    persons: int = typer.Option(20, "--persons", "-n", min=1, help="How many synthetic people."),
    views: int = typer.Option(8, "--views", "-k", min=1, help="Cameras per person, on a ring (view 1 frontal)."),
    seed: int = typer.Option(0, "--seed", "-s", min=0, help="Random seed: the same seed gives the same files."),
    size: int = typer.Option(512, "--size", min=32, max=4096, help="Side of the square views, pixels."),
) -> None:
    """Synthetic people (Anny bodies, clothing-like textures with front-only prints) seen by calibrated cameras,
    with full ground truth: masks, joints, body parameters, UV texture, print/back masks, clean renders."""
    from dinar_core.errors import DinarError
    from tasks.synth import synth_dataset

    try:
        result = synth_dataset(out, persons, views, seed, size)
    except DinarError as exc:
        console.print(f"[red]{type(exc).__name__}:[/red] {exc}")
        raise typer.Exit(1)
    console.print(f"{len(result.persons)} persons x {views} views at {size}x{size} in {result.seconds:.1f} s")
    console.print(f"dataset: [bold]{result.data_dir / 'dataset.json'}[/bold]")


def register(app: typer.Typer) -> None:
    """Add the `synth` command to the `dinar` app."""
    app.command("synth")(synth)
