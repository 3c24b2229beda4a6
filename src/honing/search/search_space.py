"""The search space as Ray Tune sees it: the flat space of families, their hyperparameters and
the feature options (``family__param``), the number of samples, the search algorithm and the
scheduler, built from the ``search:`` section of the config (:mod:`honing.config.search_config`);
and the same space drawn at random in this process (:class:`RandomDraws`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from honing.config import SearchConfig
from honing.modeling.training import ModelSpec

FAMILY_KEY = "family"
FEATURES_PREFIX = "features"
SEP = "__"


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


class RandomDraws:
    """A ``random`` search's trials in this process: ``trials_per_family`` draws per family
    (without a cap, until the search's deadline), in rounds over the families, each
    hyperparameter drawn from its distribution with the search's seed (the distributions of
    :func:`build_space`: ``randint`` includes both ends). The interface of
    :class:`honing.search.tpe.FamilyState`."""

    def __init__(self, cfg: SearchConfig) -> None:
        self.cfg = cfg
        self.families = sorted(cfg.families)
        self.rng = np.random.default_rng(cfg.seed)
        self.drawn = 0

    def _draw(self, spec: Any) -> Any:
        if not isinstance(spec, dict):
            return spec
        kind, args = next(iter(spec.items()))
        if kind in ("choice", "grid"):
            return list(args)[int(self.rng.integers(len(args)))]
        if kind == "uniform":
            return float(self.rng.uniform(args[0], args[1]))
        if kind == "loguniform":
            return float(np.exp(self.rng.uniform(np.log(args[0]), np.log(args[1]))))
        if kind == "randint":
            return int(self.rng.integers(int(args[0]), int(args[1]) + 1))
        raise ValueError(f"unknown distribution {kind}")

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """The next trial's config; None once every family had its draws."""
        rounds, i = divmod(self.drawn, len(self.families))
        if self.cfg.trials_per_family is not None and rounds >= self.cfg.trials_per_family:
            return None
        self.drawn += 1
        family = self.families[i]
        config: dict[str, Any] = {FAMILY_KEY: family}
        for name, spec in self.cfg.families[family].items():
            config[f"{family}{SEP}{name}"] = self._draw(spec)
        for name, spec in self.cfg.features.items():
            config[f"{FEATURES_PREFIX}{SEP}{name}"] = self._draw(spec)
        return config

    def complete(self, trial_id: str, result: dict[str, Any] | None, error: bool) -> None:
        """Nothing to learn: the draws do not depend on the scores."""


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


def search_alg(cfg: SearchConfig) -> Any:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if cfg.algorithm in ("random", "grid"):
        # the generator limits concurrency itself (Tune ignores max_concurrent_trials for it)
        return BasicVariantGenerator(
            random_state=cfg.seed, max_concurrent=cfg.max_concurrent_trials or 0
        )
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from honing.metrics import METRICS
    from honing.search.portfolio import points as portfolio_points
    from honing.search.tpe import FamilySearcher

    if cfg.algorithm == "tpe":  # one TPE per family, families scheduled by cost and score
        return FamilySearcher.build(
            cfg,
            family_key=FAMILY_KEY,
            sep=SEP,
            bounded=METRICS[cfg.metric].bounded,
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


def _seeded_hyperband(seed: int, **kwargs: Any) -> Any:
    """Ray's asynchronous HyperBand, whose trials are dealt to brackets by a draw from the
    search's own seeded generator instead of NumPy's global one, so one seed deals them the
    same way every time (which trials a bracket can cut depends on that draw)."""
    from ray.tune.schedulers import AsyncHyperBandScheduler

    class SeededAsyncHyperBand(AsyncHyperBandScheduler):
        def __init__(self) -> None:
            super().__init__(**kwargs)
            self._honing_draws = np.random.RandomState(seed).get_state()

        def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
            # Ray draws from np.random; lend it this scheduler's state for the one draw
            outside = np.random.get_state()
            np.random.set_state(self._honing_draws)
            try:
                super().on_trial_add(tune_controller, trial)
            finally:
                self._honing_draws = np.random.get_state()
                np.random.set_state(outside)

    return SeededAsyncHyperBand()


def scheduler(cfg: SearchConfig) -> Any:
    """ASHA (one bracket), HyperBand (asynchronous, several brackets: Ray's synchronous
    HyperBand pauses trials, which needs checkpoints a CV trainable does not keep) or the
    median stopping rule, over rungs of the iterative families' resource. Families trained in
    one go report once, at the last rung, so they never set the bar for partial trainings.
    HyperBand deals trials to its brackets from the search's seed."""
    from ray.tune.schedulers import FIFOScheduler, MedianStoppingRule

    s = cfg.scheduler
    if s.kind == "none":
        return FIFOScheduler()
    if s.kind in ("asha", "hyperband"):
        return _seeded_hyperband(
            cfg.seed,
            time_attr="rung",
            max_t=s.max_t,
            grace_period=min(s.grace_period, s.max_t),
            reduction_factor=s.reduction_factor,
            brackets=1 if s.kind == "asha" else 3,
        )
    return MedianStoppingRule(time_attr="rung", grace_period=s.grace_period, min_samples_required=3)


def param_space(cfg: SearchConfig) -> dict[str, Any]:
    """Tune's ``param_space``: empty for TPE, whose family searcher hands out whole configs."""
    return {} if cfg.algorithm == "tpe" else build_space(cfg)
