"""Hyperparameter search with Ray Tune.

Each trial is Ray Tune's *function trainable*, which calls :func:`honing.training.train_model` —
the same function that fits the final model. Ray runs on this machine by default, or on a cluster
when :class:`honing.config.RaySettings` names an address (``RAY_ADDRESS``): only settings change.

Trials report to Ray only. The driver logs them to MLflow afterwards (one writer), which keeps
SQLite stores free of ``database is locked`` and needs no tracking access from the workers.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from honing import experiments
from honing.config import RaySettings, SearchConfig
from honing.exceptions import SearchError
from honing.metrics import metric_value
from honing.training import ModelSpec, TrainingSetup, laddered, train_model

LOG = logging.getLogger(__name__)

FAMILY_KEY = "family"
FEATURES_PREFIX = "features"
SEP = "__"


@dataclass(frozen=True)
class TrialResult:
    """One trial. ``status``: ``completed``; ``stopped`` (by the time budget or the
    scheduler before it had a score, or cut early by the scheduler); ``failed`` (an error).
    ``oof``/``oof_rows``: its validation predictions (see :class:`honing.training.CVResult`)."""

    trial_id: str
    spec: ModelSpec
    score: float | None
    score_std: float | None
    fold_scores: list[float]
    fit_seconds: float | None
    error: str | None = None
    node: str | None = None
    restored: bool = False
    rungs: int | None = None
    status: str = ""  # empty: "failed" when there is an error, else "completed"
    oof: np.ndarray | None = field(default=None, repr=False, compare=False)
    oof_rows: np.ndarray | None = field(default=None, repr=False, compare=False)
    started_at: float | None = None
    rung_scores: tuple[tuple[int, float, float], ...] = ()  # (rung, score, seconds) per report

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", "failed" if self.error else "completed")


@dataclass
class SearchResult:
    metric: str
    trials: list[TrialResult] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    validation: str = "cv"  # "5-fold CV" or "holdout 20%": what scored the trials
    startup_s: float = 0.0  # starting or joining Ray, before the search's own budget

    def log_lines(self) -> list[str]:
        line = (
            f"search: {len(self.completed)} trials completed, {len(self.stopped)} stopped by the "
            f"budget or scheduler, {len(self.failed)} failed "
            f"({self.validation}, {self.wall_s:.0f}s)"
        )
        if self.completed:
            best = self.best
            score = metric_value(self.metric, best.score or 0.0)
            line += f"; best {best.spec.label()}: {self.metric} {score:.4f}"
        return [line]

    @property
    def stopped(self) -> list[TrialResult]:
        return [t for t in self.trials if t.status == "stopped"]

    @property
    def failed(self) -> list[TrialResult]:
        return [t for t in self.trials if t.status == "failed"]

    @property
    def completed(self) -> list[TrialResult]:
        return [t for t in self.trials if t.error is None and t.score is not None]

    @property
    def restored(self) -> int:
        """Trials whose results came from an earlier, interrupted or finished run."""
        return sum(t.restored for t in self.trials)

    @property
    def best(self) -> TrialResult:
        done = self.completed
        if not done:
            errors = "; ".join(sorted({t.error or "no score" for t in self.trials}))[:2000]
            raise SearchError(f"no search trial finished ({len(self.trials)} tried): {errors}")
        # ties: first by trial order, so results are deterministic
        return max(done, key=lambda t: (t.score, -self.trials.index(t)))


def _domain(spec: Any) -> Any:
    from ray import tune

    if not isinstance(spec, dict):
        return spec
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        return tune.choice(list(args))
    if kind == "grid":
        return tune.grid_search(list(args))
    if kind == "uniform":
        return tune.uniform(args[0], args[1])
    if kind == "loguniform":
        return tune.loguniform(args[0], args[1])
    if kind == "randint":  # inclusive of both ends
        return tune.randint(int(args[0]), int(args[1]) + 1)
    raise ValueError(f"unknown distribution {kind}")


def build_space(cfg: SearchConfig) -> dict[str, Any]:
    """A flat Tune space. Each family's params are namespaced ``family__param`` and the feature
    options ``features__option``. For random and grid search ``family`` is a grid axis (every
    family gets ``trials_per_family`` samples); for the model-based algorithms it is a
    categorical the sampler learns about."""
    from ray import tune

    families = sorted(cfg.families)
    if cfg.algorithm in ("random", "grid"):
        space: dict[str, Any] = {FAMILY_KEY: tune.grid_search(families)}
    else:
        space = {FAMILY_KEY: tune.choice(families)}
    grid = cfg.algorithm == "grid"
    for family, params in cfg.families.items():
        for name, spec in params.items():
            space[f"{family}{SEP}{name}"] = _domain(_as_grid(spec) if grid else spec)
    for name, spec in cfg.features.items():
        space[f"{FEATURES_PREFIX}{SEP}{name}"] = _domain(_as_grid(spec) if grid else spec)
    return space


def _as_grid(spec: Any) -> Any:
    if isinstance(spec, dict) and next(iter(spec)) == "choice":
        return {"grid": next(iter(spec.values()))}
    return spec


def num_samples(cfg: SearchConfig) -> int:
    """Tune's ``num_samples``: per grid point for random/grid search (grid: one pass over the
    grid), in total for TPE and the evolutionary algorithm; -1 (until the time budget ends
    the search) when ``trials_per_family`` is None."""
    if cfg.algorithm == "grid":
        return 1
    if cfg.trials_per_family is None:
        return -1
    if cfg.algorithm == "random":
        return cfg.trials_per_family
    return cfg.trials_per_family * len(cfg.families)


#: Rows x columns that k-fold CV affords per hour of search (FLAML's rule of thumb is of the
#: same order): past it, ``validation: auto`` scores trials on one holdout split.
CV_CELLS_PER_HOUR = 10_000_000


def holdout_share(cfg: SearchConfig, rows: int, columns: int) -> float | None:
    """The holdout share that scores the trials, or None for k-fold CV."""
    if cfg.validation == "holdout":
        return cfg.holdout_fraction
    if cfg.validation == "cv" or cfg.time_budget_s is None:
        return None
    affordable = CV_CELLS_PER_HOUR * cfg.time_budget_s / 3600.0
    return cfg.holdout_fraction if rows * max(columns, 1) > affordable else None


def describe_validation(cfg: SearchConfig, holdout: float | None) -> str:
    return f"holdout {holdout:.0%}" if holdout else f"{cfg.cv_folds}-fold CV"


def spec_from_trial_config(config: dict[str, Any]) -> ModelSpec:
    """The model a trial config describes (drops other families' namespaced params)."""
    family = config[FAMILY_KEY]
    prefix = f"{family}{SEP}"
    params = {k[len(prefix) :]: _plain(v) for k, v in config.items() if k.startswith(prefix)}
    fprefix = f"{FEATURES_PREFIX}{SEP}"
    features = {k[len(fprefix) :]: _plain(v) for k, v in config.items() if k.startswith(fprefix)}
    return ModelSpec(family=family, params=params, features=features)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _trainable(
    config: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    setup: TrainingSetup,
    rungs: int,
    holdout: float | None,
) -> None:
    import socket
    import tempfile

    import ray
    from ray import tune

    node = f"{socket.gethostname()}:{ray.get_runtime_context().get_node_id()[:12]}"
    started = time.time()

    def metrics(
        rung: int, scores: list[float], seconds: float, rounds: int | None = None
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
    )
    cv = res.cv
    assert cv is not None and cv.oof is not None
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/{OOF_FILE}", oof=cv.oof, rows=cv.oof_rows)
        tune.report(
            metrics(last, cv.fold_scores, cv.fit_seconds, cv.rounds),
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


def _search_alg(cfg: SearchConfig) -> Any:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if cfg.algorithm in ("random", "grid"):
        # the generator limits concurrency itself (Tune ignores max_concurrent_trials for it)
        return BasicVariantGenerator(
            random_state=cfg.seed, max_concurrent=cfg.max_concurrent_trials or 0
        )
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from honing.metrics import METRICS
    from honing.portfolio import points as portfolio_points
    from honing.tpe import FamilySearcher

    if cfg.algorithm == "tpe":  # one TPE per family, families scheduled by cost and score
        return FamilySearcher.build(
            cfg, family_key=FAMILY_KEY, sep=SEP, bounded=METRICS[cfg.metric].bounded
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = portfolio_points(cfg, family_key=FAMILY_KEY, sep=SEP) if cfg.portfolio else []
    planned = num_samples(cfg)
    # evolutionary: NSGA-II, a genetic algorithm (selection, crossover, mutation)
    sampler = optuna.samplers.NSGAIISampler(
        seed=cfg.seed, population_size=max(4, (planned if planned > 0 else 32) // 4)
    )
    return OptunaSearch(
        metric="score", mode="max", sampler=sampler, points_to_evaluate=start or None
    )


def _scheduler(cfg: SearchConfig) -> Any:
    """ASHA (one bracket), HyperBand (asynchronous, several brackets: Ray's synchronous
    HyperBand pauses trials, which needs checkpoints a CV trainable does not keep) or the
    median stopping rule, over rungs of the iterative families' resource. Families trained in
    one go report once, at the last rung, so they never set the bar for partial trainings."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, MedianStoppingRule

    s = cfg.scheduler
    if s.kind == "none":
        return FIFOScheduler()
    if s.kind in ("asha", "hyperband"):
        return AsyncHyperBandScheduler(
            time_attr="rung",
            max_t=s.max_t,
            grace_period=min(s.grace_period, s.max_t),
            reduction_factor=s.reduction_factor,
            brackets=1 if s.kind == "asha" else 3,
        )
    return MedianStoppingRule(time_attr="rung", grace_period=s.grace_period, min_samples_required=3)


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


def _param_space(cfg: SearchConfig) -> dict[str, Any]:
    """Tune's ``param_space``: empty for TPE, whose family searcher hands out whole configs."""
    return {} if cfg.algorithm == "tpe" else build_space(cfg)


def _new_tuner(
    trainable: Any,
    cfg: SearchConfig,
    name: str,
    ray_settings: RaySettings,
    callbacks: list[Any],
) -> Any:
    from ray import tune

    return tune.Tuner(
        trainable,
        param_space=_param_space(cfg),
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            num_samples=num_samples(cfg),
            search_alg=_search_alg(cfg),
            scheduler=_scheduler(cfg),
            max_concurrent_trials=None
            if cfg.algorithm in ("random", "grid")
            else cfg.max_concurrent_trials,
            time_budget_s=cfg.time_budget_s,
            reuse_actors=True,  # no new worker (and torch import) per trial
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
    """Search the families and feature options on Ray Tune, each trial scored by k-fold CV
    or one holdout split (``cfg.validation``), with the configured algorithm, scheduler,
    budget and concurrency. Each trial's validation predictions come back with it, for
    ensemble selection. ``progress`` receives a line every ``progress_every_s`` seconds.
    With an ``experiment_name`` whose folder already exists under the storage path, the search
    is restored instead: trials that finished are not run again."""
    from ray import tune

    from honing.progress import progress_callback

    startup = time.time()
    connect_ray(ray_settings)
    startup_s = time.time() - startup
    holdout = holdout_share(cfg, len(X), len(setup.columns.all))
    trainable = tune.with_resources(
        tune.with_parameters(
            _trainable,
            X=X,
            y=y,
            setup=setup,
            rungs=cfg.scheduler.max_t if cfg.scheduler.kind != "none" else 1,
            holdout=holdout,
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
        why = experiments.untrusted(path) if restore else None
        if why:  # never unpickle state someone else could have written
            name, restore = f"{name}-{uuid.uuid4().hex[:8]}", False
            (progress or LOG.warning)(f"not restoring the search in {path} ({why}): searching anew")
        started = time.time()
        if restore:
            # A search with this name ran before (same config, data and code) and may have
            # been interrupted: finished trials are kept, unfinished and errored ones run again.
            tuner = tune.Tuner.restore(
                path, trainable=trainable, resume_errored=True, param_space=_param_space(cfg)
            )
        else:
            tuner = _new_tuner(trainable, cfg, name, ray_settings, callbacks)
        grid = tuner.fit()
    result = SearchResult(
        metric=cfg.metric, validation=describe_validation(cfg, holdout), startup_s=startup_s
    )
    for trial in grid:
        if not trial.config:  # created but never started before the time budget ran out
            continue
        result.trials.append(_trial_result(trial, started))
        node = (trial.metrics or {}).get("node")
        if node and node not in result.nodes:
            result.nodes.append(node)
    result.wall_s = time.time() - started
    _ = result.best  # raises SearchError when nothing finished
    return result


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
    return TrialResult(
        trial_id=str(m.get("trial_id") or trial.path.rsplit("/", 1)[-1]),
        spec=spec_from_trial_config(trial.config).with_rounds(m.get("rounds")),
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
        rung_scores=_rung_scores(trial),
    )


def _rung_scores(trial: Any) -> tuple[tuple[int, float, float], ...]:
    """Each report of a Ray Tune trial: (rung, mean score, seconds since it started)."""
    frame, wanted = getattr(trial, "metrics_dataframe", None), ["rung", "score", "fit_seconds"]
    if frame is None or not set(wanted) <= set(frame.columns):
        return ()
    rows = frame[wanted].dropna().itertuples(index=False)
    return tuple((int(r), float(s), float(t)) for r, s, t in rows)
