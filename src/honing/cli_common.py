"""What every ``honing`` command shares: the consoles, the one-clear-message exit, and the
config and profile options."""

from __future__ import annotations

import typer
from rich.console import Console

from honing.settings import DEFAULT_ENV_PATH, redact

console = Console()
err = Console(stderr=True)

CONFIG_OPT = typer.Option("configs/churn.yaml", "--config", "-c", help="Pipeline config YAML.")
ENV_OPT = typer.Option(
    str(DEFAULT_ENV_PATH),
    "--env",
    "-e",
    help="Environment profile YAML (where MLflow, Ray, DVC live); without the default one, "
    "the embedded profile (SQLite, local Ray).",
)


def fail(exc: BaseException, note: str | None = None) -> typer.Exit:
    """Print ``exc`` as one clear message (and ``note``), and give the exit to raise (1).
    Lines are never folded: a path or a link stays whole (the terminal wraps it)."""
    err.print(
        f"[bold red]error:[/] {redact(str(exc))}", markup=True, highlight=False, soft_wrap=True
    )
    if note:
        err.print(f"[dim]{note}[/]", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code=1)
