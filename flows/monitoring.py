"""``monitoring_pipeline``: Evidently drift of a batch against the champion's reference data,
a pure gate, and retraining when it says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.events import emit_event

from honing.exceptions import RegistryError
from honing_flows.flows.training import training_pipeline
from honing_flows.tasks import data as data_tasks
from honing_flows.tasks import monitoring as monitoring_tasks
from honing_flows.tasks import registry as registry_tasks
from honing_flows.tasks import reproduce as repro_tasks
from honing_flows.tasks import setup as setup_tasks
from honing_flows.tasks import stages
from honing_flows.tasks import tracking as tracking_tasks


@flow(name="monitoring_pipeline", log_prints=True, validate_parameters=True)
def monitoring_pipeline(
    batch_path: str,
    config_path: str = "configs/flights.yaml",
    env_path: str | None = "configs/env/local.yaml",
    repo: str = ".",
    retrain: bool = True,
) -> dict[str, Any]:
    """Check ``batch_path`` for drift against the current champion's training data."""
    cfg = setup_tasks.load_pipeline_config(config_path)
    settings = stages.connect(env_path)
    experiment_id = setup_tasks.ensure_experiment(
        cfg.tracking.experiment, settings.mlflow.artifact_root
    )
    name, alias = cfg.registry.model_name, cfg.registry.champion_alias
    version = monitoring_tasks.champion_version(name, alias)
    if version is None:
        raise RegistryError(f"model {name} has no @{alias} to monitor; run the training flow first")
    lineage = repro_tasks.version_lineage(name, version)
    folder = Path(repo) / ".honing" / "monitoring" / f"{name}-v{version}"
    reference_path = repro_tasks.fetch_data_version(repo, lineage, folder / "reference.csv")
    reference = data_tasks.load_table(reference_path, cfg.data.format)
    current = data_tasks.load_table(Path(batch_path), cfg.data.format)
    features = reference.drop(columns=[cfg.data.target, *cfg.data.drop_columns])
    columns = data_tasks.infer_columns(features, cfg.features)

    run_id = tracking_tasks.start_run(
        experiment_id,
        f"{cfg.name}-monitor",
        {
            "honing.kind": "monitoring",
            "honing.champion_version": version,
            "honing.batch": str(batch_path),
        },
    )
    report = monitoring_tasks.drift_report(
        reference, current, columns, folder / "drift.html", cfg.monitoring
    )
    if cfg.data.target in current.columns:
        y, classes = monitoring_tasks.encode_target(
            current[cfg.data.target], cfg.data.positive_label, cfg.task
        )
        champion = registry_tasks.score_champion(
            name, alias, current.drop(columns=[cfg.data.target]), y, classes
        )
        if champion is not None and champion.report is not None:
            report = monitoring_tasks.with_performance(
                report, champion.report.metrics, lineage.metrics
            )
    else:  # no labels yet: the champion's performance estimated from its probabilities
        estimated = monitoring_tasks.estimate_champion(name, version, current)
        report = monitoring_tasks.with_estimate(report, estimated, lineage.metrics)
    tracking_tasks.log_json(run_id, report.to_dict(), "monitoring/drift.json")
    tracking_tasks.log_artifact(run_id, folder / "drift.html", "monitoring")
    tracking_tasks.log_metrics(
        run_id,
        {
            "drifted_share": report.drifted_share,
            **{f"batch_{k}": v for k, v in report.performance.items()},
            **{f"estimated_{k}": v for k, v in report.estimated.items()},
        },
    )
    decision = monitoring_tasks.drift_gate(report, cfg.monitoring)
    tracking_tasks.set_tags(
        run_id,
        {
            "honing.retrain": str(decision.retrain).lower(),
            "honing.retrain_reasons": "; ".join(decision.reasons),
        },
    )
    tracking_tasks.end_run(run_id, "FINISHED")

    retrained = None
    if decision.retrain:
        emit_event(
            event="honing.drift.detected",
            resource={"prefect.resource.id": f"honing.model.{name}"},
            payload={"version": version, "batch": str(batch_path), "reasons": decision.reasons},
        )
        if retrain:
            retrained = training_pipeline(
                config_path=config_path, env_path=env_path, repo=repo, resume_search=False
            )
    return {
        "champion_version": version,
        "drifted_share": report.drifted_share,
        "drifted_columns": report.drifted,
        "performance": report.performance,
        "estimated": report.estimated,
        "retrain": decision.retrain,
        "reasons": decision.reasons,
        "retrained_version": retrained.version if retrained else None,
        "run_id": run_id,
    }
