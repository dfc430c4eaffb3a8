"""The `dinar` command line: run, status, rerun, serve, report (the avatar commands are in `flows.cli_avatar`).

Prefect is configured (state folder, analytics off, start-up timeout) before it is imported, so every command
works offline with the temporary local server, or against a real server when ``PREFECT_API_URL`` is set. Every
command resolves its config with `tasks.config.resolve_config` and reports errors through `flows.cli_common.command`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from dinar_core.errors import DinarError
from flows.cli_common import app, command, console, esc, fail, out_console
from flows.settings import configure_prefect, flow_run_settings, has_real_server

_STATUS_STYLE = {"done": "green", "failed": "bold red", "blocked": "yellow", "pending": "dim", "skipped": "dim"}

CONFIG_HELP = "YAML overriding the defaults (then --set)."
SET_HELP = "Override one value: section.key=value, e.g. fit.ftol=1e-7 (repeatable)."


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
            console.print(f"[red]{type(exc).__name__}:[/red] {esc(str(exc))}")
            raise typer.Exit(3)
        finally:
            PROGRESS_HOOKS.remove(hook)


def _print_summary(summary: dict) -> None:
    console.print(f"[bold]{summary['persons']}[/bold] persons: [green]{summary['complete']} complete[/green], "
                  f"[red]{summary['with_failures']} with a failure[/red], {summary['blocked']} blocked; "
                  f"{summary.get('executed', 0)} stage runs executed (the rest were cached).")
    for f in summary["failures"]:
        console.print(f"  [red]{esc(f['person'])}[/red] / {esc(f['stage'])}: {esc(str(f['error']))}")
    for item in summary.get("ignored", []):
        console.print(esc(f"  ignored ({item['reason']}): {item['path']}"), style="dim")
    if summary.get("skipped_failed"):
        console.print(f"{summary['skipped_failed']} failed person(s) not retried: their photos, config and code are "
                      f"unchanged since they failed (`dinar rerun --failed` retries them)")
    console.print(f"results: [bold]{esc(summary['runs'])}[/bold]")
    from tasks.discover import find_workspaces

    shown = 0
    for ws in find_workspaces(Path(summary["runs"])):
        for label, path in (("video", ws.renders_dir / "video.mp4"), ("glb", ws.avatar_dir / "avatar.glb")):
            if path.is_file() and shown < 20:
                console.print(f"  {label}: {esc(str(path))}")
                shown += 1
    console.print(f"report:  [bold]{esc(summary['report'])}[/bold]")


@command()
def run(
    photos: Path = typer.Argument(..., help="A photo, or a folder: each photo or sub-folder is one person."),
    out: Path = typer.Option(Path("runs"), "--out", "-o", help="Runs folder: one workspace per person."),
    until: Optional[str] = typer.Option(None, help="Last stage to run (default: all)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    body: Optional[str] = typer.Option(None, help="Body model: auto (SMPL-X if its files are configured, else "
                                       "Anny), smplx or anny; = --set body.model=."),
    smplx_models: Optional[Path] = typer.Option(None, "--smplx-models", help="Folder with SMPLX_*.pkl/.npz "
                                                "(or set DINAR_SMPLX_MODELS); = --set body.smplx_models=."),
    workers: int = typer.Option(1, help="Persons processed in parallel (Dask worker processes)."),
    dask_address: Optional[str] = typer.Option(None, help="An existing Dask scheduler, e.g. tcp://host:8786."),
    force: bool = typer.Option(False, help="Run every stage even when its cached result is fresh."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's logs."),
) -> None:
    """Process PHOTOS into RUNS/<person>/ workspaces, skipping every stage whose cached result is fresh."""
    from tasks.config import resolve_config, to_dict

    if not photos.exists():
        raise fail(f"{esc(str(photos))} does not exist", ": give a photo or a folder of photos")
    shortcuts = ([("body.model", body)] if body else []) + (
        [("body.smplx_models", str(smplx_models.resolve()))] if smplx_models else [])
    cfg = resolve_config(None, config, [*set_, *shortcuts])
    configure_prefect(verbose)
    from tasks.discover import discover_persons
    from tasks.stages import stages_between

    try:
        stages = [s.name for s in stages_between(None, until)]
    except ValueError as exc:
        raise fail(esc(str(exc))) from None
    persons = len(discover_persons(photos).persons)
    from flows.pipeline import fresh_summary, process_folder

    summary = None if force else fresh_summary(photos.resolve(), out.resolve(), cfg, until)
    if summary is not None:
        console.print("every stage is fresh: nothing to run (Prefect not started)")
        _print_summary(summary)
        raise typer.Exit(1 if summary["with_failures"] else 0)
    flow_fn = process_folder.with_options(task_runner=_task_runner(workers, dask_address))
    summary = _with_progress(
        lambda: flow_fn(photos=str(photos.resolve()), out=str(out.resolve()), config=to_dict(cfg), until=until,
                        force=force), stages, persons)
    _print_summary(summary)
    if summary["with_failures"]:
        raise typer.Exit(1)


@command()
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
        console.print(f"no workspaces under {esc(str(runs))}")
        raise typer.Exit(1)
    table = Table(title=esc(str(runs)))
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
                text += f"\n[red]{esc(rec['error'][:160])}[/red]"
            if rec.get("warnings"):
                text += "".join(f"\n[yellow]{esc(w[:120])}[/yellow]" for w in rec["warnings"])
            cells.append(text)
        table.add_row(esc(st["person"]), *cells)
    out_console.print(table)


@command()
def rerun(
    runs: Path = typer.Argument(Path("runs"), help="Runs folder."),
    failed: bool = typer.Option(False, "--failed", help="Only persons with a failed/blocked stage, from there on."),
    stage: Optional[str] = typer.Option(None, "--stage", help="Rerun this stage (if stale) and what follows."),
    force: bool = typer.Option(False, "--force", help="Run the chosen stages even if fresh."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML applied on each person's "
                                          "config.yaml (then --set)."),
    set_: list[str] = typer.Option([], "--set", help="Override one value of each person's config: "
                                   "section.key=value (repeatable)."),
    workers: int = typer.Option(1),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Rerun failed or stale stages only; every person keeps its config.yaml, with --config and --set on top."""
    from tasks.config import resolve_config
    from tasks.discover import find_workspaces

    resolve_config(None, config, set_)  # every config resolves before Prefect starts: a bad --set exits 2
    workspaces = find_workspaces(runs)
    for ws in workspaces:
        resolve_config(ws.config_path, config, set_)
    configure_prefect(verbose)
    from flows.pipeline import rerun as rerun_flow
    from tasks.stages import stage_names

    flow_fn = rerun_flow.with_options(task_runner=_task_runner(workers, None))
    summary = _with_progress(lambda: flow_fn(runs=str(runs.resolve()), failed_only=failed, stage=stage,
                                             force=force, config_file=None if config is None else
                                             str(config.resolve()), overrides=list(set_)),
                             stage_names(), len(workspaces))
    _print_summary(summary)
    if summary["with_failures"]:
        raise typer.Exit(1)


