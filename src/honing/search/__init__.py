"""Hyperparameter search with Ray Tune.

Each trial is Ray Tune's *function trainable*, which calls
:func:`honing.modeling.training.train_model`, the same function that fits the final model. Ray
runs on this machine by default, or on a cluster when :class:`honing.config.RaySettings` names
an address (``RAY_ADDRESS``): only settings change.

Trials report to Ray only. The driver logs them to MLflow afterwards (one writer), which keeps
SQLite stores free of ``database is locked`` and needs no tracking access from the workers.

The package holds the rest of the search: the time budget (:mod:`~honing.search.planner`), the
anytime guarantees (:mod:`~honing.search.anytime`), the spaces and algorithms
(:mod:`~honing.search.search_space`, :mod:`~honing.search.tpe`,
:mod:`~honing.search.portfolio`), the results (:mod:`~honing.search.trials`), ensembles of
trials (:mod:`~honing.search.ensembles`), Tune's experiment folders
(:mod:`~honing.search.experiments`) and the live progress (:mod:`~honing.search.progress`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from honing import runtime
from honing.config import RaySettings, SearchConfig
from honing.exceptions import ConfigError
from honing.modeling.training import TrainingSetup, laddered, train_model
from honing.search import anytime, experiments
from honing.search.anytime import Deadlines, describe_validation, holdout_share
from honing.search.search_space import (
    FAMILY_KEY,
    num_samples,
    param_space,
    scheduler,
    search_alg,
    spec_from_trial_config,
)
from honing.search.tpe import deadline as tpe_deadline
from honing.search.trials import SearchResult, TrialResult

LOG = logging.getLogger(__name__)


def _trainable(
    config: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    setup: TrainingSetup,
    rungs: int,
    holdout: float | None,
    deadlines: Deadlines = Deadlines(),  # noqa: B008 - frozen, shared safely
    fit_rows: int | None = None,
    threads: int = 1,
) -> None:
    import socket
    import tempfile

    import ray
    from ray import tune

    node = f"{socket.gethostname()}:{ray.get_runtime_context().get_node_id()[:12]}"
    started = time.time()

    def metrics(
        rung: int,
        scores: list[float],
        seconds: float,
        rounds: int | None = None,
        cut: bool = False,
        sampled: int | None = None,
    ) -> dict[str, Any]:
        return {
            "score": float(np.mean(scores)),
            "score_std": float(np.std(scores)),
            "fold_scores": scores,
            "fit_seconds": seconds,
            "rung": rung,
            "node": node,
            "started_at": started,
            "rounds": rounds,
            "cut": cut,
            "fit_rows": sampled,
            "threads": threads,
        }

    def report(rung: int, scores: list[float], seconds: float) -> None:
        # one report per rung: the scheduler may stop the trial at any of them; the last
        # rung is reported below, with the validation predictions
        if rung < last:
            tune.report(metrics(rung, scores, seconds))

    last = max(rungs, 1) if laddered(config[FAMILY_KEY], rungs) else 1
    res = train_model(
        X,
        y,
        spec_from_trial_config(config),
        setup,
        cross_validate=True,
        refit=False,
        rungs=rungs,
        on_step=report,
        holdout=holdout,
        deadline=deadlines.for_trial(started),
        fit_rows=fit_rows,
        n_jobs=threads,
    )
    cv = res.cv
    assert cv is not None and cv.oof is not None
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/{OOF_FILE}", oof=cv.oof, rows=cv.oof_rows)
        tune.report(
            metrics(last, cv.fold_scores, cv.fit_seconds, cv.rounds, cv.cut, cv.fit_rows),
            checkpoint=tune.Checkpoint.from_directory(tmp),
        )


OOF_FILE = "oof.npz"


def _read_oof(checkpoint: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    if checkpoint is None:
        return None, None
    with checkpoint.as_directory() as folder:
        path = f"{folder}/{OOF_FILE}"
        try:
            data = np.load(path)
        except FileNotFoundError:
            return None, None
        return np.asarray(data["oof"]), np.asarray(data["rows"])


def connect_ray(settings: RaySettings) -> dict[str, Any]:
    """Start Ray on this machine (``address`` unset) or join a cluster. Dashboard stays off.
    Returns the cluster's resources."""
    import ray

    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "ignore_reinit_error": True,
            "log_to_driver": False,
            "configure_logging": True,
            "logging_level": "WARNING",
        }
        if settings.address:
            ray.init(address=settings.address, **kwargs)
        else:
            ray.init(num_cpus=settings.num_cpus, **kwargs)
    return dict(ray.cluster_resources())


