"""What every `dinar` command shares: the Typer app, the two consoles, the one error-to-exit-code wrapper and the
escaping of user text before rich renders it.

Exit codes: 0 success; 1 a named error of the user's input or setup (`DinarError`: its class name and message, no
traceback) or a run with failures; 2 a usage or configuration error (`ConfigError`, a missing argument path).
"""

from __future__ import annotations

import functools
import sys
from typing import Callable

import click
import typer
from rich.console import Console
from rich.markup import escape

from dinar_core.errors import DinarError
from tasks.config_overrides import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Photos of people -> rigged, animatable avatars (DINAR), as a Prefect pipeline.")
console = Console(stderr=True, soft_wrap=True)
# Piped or captured output gets a wide table (errors are not cut); a terminal gets its own width.
out_console = Console(width=None if sys.stdout.isatty() else 240)

esc = escape
"""Escape user text (file and folder names, person ids, error messages, warnings) for rich markup: a name such as
``a[b].png`` or ``[red]x[/red]`` is printed as written instead of styling the output or raising a MarkupError."""


def fail(message: str, detail: str = "", code: int = 2) -> typer.Exit:
    """Print `message` in red and `detail` after it on stderr (both rich markup: escape the user text in them);
    return the Exit (default code 2, a usage error) to raise."""
    console.print(f"[red]{message}[/red]{detail}")
    return typer.Exit(code)


def command(name: str | None = None, *, catch: tuple[type[BaseException], ...] = (DinarError,)) -> Callable:
    """``@app.command(name)`` with the error-to-exit-code wrapper around the command.

    A `ConfigError` prints ``config error: ...`` and exits 2; an exception of `catch` (default `DinarError`; animate
    and export also catch any other error of the stage they run) prints ``<ClassName>: <message>`` and exits 1.
    Typer's own exits pass through.
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
                raise
            except ConfigError as exc:
                console.print(f"[red]config error:[/red] {esc(str(exc))}")
                raise typer.Exit(2) from None
            except catch as exc:
                console.print(f"[red]{type(exc).__name__}:[/red] {esc(str(exc))}")
                raise typer.Exit(1) from None

        return app.command(name)(wrapper)

    return decorate
