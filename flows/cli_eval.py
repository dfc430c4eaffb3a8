"""`dinar eval`: the evaluation protocol on a multi-view dataset (``docs/evaluation.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the `eval` command to the `dinar` app."""

    @app.command("eval")
    def eval_cmd(
        data: Path = typer.Argument(..., help="A multi-view dataset (`dinar import pose2sim` or `dinar synth`)."),
        out: Path = typer.Option(Path("eval"), "--out", "-o", help="Where results, tables, plots and grids go."),
        source: Optional[str] = typer.Option(None, help="The view the avatar is made from (default: the most "
                                             "frontal)."),
        methods: Optional[str] = typer.Option(None, help="Comma-separated: flat,mirror,classic,classic-gtfit,"
                                              "neural (default: all that apply)."),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML overriding the defaults."),
        set_: list[str] = typer.Option([], "--set", help="Override one value: section.key=value (repeatable)."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's logs."),
    ) -> None:
        """Make each person's avatar from one view and score it in the other views, methods side by side."""
        from rich.markup import escape

        from flows.cli import _load_config, console
        from flows.settings import configure_prefect, flow_run_settings

        if not data.is_dir():
            console.print(f"[red]{escape(str(data))} is not a folder[/red]: give a dataset made by "
                          "`dinar import pose2sim` or `dinar synth`")
            raise typer.Exit(2)
        extra = ([f"eval.source={source}"] if source else []) + (
            [f"eval.methods=[{methods}]"] if methods else [])
        cfg = _load_config(config, list(set_) + extra)
        configure_prefect(verbose)
        from dinar_core.errors import DinarError
        from flows.evaluate import evaluate_folder

        try:
            with flow_run_settings():
                summary = evaluate_folder(data=str(data.resolve()), out=str(out.resolve()), config=cfg)
        except DinarError as exc:
            console.print(f"[red]{type(exc).__name__}:[/red] {escape(str(exc))}")
            raise typer.Exit(1)
        console.print(Path(summary["summary"]).read_text("utf-8"), markup=False)
        console.print(f"{summary['evaluated']} of {summary['persons']} persons evaluated "
                      f"({summary['cached']} from the cache)")
        for person, error in summary["errors"]:
            console.print(f"  [red]{escape(person)}[/red]: {escape(error)}")
        for key in ("eval_json", "summary", "report"):
            if summary.get(key):
                console.print(f"{key}: {escape(summary[key])}")
        if summary["evaluated"] == 0:
            raise typer.Exit(1)
