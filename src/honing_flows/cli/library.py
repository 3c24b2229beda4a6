"""The ``honing`` commands that launch no flow (validate, init, predict, serve-model,
rollback, aliases, ui, data): each calls the same library functions as the Prefect tasks and
the DVC stages, and none imports Prefect. :mod:`honing_flows.cli.flows` adds the commands
that launch flows (run, reproduce, monitor, serve) to these."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import typer

from honing import config as config_mod
from honing import data, runtime, validation
from honing.config.gates_config import NAME_CHARS, NAME_PATTERN
from honing.config.settings import redact
from honing.data import target as target_mod
from honing.data import text_numbers
from honing.exceptions import ConfigError, HoningError
from honing.search import planner
from honing.validation import fitted, profiling
from honing_flows.cli.common import (
    CONFIG_OPT,
    ENV_OPT,
    console,
    env_flag,
    fail,
    warnings_in_the_log,
)
from honing_flows.cli.data import data_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="honing: validated, tuned, registered tabular models.",
)
app.add_typer(data_app, name="data")


@app.callback()
def _main() -> None:
    runtime.quiet_environment(os.environ)  # (the command's umask: honing_flows.entry)


@app.command("validate")
def validate_cmd(
    config: Path = CONFIG_OPT,
    data_path: Path | None = typer.Option(None, "--data", help="Validate this file instead."),
    report_out: Path | None = typer.Option(None, help="Write the validation report as JSON."),
    force: bool = typer.Option(False, help="Replace an existing --report-out file."),
) -> None:
    """Validate a data file against the config's expectation suite (exit 1 on failure)."""
    try:
        if report_out:
            given = tuple(p for p in (config, data_path) if p is not None)
            data.ensure_new(report_out, force=force, inputs=given)
        cfg = config_mod.load_config(config, extra_roots=config_mod.data_roots(os.environ))
        path = data_path or cfg.data.path
        inputs = (config, Path(path), *cfg.inputs)
        df = data.load_table(path, cfg.data)
        report = validation.validate(
            df,
            validation.load_suite(cfg.validation.suite),
            source=str(path),
            rules=validation.QualityRules.from_config(cfg),
        )
        if report_out:
            data.write_new(
                json.dumps(report.to_dict(), indent=2, default=str) + "\n",
                report_out,
                force=force,
                inputs=inputs,
            )
        validation.gate(report)
    except HoningError as exc:
        raise fail(exc) from None
    console.print(
        f"[green]valid:[/] {path}: {report.evaluated} expectations of "
        f"'{report.suite}' passed on {report.rows} rows"
    )


