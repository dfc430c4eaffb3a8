"""The `dinar` command line: run, status, rerun, serve, report.

Prefect is configured (state folder, analytics off, start-up timeout) before it is imported, so every command
works offline with the temporary local server, or against a real server when ``PREFECT_API_URL`` is set.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dinar_core.errors import DinarError
from flows.settings import configure_prefect, flow_run_settings, has_real_server

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Photos of people -> rigged, animatable avatars (DINAR), as a Prefect pipeline.")
console = Console(stderr=True, soft_wrap=True)
# Piped or captured output gets a wide table (errors are not cut); a terminal gets its own width.
out_console = Console(width=None if sys.stdout.isatty() else 240)

_STATUS_STYLE = {"done": "green", "failed": "bold red", "blocked": "yellow", "pending": "dim", "skipped": "dim"}


def _load_config(config: Optional[Path], overrides: list[str]) -> dict:
    from tasks.config import ConfigError, load_config, to_dict

    try:
        return to_dict(load_config(config, overrides))
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2)


def _task_runner(workers: int, dask_address: Optional[str]):
    from flows.runners import task_runner  # threads, or Dask workers with the thread rule (flows/runners.py)

    return task_runner(workers, dask_address)


def _with_progress(run, stages: list[str], persons: int):
    """Run `run()` while showing one progress bar per stage (persons finished / persons)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.pipeline import PROGRESS_HOOKS

    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console,
                  disable=not console.is_terminal and not os.environ.get("DINAR_PROGRESS")) as progress:
        bars = {s: progress.add_task(s, total=persons, note="") for s in stages}
        failures: dict[str, int] = {}

        def hook(stage: str, person: str, status: str) -> None:
            if stage in bars:
                if status in ("failed", "blocked"):
                    failures[stage] = failures.get(stage, 0) + 1
                    progress.update(bars[stage], note=f"[red]{failures[stage]} not done")
                progress.advance(bars[stage])

        PROGRESS_HOOKS.append(hook)
        try:
            with flow_run_settings():
                return run()
        except DinarError as exc:  # e.g. RunsBusyError: another run holds the runs folder
            console.print(f"[red]{type(exc).__name__}:[/red] {escape(str(exc))}")
            raise typer.Exit(3)
        finally:
            PROGRESS_HOOKS.remove(hook)


def _print_summary(summary: dict) -> None:
    console.print(f"[bold]{summary['persons']}[/bold] persons: [green]{summary['complete']} complete[/green], "
                  f"[red]{summary['with_failures']} with a failure[/red], {summary['blocked']} blocked; "
                  f"{summary.get('executed', 0)} stage runs executed (the rest were cached).")
    for f in summary["failures"]:
        console.print(f"  [red]{f['person']}[/red] / {f['stage']}: {f['error']}")
    for item in summary.get("ignored", []):
        console.print(escape(f"  ignored ({item['reason']}): {item['path']}"), style="dim")
    if summary.get("skipped_failed"):
        console.print(f"{summary['skipped_failed']} failed person(s) not retried: their photos, config and code are "
                      f"unchanged since they failed (`dinar rerun --failed` retries them)")
    console.print(f"results: [bold]{summary['runs']}[/bold]")
    from tasks.discover import find_workspaces

    shown = 0
    for ws in find_workspaces(Path(summary["runs"])):
        for label, path in (("video", ws.renders_dir / "video.mp4"), ("glb", ws.avatar_dir / "avatar.glb")):
            if path.is_file() and shown < 20:
                console.print(f"  {label}: {path}")
                shown += 1
    console.print(f"report:  [bold]{summary['report']}[/bold]")


