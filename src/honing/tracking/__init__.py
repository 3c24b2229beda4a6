"""MLflow tracking: runs, nested trial runs, reports, plots and lineage.

Every function takes the run id it writes to (no reliance on a thread's "active run"), so it works
the same from a CLI, a Prefect task or a test. :func:`configure` is the only place that sets the
process-wide tracking URI, and it is called by the entry point, never on import.

The package also holds the trials' nested runs and leaderboard
(:mod:`~honing.tracking.trial_runs`), the search's plots (:mod:`~honing.tracking.search_plots`),
the logged models (:mod:`~honing.tracking.model_logging`), the links into the UI
(:mod:`~honing.tracking.links`) and what killed runs left behind
(:mod:`~honing.tracking.stale`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honing import metric_keys
from honing.config import MlflowSettings, PipelineConfig
from honing.config.settings import redact
from honing.exceptions import TrackingStoreError, TrackingUnavailableError
from honing.lineage import portable, table_schema
from honing.store_artifacts import sqlite_file
from honing.tracking.stale import owner_tags

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from honing.compression import CompressionChoice, CompressionReport
    from honing.evaluation.slices import SliceReport


def ping(tracking_uri: str, timeout_s: float = 5.0) -> None:
    """Raise :class:`TrackingUnavailableError` when an HTTP tracking server does not answer
    its health check. Local stores (SQLite, files) need no server and always pass."""
    import urllib.error
    import urllib.request

    if not tracking_uri.startswith(("http://", "https://")):
        return
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - http(s) only
            if resp.status == 200:
                return
            reason = f"HTTP {resp.status}"
    except (urllib.error.URLError, OSError) as exc:
        reason = str(getattr(exc, "reason", exc))
    raise TrackingUnavailableError(
        f"MLflow tracking server at {redact(tracking_uri)} is unreachable ({reason}); start it "
        "(infra/local/up.sh) or point MLFLOW_TRACKING_URI / the env profile at a running one"
    )


def configure(settings: MlflowSettings) -> None:
    """Point this process's MLflow client at the configured tracking (and registry) store,
    once a tracking server answers its health check (:func:`ping`: a few seconds, not the
    client's minutes of retries). A SQLite store is created and migrated once, under a file
    lock: two runs started together on a fresh store would otherwise both migrate its
    schema, and one crash."""
    import mlflow

    for uri in {settings.tracking_uri, settings.registry_uri or settings.tracking_uri}:
        ping(uri)
    mlflow.set_tracking_uri(settings.tracking_uri)
    if settings.registry_uri:
        mlflow.set_registry_uri(settings.registry_uri)
    create_stores(settings)


def create_stores(settings: MlflowSettings) -> list[Path]:
    """Create and migrate the profile's SQLite stores (tracking, and registry when it is
    another file) once, under a file lock; returns their files. A store on a server is the
    server's: nothing is done for it here. ``honing init`` calls this so that a project's
    first run does not spend some 3 s of its budget creating MLflow's tables."""
    files = []
    for uri in {settings.tracking_uri, settings.registry_uri or settings.tracking_uri}:
        db = sqlite_file(uri)
        if db is not None:
            _migrate_once(uri, db)
            files.append(db)
    return sorted(files)


def _migrate_once(uri: str, db: Path) -> None:
    """Open (create, migrate) the SQLite store at ``uri`` (its file ``db``) while holding
    ``<db>.lock``."""
    import fcntl

    from mlflow import MlflowClient

    db.parent.mkdir(parents=True, exist_ok=True)
    for path in (db, db.parent):  # SQLite also writes a journal next to the file
        if path.exists() and not os.access(path, os.W_OK):
            raise TrackingStoreError(
                f"{path}: rule: the MLflow store must be writable; it is read-only for this "
                "user (check its permissions, or point the env profile at a writable store)"
            )
    fd = os.open(f"{db}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another process migrates
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)  # the tracking tables
        client.search_registered_models(max_results=1)  # the registry tables
    finally:
        os.close(fd)


def _client():  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient()


def client():  # type: ignore[no-untyped-def]
    """An MLflow client of the process's tracking store (see :func:`configure`)."""
    return _client()