@app.command()
def init(
    data_path: Path = typer.Argument(..., help="CSV or Parquet file to profile."),
    target: str = typer.Option(..., "--target", "-t", help="Label column."),
    name: str | None = typer.Option(None, help="Pipeline name (default: file stem)."),
    positive_label: str | None = typer.Option(None, help="Label value of the positive class."),
    drop: list[str] = typer.Option([], "--drop", help="Identifier columns to drop."),
    config_out: Path | None = typer.Option(None, help="Default: configs/<name>.yaml"),
    suite_out: Path | None = typer.Option(None, help="Default: expectations/<name>.json"),
    force: bool = typer.Option(False, help="Overwrite existing config and suite."),
    task: str = typer.Option(
        "auto", help="classification, regression, or auto: read from the label column."
    ),
    budget: float = typer.Option(
        profiling.DEFAULT_BUDGET_S,
        "--budget",
        min=10.0,
        help="Seconds for the whole run (validation, search, refit, compression, registration).",
    ),
    env: Path = ENV_OPT,
) -> None:
    """Profile a new table into a budget-driven pipeline config plus a Great Expectations
    suite, and create the MLflow store of the environment profile the runs will use."""
    if name is not None and not re.fullmatch(NAME_PATTERN, name):
        # it names the config, the suite and the registered model: no path, no space
        raise fail(HoningError(f"--name {name!r}: rule: letters, digits, '_', '.' or '-' only"))
    name = name or re.sub(rf"[^{NAME_CHARS}]+", "-", data_path.stem).strip("-.") or "table"
    config_out = config_out or Path("configs") / f"{name}.yaml"
    suite_out = suite_out or Path("expectations") / f"{name}.json"
    try:
        if task not in ("auto", "classification", "regression"):
            raise HoningError(f"--task {task!r}: rule: auto, classification or regression")
        if config_out.resolve() == suite_out.resolve():
            raise HoningError(f"{config_out}: rule: the config and the suite are two files")
        for out in (config_out, suite_out):  # never the table itself, even forced
            data.ensure_new(out, force=force, inputs=(data_path,))
        df = data.load_table(data_path)
        # numbers read as text, written with thousands separators (the label's too) or with
        # markers of their missing ones ("." or "?"), or both: read again through the
        # separator and the markers, as every later reader will (the config's)
        markers = text_numbers.missing_markers(df, [c for c in df.columns if c != target])
        separated = text_numbers.separated_columns(df, df.columns, list(markers.found))
        reading = data.TableReading("auto", list(markers.found), "," if separated else None)
        if separated or markers.found:
            df = data.load_table(data_path, reading)
        task, task_note = target_mod.resolve_task(df, target, task)
        with warnings_in_the_log():
            flags = profiling.flag_columns(df, target, task)
            suite = profiling.profile_suite(
                df, name=name, target=target, task=task, dates=flags["dates"]
            )
            rules, moved = fitted.fitted_rules(df, target, task)
        raw_cfg = profiling.profile_config(
            df,
            name=name,
            data_path=data_path,
            suite_path=suite_out,
            target=target,
            positive_label=positive_label,
            drop_columns=drop,
            task=task,
            budget_s=budget,
            flags=flags,
            quality=rules,
            reading=reading,
        )
        config_mod.parse_config(raw_cfg, source=config_out, root=Path.cwd())  # must be valid
    except HoningError as exc:
        raise fail(exc) from None
    validation.save_suite(suite, suite_out)
    config_out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"Written by `honing init {data_path} --target {target} --budget {budget:.0f}`; "
        "review it.\n"
        "time_budget_s covers the whole run; the search runs until its share is spent."
    )
    dropped = profiling.dropped_columns(flags)
    comments = dict(moved)
    if dropped:
        comments["drop_columns"] = "dropped by init: " + "; ".join(
            f"{column} ({reason})" for column, reason in dropped.items()
        )
    split_note = profiling.split_note(flags)
    if split_note:
        comments["split"] = split_note
    if task_note:
        comments["task"] = task_note
    config_out.write_text(
        profiling.to_yaml(raw_cfg, header=header, comments=comments), encoding="utf-8"
    )
    if task_note:
        console.print(f"[yellow]task:[/] {task_note}", highlight=False)
    if budget < planner.KEEPABLE_BUDGET_S:
        console.print(
            f"[yellow]time_budget_s:[/] {budget:g}s is under the {planner.KEEPABLE_BUDGET_S:g}s "
            "a run keeps on 2 cores (its fixed start and the stages after the search come "
            "first): it will end with the cheapest model it can get, past the budget, and say "
            "by how much",
            highlight=False,
        )
    for key, note in moved.items():
        console.print(f"[yellow]validation.quality.{key}:[/] {note}")
    for column, reason in dropped.items():
        console.print(f"[yellow]dropped {column}:[/] {reason}")
    if split_note:
        console.print(f"[yellow]split:[/] {split_note}", highlight=False)
    if separated:
        console.print(
            f"[yellow]read as numbers (data.thousands: ','):[/] {', '.join(separated)}, "
            "written with thousands separators",
            highlight=False,
        )
    for marker, columns in markers.found.items():
        console.print(
            f"[yellow]read as missing (data.missing_values):[/] {marker!r}, in "
            f"{len(columns)} column(s) of numbers: {', '.join(columns)}",
            highlight=False,
        )
    for column, holders in markers.left.items():
        console.print(
            f"[yellow]kept as text:[/] {column}, numbers whose marker of missing values is "
            f"also a value of {', '.join(holders)} (the config's markers apply to every "
            "column)",
            highlight=False,
        )
    for kind, note in (
        ("dates", "date columns, expanded into calendar parts and elapsed days"),
        ("high_cardinality", "high-cardinality categoricals, target-encoded"),
    ):  # fmt: skip
        if flags[kind]:
            console.print(f"[yellow]{note}:[/] {', '.join(flags[kind])}")
    store = _create_store(env)
    console.print(
        f"wrote {config_out} and {suite_out} ({len(suite['expectations'])} "
        f"expectations; time budget {budget:.0f}s){store}. Review both, then: honing run "
        f"--config {config_out}{env_flag(env)}",
        soft_wrap=True,  # the command to run next, never folded inside a path
    )


