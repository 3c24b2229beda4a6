"""Evaluating the refit model on the test split (overall and per slice), trimming the optional
work to the time left, and explaining the model. Pure computations."""

from __future__ import annotations

import time
from dataclasses import dataclass

from honing import evaluation
from honing.compression import export_seconds, n_parameters
from honing.compression.members import vote_members
from honing.compression.student import exportable, student_export_seconds
from honing.config import PipelineConfig
from honing.evaluation import explain as importance
from honing.evaluation import slices
from honing.evaluation.nested import NestedCVResult
from honing.search import SearchResult, planner
from honing.search.ensembles import EnsembleDecision
from honing.stages.fit import Refit
from honing.stages.prepare import Prepared


@dataclass(frozen=True)
class Evaluated:
    """The test report, the per-slice report (None: no slices configured), and what the
    time left allows of the optional work after it."""

    report: evaluation.EvaluationReport
    slices: slices.SliceReport | None
    trims: planner.Trims

    def log_lines(self) -> list[str]:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(self.report.metrics.items()))
        lines = [f"test: {shown}"]
        if self.slices is not None:
            lines += self.slices.log_lines()
        return lines + self.trims.log_lines()


def evaluate(
    cfg: PipelineConfig, prepared: Prepared, refit: Refit, *, left_s: float | None
) -> Evaluated:
    """Score the model's decisions on the test split and per slice, then size the optional
    work (permutation repeats, SHAP rows, compression techniques) to ``left_s`` seconds."""
    split, model, rule = prepared.split, refit.trained.model, refit.decision.rule
    started = time.monotonic()
    report = evaluation.evaluate(model, split.X_test, split.y_test, prepared.classes, rule)
    predict_s = time.monotonic() - started  # about one prediction of the test split
    slice_report = slices.evaluate_slices(
        model,
        rule,
        split.X_test,
        split.y_test,
        prepared.classes,
        cfg.evaluation,
        metric=cfg.registry.metric,
        task=cfg.task,
    )
    trims = planner.trim(
        cfg.time_budget_s,
        None if left_s is None else left_s - (time.monotonic() - started),
        predict_s=predict_s,
        columns=split.X_test.shape[1],
        techniques=tuple(cfg.compression.techniques),
        compression=cfg.compression.enabled,
        model_size=n_parameters(model) or 0,
        export_s=export_seconds(model),
        student_s=student_export_seconds(
            model, len(prepared.classes or []) if cfg.task == "classification" else 0
        ),
        exportable=exportable(model),
        ensemble=bool(vote_members(model)),
        slowdown=prepared.budget.slowdown,
        explain=cfg.evaluation.explain,
    )
    return Evaluated(report=report, slices=slice_report, trims=trims)


@dataclass(frozen=True)
class Explained:
    """Feature importances (permutation; SHAP where it applies), and why SHAP was skipped."""

    importances: list[importance.Importance]
    notes: list[str]

    def log_lines(self) -> list[str]:
        lines = [
            f"{imp.method} importance, top 3: "
            + ", ".join(f"{name} {value:.4f}" for name, value in imp.top(3))
            for imp in self.importances
        ]
        return lines + self.notes


def explain(
    cfg: PipelineConfig, prepared: Prepared, refit: Refit, trims: planner.Trims
) -> Explained:
    """Permutation importance and SHAP on the test split, as many repeats and rows as
    ``trims`` allows; none when the config turns explanations off."""
    if not cfg.evaluation.explain:
        return Explained(importances=[], notes=["explanations off (evaluation.explain: false)"])
    split = prepared.split
    importances, notes = importance.explain_model(
        refit.trained.model,
        split.X_test,
        split.y_test,
        metric=cfg.search.metric,
        seed=cfg.search.seed,
        repeats=trims.permutation_repeats,
        shap_rows=trims.shap_rows,
    )
    return Explained(importances=importances, notes=notes)


@dataclass(frozen=True)
class Fitted:
    """What the fit produced and its evaluation found, as one bundle for the stages that
    record and summarize it: the search, the model choice, nested CV (None unless
    configured), the refit model with its decision rule, the test evaluation and the
    explanations."""

    search: SearchResult
    choice: EnsembleDecision
    nested: NestedCVResult | None
    refit: Refit
    evaluated: Evaluated
    explained: Explained