def ensure_experiment(name: str, artifact_root: str | None) -> str:
    """The experiment's id, creating it with its artifacts under ``artifact_root`` (None: the
    tracking server's default) if needed. Safe when two processes create it at once."""
    from mlflow.exceptions import MlflowException

    client = _client()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    try:
        location = f"{artifact_root.rstrip('/')}/{name}" if artifact_root else None
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return str(exp.experiment_id)


def start_run(
    experiment_id: str,
    run_name: str,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
    start_time_ms: int | None = None,
) -> str:
    tags = dict(tags or {})
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    else:  # a top-level run names its process, so a run left RUNNING by a kill is found
        tags.update(owner_tags())
    run = _client().create_run(
        experiment_id, run_name=run_name, tags=tags, start_time=start_time_ms
    )
    return str(run.info.run_id)


def end_run(
    run_id: str, status: str = "FINISHED", end_time_ms: int | None = None, *, owned: bool = True
) -> None:
    """End the run with ``status``; an ``owned`` (top-level) run then drops the tags that
    named its process, which only a run still RUNNING needs (honing.tracking.stale)."""
    client = _client()
    client.set_terminated(run_id, status=status, end_time=end_time_ms)
    if owned:
        _release(client, run_id)


def _release(client: Any, run_id: str) -> None:
    """Remove the owner tags of an ended run (after its end is recorded: a run cut off in
    between keeps them, and stays findable by the next run's healing)."""
    for key in owner_tags():
        with contextlib.suppress(Exception):  # absent already: nothing to remove
            client.delete_tag(run_id, key)


def fail_run(run_id: str, stage: str, reason: str) -> None:
    """End the run FAILED, saying why where a reviewer looks first: its description reads
    ``FAILED at <stage>: <reason>``, and the tags ``honing.failed_stage`` and
    ``honing.error`` hold the same for search and filters."""
    client = _client()
    text = reason.strip()[:4000] or "no reason given"
    first, _, rest = text.partition("\n")
    note = f"**FAILED at {stage}**: {first}" + (f"\n\n```\n{rest}\n```" if rest else "")
    client.set_tag(run_id, "mlflow.note.content", note)
    client.set_tag(run_id, "honing.failed_stage", stage)
    client.set_tag(run_id, "honing.error", text)
    client.set_terminated(run_id, status="FAILED")
    _release(client, run_id)


def set_experiment_tags(experiment_id: str, tags: dict[str, str]) -> None:
    """Tag the experiment (its saved views, its kind), replacing earlier values."""
    for key, value in tags.items():
        _client().set_experiment_tag(experiment_id, key, value)


def set_tags(run_id: str, tags: dict[str, Any]) -> None:
    client = _client()
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value))


def log_params(run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    _client().log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])


def log_metrics(run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    _client().log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None],
    )


def log_dataset(run_id: str, df: pd.DataFrame, *, source: str, name: str, digest: str) -> None:
    """The training table as the run's MLflow dataset input (its schema, row count and
    digest; ``source`` the repo-relative path)."""
    import warnings

    import mlflow

    with warnings.catch_warnings():  # MLflow's guess at the kind of source, not the user's
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(df, source=source, name=name, digest=digest[:36])
    dataset.__dict__["schema"] = table_schema(df)  # its cached property, computed faster
    with resumed(run_id):
        mlflow.log_input(dataset, context="training")


def log_config(run_id: str, cfg: PipelineConfig, repo: Path) -> None:
    """The validated config as ``config.json``, its paths relative to the repository."""
    log_json(run_id, cfg.model_dump(mode="json"), "config.json", root=repo)


def log_summary(run_id: str, text: str) -> None:
    """``summary.md`` at the run's artifact root, also set as the run's description."""
    client = _client()
    client.log_text(run_id, text, "summary.md")
    client.set_tag(run_id, "mlflow.note.content", text)


def log_json(
    run_id: str, payload: Any, artifact_file: str, *, root: str | Path | None = None
) -> None:
    """``payload`` as a JSON artifact; with ``root``, its absolute paths inside ``root``
    made relative to it (:func:`portable`)."""
    if root is not None:
        payload = portable(payload, Path(root).resolve())
    _client().log_dict(run_id, payload, artifact_file)