def _new_tuner(
    trainable: Any,
    cfg: SearchConfig,
    name: str,
    ray_settings: RaySettings,
    callbacks: list[Any],
) -> Any:
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    # the CSV and JSON results only (rung scores are read back from them): Tune's default
    # TensorBoard logger imports torch in the driver, seconds of every short search
    callbacks = [*callbacks, CSVLoggerCallback(), JsonLoggerCallback()]
    return tune.Tuner(
        trainable,
        param_space=param_space(cfg),
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            num_samples=num_samples(cfg),
            search_alg=search_alg(cfg),
            scheduler=scheduler(cfg),
            max_concurrent_trials=None
            if cfg.algorithm in ("random", "grid")
            else cfg.max_concurrent_trials,
            # trials stop growing at the search's deadline; Tune stops the rest a little later
            time_budget_s=None
            if cfg.time_budget_s is None
            else cfg.time_budget_s + anytime.TUNE_GRACE_S,
            reuse_actors=cfg.reuse_workers,  # no new worker (and torch import) per trial
            # short folder names (Tune's default spells out every parameter)
            trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=ray_settings.storage_path,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=1),
            callbacks=callbacks,
        ),
    )


def run_search(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    cfg: SearchConfig,
    setup: TrainingSetup,
    ray_settings: RaySettings,
    experiment_name: str | None = None,
    progress: Callable[[str], None] | None = None,
    progress_every_s: float = 5.0,
) -> SearchResult:
    """Search the families and feature options on Ray Tune (or, for a short search, in this
    process: :func:`honing.search.anytime.runs_here`), each trial scored by k-fold CV
    or one holdout split (``cfg.validation``), with the configured algorithm, scheduler,
    budget and concurrency. A search with a budget ends with a model: the trials end at their
    deadlines with what they have, and if none finished the driver fits a fallback. Each trial's
    validation predictions come back with it, for ensemble selection. ``progress`` receives a
    line every ``progress_every_s`` seconds. With an ``experiment_name`` whose folder already
    exists under the storage path, the search is restored instead: trials that finished are not
    run again.

    On a large table (:func:`honing.search.anytime.sample_rows`) the trials fit a sample of the
    rows,
    and the search's last :data:`honing.search.anytime.PROMOTE_SHARE` of its budget fits the best of
    them on more rows, all when it can (``SearchResult.notes`` says which)."""
    classes = int(np.max(y)) + 1 if setup.task == "classification" and len(y) else 0
    holdout = holdout_share(cfg, len(X), len(setup.columns.all), classes)
    fit_rows = anytime.sample_rows(cfg, len(X), len(setup.columns.all), classes)
    started = time.time()
    budget = cfg.time_budget_s
    if fit_rows and budget is not None:  # the trials' share; the rest fits the best on more rows
        cfg = cfg.model_copy(update={"time_budget_s": budget * (1 - anytime.PROMOTE_SHARE)})
    deadlines = Deadlines.from_budget(cfg.time_budget_s, started)
    here = anytime.runs_here(cfg, ray_settings.address)
    ray_s = time.time()
    if not here and not ray_settings.address:
        here = not _local_ray(ray_settings, progress)  # Ray would not start: search anyway
    ray_s = time.time() - ray_s  # Ray's start, apart from the search's own budget
    cores = max(1, int(ray_settings.num_cpus or runtime.cores()))
    if here:
        result = anytime.search_here(
            X, y, cfg=cfg, setup=setup, holdout=holdout, deadlines=deadlines,
            n_jobs=cores, progress=progress, every_s=progress_every_s, fit_rows=fit_rows,
        )  # fmt: skip
    else:
        result = _search_on_ray(
            X, y, cfg=cfg, setup=setup, ray_settings=ray_settings,
            experiment_name=experiment_name, progress=progress,
            progress_every_s=progress_every_s, holdout=holdout, deadlines=deadlines,
            fit_rows=fit_rows,
        )  # fmt: skip
        result.startup_s += ray_s
    result.holdout = holdout
    if fit_rows and result.completed:  # the best sampled trials, on more rows
        left = None if budget is None else started + budget - time.time()
        finished = anytime.finish_cut(
            result, X, y, setup=setup, n_jobs=cores, top=anytime.PROMOTE_TOP,
            seconds=float("inf") if left is None else left,
        )  # fmt: skip
        result = finished.result
        result.notes.extend(finished.notes)  # logged with the search's summary
    if not result.completed:  # anytime: a search always ends with a model
        fallback = anytime.fallback_trial(X, y, cfg=cfg, setup=setup, holdout=holdout)
        (progress or LOG.info)(
            f"no trial finished within the search's {cfg.time_budget_s or 0:.0f}s: fitted "
            f"{fallback.spec.effective().label()} in {fallback.fit_seconds or 0:.1f}s instead"
            + (f" ({fallback.error})" if fallback.error else "")
        )
        result.trials.append(fallback)
    result.wall_s = time.time() - started
    _ = result.best  # raises SearchError when nothing finished, the fallback included
    return result


