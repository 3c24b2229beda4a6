"""Fitting: the search on Ray Tune, the model choice (ensembles from the trials), nested CV,
and the refit of the chosen model with its decision rule. Pure computations: nothing here
writes to MLflow."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from honing import runtime
from honing import search as searching
from honing.config import PipelineConfig, RaySettings
from honing.evaluation import nested
from honing.modeling import training
from honing.modeling.decision import DecisionFit, DecisionRule, fit_decision
from honing.search import anytime, ensembles, planner
from honing.stages.prepare import Prepared


def _cores() -> int:
    """The threads the stages here fit on: every core this process may use (the search's
    trials are over; its Ray workers fit on one each)."""
    return runtime.cores()


def search(
    cfg: PipelineConfig,
    prepared: Prepared,
    *,
    ray: RaySettings,
    experiment_name: str,
    progress: Callable[[str], None] | None = None,
) -> searching.SearchResult:
    """The search over the config's families within the planned share of the budget
    (``progress``: where the trials done, the best so far and the time left are reported)."""
    split = prepared.split
    return searching.run_search(
        split.X_train,
        split.y_train,
        cfg=planner.search_config(cfg.search, prepared.budget),
        setup=prepared.setup,
        ray_settings=ray,
        experiment_name=experiment_name,
        progress=progress,
    )


def choose(
    cfg: PipelineConfig,
    prepared: Prepared,
    result: searching.SearchResult,
    *,
    refit_s: float | None,
) -> ensembles.EnsembleDecision:
    """The model to refit: the best trial, or an ensemble of trials when it scores higher
    (greedy selection on the out-of-fold rows; stacking or voting refit in CV when configured
    and affordable in ``refit_s`` seconds). The best trials cut by the budget while still
    improving are first grown on the search's splits, in a share of ``refit_s``."""
    split, cfg_ens = prepared.split, cfg.search.ensemble
    grown = anytime.Finished(result)
    if refit_s is not None:
        grown = anytime.finish_cut(
            result, split.X_train, split.y_train, setup=prepared.setup,
            seconds=anytime.FINISH_SHARE * refit_s, n_jobs=_cores(),
            samples=False,  # the search kept its own time to fit its samples on more rows
        )  # fmt: skip
        result, refit_s = grown.result, max(refit_s - grown.seconds, 0.0)
    selection, scored, notes = None, [], []
    if cfg_ens.enabled and cfg_ens.selection:
        selection = ensembles.select_ensemble(result, split.y_train, refit_budget_s=refit_s)
    if cfg_ens.enabled and cfg_ens.methods:
        specs = ensembles.ensemble_specs(result, cfg_ens)
        specs, notes = ensembles.affordable(specs, result, refit_s, len(split.y_train))
        scored = ensembles.score_ensembles(split.X_train, split.y_train, specs, prepared.setup)
    best, why = ensembles.refittable_best(
        result, len(split.y_train), refit_s, threads=_cores(), classes=len(prepared.classes)
    )
    decision = ensembles.choose(
        best, scored, notes + ([why] if why else []), selection=selection,
        metric=cfg.search.metric,
    )  # fmt: skip
    return replace(decision, grown=grown.notes)


def nested_cv(
    cfg: PipelineConfig, prepared: Prepared, *, ray: RaySettings, experiment_name: str
) -> nested.NestedCVResult:
    """Nested cross-validation of the whole search: an unbiased estimate of its score."""
    split = prepared.split
    return nested.nested_cv(
        split.X_train,
        split.y_train,
        cfg=planner.search_config(cfg.search, prepared.budget),
        setup=prepared.setup,
        ray_settings=ray,
        experiment_name=experiment_name,
    )


@dataclass(frozen=True)
class Refit:
    """The chosen model fitted on the whole training split, and its decision rule."""

    trained: training.TrainResult
    decision: DecisionFit

    def cut(self) -> str | None:
        """What the budget cut from the refit, in words; None when it grew what was asked."""
        planned = self.trained.planned
        if planned is None:
            return None
        rate, asked = (s.params.get("learning_rate") for s in (self.trained.spec, planned))
        faster = f" at learning rate {rate:g} (was {asked:g})" if rate != asked and asked else ""
        return (
            f"refit: {self.trained.spec.params.get('n_estimators')} of the "
            f"{planned.params.get('n_estimators')} rounds (trees) asked for{faster}, at the "
            "budget"
        )

    def log_lines(self) -> list[str]:
        cut = self.cut()
        return [
            f"refit: {self.trained.spec.effective().label()}",
            *([f"trimmed: {cut}"] if cut else []),
            *self.decision.log_lines(),
        ]


def refit(
    cfg: PipelineConfig,
    prepared: Prepared,
    choice: ensembles.EnsembleDecision,
    *,
    refit_s: float | None = None,
) -> Refit:
    """Fit the chosen model on the training split, and its calibration and threshold on
    the choice's out-of-fold predictions (no extra fit). With ``refit_s`` seconds (a time
    budget's share), a boosted model's rounds or a forest's trees grow only while they end
    within them (:func:`honing.models.fidelity.fit_by`): the choice's estimate of its refit
    came from its trials, and a busier machine or a sample's seconds may have understated
    it."""
    split = prepared.split
    trained = training.train_model(
        split.X_train, split.y_train, choice.spec, prepared.setup, n_jobs=_cores(),
        fit_deadline=None if refit_s is None else time.time() + refit_s,
    )  # fmt: skip
    decision = fit_decision(
        split.y_train,
        choice.oof,
        prepared.classes,
        cfg.decision,
        metric=cfg.search.metric,
        seed=cfg.search.seed,
        rows=choice.oof_rows,
        forward=prepared.setup.forward_gap is not None,
    )
    return Refit(trained=trained, decision=decision)


def rebuild(prepared: Prepared, spec: training.ModelSpec, rule: DecisionRule) -> Refit:
    """A recorded choice refit on the training split, with its recorded decision rule: no
    search and no choice made anew, so that a reproduction fits the very model the version
    was (``honing reproduce``)."""
    split = prepared.split
    trained = training.train_model(
        split.X_train, split.y_train, spec, prepared.setup, n_jobs=_cores()
    )
    decision = DecisionFit(
        rule=rule,
        calibration_scores={},
        curve=None,
        objective_tuned=None,
        objective_default=None,
        rows=0,
        notes=["the rule recorded by the version's training run"],
    )
    return Refit(trained=trained, decision=decision)
