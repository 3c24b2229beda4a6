"""Monitoring a batch: its drift against the data the champion was trained on (weighted by
what the champion relies on), the drift of the champion's answers and of the labels, and the
champion's performance on it, measured when it has labels and estimated when not; all of it
logged on an MLflow run. The pure :func:`honing.monitoring.gate` then decides."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from honing import data, features, lineage, monitoring, registry, reproduce, tracking, versions
from honing.config import PipelineConfig, WindowConfig
from honing.decision import Answers, answers
from honing.evaluation import evaluate
from honing.exceptions import RegistryError
from honing.monitoring import PREDICTION, TARGET, DriftReport, RetrainDecision
from honing.stages.prepare import split_table
from honing.summary import RunRef


@dataclass(frozen=True)
class Monitored:
    """A monitoring check of ``batch`` against version ``version`` of the champion."""

    version: str
    batch: str
    labelled: bool
    report: DriftReport
    run: RunRef

    def log_lines(self) -> list[str]:
        r = self.report
        share = (
            f"{r.drifted_share:.0%} of columns drifted"
            if r.weighted_share is None
            else f"{r.drifted_share:.0%} of columns drifted, {r.weighted_share:.0%} of the "
            "champion's importance"
        )
        measured = r.performance or r.estimated
        kind = "measured" if r.performance else "estimated (no labels)"
        if self.labelled and not r.performance:
            kind = "estimated (too few labelled rows to measure)"
        checked = "the estimate checked" if r.performance else "the estimate's latest check"
        return [
            f"monitoring {self.batch} ({r.current_rows} rows) against champion v{self.version} "
            f"({r.reference_rows} reference rows): {share}",
            *r.explain(),
            *(
                [f"champion on the batch, {kind}: "
                 + ", ".join(f"{k} {v:.4f}" for k, v in sorted(measured.items()))]
                if measured else []
            ),
            *([f"{checked}: {r.audit.describe()}"] if r.audit is not None else []),
            *([f"labelled rows no training has seen: {r.unseen_rows} (the latest was "
               f"trained on {r.trained_rows})"] if r.unseen_rows is not None else []),
        ]  # fmt: skip


def _answers_column(found: Answers, classes: list, index: pd.Index) -> pd.Series:
    """The model's answer per row, as the drift report compares them: P(positive) for a
    binary task, the decided label for a multiclass one, the value for regression."""
    if not classes:
        return pd.Series(found.values, index=index)
    if len(classes) == 2:
        return pd.Series(found.values[:, 1], index=index)
    codes = found.codes if found.codes is not None else np.argmax(found.values, axis=1)
    return pd.Series([str(classes[int(c)]) for c in codes], index=index)


def metric_key(column: str) -> str:
    """``column`` as an MLflow metric name allows it."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", column)


def _window(config: dict, fallback: WindowConfig) -> WindowConfig:
    raw = config.get("data", {}).get("window")
    return WindowConfig.model_validate(raw) if raw else fallback


def _shown(batch_path: Path, repo: str) -> str:
    """The batch's path as runs and alias moves name it: relative to the repository."""
    return str(lineage.portable(str(Path(batch_path).resolve()), Path(repo).resolve()))


def _latest_training(
    name: str, champion: str, trained_on: Path, *, repo: str, folder: Path
) -> Path:
    """The data the newest registered version was trained on: a retraining whose model was
    not promoted has still seen its rows (the champion's own, ``trained_on``, when it is
    the newest)."""
    newest = registry.newest_version(name)
    if newest is None or newest == champion:
        return trained_on
    found = reproduce.version_lineage(name, newest)
    return reproduce.fetch_data_version(
        Path(repo), found.data_path, found.data_md5, found.git_commit, folder / f"v{newest}.csv"
    )