def _create_store(env: Path) -> str:
    """The SQLite MLflow store of the profile at ``env``, created and migrated now (as Prefect's
    database is, :mod:`honing_flows.entry`) rather than in the first run, where it took some
    3 s of the budget; what :func:`init`'s last line says of it. A store that cannot be made
    is left to the run, which says why with its rule."""
    import logging

    import mlflow  # before its logger's level is set: importing it sets that level

    from honing import tracking

    mlflow_logger = logging.getLogger(mlflow.__name__)  # its "Creating initial tables" lines
    level = mlflow_logger.level
    mlflow_logger.setLevel(logging.WARNING)
    try:
        settings = config_mod.load_env_settings(env, environ=os.environ)
        with warnings_in_the_log():
            files = tracking.create_stores(settings.mlflow)
    except Exception as exc:  # noqa: BLE001 - not init's to refuse: the run says why
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"; the MLflow store is left to the first run ({reason})"
    finally:
        mlflow_logger.setLevel(level)
    shown = [
        str(f.relative_to(Path.cwd())) if f.is_relative_to(Path.cwd()) else str(f) for f in files
    ]
    return f"; MLflow store {', '.join(shown)} ready" if shown else ""


@app.command()
def predict(
    data_path: Path = typer.Argument(..., help="CSV or Parquet batch to score."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the predictions (CSV)."),
    config: Path = CONFIG_OPT,
    env: Path = ENV_OPT,
    model: str | None = typer.Option(
        None,
        help="models:/<name>@<alias>, models:/<name>/<version> or a local model folder "
        "(default: the config's champion).",
    ),
    served: bool = typer.Option(
        False, help="Score with the compressed served flavor (<name>-served) of the champion."
    ),
    force: bool = typer.Option(False, help="Replace an existing --out file."),
) -> None:
    """Validate a batch like training data (without the label) and score it."""
    from honing import registry, tracking
    from honing.compression.predictors import columns_read
    from honing.registry import aliases
    from honing.serving import inference

    try:
        cfg = config_mod.load_config(config, extra_roots=config_mod.data_roots(os.environ))
        inputs = (data_path, config, env, *cfg.inputs)
        data.ensure_new(out, force=force, inputs=inputs)
        settings = config_mod.load_env_settings(env, environ=os.environ)
        suite = validation.load_suite(cfg.validation.suite)
        # the config's markers and separator, and the batch's own format
        reading = data.TableReading("auto", cfg.data.missing_values, cfg.data.thousands)
        df = data.load_table(data_path, reading, text=validation.text_columns(suite))
        tracking.configure(settings.mlflow)
        name, alias = cfg.registry.model_name, cfg.registry.champion_alias
        # the champion's own flavor, found through the champion (never the flavor's alias)
        uri = model or (aliases.served_uri(name, alias) if served else f"models:/{name}@{alias}")
        loaded = registry.load_model(uri)
        report = inference.check_inference(
            df,
            suite,
            target=cfg.data.target,
            drop_columns=cfg.identifiers,
            source=str(data_path),
            read=columns_read(loaded),
        )
        validation.gate(report)
        scored = inference.predict(
            loaded,
            df,
            []
            if cfg.task == "regression"
            else inference.label_classes(suite, cfg.data.target, cfg.data.positive_label),
            source=str(data_path),
        )
        data.write_table(scored, data.ensure_new(out, force=force, inputs=inputs), overwrite=True)
    except HoningError as exc:
        raise fail(exc) from None
    console.print(f"wrote {len(scored)} predictions to {out} (model {uri})")


@app.command()
def ingest(
    batch: Path | None = typer.Argument(None, help="CSV or Parquet batch of new rows."),
    config: Path = CONFIG_OPT,
    repo: Path = typer.Option(Path("."), help="The project (a DVC repository)."),
    capture: Path | None = typer.Option(
        None, help="Instead of BATCH: the rows a server captured (serve-model --capture)."
    ),
    labels: Path | None = typer.Option(
        None, help="With --capture: late labels (request_id, optionally row, and the target)."
    ),
    since: str | None = typer.Option(None, help="With --capture: from this time (ISO, UTC)."),
    until: str | None = typer.Option(None, help="With --capture: up to this time (ISO, UTC)."),
) -> None:
    """Keep a batch as a data version: labelled rows are validated with the table's suite
    and appended to data.path as a new DVC version; unlabelled ones are stored for
    monitoring. Nothing is overwritten: every version stays in DVC. With --capture, the
    batch is the captured traffic, joined with its late --labels by request id."""
    from honing.monitoring import versions

    try:
        cfg = config_mod.load_config(config, extra_roots=config_mod.data_roots(os.environ))
        batch = batch_or_capture(batch, capture, repo, since, until, labels, cfg.data.target)
        done = versions.ingest(cfg, batch, repo=repo)
    except HoningError as exc:
        raise fail(exc) from None
    console.print(done.line(), highlight=False)
    for warning in done.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)


