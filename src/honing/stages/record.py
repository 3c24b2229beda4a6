"""Recording a fitted run in MLflow: the trials and their leaderboard, the search's
optimization history and hyperparameter importance, its params and CV scores, the model
choice, the decision rule, the test and slice reports, the evaluation plots and the
importances."""

from __future__ import annotations

from honing import evaluation, metric_keys, tracking
from honing.config import PipelineConfig
from honing.evaluation import explain
from honing.stages import summary
from honing.stages.context import RunRef
from honing.stages.evaluate import Fitted
from honing.stages.prepare import Prepared
from honing.tracking import search_plots, trial_runs


def log_evaluation(
    run: RunRef,
    cfg: PipelineConfig,
    *,
    prepared: Prepared,
    fitted: Fitted,
) -> None:
    """Everything the fit and its evaluation produced, on the training run ``run``."""
    search, choice, nested, refit = fitted.search, fitted.choice, fitted.nested, fitted.refit
    evaluated, explained = fitted.evaluated, fitted.explained
    split, report = prepared.split, evaluated.report
    trial_runs.log_trials(run.run_id, run.experiment_id, search, choice.member_weights())
    search_figures, importance = search_plots.search_figures(search)
    tracking.log_figures(run.run_id, search_figures, folder="search")
    if importance:
        tracking.log_json(run.run_id, importance, "search/param_importance.json")
    tracking.log_params(
        run.run_id,
        summary.search_params(
            search, choice, algorithm=cfg.search.algorithm, scheduler=cfg.search.scheduler.kind
        ),
    )
    tracking.log_metrics(
        run.run_id,
        summary.data_metrics(prepared.cleaning, len(split.X_train), len(split.X_test))
        | summary.search_metrics(search, choice, nested)
        | metric_keys.prefixed(metric_keys.TEST, report.metrics)
        | {metric_keys.test(f"{k}_at_default"): v for k, v in report.at_default.items()}
        | summary.decision_metrics(refit.decision),
    )
    tracking.log_json(run.run_id, choice.to_dict(), "search/model_choice.json")
    tracking.log_json(run.run_id, refit.decision.to_dict(), "evaluation/decision.json")
    if evaluated.slices is not None:
        tracking.log_slices(run.run_id, evaluated.slices)
    if nested is not None:
        tracking.log_json(run.run_id, nested.to_dict(), "search/nested_cv.json")
    tracking.log_json(run.run_id, report.to_dict(), "evaluation/report.json")
    figures = evaluation.plot_figures(
        refit.trained.model, split.X_test, split.y_test, report, refit.decision
    )
    for imp in explained.importances:
        figures[f"importance_{imp.method}.png"] = explain.plot_importance(imp)
    tracking.log_figures(run.run_id, figures)
    tracking.log_json(
        run.run_id,
        {
            "importances": [imp.to_dict() for imp in explained.importances],
            "notes": explained.notes,
        },
        "explain/importances.json",
    )