def monitor(
    cfg: PipelineConfig, batch_path: Path, *, experiment_id: str, tracking_uri: str, repo: str
) -> Monitored:
    """Check the batch at ``batch_path`` against the champion of ``cfg.registry`` and log
    the report on a new MLflow run (``<name> monitor``)."""
    shown = _shown(batch_path, repo)
    name, alias = cfg.registry.model_name, cfg.registry.champion_alias
    version = registry.champion_version(name, alias)
    if version is None:
        raise RegistryError(f"model {name} has no @{alias} to monitor; run the training flow first")
    found = reproduce.version_lineage(name, version)
    folder = Path(repo) / ".honing" / "monitoring" / f"{name}-v{version}"
    reference_path = reproduce.fetch_data_version(
        Path(repo), found.data_path, found.data_md5, found.git_commit, folder / "reference.csv"
    )
    target = cfg.data.target
    trained_on = data.load_table(reference_path, cfg.data.format)
    window = _window(found.config, cfg.data.window)
    reference = versions.window(trained_on, window)
    current = data.load_table(Path(batch_path), cfg.data.format)
    labelled = target in current.columns and bool(current[target].notna().any())
    few = False
    dropped = [target, *cfg.identifiers]
    X_ref = reference.drop(columns=[c for c in dropped if c in reference.columns])
    X_cur = current.drop(columns=[c for c in dropped if c in current.columns])
    columns = features.infer_columns(X_ref, cfg.features)
    y_ref, classes = data.target_values(reference[target], cfg.task, cfg.data.positive_label)
    model = registry.load_model(f"models:/{name}/{version}")
    seen = answers(model, X_cur, classes)  # the batch's answers, also for the estimate
    tables = []
    for X, frame, said in (
        (X_ref, reference, answers(model, X_ref, classes)),
        (X_cur, current, seen),
    ):
        table = X[[*columns.numeric, *columns.categorical]].copy()
        table[PREDICTION] = _answers_column(said, classes, X.index)
        if labelled:
            table[TARGET] = frame[target].astype(str) if classes else frame[target]
        tables.append(table)
    numeric, categorical = list(columns.numeric), list(columns.categorical)
    (numeric if len(classes) <= 2 else categorical).append(PREDICTION)
    if labelled:
        (categorical if classes else numeric).append(TARGET)
    run_id = tracking.start_run(
        experiment_id,
        f"{cfg.name} monitor v{version}",
        {"honing.kind": "monitoring", "honing.champion_version": version,
         "honing.batch": shown},
    )  # fmt: skip
    report = monitoring.drift_report(
        tables[0],
        tables[1],
        numeric=numeric,
        categorical=categorical,
        html_path=folder / "drift.html",
        method=cfg.monitoring.drift_method,
        max_rows=cfg.monitoring.max_rows,
        weights=registry.version_importances(name, version),
    )
    if classes:
        estimated = monitoring.estimate_performance(seen.values, seen.codes)
    else:  # regression: a model of the champion's error, fitted on rows it was tested on
        # the rows of the champion's test: its table cleaned, then windowed, as its run did
        held = split_table(cfg, trained_on, window).split
        estimated = monitoring.estimate_loss(
            held.X_test,
            answers(model, held.X_test, []).values,
            held.y_test,
            X_cur,
            seen.values,
            seed=cfg.search.seed,
        )
    report = monitoring.with_estimate(report, estimated, found.metrics)
    # labelled rows no training has seen: ingested since the latest one, and this batch;
    # each file read once (the newest data is often the champion's own version)
    loaded = {Path(reference_path).resolve(): trained_on}

    def table(path: Path) -> pd.DataFrame:
        key = Path(path).resolve()
        if key not in loaded:
            loaded[key] = data.load_table(key, cfg.data.format)
        return loaded[key]

    latest = table(_latest_training(name, version, reference_path, repo=repo, folder=folder))
    newest = Path(cfg.data.path)
    tables = [*([table(newest)] if newest.is_file() else []), current]
    unseen = monitoring.unseen_rows(latest, tables, target)
    report = monitoring.with_volume(report, len(versions.window(latest, window)), unseen)
    if labelled:  # measured, and the estimate checked against the measure
        # coded in the champion's label order: a batch may hold some of the classes only
        y_cur, known = data.labelled_rows(current[target], classes)
        few = int(known.sum()) < cfg.monitoring.min_rows  # too few to measure: estimated
        if not few:
            measured = evaluate(model, X_cur[known], y_cur, classes).metrics
            report = monitoring.with_performance(report, measured, found.metrics)
            report = monitoring.audit_estimate(report, cfg.monitoring, shown)
            if report.audit is not None:
                registry.record_audit(name, version, report.audit.to_dict())
    if not labelled or few:
        kept = registry.latest_audit(name, version)
        audit = None if kept is None else monitoring.EstimateAudit.from_dict(kept)
        report = monitoring.with_audit(report, audit)
    tracking.log_json(run_id, report.to_dict(), "monitoring/drift.json")
    tracking.log_artifact(run_id, folder / "drift.html", "monitoring")
    tracking.log_metrics(
        run_id,
        {
            "drifted_share": report.drifted_share,
            **({"weighted_drift_share": report.weighted_share}
               if report.weighted_share is not None else {}),
            **{f"drift_{metric_key(c.column)}": c.score for c in report.columns},
            **{f"drift_{c.column.strip('_')}": c.score
               for c in (report.prediction, report.target) if c is not None},
            **{f"batch_{k}": v for k, v in report.performance.items()},
            **{f"estimated_{k}": v for k, v in report.estimated.items()},
            **({"estimate_error": report.audit.error}
               if report.performance and report.audit is not None else {}),
        },
    )  # fmt: skip
    return Monitored(
        version=version,
        batch=shown,
        labelled=labelled,
        report=report,
        run=RunRef(run_id, experiment_id, tracking_uri),
    )


def record_decision(monitored: Monitored, decision: RetrainDecision) -> None:
    """Tag the monitoring run with the gate's decision and its reasons, and end it."""
    tracking.set_tags(
        monitored.run.run_id,
        {
            "honing.retrain": str(decision.retrain).lower(),
            "honing.retrain_reasons": "; ".join(decision.reasons),
            "mlflow.note.content": "\n".join(
                [f"**{'retrain' if decision.retrain else 'keep'}**: "
                 + "; ".join(decision.reasons), "", *monitored.log_lines()]
            ),
        },
    )  # fmt: skip
    tracking.end_run(monitored.run.run_id, "FINISHED")


def follow_challenger(
    cfg: PipelineConfig, batch_path: Path, *, repo: str
) -> registry.ChallengerFollowed:
    """A labelled batch's rows added to the evidence on the waiting ``@challenger``
    (sequential promotion, :func:`honing.registry.follow_challenger`). Its labels are coded
    in the order the registered models answer in (the suite's label values); rows with a
    label the models never saw are left out of the comparison."""
    from honing import inference, validation

    shown = _shown(batch_path, repo)
    current = data.load_table(Path(batch_path), cfg.data.format)
    target = cfg.data.target
    classes = []
    if cfg.task != "regression":
        suite = validation.load_suite(cfg.validation.suite)
        classes = inference.label_classes(suite, target, cfg.data.positive_label)
    y, known = data.labelled_rows(current[target], classes)
    X = current.drop(columns=[c for c in [target, *cfg.identifiers] if c in current.columns])
    return registry.follow_challenger(
        cfg.registry.model_name, X[known].reset_index(drop=True), y, classes, cfg.registry,
        batch=shown, by=f"monitoring of {shown}",
    )  # fmt: skip
