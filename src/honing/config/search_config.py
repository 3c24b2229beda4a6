"""The ``search:`` section of the pipeline config: families and their spaces, the algorithm,
scheduler, validation scheme, ensembles and nested CV (see :mod:`honing.config`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from honing.config.settings import StrictModel
from honing.metrics import Metric
from honing.models import FamilyName

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint", "grid")


#: Feature options the search may vary per trial (``search.features``).
SEARCHABLE_FEATURES = (
    "numeric_imputer",
    "scaler",
    "encoder",
    "selection",
    "selection_fraction",
    "selection_C",
    "pca",
    "sampling",
)


def _check_space(where: str, space: Mapping[str, Any]) -> None:
    for name, spec in space.items():
        if not isinstance(spec, Mapping):
            continue
        if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
            raise ValueError(
                f"{where}.{name}: a distribution is one key of {DISTRIBUTIONS}, got {dict(spec)}"
            )
        kind, args = next(iter(spec.items()))
        if kind in ("uniform", "loguniform", "randint"):
            if not (isinstance(args, list) and len(args) == 2 and args[0] < args[1]):
                raise ValueError(
                    f"{where}.{name}: {kind} needs [low, high] with low < high, got {args}"
                )
            if kind == "loguniform" and args[0] <= 0:
                raise ValueError(f"{where}.{name}: loguniform needs low > 0")
        elif not (isinstance(args, list) and args):
            raise ValueError(f"{where}.{name}: {kind} needs a non-empty list")


class SchedulerConfig(StrictModel):
    """Early stopping of trials at low-fidelity rungs (:mod:`honing.models.fidelity`). The resource,
    cut into ``max_t`` rungs, is each family's own: boosting rounds (``lightgbm``, ``xgboost``,
    which also stop by themselves when their validation loss stops improving), trees
    (forests), epochs (``mlp``), iterations (``hist_gradient_boosting``), or a growing row
    subsample for the others (only on tables large enough to subsample)."""

    kind: Literal["none", "asha", "hyperband", "median"] = "none"
    max_t: int = Field(default=8, ge=1, le=1000, description="Rungs of the resource.")
    grace_period: int = Field(default=1, ge=1, description="Rungs before a trial may stop.")
    reduction_factor: float = Field(default=3.0, gt=1.0)


class NestedCVConfig(StrictModel):
    """Nested CV: the whole search repeated inside each outer fold, scored on the held-out
    outer fold: an unbiased estimate of the procedure (reported, not used to choose)."""

    enabled: bool = False
    outer_folds: int = Field(default=3, ge=2, le=10)


class EnsembleConfig(StrictModel):
    """Ensembles of the trials, kept only when they beat the best single model: ensemble
    selection on the trials' out-of-fold predictions (no extra fitting to score it), and
    optionally soft voting / stacking of the top-k trials (cross-validated again)."""

    enabled: bool = False
    selection: bool = Field(
        default=True, description="Greedy ensemble selection (Caruana) on out-of-fold predictions."
    )
    top_k: int = Field(default=3, ge=2, le=10)
    methods: list[Literal["soft_voting", "stacking"]] = Field(
        default_factory=list,
        description="Top-k ensembles cross-validated after the search (each costs a CV).",
    )


class SearchConfig(StrictModel):
    families: dict[FamilyName, dict[str, Any]] = Field(min_length=1)
    features: dict[str, Any] = Field(
        default_factory=dict,
        description="Feature options searched per trial: keys of SEARCHABLE_FEATURES.",
    )
    algorithm: Literal["random", "grid", "tpe", "evolutionary"] = Field(
        default="random",
        description="random/grid: Ray's variant generator; tpe: Optuna TPE; evolutionary: "
        "Optuna NSGA-II (a genetic algorithm), both through Ray Tune's OptunaSearch.",
    )
    trials_per_family: int | None = Field(
        default=4,
        ge=1,
        le=1000,
        description="random/grid: per family; tpe/evolutionary: x families in total. None: "
        "no cap, the time budget ends the search.",
    )
    portfolio: bool = Field(
        default=True,
        description=(
            "tpe/evolutionary: start from known-good configurations (honing.search.portfolio)."
        ),
    )
    validation: Literal["cv", "holdout", "auto"] = Field(
        default="cv",
        description="How trials are scored: k-fold CV, one holdout split, or auto (holdout when "
        "rows x columns is large for the time budget).",
    )
    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    sample_rows: int | Literal["auto"] | None = Field(
        default="auto",
        description="Training rows each search trial is fitted on (it is scored on all the "
        "validation rows). auto: with a time budget, a sample of 8,000 cells (rows x columns, "
        "x classes past two) per second of the search's budget, at least 25,000 rows, on a "
        "table of four times as many rows; the best trials are then fitted on more rows, all when "
        "the time allows, before the model is chosen. A number: at most that many, on any "
        "table. null: every trial fits all rows.",
    )
    cv_folds: int = Field(default=5, ge=2, le=20)
    metric: Metric = "roc_auc"
    seed: int = 42
    max_concurrent_trials: int | None = Field(default=None, ge=1)
    cpus_per_trial: float = Field(
        default=1.0,
        gt=0,
        description="CPUs each Ray Tune trial holds; its model fits on that many threads "
        "(whole CPUs, at least one).",
    )
    time_budget_s: float | None = Field(default=None, gt=0)
    reuse_workers: bool = Field(
        default=True,
        description="A Ray worker process runs trial after trial (no import per trial). False: a "
        "fresh worker per trial, which keeps the node Ray gave it (isolation from leaks; every "
        "node of a cluster takes trials even when one node's workers start slowly).",
    )
    scheduler: SchedulerConfig = SchedulerConfig()
    executor: Literal["auto", "ray", "process"] = Field(
        default="auto",
        description="Where the trials run. ray: Ray Tune (trials side by side, each in a worker "
        "of its own; a killed run's rerun restores the trials that finished). process: one "
        "after another in the run's own process, each on every core, without Ray's start "
        "(algorithms tpe and random, no scheduler). auto: in process when the search is "
        "small (a budget under 40 s with tpe, or at most 4 trials in all) and no cluster is "
        "named, on Ray otherwise.",
    )
    nested_cv: NestedCVConfig = NestedCVConfig()
    ensemble: EnsembleConfig = EnsembleConfig()

    @field_validator("families")
    @classmethod
    def _check_spaces(cls, families: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for family, space in families.items():
            _check_space(f"search.families.{family}", space or {})
        return {k: dict(v or {}) for k, v in families.items()}

    @field_validator("sample_rows")
    @classmethod
    def _check_sample(cls, rows: int | str | None) -> int | str | None:
        if isinstance(rows, int) and rows < 100:
            raise ValueError(f"search.sample_rows: at least 100 rows, or auto or null; got {rows}")
        return rows

    @field_validator("features")
    @classmethod
    def _check_features(cls, features: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(features) - set(SEARCHABLE_FEATURES))
        if unknown:
            raise ValueError(
                f"search.features: {unknown} cannot be searched; choose from "
                f"{list(SEARCHABLE_FEATURES)}"
            )
        _check_space("search.features", features)
        return features

    @model_validator(mode="after")
    def _process_runs_what_it_can(self) -> SearchConfig:
        if self.executor != "process":
            return self
        if self.algorithm not in ("tpe", "random"):
            raise ValueError(
                f"search.executor: process runs algorithms tpe and random; {self.algorithm} "
                "runs on Ray (executor: ray or auto)"
            )
        if self.scheduler.kind != "none":
            raise ValueError(
                f"search.executor: process runs no scheduler; {self.scheduler.kind} runs on "
                "Ray (executor: ray or auto)"
            )
        return self

    @model_validator(mode="after")
    def _grid_is_discrete(self) -> SearchConfig:
        if self.trials_per_family is None and self.algorithm == "grid":
            raise ValueError("search.trials_per_family: grid search needs a number, not null")
        if self.algorithm != "grid":
            return self
        spaces = [("search.features", self.features)] + [
            (f"search.families.{f}", p) for f, p in self.families.items()
        ]
        for where, space in spaces:
            for name, spec in space.items():
                if isinstance(spec, Mapping) and next(iter(spec)) not in ("choice", "grid"):
                    raise ValueError(
                        f"{where}.{name}: algorithm grid needs choice/grid lists or constants, "
                        f"got {next(iter(spec))}"
                    )
        return self
