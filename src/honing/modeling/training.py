"""``train_model``: the one training function. The Ray Tune trainable and the training task both
call it, so a trial's score and the refit model come from the same code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from honing.config import FeaturesConfig, PipelineConfig
from honing.data.folds import splits_for
from honing.metrics import score_predictions
from honing.modeling.features import (
    FeatureColumns,
    build_preprocessor,
    build_reducers,
    categorical_positions,
    resample,
    resolve_encoder,
)
from honing.models import FAMILY_TABLE, build_estimator, effective_params
from honing.models.fidelity import (
    Fold,
    LadderResult,
    StepCallback,
    boosting_ladder,
    deadline_iterations,
    deadline_rows,
    fit_by,
    iterative,
    predictions,
    sample_ladder,
    subsample,
    warm_start_ladder,
)


@dataclass(frozen=True)
class ModelSpec:
    """A point of the search space: a model family, its hyperparameters, and the feature
    options (overrides of :class:`FeaturesConfig`) searched with it."""

    family: str
    params: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        def show(items: dict[str, Any]) -> str:
            return ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in sorted(items.items())
            )

        extra = f" + features({show(self.features)})" if self.features else ""
        return f"{self.family}({show(self.params)}){extra}"

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON values (numpy scalars as Python numbers): what a run records
        of its chosen model, and :meth:`from_dict` rebuilds exactly."""

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, list | tuple | np.ndarray):
                return [plain(v) for v in value]
            return value.item() if isinstance(value, np.generic) else value

        return {"family": self.family, "params": plain(self.params),
                "features": plain(self.features)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(data["family"], dict(data.get("params", {})), dict(data.get("features", {})))

    def effective(self) -> ModelSpec:
        """This spec with its hyperparameters as the estimators take them (the sampler's
        floats that a family casts to ints, as ints; an ensemble's members too): what logs
        and leaderboards show. The model fitted from either spec is the same."""
        if isinstance(self.params.get("members"), list):
            members = [
                {**m, "params": effective_params(m["family"], m.get("params", {}))}
                for m in self.params["members"]
            ]
            return ModelSpec(self.family, {**self.params, "members": members}, self.features)
        return ModelSpec(self.family, effective_params(self.family, self.params), self.features)

    def with_rounds(self, rounds: int | None) -> ModelSpec:
        """This spec with the boosting rounds that early stopping chose (``n_estimators`` in
        the search space is then an upper bound); unchanged when ``rounds`` is None."""
        if not rounds:
            return self
        return ModelSpec(self.family, {**self.params, "n_estimators": int(rounds)}, self.features)


@dataclass(frozen=True)
class CVResult:
    """Validation scores (greater-is-better), the seconds they took, and the out-of-fold
    predictions: ``oof[i]`` is the prediction for training row ``oof_rows[i]``, made by the
    model that did not see it (all rows for k-fold, the holdout rows for a holdout)."""

    metric: str
    fold_scores: list[float]
    fit_seconds: float
    oof: np.ndarray | None = None
    oof_rows: np.ndarray | None = None
    rounds: int | None = None  # boosting: the rounds at the best mean validation loss
    cut: bool = False  # a deadline ended the training early: the result is its best so far
    fit_rows: int | None = None  # the training rows each split fitted, when a sample of them

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_scores))


@dataclass(frozen=True)
class TrainingSetup:
    """What every fit of one run shares, built once after the columns are inferred and
    passed down to the search, its trials, the ensembles, nested CV and the refit: the task,
    the columns and feature config, the seed, the metric and the number of CV folds."""

    task: str
    columns: FeatureColumns
    features: FeaturesConfig
    seed: int
    metric: str
    folds: int
    #: None: shuffled (stratified) folds. A number: the rows are in time order (as a
    #: ``split.kind: time`` training split is) and every validation is forward, this many
    #: rows after its training window (see :func:`splits_for`).
    forward_gap: int | None = None
    #: The group of each training row (``split.group_column``): every validation keeps a
    #: group's rows on one side (see :func:`splits_for`). None: rows are independent.
    groups: np.ndarray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_config(
        cls, cfg: PipelineConfig, columns: FeatureColumns, groups: np.ndarray | None = None
    ) -> TrainingSetup:
        return cls(
            task=cfg.task,
            columns=columns,
            features=cfg.features,
            seed=cfg.search.seed,
            metric=cfg.search.metric,
            folds=cfg.search.cv_folds,
            forward_gap=cfg.split.gap if cfg.split.kind == "time" else None,
            groups=groups,
        )

    def of_rows(self, rows: np.ndarray) -> TrainingSetup:
        """This setup for a subset of its training rows (nested CV's outer training folds):
        their groups."""
        if self.groups is None:
            return self
        return replace(self, groups=self.groups[rows])


