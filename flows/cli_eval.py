"""`dinar eval`: the evaluation protocol on a multi-view dataset (``docs/evaluation.md``). Registers on the app of
`flows.cli_common` (imported by `flows.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from flows.cli_common import command, console, esc, fail


@command("eval")
def eval_cmd(
    data: Path = typer.Argument(..., help="A multi-view dataset (`dinar import pose2sim` or `dinar synth`)."),
    out: Path = typer.Option(Path("eval"), "--out", "-o", help="Where results, tables, plots and grids go."),
    source: Optional[str] = typer.Option(None, help="The view the avatar is made from (default: the most frontal)."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated: flat,mirror,classic,classic-gtfit,neural "
                                          "(default: all that apply)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML overriding the defaults (then --set)."),
    set_: list[str] = typer.Option([], "--set", help="Override one value: section.key=value (repeatable)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's logs."),
) -> None:
    """Make each person's avatar from one view and score it in the other views, methods side by side."""
    from flows.settings import configure_prefect, flow_run_settings
    from tasks.config import resolve_config, to_dict

    if not data.is_dir():
        raise fail(f"{esc(str(data))} is not a folder", ": give a dataset made by `dinar import pose2sim` or "
                   "`dinar synth`")
    shortcuts: list = ([("eval.source", source)] if source else []) + (
        [("eval.methods", [m.strip() for m in methods.split(",") if m.strip()])] if methods else [])
    cfg = to_dict(resolve_config(None, config, [*set_, *shortcuts]))
    configure_prefect(verbose)
    from flows.evaluate import evaluate_folder

    with flow_run_settings():
        summary = evaluate_folder(data=str(data.resolve()), out=str(out.resolve()), config=cfg)
    console.print(Path(summary["summary"]).read_text("utf-8"), markup=False)
    console.print(f"{summary['evaluated']} of {summary['persons']} persons evaluated "
                  f"({summary['cached']} from the cache)")
    for person, error in summary["errors"]:
        console.print(f"  [red]{esc(person)}[/red]: {esc(error)}")
    for key in ("eval_json", "summary", "report"):
        if summary.get(key):
            console.print(f"{key}: {esc(summary[key])}")
    if summary["evaluated"] == 0:
        raise typer.Exit(1)
