"""What every ``honing`` command shares: the consoles, the one-clear-message exit, the
config and profile options, and library warnings kept in the log."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console

from honing.config.settings import DEFAULT_ENV_PATH, redact

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


def env_flag(env: Path) -> str:
    """`` --env ENV`` for a command the user is told to run next, or nothing for the default
    profile (whose file need not exist: the embedded profile stands in for it)."""
    return "" if Path(env) == DEFAULT_ENV_PATH else f" --env {env}"


def fail(exc: BaseException, note: str | None = None) -> typer.Exit:
    """Print ``exc`` as one clear message (and ``note``), and give the exit to raise (1).
    Lines are never folded: a path or a link stays whole (the terminal wraps it)."""
    err.print(
        f"[bold red]error:[/] {redact(str(exc))}", markup=True, highlight=False, soft_wrap=True
    )
    if note:
        err.print(f"[dim]{note}[/]", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


#: The command line's log (the flows' log too: ``honing_flows.cli.flows.LOG_FILE``), and the
#: format of its lines.
COMMAND_LOG = Path(".honing/logs/honing.log")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@contextlib.contextmanager
def warnings_in_the_log(log: Path = COMMAND_LOG) -> Iterator[None]:
    """Within the block, the libraries' warnings (numpy's overflow in a mean of 1e308s,
    scikit-learn's notes) go to ``log``, not the screen, which shows honing's own words."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        yield
    if caught:
        log.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log, encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger = logging.getLogger("honing.warnings")
        logger.addHandler(handler)
        try:
            for w in caught:
                logger.warning(
                    warnings.formatwarning(w.message, w.category, w.filename, w.lineno).strip()
                )
        finally:
            logger.removeHandler(handler)
            handler.close()
