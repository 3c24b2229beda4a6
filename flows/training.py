"""``training_pipeline``: validate, clean/split, search, refit, evaluate, gate, compress,
register.

The flow only composes tasks. Each task is one call into the ``honing`` library.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from flows.steps import connect_services, fit_and_evaluate
from honing.metrics import metric_value
from honing.planner import StageClock, budget_report
from honing.training import ENSEMBLES
from tasks import compress as compress_tasks
from tasks import data as data_tasks
from tasks import registry as registry_tasks
from tasks import search_extras as extra_tasks
from tasks import setup as setup_tasks
from tasks import tracking as tracking_tasks
from tasks import train as train_tasks


@flow(name="training_pipeline", log_prints=True, validate_parameters=True)
def training_pipeline(
    config_path: str = "configs/churn.yaml",
    env_path: str | None = "configs/env/local.yaml",
    repo: str = ".",
    resume_search: bool = True,
) -> dict[str, Any]:
    """Train, evaluate and register a model for the pipeline config at ``config_path``."""
    cfg = setup_tasks.load_pipeline_config(config_path)
    clock = StageClock(cfg.time_budget_s)  # the whole run's budget counts from here
    settings = connect_services(env_path)
    experiment_id = setup_tasks.ensure_experiment(
        cfg.tracking.experiment, settings.mlflow.artifact_root
    )
    flow_run_id = str(flow_run.get_id() or "none")
    run_id = tracking_tasks.start_run(
        experiment_id,
        f"{cfg.name}-train",
        {
            "honing.kind": "training",
            "honing.flow_run_id": flow_run_id,
            "honing.profile": settings.profile,
        },
    )
    try:
        # 1-2. load and version, validate: report, log, then gate
        with clock.stage("validation"):
            raw = data_tasks.load_table(cfg.data.path, cfg.data.format)
            data_md5 = data_tasks.file_md5(cfg.data.path)
            lineage = setup_tasks.build_lineage(
                cfg.data.path, data_md5, repo, cfg.content_hash, config_path, flow_run_id
            )
            tracking_tasks.set_tags(run_id, lineage.tags())
            tracking_tasks.log_json(run_id, cfg.model_dump(mode="json"), "config.json")
            suite = data_tasks.load_suite(cfg.validation.suite)
            report = data_tasks.validate_data(
                raw,
                suite,
                str(cfg.data.path),
                cfg.data.target,
                cfg.data.drop_columns,
                cfg.validation.quality,
                cfg.task,
            )
            tracking_tasks.log_json(run_id, report.to_dict(), "validation/report.json")
            data_tasks.validation_gate(report)

        # 3-6. clean, split, search on Ray Tune, refit on the training split, evaluate
        search_name = setup_tasks.search_name(cfg.name, cfg.content_hash, lineage, resume_search)
        fitted = fit_and_evaluate(cfg, raw, settings, search_name, clock)
        cleaning, split, result = fitted.cleaning, fitted.split, fitted.search
        trained, evaluation, classes = fitted.trained, fitted.evaluation, fitted.classes
        tracking_tasks.log_metrics(
            run_id,
            {
                "rows_raw": cleaning.rows_in,
                "rows_duplicates_dropped": cleaning.duplicates_dropped,
                "rows_invalid_labels_dropped": cleaning.invalid_labels_dropped,
                "rows_train": len(split.X_train),
                "rows_test": len(split.X_test),
            },
        )
        tracking_tasks.log_trials(run_id, experiment_id, result)
        best = result.best
        tracking_tasks.log_params(
            run_id,
            {
                "best_family": best.spec.family,
                **{f"best.{k}": v for k, v in best.spec.params.items()},
                **{f"best.features.{k}": v for k, v in best.spec.features.items()},
                "search_trials": len(result.trials),
                "search_validation": result.validation,
                "search_algorithm": cfg.search.algorithm,
                "search_scheduler": cfg.search.scheduler.kind,
                "final_model": fitted.choice.spec.family,
            },
        )
        tracking_tasks.log_metrics(
            run_id,
            {
                f"cv_{result.metric}": metric_value(result.metric, best.score),
                f"cv_{result.metric}_std": best.score_std or 0.0,
                **{
                    f"cv_{result.metric}_{k}": metric_value(result.metric, v)
                    for k, v in fitted.choice.scores.items()
                },
            },
        )
        tracking_tasks.log_json(run_id, fitted.choice.to_dict(), "search/model_choice.json")
        if fitted.nested is not None:
            tracking_tasks.log_json(run_id, fitted.nested.to_dict(), "search/nested_cv.json")
            tracking_tasks.log_metrics(
                run_id,
                {
                    f"nested_cv_{result.metric}": fitted.nested.mean,
                    f"nested_cv_{result.metric}_std": fitted.nested.std,
                    "nested_cv_optimism": fitted.nested.optimism,
                },
            )

        tracking_tasks.log_metrics(run_id, {f"test_{k}": v for k, v in evaluation.metrics.items()})
        tracking_tasks.log_json(run_id, evaluation.to_dict(), "evaluation/report.json")
        with clock.stage("explain"):
            figures = train_tasks.plot_figures(
                trained.model, split.X_test, split.y_test, evaluation
            )
            importances, explain_notes = extra_tasks.explain_model(
                trained.model,
                split.X_test,
                split.y_test,
                cfg.search.metric,
                cfg.search.seed,
                fitted.trims.permutation_repeats,
                fitted.trims.shap_rows,
            )
            for imp in importances:
                figures[f"importance_{imp.method}.png"] = extra_tasks.plot_importance(imp)
            tracking_tasks.log_figures(run_id, figures)
            tracking_tasks.log_json(
                run_id,
                {"importances": [imp.to_dict() for imp in importances], "notes": explain_notes},
                "explain/importances.json",
            )
        train_tasks.quality_gate(evaluation, cfg.evaluation.thresholds)

        # 7. compression: candidates measured on the test split, the deployable one picked
        compressed = served_uri = None
        compression_cfg = fitted.trims.compression_config(cfg.compression)
        with clock.stage("compression"):
            if compression_cfg.enabled:
                compressed = compress_tasks.compress(
                    trained.model,
                    split.X_train,
                    split.y_train,
                    split.X_test,
                    split.y_test,
                    classes,
                    fitted.columns,
                    compression_cfg,
                    cfg.search.seed,
                )
                tracking_tasks.log_compression(
                    run_id,
                    compressed.report,
                    compressed.choice,
                    compress_tasks.plot_tradeoff(compressed.report),
                )
                served_uri = tracking_tasks.log_served_model(
                    run_id, compressed.files, split.X_test.head(5)
                )

        # 8. champion/challenger gate on the same test data, then register
        with clock.stage("registration"):
            model_uri = tracking_tasks.log_model(run_id, trained.model, split.X_test.head(5))
            champion = registry_tasks.score_champion(
                cfg.registry.model_name,
                cfg.registry.champion_alias,
                split.X_test,
                split.y_test,
                classes,
            )
            decision = registry_tasks.champion_gate(
                evaluation, champion, cfg.registry.metric, cfg.registry.promotion_margin
            )
            registration = registry_tasks.register_version(
                model_uri,
                cfg.registry.model_name,
                run_id,
                decision,
                evaluation,
                lineage,
                cfg.registry.champion_alias,
            )
            tracking_tasks.set_tags(
                run_id,
                {**registration.decision.tags(), "honing.registered_version": registration.version},
            )
            served = None
            if compressed is not None and served_uri is not None:
                served = registry_tasks.register_served(
                    served_uri,
                    registration,
                    compressed.choice.name,
                    compressed.choice.reason,
                    cfg.registry.champion_alias,
                )
        timings = {**clock.seconds, "ray_start": result.startup_s, "total": clock.elapsed()}
        tracking_tasks.log_metrics(run_id, {f"seconds_{k}": v for k, v in timings.items()})
        tracking_tasks.log_json(
            run_id, budget_report(fitted.budget, fitted.trims, timings), "budget.json"
        )
    except BaseException:
        tracking_tasks.end_run(run_id, "FAILED")
        raise
    tracking_tasks.end_run(run_id, "FINISHED")
    return {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "tracking_uri": settings.mlflow.tracking_uri,
        "model_name": registration.name,
        "version": registration.version,
        "promoted": registration.promoted,
        "gate_reason": registration.decision.reason,
        "champion_version": registration.decision.champion_version,
        "best_model": fitted.choice.spec.label()
        if fitted.choice.spec.family not in ENSEMBLES
        else f"{fitted.choice.spec.family} of {len(fitted.choice.spec.params['members'])} trials",
        "model_choice": fitted.choice.reason,
        "nested_cv": None if fitted.nested is None else fitted.nested.to_dict(),
        "top_features": importances[0].top(5) if importances else [],
        "cv_metric": result.metric,
        "cv_score": metric_value(result.metric, best.score),
        "task": cfg.task,
        "trials": len(result.trials),
        "trials_failed": len(result.failed),
        "trials_stopped": len(result.stopped),
        "validation_scheme": result.validation,
        "time_budget_s": cfg.time_budget_s,
        "timings": timings,
        "trimmed": fitted.trims.notes,
        "trials_restored": result.restored,
        "ray_nodes": result.nodes,
        "test_metrics": evaluation.metrics,
        "confusion_matrix": evaluation.confusion_matrix,
        "classes": evaluation.classes,
        "cleaning": {
            "rows_in": cleaning.rows_in,
            "duplicates_dropped": cleaning.duplicates_dropped,
            "invalid_labels_dropped": cleaning.invalid_labels_dropped,
        },
        "lineage": lineage.tags(),
        "served": None
        if served is None or compressed is None
        else {
            "model_name": served.name,
            "version": served.version,
            "candidate": served.candidate,
            "reason": compressed.choice.reason,
            "candidates": compressed.report.table(),
            "skipped": compressed.report.skipped,
        },
    }