def training_setup(
    cfg: PipelineConfig, X_train: pd.DataFrame, groups: np.ndarray | None = None
) -> TrainingSetup:
    """The run's :class:`TrainingSetup`: the columns inferred from the training split, with
    the config's task, feature options, seed, metric and folds (and the training rows'
    ``groups``). Columns the evaluation slices name must be features: checked here, before
    any training."""
    from honing.exceptions import ConfigError
    from honing.modeling.features import infer_columns

    for key in ("slices", "sensitive"):
        missing = [c for c in getattr(cfg.evaluation, key) if c not in X_train.columns]
        if missing:
            raise ConfigError(
                f"evaluation.{key}: {missing} are not feature columns of {cfg.data.path} "
                f"(features: {sorted(X_train.columns)[:20]})"
            )
    return TrainingSetup.from_config(cfg, infer_columns(X_train, cfg.features), groups)


@dataclass
class TrainResult:
    spec: ModelSpec
    model: Pipeline | None
    cv: CVResult | None
    #: The spec the fit was asked for, when its deadline stopped it with fewer rounds (or
    #: trees) than that: ``spec`` then says what was grown. None: fitted as asked.
    planned: ModelSpec | None = None


def effective_features(spec: ModelSpec, features: FeaturesConfig) -> FeaturesConfig:
    """The feature config for ``spec``: the pipeline config with the trial's overrides,
    validated (a bad searched value is an error naming the option)."""
    if not spec.features:
        return features
    return FeaturesConfig.model_validate({**features.model_dump(), **spec.features})


#: Ensemble "families": ``ensemble_selection`` is a soft vote weighted by selection counts.
ENSEMBLES = ("soft_voting", "stacking", "ensemble_selection")


def make_model(spec: ModelSpec, setup: TrainingSetup, *, n_jobs: int = 1) -> Pipeline:
    """The unfitted pipeline for ``spec``: encoding, optional selection and PCA, estimator.

    An ensemble spec (family ``soft_voting`` or ``stacking``, ``params["members"]`` a list of
    member specs as dicts) gives a pipeline around a voting or stacking classifier whose
    members are full pipelines, each with its own feature options."""
    if spec.family in ENSEMBLES:
        return Pipeline([("model", _ensemble(spec, setup, n_jobs=n_jobs))])
    columns, seed, task = setup.columns, setup.seed, setup.task
    cfg = effective_features(spec, setup.features)
    family = FAMILY_TABLE[spec.family]
    if family.tree and cfg.scaler != "none":
        # splits do not care about scale, and float32 rounding of scaled values (as served by
        # ONNX) could move rows across thresholds that sit exactly on training values
        cfg = cfg.model_copy(update={"scaler": "none"})
    encoder = resolve_encoder(cfg, family.encoder)
    reducers = build_reducers(cfg, seed=seed, task=task)
    # native categorical splits need the encoded positions, which selection or PCA would move
    positions = [] if reducers else categorical_positions(columns, encoder)
    return Pipeline(
        [
            ("features", build_preprocessor(columns, cfg, encoder=encoder, task=task)),
            *reducers,
            (
                "model",
                build_estimator(
                    spec.family,
                    spec.params,
                    seed=seed,
                    n_jobs=n_jobs,
                    task=task,
                    categorical=positions,
                ),
            ),
        ]
    )


def _ensemble(spec: ModelSpec, setup: TrainingSetup, *, n_jobs: int) -> Any:
    from sklearn.ensemble import (
        StackingClassifier,
        StackingRegressor,
        VotingClassifier,
        VotingRegressor,
    )
    from sklearn.linear_model import LogisticRegression, RidgeCV

    members = [ModelSpec(**m) for m in spec.params["members"]]
    estimators = [
        (f"m{i}_{m.family}", make_model(m, setup, n_jobs=n_jobs)) for i, m in enumerate(members)
    ]
    # ensemble selection gives each member a weight (how often it was picked)
    weights = spec.params.get("weights")
    if setup.task == "regression":  # soft voting of regressors: the (weighted) mean prediction
        if spec.family != "stacking":
            return VotingRegressor(estimators, weights=weights)
        return StackingRegressor(estimators, final_estimator=RidgeCV(), cv=3)
    if spec.family != "stacking":
        return VotingClassifier(estimators, voting="soft", weights=weights)
    return StackingClassifier(
        estimators,
        final_estimator=LogisticRegression(max_iter=2000),
        cv=3,  # an int, not a splitter object: skops stores it without a trusted type
        stack_method="predict_proba",
    )


