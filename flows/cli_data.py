"""`dinar import ...`: datasets made from outside data. ``import_app`` is a typer sub-app that ``flows/cli.py``
mounts as ``import`` (``app.add_typer(import_app, name="import")``).

- ``dinar import pose2sim PROJECT_DIR --frames 10,40 --out DATA [--cameras cam01,cam02] [--scale 0.5]``: a
  Pose2Sim project (videos or image folders + a Qualisys/TOML calibration) -> a calibrated multi-view dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

import_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Make a dataset from outside data (calibrated multi-view people).")
console = Console(stderr=True, soft_wrap=True)


@import_app.command("pose2sim")
def pose2sim(
    project_dir: Path = typer.Argument(..., help="A Pose2Sim project: videos/<camera>.mp4 (or videos/<camera>/ "
                                       "image folders) and calibration/Calib*.toml or calibration/*.qca.txt."),
    frames: str = typer.Option(..., "--frames", "-f", help="Frame indices (0-based), e.g. 10,40 or 0-90:30."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder: one <project>_fNNNN/ per frame."),
    cameras: Optional[str] = typer.Option(None, "--cameras", help="Cameras to keep, e.g. cam01,cam02 (default: "
                                          "all; every camera needs frames and a calibration entry)."),
    scale: float = typer.Option(1.0, "--scale", help="Downscale the views by this factor (K scaled with them)."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Calibration file (default: the one in "
                                               "PROJECT_DIR/calibration/)."),
    binning: int = typer.Option(1, "--binning", help="Qualisys binning factor (2 for 540p recordings)."),
    name: Optional[str] = typer.Option(None, "--name", help="Person-folder prefix (default: the project folder's "
                                       "name)."),
    licence: Optional[str] = typer.Option(None, "--licence", help="Licence of the source, kept in dataset.json."),
    source: Optional[str] = typer.Option(None, "--source", help="Where the data comes from, kept in dataset.json."),
) -> None:
    """Import frames of a Pose2Sim project as calibrated, undistorted multi-view persons."""
    from dinar_core.errors import DinarError
    from tasks.import_multiview import DEFAULT_LICENCE, import_pose2sim, parse_frames

    try:
        result = import_pose2sim(project_dir, out, parse_frames(frames),
                                 cameras=[c.strip() for c in cameras.split(",") if c.strip()] if cameras else None,
                                 scale=scale, calibration=calibration, binning=binning, name=name,
                                 licence=licence or DEFAULT_LICENCE, source=source)
    except DinarError as exc:
        console.print(f"[red]{type(exc).__name__}:[/red] {exc}")
        raise typer.Exit(1)
    console.print(f"{len(result.persons)} persons x {len(result.cameras)} cameras ({', '.join(result.cameras)}) "
                  f"from {result.calibration.name}")
    for w in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    for p in result.persons:
        console.print(f"  {p}")
    console.print(f"dataset: [bold]{result.data_dir / 'dataset.json'}[/bold]")