def log_artifact(run_id: str, path: Path, folder: str | None = None) -> None:
    _client().log_artifact(run_id, str(path), folder)


def log_figures(run_id: str, figures: dict[str, Any], folder: str = "plots") -> None:
    """Each figure as a file under ``folder``, and as an MLflow image keyed by its name (the
    run's image grid, which compares it across runs)."""
    import matplotlib.pyplot as plt
    import numpy as np

    client = _client()
    for name, fig in figures.items():
        client.log_figure(run_id, fig, f"{folder}/{name}")
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
        client.log_image(run_id, pixels, key=Path(name).stem, step=0)
        plt.close(fig)


def planned_run_name(config_path: str, repo: str, kind: str) -> str:
    """The run name for a run of the config at ``config_path`` (its ``name``, or the file's
    stem when it cannot be read yet: the run itself reports that error) and the commit of
    ``repo``. Prefect's flow run and the MLflow run both take it."""
    from honing.config.settings import read_yaml
    from honing.lineage import git_state

    try:
        name = str(read_yaml(Path(config_path)).get("name") or Path(config_path).stem)
    except Exception:  # noqa: BLE001 - naming never fails a run; loading the config will
        name = Path(config_path).stem
    return run_name(name, kind, git_state(Path(repo))[0])


def run_name(name: str, kind: str, commit: str, when: float | None = None) -> str:
    """A run name that explains itself: ``churn train 2026-11-25 21:06 c33e497``."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(when or time.time()))
    short = commit[:7] if commit and commit != "unknown" else "no-commit"
    return f"{name} {kind} {stamp} {short}"


@contextlib.contextmanager
def resumed(run_id: str) -> Iterator[None]:
    """The run made active for MLflow's model loggers. Leaving ``mlflow.start_run`` ends the
    run; a run that was RUNNING is set RUNNING again (the flow ends it, with its status), so
    that a run in progress never looks finished to another process."""
    import mlflow

    status = _client().get_run(run_id).info.status
    with mlflow.start_run(run_id=run_id, nested=True):
        yield
    if status == "RUNNING":
        _client().update_run(run_id, status="RUNNING")


def log_slices(run_id: str, report: SliceReport) -> None:
    """The per-slice metrics as an MLflow table, the fairness differences as metrics, the
    whole report as JSON and the per-slice bar chart."""
    import matplotlib.pyplot as plt

    from honing.evaluation.slices import plot_slices

    client = _client()
    if report.slices:
        client.log_table(run_id, data=report.table(), artifact_file="evaluation/slices.json")
        figure = plot_slices(report)
        client.log_figure(run_id, figure, "evaluation/slices.png")
        plt.close(figure)
    client.log_dict(run_id, report.to_dict(), "evaluation/slice_report.json")
    log_metrics(
        run_id,
        {
            f"{metric_keys.FAIRNESS}{column}_{name}": value
            for column, diffs in report.fairness.items()
            for name, value in diffs.items()
        },
    )


def log_compression(
    run_id: str, report: CompressionReport, choice: CompressionChoice, figure: Figure
) -> None:
    """The candidates table (MLflow table artifact), the full report, the pick and the
    size-versus-accuracy plot, plus the chosen candidate's ratios as metrics."""
    import matplotlib.pyplot as plt

    client = _client()
    client.log_table(run_id, data=report.table(), artifact_file="compression/candidates.json")
    client.log_dict(
        run_id, {**report.to_dict(), "choice": asdict(choice)}, "compression/report.json"
    )
    client.log_figure(run_id, figure, "compression/size_vs_accuracy.png")
    plt.close(figure)
    ref, best = report.row(report.reference), report.row(choice.name)
    log_metrics(
        run_id,
        {
            f"{metric_keys.SERVED}{report.metric}": best.metrics[report.metric],
            f"{metric_keys.SERVED}size_ratio": best.size_bytes / ref.size_bytes,
            f"{metric_keys.SERVED}p50_ratio": best.p50_ms / ref.p50_ms,
            f"{metric_keys.SERVED}p50_ms": best.p50_ms,
            f"{metric_keys.SERVED}p99_ms": best.p99_ms,
        },
    )
    set_tags(run_id, {"honing.served_candidate": choice.name})
