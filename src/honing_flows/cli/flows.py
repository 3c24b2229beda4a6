"""The ``honing`` command line: the commands of :mod:`honing_flows.cli.library` plus the ones
that launch Prefect flows (``run``, ``reproduce``, ``monitor``, ``serve``), defined here. The
flows are imported only when a command runs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import typer
from rich.table import Table

from honing import config as config_mod
from honing import data, runtime, search, tracking, validation
from honing.config.settings import redact
from honing.exceptions import HoningError, StoreFullError, disk_full
from honing.search import anytime, planner
from honing.stages.summary import TrainingSummary
from honing.tracking.links import ui_links
from honing_flows.api_server import API_LOG, private_api
from honing_flows.cli.common import (
    COMMAND_LOG,
    CONFIG_OPT,
    ENV_OPT,
    LOG_FORMAT,
    console,
    env_flag,
    err,
    fail,
)
from honing_flows.cli.library import app as library_app
from honing_flows.cli.library import batch_or_capture

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="honing: validated, tuned, registered tabular models.",
)
app.registered_callback = library_app.registered_callback
app.registered_commands.extend(library_app.registered_commands)
app.registered_groups.extend(library_app.registered_groups)


def main() -> None:
    """The ``honing`` command: its commands, and any failure they did not put in words
    themselves (a bug; a store that is not a database) said in one line, its traceback in
    :data:`LOG_FILE`, exit 1."""
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - the screen gets one line, the log the rest
        LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
        with LOG_FILE.open("a", encoding="utf-8") as log:
            log.write("honing command failed:\n")
            traceback.print_exception(exc, file=log)
        first = (str(exc).strip().splitlines() or [""])[0]
        full = _store_full(exc, "command")
        message = str(full) if full else f"{type(exc).__name__}: {first}"
        if full is None and "sqlite" in message.lower() and "mlflow" in sys.modules:
            message = f"{sys.modules['mlflow'].get_tracking_uri()}: {message}"  # which store
        err.print(
            f"[bold red]error:[/] {redact(message)} (the traceback is in {LOG_FILE})",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


def summary_table(result: TrainingSummary) -> Table:
    color = "green" if result.promoted else "yellow"
    title = f"honing: {result.model_name} v{result.version} [{color}]({result.verdict})[/]"
    table = Table(title=title, show_lines=False)
    table.add_column("item", style="bold")
    table.add_column("value")
    for item, value in result.rows():
        table.add_row(item, value)
    return table


#: Where the full log of the flows launched from this command line goes, tracebacks included.
LOG_FILE = COMMAND_LOG


class _StoryOnly(logging.Filter):
    """On the screen, the log tells the story (tasks, scores, decisions); a failure's
    traceback and exception dump (Prefect's, MLflow's, honing's own) go to :data:`LOG_FILE`
    only, and the command prints one clear message instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        failure = (
            record.levelno >= logging.ERROR
            or record.exc_info is not None
            or "Finished in state Failed(" in record.getMessage()  # the exception, dumped
        )
        return not failure


#: The loggers MLflow configures on import, with the level it gives them. MLflow replaces
#: their handlers when it is imported, so this command line configures them itself (and
#: tells MLflow not to): a late ``import mlflow`` then keeps the routing below.
MLFLOW_LOGGERS = {
    "mlflow": logging.INFO,
    "sqlalchemy.engine": logging.WARNING,
    "alembic": logging.WARNING,
    "huey": logging.WARNING,
}


def keep_tracebacks_in_the_log() -> Path:
    """Route the log records to :data:`LOG_FILE` with their tracebacks, and keep failures
    off the console. Called once Prefect has configured its logging (on import). MLflow's
    loggers print through a console handler of their own and do not propagate: they get the
    same, set up here rather than by MLflow's import, which would drop it when the run
    imports MLflow later."""
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(LOG_FILE, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.honing_log = True  # type: ignore[attr-defined]
    os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"
    mlflow_console = logging.StreamHandler()  # stderr, in MLflow's own line format
    mlflow_console.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y/%m/%d %H:%M:%S")
    )
    for name, level in MLFLOW_LOGGERS.items():
        logger = logging.getLogger(name)
        if not any(getattr(h, "honing_log", False) for h in logger.handlers):
            logger.handlers = [mlflow_console]
            logger.setLevel(level)
            logger.propagate = False
    for logger in [logging.getLogger(), *map(logging.getLogger, MLFLOW_LOGGERS)]:
        if not any(getattr(h, "honing_log", False) for h in logger.handlers):
            for console_handler in logger.handlers:
                console_handler.addFilter(_StoryOnly())
            logger.handlers.insert(0, handler)
    return LOG_FILE


def _store_full(exc: BaseException, what: str) -> StoreFullError | None:
    """A full disk, said as one line naming the file (the tracking store when the error
    names none) and the rule; None for any other failure."""
    import mlflow

    where = disk_full(exc)
    if where is None:
        return None
    where = where or redact(mlflow.get_tracking_uri()).removeprefix("sqlite:///")
    return StoreFullError(
        f"{where}: rule: a write needs free space, and the disk holding this file is full. "
        f"The {what} stopped there; no version of it loads (a registration cut short is "
        "refused, and the next run marks it incomplete). Free space, or point the env "
        "profile at a store on another disk"
    )


T = TypeVar("T")


class _DeadLink(logging.Filter):
    """Drops Prefect's "View at <url>" line: the run's private API, and so the page it
    points to, is gone when the command ends (the run's MLflow links are printed instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("View at ")


@contextlib.contextmanager
def no_dead_links() -> Iterator[None]:
    """Within the block, no flow run announces a page of the private API (see
    :class:`_DeadLink`), on the screen or in the log."""
    logger, dead = logging.getLogger("prefect.flow_runs"), _DeadLink()
    logger.addFilter(dead)
    try:
        yield
    finally:
        logger.removeFilter(dead)


def in_flow(call: Callable[[], T], what: str, meanwhile: Callable[[], object] | None = None) -> T:
    """Run a flow with one clear message on failure: a honing error as itself, an interrupt
    as what it left behind, anything else (a bug) as one line, its traceback in the log.
    ``meanwhile``: start-up work done while the Prefect API starts."""
    keep_tracebacks_in_the_log()
    try:
        # no server named: a private API of its own session (Ctrl-C then stops the run, not
        # the API the run still reports to)
        with private_api(os.environ, API_LOG, meanwhile) as url:
            if url is None:  # a server of the user's: its links stay alive
                return call()
            with no_dead_links():
                return call()
    except HoningError as exc:
        raise fail(exc, note=f"the run's full log, tracebacks included: {LOG_FILE}") from None
    except KeyboardInterrupt:
        err.print(
            f"[bold red]interrupted:[/] the {what} is marked FAILED and no alias moved; a "
            "version cut off while registering has no file digests, so nothing loads it, and "
            "the next run marks it incomplete; running it again keeps what had finished",
            markup=True,
            highlight=False,
        )
        raise typer.Exit(code=130) from None
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, the traceback in the log
        logging.getLogger("honing").exception("honing %s failed", what)
        full = _store_full(exc, what)
        if full is not None:
            raise fail(full, note=f"the run's full log, tracebacks included: {LOG_FILE}") from None
        raise fail(
            RuntimeError(f"{type(exc).__name__}: {exc} (the traceback is in {LOG_FILE})")
        ) from None


@app.command()
def run(
    config: Path = CONFIG_OPT,
    env: Path = ENV_OPT,
    metrics_out: Path | None = typer.Option(None, help="Also write the run summary as JSON."),
    force: bool = typer.Option(
        False,
        help="Retrain even when the data, config and commit match a registered version, and "
        "replace an existing --metrics-out file.",
    ),
    fresh_search: bool = typer.Option(
        False,
        help="Search anew instead of restoring an earlier search of the same config, "
        "data and commit.",
    ),
) -> None:
    """Run the full training pipeline (Prefect flow) for CONFIG. Its time budget counts from
    the moment this command started."""
    started_at = runtime.process_started()
    try:
        # fail early, with the config's own message
        cfg = config_mod.load_config(config, extra_roots=config_mod.data_roots(os.environ))
        inputs = (config, env, *cfg.inputs)
        if metrics_out:  # checked before the run, not after minutes of training
            data.ensure_new(metrics_out, force=force, inputs=inputs)
        settings = config_mod.load_env_settings(env, environ=os.environ)
        os.environ.update(runtime.ray_environment(settings.ray.address))
        # before the log routing below: importing the flow sets Prefect's logging up
        from honing_flows.flows.training import training_pipeline
    except HoningError as exc:
        raise fail(exc) from None

    # a short search runs in this process: Ray is started only for one that may need it
    guess = planner.plan(
        cfg.time_budget_s,
        elapsed_s=planner.COMMAND_START_S,
        compression=cfg.compression.enabled,
        search_cap_s=cfg.search.time_budget_s,
    )
    needs_ray = not anytime.runs_here(
        planner.search_config(cfg.search, guess), settings.ray.address
    )
    # Great Expectations only where the validation may use it: a suite too long for the
    # budget is evaluated by honing's own evaluator, and its import would only cost the start
    gx = validation.may_use_gx(cfg.validation.suite, cfg.time_budget_s)
    heavy = tuple(m for m in runtime.PRELOAD if gx or m != validation.GX_MODULE)

    def start_up() -> None:
        # while the Prefect API starts: Ray, the late imports, and the MLflow store (created
        # and migrated here once; a store that does not answer is the start stage's to say)
        if needs_ray:
            # a machine too busy for Ray to start: the search stage tries again, and searches
            # in this process if it still cannot (honing.search.run_search)
            with contextlib.suppress(Exception):
                search.connect_ray(settings.ray)
        runtime.preload(heavy)
        with contextlib.suppress(HoningError):
            tracking.configure(settings.mlflow)

    result = in_flow(
        lambda: training_pipeline(
            config_path=str(config),
            env_path=str(env),
            resume_search=not fresh_search,
            force=force,
            started_at=started_at,
        ),
        "run",
        meanwhile=start_up,
    )
    console.print(summary_table(result))
    if metrics_out:
        try:
            data.write_new(
                json.dumps(result.to_dict(), indent=2, default=str) + "\n",
                metrics_out,
                force=force,
                inputs=inputs,
            )
        except HoningError as exc:
            raise fail(exc) from None
    links = ui_links(
        settings.mlflow.tracking_uri, result.experiment_id, result.run_id, settings.mlflow.ui_url
    )
    # the command as this project runs it: a project of its own has no Makefile, and the
    # default profile's path need not exist (the embedded profile stands in for it)
    ui = f"honing ui{env_flag(env)}"
    console.print(
        f"Open the MLflow UI with [bold]{ui}[/]:\n"
        f"  this run (its summary.md, the search leaderboard under search/): {links.run}\n"
        f"  all runs, by test {result.cv_metric}: {links.runs_table}\n"
        f"  store: {redact(settings.mlflow.tracking_uri)}",
        highlight=False,
        soft_wrap=True,  # a link folded mid-URL in a log cannot be opened
    )


@app.command()
def reproduce(
    model_name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="Version number."),
    env: Path = ENV_OPT,
    tolerance: float = typer.Option(1e-6, help="Largest allowed metric difference."),
    search_again: bool = typer.Option(
        False,
        help="Run the whole search again under the version's config and data instead of "
        "refitting its recorded choice (a check of the search, not of the model: a search "
        "cut by a time budget may choose differently; use a looser --tolerance).",
    ),
) -> None:
    """Rebuild MODEL_NAME VERSION from its lineage (DVC data, config, commit) and its recorded
    choice (spec and decision rule); compare metrics."""
    try:
        settings = config_mod.load_env_settings(env, environ=os.environ)
        os.environ.update(runtime.ray_environment(settings.ray.address))
        from honing_flows.flows.reproduce import reproduce_pipeline
    except HoningError as exc:
        raise fail(exc) from None
    result = in_flow(
        lambda: reproduce_pipeline(
            model_name=model_name,
            version=version,
            env_path=str(env),
            tolerance=tolerance,
            search_again=search_again,
        ),
        "reproduction",
    )
    table = Table(title=f"reproduce {model_name} v{version} (commit {result['git_commit'][:12]})")
    for col in ("metric", "registered", "rebuilt", "difference"):
        table.add_column(col)
    for name, expected in result["expected"].items():
        table.add_row(
            name,
            f"{expected:.4f}",
            f"{result['actual'][name]:.4f}",
            f"{result['differences'][name]:+.4f}",
        )
    console.print(table)
    console.print(f"[green]reproduced within {tolerance}[/] from {result['data_path']}")


@app.command()
def monitor(
    batch: Path | None = typer.Argument(None, help="Current batch (CSV or Parquet)."),
    config: Path = typer.Option("configs/flights.yaml", "--config", "-c"),
    env: Path = ENV_OPT,
    retrain: bool = typer.Option(True, help="Run the training flow when the gate says so."),
    ingest: bool = typer.Option(
        True, help="Keep a labelled batch as the newest data version (honing ingest)."
    ),
    capture: Path | None = typer.Option(
        None, help="Instead of BATCH: the traffic a server captured (serve-model --capture)."
    ),
    since: str | None = typer.Option(None, help="With --capture: from this time (ISO, UTC)."),
    until: str | None = typer.Option(None, help="With --capture: up to this time (ISO, UTC)."),
    labels: Path | None = typer.Option(
        None,
        help="With --capture: late labels by request_id (and row); the window's labelled rows "
        "are monitored, and a shadowed @challenger is judged on the answers it gave live.",
    ),
) -> None:
    """Drift check of BATCH (or of a --capture window) against the champion's training data
    (Prefect flow); a labelled batch becomes the newest data version, which a retraining
    then uses."""
    try:
        cfg = config_mod.load_config(config, extra_roots=config_mod.data_roots(os.environ))
        batch = batch_or_capture(batch, capture, Path("."), since, until, labels, cfg.data.target)
        settings = config_mod.load_env_settings(env, environ=os.environ)
        os.environ.update(runtime.ray_environment(settings.ray.address))
        from honing_flows.flows.monitoring import monitoring_pipeline
    except HoningError as exc:
        raise fail(exc) from None
    result = in_flow(
        lambda: monitoring_pipeline(
            batch_path=str(batch),
            config_path=str(config),
            env_path=str(env),
            retrain=retrain,
            ingest=ingest,
        ),
        "monitoring run",
    )
    verdict = "[yellow]retrain[/]" if result.retrain else "[green]no retraining needed[/]"
    weighted = result.weighted_drift_share
    console.print(
        f"champion v{result.champion_version}: {result.drifted_share:.0%} of "
        f"columns drifted ({', '.join(result.drifted_columns) or 'none'})"
        + (f", {weighted:.0%} of its importance" if weighted is not None else "")
        + f": {verdict}"
    )
    for reason in result.reasons:
        console.print(f"  - {reason}")
    if result.ingested:
        console.print(
            f"ingested: version {result.ingested['version']} of {result.ingested['stored']}"
        )
    if result.retrained_version:
        console.print(f"retrained: version {result.retrained_version} registered")
    if result.retrain_failed:
        console.print(f"[yellow]retraining registered nothing:[/] {result.retrain_failed}")


@app.command()
def serve(
    config: Path = CONFIG_OPT,
    env: Path = ENV_OPT,
    watch: list[Path] = typer.Option([], help="Data files to watch (default: the config's)."),
    batch: Path | None = typer.Option(None, help="Batch the monitoring deployment checks."),
    retrain_cron: str | None = typer.Option("0 3 * * 1", help="Retraining schedule (cron)."),
    monitor_cron: str | None = typer.Option("0 * * * *", help="Monitoring schedule (cron)."),
    watch_interval: float = typer.Option(60.0, help="Seconds between data-change checks."),
) -> None:
    """Serve the retraining, monitoring and data-watch deployments from this process.

    Needs a Prefect server (PREFECT_API_URL): `prefect server start` in another terminal, or
    infra/local/up.sh."""
    try:
        cfg = config_mod.load_config(config, extra_roots=config_mod.data_roots(os.environ))
        settings = config_mod.load_env_settings(env, environ=os.environ)
        if not os.environ.get("PREFECT_API_URL"):
            raise HoningError(
                "honing serve needs a Prefect server: run `prefect server start` "
                "and export PREFECT_API_URL=http://127.0.0.1:4200/api"
            )
        os.environ.update(runtime.ray_environment(settings.ray.address))
        from honing_flows.flows.deployments import build_deployments, serve_deployments

        deployments = build_deployments(
            config_path=str(config),
            env_path=str(env),
            watch_paths=[str(p) for p in (watch or [cfg.data.path])],
            batch_path=str(batch) if batch else None,
            retrain_cron=retrain_cron,
            monitor_cron=monitor_cron,
            watch_interval_s=watch_interval,
            repo=str(Path.cwd()),
        )
    except HoningError as exc:
        raise fail(exc) from None
    serve_deployments(deployments)