def batch_or_capture(
    batch: Path | None,
    capture: Path | None,
    repo: Path,
    since: str | None = None,
    until: str | None = None,
    labels: Path | None = None,
    target: str | None = None,
) -> Path:
    """The batch a command reads: BATCH, or a capture window written as one under
    ``<repo>/.honing/capture`` (:func:`honing.serving.capture.window_batch`)."""
    from honing.serving.capture import window_batch

    if (batch is None) == (capture is None):
        raise ConfigError("give either a BATCH file or --capture DIR")
    if capture is None:
        if labels is not None:
            raise ConfigError("--labels joins labels to captured rows: use it with --capture")
        return batch  # type: ignore[return-value]
    written = window_batch(
        capture, Path(repo) / ".honing" / "capture", since=since, until=until, labels=labels,
        target=target,
    )  # fmt: skip
    console.print(f"capture window of {capture} written as {written}", highlight=False)
    return written


@app.command("serve-model")
def serve_model(
    config: Path = CONFIG_OPT,
    env: Path = ENV_OPT,
    alias: str = typer.Option("champion", help="Serve the version holding this alias."),
    version: str | None = typer.Option(None, help="Serve this version instead of the alias."),
    served: bool = typer.Option(False, help="Serve the compressed flavor (<name>-served)."),
    port: int = typer.Option(8000, help="Port on 127.0.0.1."),
    follow_every: float = typer.Option(
        5.0,
        min=0.5,
        help="Seconds between reads of the alias: a promotion or a rollback "
        "swaps the new version in (not with --version).",
    ),
    capture: Path | None = typer.Option(
        None, help="Keep every answered request's rows and answers in this folder."
    ),
    capture_sample: float = typer.Option(
        1.0, min=0.0001, max=1.0, help="Share of requests captured."
    ),
    capture_max_mb: float = typer.Option(
        64.0, min=0.001, help="Close the capture file past this size; a new one starts."
    ),
    shadow: str | None = typer.Option(
        None,
        help="With --capture: also score each captured request with the version "
        "holding this alias (e.g. challenger), after answering; its answers go to DIR/shadow.",
    ),
    workers: int = typer.Option(
        1, min=1, max=64, help="Server processes, each with the model loaded (one per core)."
    ),
) -> None:
    """Serve a registered model over HTTP on 127.0.0.1: POST /invocations, GET /health, GET
    /metadata. Started on an alias, the server follows it. With --capture, the traffic is
    kept for monitoring and, joined with late labels, for retraining."""
    import uvicorn

    from honing import serving

    spec = serving.ServeSpec(
        str(config), str(env), alias, version, served, follow_every,
        None if capture is None else str(capture), capture_sample, capture_max_mb, shadow,
    )  # fmt: skip
    try:
        serving.check_port(port)
        built = serving.build(spec)  # also in a server of several workers: fails here, once
    except HoningError as exc:
        raise fail(exc) from None
    console.print(
        f"{built.says} on http://127.0.0.1:{port}"
        + (f" ({workers} workers)" if workers > 1 else "")
        + ": POST /invocations, GET /health, GET /metadata (Ctrl-C to stop)"
    )
    if workers == 1:
        uvicorn.run(built.app, host="127.0.0.1", port=port, log_level="warning")
        return
    os.environ.update(serving.spec_environment(spec))
    uvicorn.run(
        "honing.serving:worker_app", factory=True, workers=workers, host="127.0.0.1",
        port=port, log_level="warning",
    )  # fmt: skip