@command()
def serve(
    photos: Path = typer.Argument(..., help="Folder watched by the schedule: new photos get processed."),
    out: Path = typer.Option(Path("runs"), "--out", "-o"),
    cron: str = typer.Option("0 2 * * *", help="When to run (cron, server time zone)."),
    name: str = typer.Option("dinar-nightly", help="Deployment name."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    until: Optional[str] = typer.Option(None),
) -> None:
    """Serve a scheduled deployment of the folder flow: each run processes what is new (the rest is cached)."""
    from tasks.config import resolve_config, to_dict

    cfg = to_dict(resolve_config(None, config, set_))
    configure_prefect(False)  # (a `dinar server` running here sets PREFECT_API_URL)
    if not has_real_server():
        raise fail(
            "Schedules need a real Prefect server", ": the temporary server that `dinar run` starts lives "
            "only as long as one command. Start one with `dinar server` (or `make server`; UI at "
            "http://127.0.0.1:4200) and run `dinar serve` again (or point PREFECT_API_URL at your own server / "
            "Prefect Cloud).")
    from flows.pipeline import process_folder

    console.print(f"serving deployment [bold]{esc(name)}[/bold] on {esc(os.environ['PREFECT_API_URL'])} with cron "
                  f"{esc(repr(cron))}")
    from flows.runners import serve_concurrency

    process_folder.serve(name=name, cron=cron, concurrency_limit=serve_concurrency(), parameters={
        "photos": str(photos.resolve()), "out": str(out.resolve()), "config": cfg, "until": until})


from flows import cli_avatar, cli_eval, cli_train  # noqa: E402,F401  (register animate, export, fit-check, infer, eval, train)
from flows.cli_data import import_app  # noqa: E402

app.add_typer(import_app, name="import")
from flows.cli_synth import register as _register_synth  # noqa: E402

_register_synth(app)


@command()
def report(runs: Path = typer.Argument(Path("runs"))) -> None:
    """(Re)write RUNS/report.html from the manifests."""
    from tasks.report import write_report

    out_console.print(esc(str(write_report(runs))))


@command("server")
def local_server(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(4200, help="Port to listen on."),
) -> None:
    """A local Prefect server (UI + API, SQLite in the state folder). While it runs, every dinar command of this
    state folder uses it instead of starting a temporary server (~10 s saved per command), and `dinar serve`'s
    schedules can fire on it."""
    import subprocess

    from flows.settings import local_server_record

    os.environ["DINAR_NO_LOCAL_SERVER"] = "1"  # this process starts the server; it does not look for one
    os.environ.pop("PREFECT_API_URL", None)
    configure_prefect(False)
    prefect = str(Path(sys.executable).with_name("prefect"))
    proc = subprocess.Popen([prefect, "server", "start", "--host", host, "--port", str(port)])
    record = local_server_record()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    record.write_text(json.dumps({"url": f"http://{shown}:{port}/api", "pid": proc.pid}), "utf-8")
    console.print(f"Prefect server on http://{esc(shown)}:{port} (UI); recorded in {esc(str(record))}: dinar "
                  f"commands now use it; Ctrl+C stops it")
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        code = proc.wait()
    finally:
        try:
            if json.loads(record.read_text("utf-8")).get("pid") == proc.pid:
                record.unlink()
        except (OSError, ValueError):
            pass
    raise typer.Exit(code)


@command("app")
def web_app(
    runs: Path = typer.Option(Path("runs"), "--runs", help="Runs folder the app reads and writes."),
    photos: Optional[Path] = typer.Option(None, "--photos", help="A folder whose sub-folders may be processed by "
                                          "name from the page (default: uploads only)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 opens the app to your network)."),
    port: int = typer.Option(7860, help="Port to listen on."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    max_photos: int = typer.Option(20, "--max-photos", help="Files per upload."),
    max_mb: float = typer.Option(25.0, "--max-mb", help="Megabytes per uploaded file."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's logs."),
) -> None:
    """A web app (Gradio) over RUNS: upload photos, watch the stages, see and download each avatar."""
    from tasks.config import resolve_config, to_dict

    if photos is not None and not photos.is_dir():
        raise fail(f"{esc(str(photos))} is not a folder", ": give --photos a folder of photo folders")
    cfg = to_dict(resolve_config(None, config, set_))
    configure_prefect(verbose)
    from flows.app import AppSettings, launch

    settings = AppSettings(runs=runs.resolve(), photos_root=None if photos is None else photos.resolve(), host=host,
                           port=port, max_photos=max_photos, max_photo_bytes=int(max_mb * (1 << 20)))
    console.print(f"dinar app on http://{esc(host)}:{port} (runs folder {esc(str(settings.runs))}); Ctrl+C stops it")
    launch(settings, cfg)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    sys.exit(main())