def _local_ray(settings: RaySettings, progress: Callable[[str], None] | None) -> bool:
    """Whether Ray runs (or starts) on this machine. On a machine too busy for it to start
    (its node times out, or its GCS does not answer), the search runs in this process
    instead, and says so: a run with a budget ends with a model all the same."""
    try:
        connect_ray(settings)
    except Exception as exc:  # noqa: BLE001 - any failure to start: the search goes on here
        (progress or LOG.warning)(
            f"Ray did not start on this machine ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); the search runs in this process instead"
        )
        return False
    return True


def _check_fits(cpus_per_trial: float) -> None:
    """Refuse a trial size no node of the cluster can hold: Tune would wait for the budget
    and end with no trial and no reason."""
    import ray

    nodes = [n.get("Resources", {}).get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")]
    largest = max(nodes, default=0.0)
    if cpus_per_trial > largest:
        raise ConfigError(
            f"search.cpus_per_trial: a trial asks for {cpus_per_trial:g} CPUs, but the largest "
            f"Ray node has {largest:g}; no trial could ever start (rule: cpus_per_trial <= "
            "a node's CPUs)"
        )


def _search_on_ray(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    cfg: SearchConfig,
    setup: TrainingSetup,
    ray_settings: RaySettings,
    experiment_name: str | None,
    progress: Callable[[str], None] | None,
    progress_every_s: float,
    holdout: float | None,
    deadlines: Deadlines,
    fit_rows: int | None = None,
) -> SearchResult:
    """The trials on Ray Tune (see :func:`run_search`)."""
    from ray import tune

    from honing.search.progress import progress_callback

    startup = time.time()
    connect_ray(ray_settings)
    startup_s = time.time() - startup
    _check_fits(cfg.cpus_per_trial)
    trainable = tune.with_resources(
        tune.with_parameters(
            _trainable,
            X=X,
            y=y,
            setup=setup,
            rungs=cfg.scheduler.max_t if cfg.scheduler.kind != "none" else 1,
            holdout=holdout,
            deadlines=deadlines,
            fit_rows=fit_rows,
            threads=max(1, int(cfg.cpus_per_trial)),  # the CPUs a trial holds, all used
        ),
        {"cpu": cfg.cpus_per_trial},
    )
    callbacks = (
        [progress_callback(progress, cfg.metric, cfg.time_budget_s, progress_every_s, FAMILY_KEY)]
        if progress
        else []
    )
    wanted = experiment_name or f"search-{uuid.uuid4().hex[:8]}"
    with experiments.claim(ray_settings.storage_path, wanted) as name:
        path = f"{ray_settings.storage_path.rstrip('/')}/{name}"
        restore = bool(experiment_name) and tune.Tuner.can_restore(path)
        # never unpickle state someone else could have written, nor restore a cut state
        why = (experiments.untrusted(path) or experiments.cut_short(path)) if restore else None
        if why:
            name, restore = f"{name}-{uuid.uuid4().hex[:8]}", False
            (progress or LOG.warning)(f"not restoring the search in {path} ({why}): searching anew")
        started = time.time()
        if restore:
            # A search with this name ran before (same config, data and code) and may have
            # been interrupted: finished trials are kept, unfinished and errored ones run again.
            tuner = tune.Tuner.restore(
                path, trainable=trainable, resume_errored=True, param_space=param_space(cfg)
            )
        else:
            tuner = _new_tuner(trainable, cfg, name, ray_settings, callbacks)
        with (
            _environ(TUNE_DISABLE_AUTO_CALLBACK_LOGGERS="1"),
            tpe_deadline(deadlines.search),
        ):
            grid = tuner.fit()
    result = SearchResult(
        metric=cfg.metric,
        validation=describe_validation(cfg, holdout, fit_rows),
        startup_s=startup_s,
    )
    for trial in grid:
        if not trial.config:  # created but never started before the time budget ran out
            continue
        result.trials.append(_trial_result(trial, started))
        node = (trial.metrics or {}).get("node")
        if node and node not in result.nodes:
            result.nodes.append(node)
    return result


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` within the block, as it was after it."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _trial_result(trial: Any, started: float) -> TrialResult:
    m = trial.metrics or {}
    error, status = None, "completed"
    oof, rows = _read_oof(trial.checkpoint)
    if trial.error is not None:
        status = "failed"
        error = f"{type(trial.error).__name__}: {str(trial.error).strip().splitlines()[-1]}"
    elif m.get("score") is None:
        status, error = "stopped", "stopped before its first result (time budget)"
    elif oof is None:  # cut by the scheduler (or the budget) before its last rung
        status = "stopped"
    configured = spec_from_trial_config(trial.config)
    return TrialResult(
        trial_id=str(m.get("trial_id") or trial.path.rsplit("/", 1)[-1]),
        spec=configured.with_rounds(m.get("rounds")),
        score=m.get("score"),
        score_std=m.get("score_std"),
        fold_scores=list(m.get("fold_scores") or []),
        fit_seconds=m.get("fit_seconds"),
        error=error,
        node=m.get("node"),
        rungs=m.get("rung"),
        restored=bool(m.get("timestamp")) and float(m["timestamp"]) < started,
        status=status,
        oof=oof,
        oof_rows=rows,
        started_at=m.get("started_at"),
        cut=bool(m.get("cut", False)),
        rung_scores=_rung_scores(trial),
        grows_to=anytime.rounds_to_grow(
            configured, m.get("rounds"), bool(m.get("cut")) or bool(m.get("fit_rows"))
        ),
        fit_rows=m.get("fit_rows"),
        threads=int(m.get("threads") or 1),
    )


def _rung_scores(trial: Any) -> tuple[tuple[int, float, float], ...]:
    """Each report of a Ray Tune trial: (rung, mean score, seconds since it started)."""
    frame, wanted = getattr(trial, "metrics_dataframe", None), ["rung", "score", "fit_seconds"]
    if frame is None or not set(wanted) <= set(frame.columns):
        return ()
    rows = frame[wanted].dropna().itertuples(index=False)
    return tuple((int(r), float(s), float(t)) for r, s, t in rows)