@app.command()
def run(
    photos: Path = typer.Argument(..., help="A photo, or a folder: each photo or sub-folder is one person."),
    out: Path = typer.Option(Path("runs"), "--out", "-o", help="Runs folder: one workspace per person."),
    until: Optional[str] = typer.Option(None, help="Last stage to run (default: all)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML overriding the defaults."),
    set_: list[str] = typer.Option([], "--set", help="Override one value: section.key=value (repeatable)."),
    body: Optional[str] = typer.Option(None, help="Body model: auto (SMPL-X if its files are configured, else "
                                       "Anny), smplx or anny."),
    smplx_models: Optional[Path] = typer.Option(None, "--smplx-models", help="Folder with SMPLX_*.pkl/.npz "
                                                "(or set DINAR_SMPLX_MODELS)."),
    workers: int = typer.Option(1, help="Persons processed in parallel (Dask worker processes)."),
    dask_address: Optional[str] = typer.Option(None, help="An existing Dask scheduler, e.g. tcp://host:8786."),
    force: bool = typer.Option(False, help="Run every stage even when its cached result is fresh."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's logs."),
) -> None:
    """Process PHOTOS into RUNS/<person>/ workspaces, skipping every stage whose cached result is fresh."""
    if not photos.exists():
        console.print(f"[red]{photos} does not exist[/red]: give a photo or a folder of photos")
        raise typer.Exit(2)
    set_ = list(set_) + ([f"body.model={body}"] if body else []) + (
        [f"body.smplx_models={smplx_models.resolve()}"] if smplx_models else [])
    cfg = _load_config(config, set_)
    configure_prefect(verbose)
    from tasks.discover import discover_persons
    from tasks.stages import stages_between

    try:
        stages = [s.name for s in stages_between(None, until)]
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    persons = len(discover_persons(photos).persons)
    from flows.pipeline import fresh_summary, process_folder
    from tasks.config import from_dict

    summary = None if force else fresh_summary(photos.resolve(), out.resolve(), from_dict(cfg), until)
    if summary is not None:
        console.print("every stage is fresh: nothing to run (Prefect not started)")
        _print_summary(summary)
        raise typer.Exit(1 if summary["with_failures"] else 0)
    flow_fn = process_folder.with_options(task_runner=_task_runner(workers, dask_address))
    summary = _with_progress(
        lambda: flow_fn(photos=str(photos.resolve()), out=str(out.resolve()), config=cfg, until=until,
                        force=force), stages, persons)
    _print_summary(summary)
    if summary["with_failures"]:
        raise typer.Exit(1)


@app.command()
def status(
    runs: Path = typer.Argument(Path("runs"), help="Runs folder (or one person's workspace)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """A table person x stage: done / failed with the error / blocked / pending."""
    from tasks.status import runs_status

    statuses = runs_status(runs)
    if as_json:
        out_console.print_json(json.dumps(statuses))
        return
    if not statuses:
        console.print(f"no workspaces under {runs}")
        raise typer.Exit(1)
    table = Table(title=f"{runs}")
    table.add_column("person")
    stages = list(statuses[0]["stages"])
    for s in stages:
        table.add_column(s)
    for st in statuses:
        cells = []
        for s in stages:
            rec = st["stages"][s]
            text = f"[{_STATUS_STYLE.get(rec['status'], '')}]{rec['status']}[/]"
            if rec.get("error") and rec["status"] == "failed":
                text += f"\n[red]{rec['error'][:160]}[/red]"
            if rec.get("warnings"):
                text += "".join(f"\n[yellow]{w[:120]}[/yellow]" for w in rec["warnings"])
            cells.append(text)
        table.add_row(st["person"], *cells)
    out_console.print(table)


@app.command()
def rerun(
    runs: Path = typer.Argument(Path("runs"), help="Runs folder."),
    failed: bool = typer.Option(False, "--failed", help="Only persons with a failed/blocked stage, from there on."),
    stage: Optional[str] = typer.Option(None, "--stage", help="Rerun this stage (if stale) and what follows."),
    force: bool = typer.Option(False, "--force", help="Run the chosen stages even if fresh."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Use this config instead of each "
                                          "person's config.yaml."),
    set_: list[str] = typer.Option([], "--set", help="Override one value: section.key=value."),
    workers: int = typer.Option(1),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Rerun failed or stale stages only (every person keeps the config it was run with)."""
    cfg = _load_config(config, set_) if (config or set_) else None
    configure_prefect(verbose)
    from flows.pipeline import rerun as rerun_flow
    from tasks.discover import find_workspaces
    from tasks.stages import stage_names

    persons = len(find_workspaces(runs))
    flow_fn = rerun_flow.with_options(task_runner=_task_runner(workers, None))
    summary = _with_progress(lambda: flow_fn(runs=str(runs.resolve()), failed_only=failed, stage=stage,
                                             force=force, config=cfg), stage_names(), persons)
    _print_summary(summary)
    if summary["with_failures"]:
        raise typer.Exit(1)


@app.command()
def serve(
    photos: Path = typer.Argument(..., help="Folder watched by the schedule: new photos get processed."),
    out: Path = typer.Option(Path("runs"), "--out", "-o"),
    cron: str = typer.Option("0 2 * * *", help="When to run (cron, server time zone)."),
    name: str = typer.Option("dinar-nightly", help="Deployment name."),
    config: Optional[Path] = typer.Option(None, "--config", "-c"),
    until: Optional[str] = typer.Option(None),
) -> None:
    """Serve a scheduled deployment of the folder flow: each run processes what is new (the rest is cached)."""
    if not has_real_server():
        console.print(
            "[red]Schedules need a real Prefect server[/red]: the temporary server that `dinar run` starts lives "
            "only as long as one command. Start one with `make server` (UI at http://127.0.0.1:4200), then\n"
            "  export PREFECT_API_URL=http://127.0.0.1:4200/api\n"
            "and run `dinar serve` again (or point PREFECT_API_URL at your own server / Prefect Cloud).")
        raise typer.Exit(2)
    cfg = _load_config(config, [])
    configure_prefect(False)
    from flows.pipeline import process_folder

    console.print(f"serving deployment [bold]{name}[/bold] on {os.environ['PREFECT_API_URL']} with cron {cron!r}")
    from flows.runners import serve_concurrency

    process_folder.serve(name=name, cron=cron, concurrency_limit=serve_concurrency(), parameters={
        "photos": str(photos.resolve()), "out": str(out.resolve()), "config": cfg, "until": until})


@app.command()
def infer(
    ckpt_path: Optional[Path] = typer.Option(None, "--ckpt_path", "--ckpt-path",
                                             help="DINAR's ddpm-epoch=24.ckpt (see DINAR's README for the link)."),
    log_dir: Path = typer.Option(Path("logs"), "--log_dir", "--log-dir", help="Output root, as DINAR's."),
    data_root: Path = typer.Option(..., "--data_root", "--data-root",
                                   help="A prepared dataset: rgb/, segm/, smplx/ (a workspace is one)."),
    finetune_back: bool = typer.Option(False, "--finetune_back", "--finetune-back"),
    animation: Optional[Path] = typer.Option(None, help="DINAR's animation pickle (default: a turntable)."),
    steps: Optional[int] = typer.Option(None, help="DDIM steps (DINAR: 200)."),
    seed: Optional[int] = typer.Option(None),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda"),
    smplx_models: Optional[Path] = typer.Option(None, "--smplx-models"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML with a `neural:` section "
                                          "(configs/neural.yaml)."),
    uv_assets: Optional[Path] = typer.Option(None, "--uv-assets", help="DINAR's smplx_data/ folder."),
    no_finetune: bool = typer.Option(False, "--no-finetune", help="Skip the per-avatar finetuning."),
    lpips_weights: Optional[Path] = typer.Option(None, "--lpips-weights", help="Local LPIPS-VGG weights."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames"),
) -> None:
    """Behave like DINAR's inference.py on a prepared dataset: textures, finetuning, videos in DINAR's layout."""
    from dinar_core.errors import DinarError
    from tasks.infer import InferOptions, infer as run_infer

    opts = InferOptions(finetune_back=finetune_back, animation=animation, steps=steps, seed=seed, device=device,
                        smplx_models=smplx_models, config=config, uv_assets=uv_assets,
                        finetune=False if no_finetune else None, lpips_weights=lpips_weights,
                        max_frames=max_frames)
    try:
        result = run_infer(ckpt_path, log_dir, data_root, opts)
    except DinarError as exc:
        console.print(f"[red]{type(exc).__name__}:[/red] {exc}")
        raise typer.Exit(1)
    console.print(f"{len(result.persons)} persons in {sum(result.seconds.values()):.1f} s")
    console.print(f"results: [bold]{result.run_dir}[/bold]")
    for video in result.videos:
        console.print(f"  video: {video}")


def _workspace_config(person: Path, config: Optional[Path], overrides: list[str]):
    """The person's resolved ``config.yaml`` (what its run used), then a YAML file, then ``--set`` overrides."""
    import yaml

    from tasks.config import ConfigError, PipelineConfig, from_dict, override, parse_dotlist

    try:
        path = person / "config.yaml"
        cfg = from_dict(yaml.safe_load(path.read_text()) or {}) if path.is_file() else PipelineConfig()
        if config is not None:
            cfg = override(cfg, yaml.safe_load(Path(config).read_text()) or {})
        if overrides:
            cfg = override(cfg, parse_dotlist(overrides))
        return cfg
    except (ConfigError, OSError) as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2)


def _person(person: Path):
    from tasks.workspace import Workspace

    if not (person / "avatar" / "avatar.json").is_file():
        console.print(f"[red]{person} has no avatar yet[/red] (avatar/avatar.json): run "
                      f"`dinar run ... --until avatar` first")
        raise typer.Exit(2)
    return Workspace(person)


@app.command()
def animate(
    person: Path = typer.Argument(..., help="One person's workspace, RUNS/<person>."),
    motion: str = typer.Option("turntable", help="turntable | walk | wave | rest, or a DINAR .pkl / AMASS .npz."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Video file (default RUNS/<person>/renders/"
                                       "<motion>.mp4)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML overriding the person's config."),
    set_: list[str] = typer.Option([], "--set", help="Override one value, e.g. render.fps=30 (repeatable)."),
) -> None:
    """Render the person's avatar animated with MOTION to an MP4."""
    from tasks.render import BUILTIN_MOTIONS, render_avatar

    ws = _person(person)
    cfg = _workspace_config(person, config, set_)
    name = motion if motion in BUILTIN_MOTIONS else Path(motion).stem
    out = out or ws.renders_dir / f"{name}.mp4"
    try:
        result = render_avatar(ws, cfg, motion=motion, out=out, with_views=False)
    except Exception as exc:  # a user-facing error: name it, no traceback
        console.print(f"[red]{type(exc).__name__}:[/red] {exc}")
        raise typer.Exit(1)
    out_console.print(f"{result.video} ({result.num_frames} frames, {result.image_size[1]}x{result.image_size[0]}, "
                      f"{result.fps:g} fps, {result.seconds:.1f} s)")


@app.command("export")
def export_cmd(
    person: Path = typer.Argument(..., help="One person's workspace, RUNS/<person>."),
    glb: bool = typer.Option(True, "--glb/--no-glb", help="Write a skinned, textured GLB."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="GLB file (default RUNS/<person>/avatar/"
                                       "avatar.glb)."),
    motion: Optional[str] = typer.Option(None, help="Animation to include (default render.motion)."),
    no_animation: bool = typer.Option(False, "--no-animation", help="Only the rest-pose mesh and its skeleton."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML overriding the person's config."),
    set_: list[str] = typer.Option([], "--set", help="Override one value (repeatable)."),
) -> None:
    """Export the person's avatar (GLB: mesh, texture, skeleton, skinning weights, optional animation)."""
    from tasks.export import export_avatar

    if not glb:
        console.print("nothing to export: --glb is the only format")
        raise typer.Exit(2)
    ws = _person(person)
    cfg = _workspace_config(person, config, set_)
    try:
        result = export_avatar(ws, cfg, out=out, motion=motion, animate=False if no_animation else None)
    except Exception as exc:
        console.print(f"[red]{type(exc).__name__}:[/red] {exc}")
        raise typer.Exit(1)
    i = result.info
    for w in result.warnings:
        console.print(f"[yellow]{w}[/yellow]")
    val = "" if result.validation is None else (f", validator: {result.validation['errors']} errors, "
                                                 f"{result.validation['warnings']} warnings")
    out_console.print(f"{result.path} ({i.num_vertices} vertices, {i.num_joints} joints, {i.num_animations} "
                      f"animation(s){val})")


@app.command("fit-check")
def fit_check(
    runs: Path = typer.Argument(Path("runs"), help="Runs folder (or one person's workspace)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML with a fit_check section."),
    set_: list[str] = typer.Option([], "--set", help="e.g. fit_check.min_mask_iou=0.7 (repeatable)."),
) -> None:
    """List the persons whose fit (fit/metrics.json) breaks the fit_check thresholds, with their overlay."""
    from tasks.config import load_config, ConfigError
    from tasks.discover import find_workspaces

    try:
        check = load_config(config, set_).fit_check
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2)
    poor = 0
    for ws in find_workspaces(runs):
        path = ws.fit_dir / "metrics.json"
        if not path.is_file():
            continue
        try:
            frames = json.loads(path.read_text()).get("frames", {})
        except (json.JSONDecodeError, OSError) as exc:
            out_console.print(f"{ws.person}\t{path}: unreadable ({exc})")
            continue
        for frame, m in frames.items():
            err, iou = float(m.get("reprojection_error_rel", 0.0)), float(m.get("mask_iou", 1.0))
            if err > check.max_reprojection_error_rel or iou < check.min_mask_iou:
                poor += 1
                out_console.print(f"{ws.person}\t{frame}\treprojection {err:.1%}\tmask IoU {iou:.2f}\t"
                                  f"{ws.fit_dir / f'{frame}_overlay.png'}", soft_wrap=True)
    console.print(f"{poor} poor fit(s) (reprojection error > {check.max_reprojection_error_rel:.0%} of the body "
                  f"height or mask IoU < {check.min_mask_iou:.2f})")


@app.command()
def report(runs: Path = typer.Argument(Path("runs"))) -> None:
    """(Re)write RUNS/report.html from the manifests."""
    from tasks.report import write_report

    out_console.print(str(write_report(runs)))


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    sys.exit(main())