def laddered(family: str, rungs: int) -> bool:
    """Whether a trial of ``family`` reports at every one of ``rungs`` rungs (a scheduler's
    resource, see :mod:`honing.models.fidelity`): every known family has one."""
    return rungs > 1 and family in FAMILY_TABLE


def cross_validate_model(
    model: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    folds: int,
    metric: str,
    seed: int,
    family: str = "",
    sampling: str = "none",
    rungs: int = 1,
    on_step: StepCallback | None = None,
    holdout: float | None = None,
    deadline: float | None = None,
    forward_gap: int | None = None,
    groups: np.ndarray | None = None,
    fit_rows: int | None = None,
) -> CVResult:
    """Stratified k-fold CV score of ``model`` (cloned per fold; ``model`` is left unfitted),
    or a single holdout score when ``holdout`` is a share of rows. The validation predictions
    are kept (``CVResult.oof``) so that ensembles can be selected without refitting.

    ``sampling`` rebalances each fold's training rows only. With ``rungs > 1`` the family's
    resource (boosting rounds, epochs, trees or rows: :mod:`honing.models.fidelity`) is cut
    into that many growing steps, and ``on_step(rung, fold scores, seconds so far)`` is called after
    each: the hook through which a Ray Tune scheduler stops unpromising trials early. Boosting
    families always stop early on the folds' mean validation loss; ``CVResult.rounds`` is the
    round count the refit should use.

    ``deadline`` (``time.time()`` seconds) makes the training anytime: boosting rounds and a
    forest's trees grow only while they fit before it, and the result is the best so far
    (``CVResult.cut``). A family trained in one go fits a small sample first, then more rows
    while they fit before the deadline (``CVResult.fit_rows`` says how many:
    :func:`honing.models.fidelity.deadline_rows`), or, when its solver warm-starts, runs its
    iterations in chunks (:func:`honing.models.fidelity.deadline_iterations`).

    ``fit_rows``: each split trains on a stratified sample of at most that many of its
    training rows (a search's low-fidelity trials on a large table); it validates on all of
    its validation rows, so scores and out-of-fold predictions are those of the full rows."""
    splits = splits_for(
        model, X, y, folds=folds, seed=seed, holdout=holdout, forward_gap=forward_gap,
        groups=groups,
    )  # fmt: skip
    start = time.perf_counter()
    folds_data, sampled = [], None
    for train_idx, valid_idx in splits:
        X_fit, y_fit = resample(X.iloc[train_idx], y[train_idx], sampling, seed=seed)
        fold = Fold(X_fit, y_fit, X.iloc[valid_idx], y[valid_idx])
        if fit_rows is not None and len(y_fit) > fit_rows:
            fold, sampled = Fold(*subsample(fold, fit_rows, seed), fold.X_val, fold.y_val), fit_rows
        folds_data.append(fold)

    def score(y_val: np.ndarray, preds: np.ndarray) -> float:
        return score_predictions(metric, y_val, preds)

    info = FAMILY_TABLE.get(family)
    ladder: LadderResult | None = None
    common = {"score": score, "on_step": on_step, "start": start, "deadline": deadline}
    if info is not None and info.booster is not None:  # early stopping, with or without rungs
        ladder = boosting_ladder(model, folds_data, info.booster, rungs=rungs, **common)
    elif laddered(family, rungs) and info is not None and info.rung_param is not None:
        ladder = warm_start_ladder(model, folds_data, info.rung_param, rungs=rungs, **common)
    elif laddered(family, rungs):
        ladder = sample_ladder(model, folds_data, rungs=rungs, seed=seed, **common)
    elif deadline is not None and info is not None and info.rung_param is not None:
        # a forest's trees (an MLP's epochs) under a deadline grow in doubling chunks from a
        # few, so that the pace so far tells before each one whether it fits (four equal
        # steps made the first a quarter of the trees: 1,000 of 4,000 took ten times a 2 s
        # deadline on a loaded machine)
        steps = {**common, "on_step": None}
        ladder = warm_start_ladder(model, folds_data, info.rung_param, rungs=1, **steps)
    elif deadline is not None and iterative(model):  # its iterations, in chunks that fit
        ladder = deadline_iterations(model, folds_data, score=score, deadline=deadline)
    elif deadline is not None:  # a family trained in one go: on as many rows as fit in time
        ladder = deadline_rows(model, folds_data, seed=seed, **common)
    if ladder is None:  # trained in one go
        preds = [predictions(clone(model).fit(f.X_fit, f.y_fit), f.X_val) for f in folds_data]
        scores = [score(f.y_val, p) for f, p in zip(folds_data, preds, strict=True)]
        ladder = LadderResult(scores, preds)
        if on_step is not None:  # trained with its whole budget: the last rung
            on_step(max(rungs, 1), ladder.scores, time.perf_counter() - start)
    return _result(metric, ladder, start, splits, ladder.fit_rows or sampled)


