"""Hyperparameter search with Ray Tune.

Each trial is Ray Tune's *function trainable*, which calls :func:`honing.training.train_model` —
the same function that fits the final model. Ray runs on this machine by default, or on a cluster
when :class:`honing.config.RaySettings` names an address (``RAY_ADDRESS``): only settings change.

Trials report to Ray only. The driver logs them to MLflow afterwards (one writer), which keeps
SQLite stores free of ``database is locked`` and needs no tracking access from the workers.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from honing.config import FeaturesConfig, RaySettings, SearchConfig
from honing.exceptions import SearchError
from honing.features import FeatureColumns
from honing.training import ModelSpec, train_model

FAMILY_KEY = "family"
FEATURES_PREFIX = "features"
SEP = "__"


@dataclass(frozen=True)
class TrialResult:
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


@dataclass
class SearchResult:
    metric: str
    trials: list[TrialResult] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    wall_s: float = 0.0

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
    grid), in total for TPE and the evolutionary algorithm."""
    if cfg.algorithm == "grid":
        return 1
    if cfg.algorithm == "random":
        return cfg.trials_per_family
    return cfg.trials_per_family * len(cfg.families)


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
    columns: FeatureColumns,
    features: FeaturesConfig,
    seed: int,
    folds: int,
    metric: str,
    rungs: int,
    task: str = "classification",
) -> None:
    import socket

    import ray
    from ray import tune

    node = f"{socket.gethostname()}:{ray.get_runtime_context().get_node_id()[:12]}"

    def report(rung: int, scores: list[float], seconds: float) -> None:
        # one report per rung: the scheduler may stop the trial at any of them
        tune.report(
            {
                "score": float(np.mean(scores)),
                "score_std": float(np.std(scores)),
                "fold_scores": scores,
                "fit_seconds": seconds,
                "rung": rung,
                "node": node,
            }
        )

    train_model(
        X,
        y,
        spec_from_trial_config(config),
        columns=columns,
        features=features,
        seed=seed,
        metric=metric,
        cv_folds=folds,
        refit=False,
        rungs=rungs,
        on_step=report,
        task=task,
    )


def _search_alg(cfg: SearchConfig) -> Any:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if cfg.algorithm in ("random", "grid"):
        # the generator limits concurrency itself (Tune ignores max_concurrent_trials for it)
        return BasicVariantGenerator(
            random_state=cfg.seed, max_concurrent=cfg.max_concurrent_trials or 0
        )
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if cfg.algorithm == "tpe":
        sampler = optuna.samplers.TPESampler(
            seed=cfg.seed, n_startup_trials=max(2, num_samples(cfg) // 4)
        )
    else:  # evolutionary: NSGA-II, a genetic algorithm (selection, crossover, mutation)
        sampler = optuna.samplers.NSGAIISampler(
            seed=cfg.seed, population_size=max(4, num_samples(cfg) // 4)
        )
    return OptunaSearch(metric="score", mode="max", sampler=sampler)


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


def _new_tuner(trainable: Any, cfg: SearchConfig, name: str, ray_settings: RaySettings) -> Any:
    from ray import tune

    return tune.Tuner(
        trainable,
        param_space=build_space(cfg),
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
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=ray_settings.storage_path,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )


def run_search(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    cfg: SearchConfig,
    columns: FeatureColumns,
    features: FeaturesConfig,
    ray_settings: RaySettings,
    experiment_name: str | None = None,
    task: str = "classification",
) -> SearchResult:
    """Search the families and feature options with k-fold CV on Ray Tune, with the
    configured algorithm, scheduler, budget and concurrency.

    With an ``experiment_name`` whose folder already exists under the storage path, the search
    is restored instead: trials that finished are not run again."""
    from ray import tune

    connect_ray(ray_settings)
    trainable = tune.with_resources(
        tune.with_parameters(
            _trainable,
            X=X,
            y=y,
            columns=columns,
            features=features,
            seed=cfg.seed,
            folds=cfg.cv_folds,
            metric=cfg.metric,
            rungs=cfg.scheduler.max_t if cfg.scheduler.kind != "none" else 1,
            task=task,
        ),
        {"cpu": cfg.cpus_per_trial},
    )
    name = experiment_name or f"search-{uuid.uuid4().hex[:8]}"
    path = f"{ray_settings.storage_path.rstrip('/')}/{name}"
    started = time.time()
    if experiment_name and tune.Tuner.can_restore(path):
        # A search with this name ran before (same config, data and code) and may have been
        # interrupted: finished trials are kept, unfinished and errored ones run again.
        tuner = tune.Tuner.restore(
            path, trainable=trainable, resume_errored=True, param_space=build_space(cfg)
        )
    else:
        tuner = _new_tuner(trainable, cfg, name, ray_settings)
    grid = tuner.fit()
    result = SearchResult(metric=cfg.metric)
    for trial in grid:
        if not trial.config:  # created but never started before the time budget ran out
            continue
        spec = spec_from_trial_config(trial.config)
        m = trial.metrics or {}
        error = None
        if trial.error is not None:
            error = f"{type(trial.error).__name__}: {str(trial.error).strip().splitlines()[-1]}"
        elif m.get("score") is None:
            error = "stopped before its first result (time budget)"
        result.trials.append(
            TrialResult(
                trial_id=str(m.get("trial_id") or trial.path.rsplit("/", 1)[-1]),
                spec=spec,
                score=m.get("score"),
                score_std=m.get("score_std"),
                fold_scores=list(m.get("fold_scores") or []),
                fit_seconds=m.get("fit_seconds"),
                error=error,
                node=m.get("node"),
                rungs=m.get("rung"),
                restored=bool(m.get("timestamp")) and float(m["timestamp"]) < started,
            )
        )
        if m.get("node") and m["node"] not in result.nodes:
            result.nodes.append(m["node"])
    result.wall_s = time.time() - started
    _ = result.best  # raises SearchError when nothing finished
    return result