@app.command()
def rollback(
    name: str = typer.Argument(..., help="Registered model name (e.g. honing-churn)."),
    reason: str = typer.Option(..., "--reason", "-r", help="Why: recorded with the move."),
    to: str | None = typer.Option(
        None, "--to", help="Version to restore (default: the previous holder of the alias)."
    ),
    alias: str = typer.Option("champion", help="The alias to move back."),
    env: Path = ENV_OPT,
) -> None:
    """Move @champion back (and the served flavor's with it), recording who and why."""
    from honing import tracking
    from honing.registry import aliases

    try:
        settings = config_mod.load_env_settings(env, environ=os.environ)
        tracking.configure(settings.mlflow)
        moves = aliases.rollback(name, reason=reason, to=to, alias=alias)
    except HoningError as exc:
        raise fail(exc) from None
    for move in moves:
        console.print(f"{move.model}: {move.line()}", highlight=False)


@app.command("aliases")
def aliases_cmd(
    name: str = typer.Argument(..., help="Registered model name."),
    alias: str | None = typer.Option(None, help="Only this alias's moves."),
    env: Path = ENV_OPT,
) -> None:
    """The alias history of a registered model: every move, by whom, and why."""
    from honing import tracking
    from honing.registry import aliases

    try:
        settings = config_mod.load_env_settings(env, environ=os.environ)
        tracking.configure(settings.mlflow)
        moves = aliases.history(name, alias)
    except HoningError as exc:
        raise fail(exc) from None
    if not moves:
        console.print(f"{name}: no alias moves recorded")
    for move in moves:
        console.print(move.line(), highlight=False)


@app.command()
def ui(
    env: Path = ENV_OPT,
    port: int | None = typer.Option(
        None, help="Port on 127.0.0.1 (default: the profile's mlflow.ui_url, 5000)."
    ),
) -> None:
    """Open the MLflow UI on 127.0.0.1 for the profile's tracking store (one worker)."""
    from urllib.parse import urlsplit

    try:
        settings = config_mod.load_env_settings(env, environ=os.environ)
    except HoningError as exc:
        raise fail(exc) from None
    uri = settings.mlflow.tracking_uri
    if uri.startswith("http"):
        console.print(f"The profile uses a tracking server: open {redact(uri)}")
        return
    port = port or urlsplit(settings.mlflow.ui_url).port or 5000
    console.print(
        f"MLflow UI for {uri} on http://127.0.0.1:{port} (Ctrl-C to stop): runs tables at "
        f"http://127.0.0.1:{port}/#/experiments?workflowType=machine_learning (each opens "
        "on the saved view 'honing: training runs by test <metric>')",
        highlight=False,
    )
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--default-artifact-root",
        settings.mlflow.artifact_root,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # the UI resolves store-relative artifact locations against this store's folder; MLflow's
    # job consumers (its GenAI jobs, three processes) stay off: honing queues none
    environ = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    raise typer.Exit(subprocess.call(cmd, env=environ))


if __name__ == "__main__":  # pragma: no cover
    app()