def _result(
    metric: str,
    ladder: LadderResult,
    start: float,
    splits: list[tuple[np.ndarray, np.ndarray]],
    fit_rows: int | None,
) -> CVResult:
    rows = np.concatenate([valid for _, valid in splits])
    order = np.argsort(rows, kind="stable")
    oof = np.concatenate(ladder.preds)[order]
    return CVResult(
        metric,
        ladder.scores,
        time.perf_counter() - start,
        oof=oof,
        oof_rows=rows[order],
        rounds=ladder.rounds,
        cut=ladder.cut,
        fit_rows=fit_rows,
    )


def train_model(
    X: pd.DataFrame,
    y: np.ndarray,
    spec: ModelSpec,
    setup: TrainingSetup,
    *,
    cross_validate: bool = False,
    refit: bool = True,
    n_jobs: int = 1,
    rungs: int = 1,
    on_step: StepCallback | None = None,
    holdout: float | None = None,
    deadline: float | None = None,
    fit_rows: int | None = None,
    fit_deadline: float | None = None,
) -> TrainResult:
    """Cross-validate ``spec`` on (X, y) with ``setup.folds`` folds (or one ``holdout``
    split) when ``cross_validate`` is set, and fit it on all of (X, y) when ``refit`` is
    set. Search trials use ``cross_validate=True, refit=False`` (and ``rungs`` / ``on_step``
    under a scheduler, the trial's ``deadline``, and ``fit_rows`` on a large table: see
    :func:`cross_validate_model`); the final model uses the defaults, and all rows.

    ``fit_deadline`` (``time.time()`` seconds): the fit on all rows grows a boosted model's
    rounds, or a forest's trees, only while they end before it
    (:func:`honing.models.fidelity.fit_by`); ``TrainResult.planned`` then keeps the spec
    asked for. An ensemble's members are fitted as asked."""
    task, seed = setup.task, setup.seed
    model = make_model(spec, setup, n_jobs=n_jobs)
    sampling = effective_features(spec, setup.features).sampling
    if task == "regression" and sampling != "none":
        raise ValueError(f"sampling={sampling!r}: class rebalancing applies to classification")
    cv = (
        cross_validate_model(
            model,
            X,
            y,
            folds=setup.folds,
            metric=setup.metric,
            seed=seed,
            family=spec.family,
            sampling=sampling,
            rungs=rungs,
            on_step=on_step,
            holdout=holdout,
            deadline=deadline,
            forward_gap=setup.forward_gap,
            groups=setup.groups,
            fit_rows=fit_rows,
        )
        if cross_validate
        else None
    )
    fitted, planned = None, None
    if refit:
        if cv is not None and cv.rounds:  # refit with the rounds early stopping chose
            spec = spec.with_rounds(cv.rounds)
            model = make_model(spec, setup, n_jobs=n_jobs)
        X_fit, y_fit = resample(X, y, sampling, seed=seed)
        if fit_deadline is None or spec.family in ENSEMBLES:
            fitted = model.fit(X_fit, y_fit)
        else:
            family = FAMILY_TABLE[spec.family]
            grown = fit_by(
                model, X_fit, y_fit, booster=family.booster,
                trees=family.rung_param == "n_estimators", deadline=fit_deadline,
            )  # fmt: skip
            fitted = model
            if grown is not None:
                planned, spec = spec, replace(spec, params={**spec.params, **grown})
    return TrainResult(spec=spec, model=fitted, cv=cv, planned=planned)
