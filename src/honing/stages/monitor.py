"""Monitoring a batch, in stages as the flow runs them: :func:`reference` (the champion and
the data it was trained on), :func:`drift` (the batch against that data, weighted by what the
champion relies on, with the drift of its answers and of the labels), :func:`performance`
(the champion on the batch, measured when it has labels and estimated when not, the estimate
checked against the measure), the pure :func:`honing.monitoring.gate`, then :func:`record`
(an MLflow run with the report and the decision). :class:`MonitoringSummary` is what the
flow returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from honing import data, lineage, metric_keys, monitoring, registry, tracking
from honing.config import PipelineConfig, WindowConfig
from honing.data import windowing
from honing.data.target import with_new_classes
from honing.evaluation import evaluate
from honing.exceptions import ConfigError, DataValidationError, RegistryError
from honing.modeling import features
from honing.modeling.decision import Answers, answers
from honing.monitoring import PREDICTION, TARGET, DriftReport, RetrainDecision
from honing.stages import reproduce
from honing.stages.context import RunRef
from honing.stages.prepare import split_table


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


@dataclass(frozen=True)
class Reference:
    """The champion (``name`` v``version``, its model and its test metrics) and the data it
    was trained on: the version's table (``trained_on``), and its window (``rows``), which a
    batch is compared with. ``folder``: where monitoring keeps its files for this version."""

    name: str
    version: str
    model: Any
    metrics: dict[str, float]
    classes: list[Any]
    columns: features.FeatureColumns
    trained_on: pd.DataFrame
    rows: pd.DataFrame
    window: WindowConfig
    path: Path
    folder: Path

    def log_lines(self) -> list[str]:
        return [
            f"champion {self.name} v{self.version}: {len(self.rows)} reference rows "
            f"of {len(self.trained_on)} in its data version"
        ]


@dataclass(frozen=True)
class Batch:
    """The batch read (``shown``: its path as runs name it), its feature columns, and the
    champion's answers on them."""

    shown: str
    table: pd.DataFrame
    X: pd.DataFrame
    labelled: bool
    answers: Answers


@dataclass(frozen=True)
class Drift:
    """The batch and its drift report, which :func:`performance` completes."""

    batch: Batch
    report: DriftReport

    def log_lines(self) -> list[str]:
        r = self.report
        return [
            f"{self.batch.shown}: {r.current_rows} rows against {r.reference_rows} reference "
            f"rows, {r.drifted_share:.0%} of columns drifted"
        ]


def _features(cfg: PipelineConfig, table: pd.DataFrame) -> pd.DataFrame:
    dropped = [cfg.data.target, *cfg.identifiers]
    return table.drop(columns=[c for c in dropped if c in table.columns])


def reference(cfg: PipelineConfig, *, repo: str) -> Reference:
    """The champion of ``cfg.registry`` and the data version it was trained on (fetched from
    DVC at its commit when the working copy has moved on)."""
    name, alias = cfg.registry.model_name, cfg.registry.champion_alias
    version = registry.champion_version(name, alias)
    if version is None:
        raise RegistryError(f"model {name} has no @{alias} to monitor; run the training flow first")
    found = reproduce.version_lineage(name, version)
    folder = Path(repo) / ".honing" / "monitoring" / f"{name}-v{version}"
    path = reproduce.fetch_data_version(
        Path(repo), found.data_path, found.data_md5, found.git_commit, folder / "reference.csv"
    )
    trained_on = data.load_table(path, cfg.data)
    window = _window(found.config, cfg.data.window)
    rows = windowing.window(trained_on, window)
    _, classes = data.target_values(rows[cfg.data.target], cfg.task, cfg.data.positive_label)
    return Reference(
        name=name,
        version=version,
        model=registry.load_model(f"models:/{name}/{version}"),
        metrics=found.metrics,
        classes=classes,
        columns=features.infer_columns(_features(cfg, rows), cfg.features),
        trained_on=trained_on,
        rows=rows,
        window=window,
        path=path,
        folder=folder,
    )


def drift(cfg: PipelineConfig, ref: Reference, batch_path: Path, *, repo: str) -> Drift:
    """The batch at ``batch_path`` against the reference rows: each column's drift (weighted
    by the champion's importances), the drift of the champion's answers, and of the labels
    when the batch has them (Evidently's report, kept as HTML in the reference's folder)."""
    target, classes = cfg.data.target, ref.classes
    # the columns the champion reads as text, whatever a batch's values look like
    current = data.load_table(Path(batch_path), cfg.data, text=ref.columns.text)
    labelled = target in current.columns and bool(current[target].notna().any())
    X_ref, X_cur = _features(cfg, ref.rows), _features(cfg, current)
    missing = [c for c in X_ref.columns if c not in X_cur.columns]
    if missing:
        raise DataValidationError(
            f"{batch_path}: column(s) {', '.join(map(repr, missing))} missing; rule: a "
            f"monitored batch has every feature column champion v{ref.version} was trained on"
        )
    seen = answers(ref.model, X_cur, classes)  # the batch's answers, also for the estimate
    tables = []
    for X, frame, said in (
        (X_ref, ref.rows, answers(ref.model, X_ref, classes)),
        (X_cur, current, seen),
    ):
        table = X[[*ref.columns.numeric, *ref.columns.categorical]].copy()
        table[PREDICTION] = _answers_column(said, classes, X.index)
        if labelled:
            table[TARGET] = frame[target].astype(str) if classes else frame[target]
        tables.append(table)
    numeric, categorical = list(ref.columns.numeric), list(ref.columns.categorical)
    (numeric if len(classes) <= 2 else categorical).append(PREDICTION)
    if labelled:
        (categorical if classes else numeric).append(TARGET)
    report = monitoring.drift_report(
        tables[0],
        tables[1],
        numeric=numeric,
        categorical=categorical,
        html_path=ref.folder / "drift.html",
        method=cfg.monitoring.drift_method,
        max_rows=cfg.monitoring.max_rows,
        weights=registry.version_importances(ref.name, ref.version),
    )
    shown = _shown(batch_path, repo)
    return Drift(Batch(shown, current, X_cur, labelled, seen), report)


def performance(cfg: PipelineConfig, ref: Reference, found: Drift, *, repo: str) -> Drift:
    """The report completed with the champion's performance on the batch: estimated without
    labels (confidence for classes, a model of its error for regression), measured when the
    batch has enough labelled rows (and the estimate then checked against the measure, the
    check kept on the version); and the labelled rows no training has seen yet."""
    model, classes, batch = ref.model, ref.classes, found.batch
    name, version, target = ref.name, ref.version, cfg.data.target
    if classes:
        estimated = monitoring.estimate_performance(batch.answers.values, batch.answers.codes)
    else:  # regression: a model of the champion's error, fitted on rows it was tested on
        # the rows of the champion's test: its table cleaned, then windowed, as its run did
        held = split_table(cfg, ref.trained_on, ref.window).split
        estimated = monitoring.estimate_loss(
            held.X_test,
            answers(model, held.X_test, []).values,
            held.y_test,
            batch.X,
            batch.answers.values,
            seed=cfg.search.seed,
        )
    report = monitoring.with_estimate(found.report, estimated, ref.metrics)
    # labelled rows no training has seen: ingested since the latest one, and this batch;
    # each file read once (the newest data is often the champion's own version)
    loaded = {Path(ref.path).resolve(): ref.trained_on}

    def table(path: Path) -> pd.DataFrame:
        key = Path(path).resolve()
        if key not in loaded:
            loaded[key] = data.load_table(key, cfg.data)
        return loaded[key]

    latest = table(_latest_training(name, version, ref.path, repo=repo, folder=ref.folder))
    newest = Path(cfg.data.path)
    tables = [*([table(newest)] if newest.is_file() else []), batch.table]
    unseen = monitoring.unseen_rows(latest, tables, target)
    report = monitoring.with_volume(report, len(windowing.window(latest, ref.window)), unseen)
    few = False
    if batch.labelled:  # measured, and the estimate checked against the measure
        # coded in the champion's label order: a batch may hold some of the classes only;
        # among three or more, a class it never learned is scored too (it answers 0 there):
        # a species that became a tenth of the catch is a drop the gate must see
        scored = with_new_classes(classes, batch.table[target])
        y_cur, known = data.labelled_rows(batch.table[target], scored)
        few = int(known.sum()) < cfg.monitoring.min_rows  # too few to measure: estimated
        if not few:
            measured = evaluate(model, batch.X[known], y_cur, scored).metrics
            report = monitoring.with_performance(report, measured, ref.metrics)
            report = monitoring.audit_estimate(report, cfg.monitoring, batch.shown)
            if report.audit is not None:
                registry.record_audit(name, version, report.audit.to_dict())
    if not batch.labelled or few:
        kept = registry.latest_audit(name, version)
        audit = None if kept is None else monitoring.EstimateAudit.from_dict(kept)
        report = monitoring.with_audit(report, audit)
    return Drift(batch, report)


def record(
    cfg: PipelineConfig,
    ref: Reference,
    found: Drift,
    decision: RetrainDecision,
    *,
    experiment_id: str,
    tracking_uri: str,
) -> Monitored:
    """The check on an MLflow run (``<name> monitor v<version>``): the report (JSON, and
    Evidently's HTML), the drift and performance metrics, the gate's decision and its
    reasons as tags and as the run's note."""
    report, batch = found.report, found.batch
    run_id = tracking.start_run(
        experiment_id,
        f"{cfg.name} monitor v{ref.version}",
        {"honing.kind": "monitoring", "honing.champion_version": ref.version,
         "honing.batch": batch.shown},
    )  # fmt: skip
    tracking.log_json(run_id, report.to_dict(), "monitoring/drift.json")
    tracking.log_artifact(run_id, ref.folder / "drift.html", "monitoring")
    tracking.log_metrics(
        run_id,
        {
            f"{metric_keys.DRIFT}share": report.drifted_share,
            **({f"{metric_keys.DRIFT}weighted_share": report.weighted_share}
               if report.weighted_share is not None else {}),
            **{metric_keys.drifted_column(c.column): c.score for c in report.columns},
            **{f"{metric_keys.DRIFT}{c.column.strip('_')}": c.score
               for c in (report.prediction, report.target) if c is not None},
            **metric_keys.prefixed(metric_keys.BATCH, report.performance),
            **metric_keys.prefixed(metric_keys.ESTIMATED, report.estimated),
            **({f"{metric_keys.ESTIMATED}error": report.audit.error}
               if report.performance and report.audit is not None else {}),
        },
    )  # fmt: skip
    monitored = Monitored(
        version=ref.version,
        batch=batch.shown,
        labelled=batch.labelled,
        report=report,
        run=RunRef(run_id, experiment_id, tracking_uri),
    )
    tracking.set_tags(
        run_id,
        {
            "honing.retrain": str(decision.retrain).lower(),
            "honing.retrain_reasons": "; ".join(decision.reasons),
            "mlflow.note.content": "\n".join(
                [f"**{'retrain' if decision.retrain else 'keep'}**: "
                 + "; ".join(decision.reasons), "", *monitored.log_lines()]
            ),
        },
    )  # fmt: skip
    tracking.end_run(run_id, "FINISHED")
    return monitored


def follow_challenger(
    cfg: PipelineConfig, batch_path: Path, *, repo: str
) -> registry.ChallengerFollowed:
    """A labelled batch's rows added to the evidence on the waiting ``@challenger``
    (sequential promotion, :func:`honing.registry.follow_challenger`). Its labels are coded
    in the order the registered models answer in (the suite's label values); rows with a
    label the models never saw are left out of the comparison. A labelled capture window
    with the answers both models gave live beside it is judged on those answers
    (:mod:`honing.monitoring.shadow`)."""
    from honing import validation
    from honing.monitoring import shadow
    from honing.serving import inference

    shown = _shown(batch_path, repo)
    try:
        suite: dict[str, Any] | None = validation.load_suite(cfg.validation.suite)
    except ConfigError:
        if cfg.task != "regression":  # the label values come from the suite
            raise
        suite = None  # a regression's batch only reads its text columns from it
    text = validation.text_columns(suite) if suite is not None else []
    current = data.load_table(Path(batch_path), cfg.data, text=text)
    target = cfg.data.target
    classes = []
    if suite is not None and cfg.task != "regression":
        classes = inference.label_classes(suite, target, cfg.data.positive_label)
    y, known = data.labelled_rows(current[target], classes)
    X = current.drop(columns=[c for c in [target, *cfg.identifiers] if c in current.columns])
    return registry.follow_challenger(
        cfg.registry.model_name, X[known].reset_index(drop=True), y, classes, cfg.registry,
        batch=shown, by=f"monitoring of {shown}",
        recorded=shadow.recorded(Path(batch_path), y, known, classes),
    )  # fmt: skip


@dataclass(frozen=True)
class MonitoringSummary:
    """What a monitoring run returns: the drift and performance it found on the batch, the
    gate's decision, the evidence added to a waiting challenger, the batch kept as a data
    version, and the retraining that followed (the version it registered, or why it
    registered none)."""

    champion_version: str
    drifted_share: float
    weighted_drift_share: float | None
    drifted_columns: list[str]
    prediction_drifted: bool
    performance: dict[str, float]
    estimated: dict[str, float]
    estimate_audit: dict[str, Any] | None
    retrain: bool
    reasons: list[str]
    warnings: list[str]
    run_id: str
    challenger: dict[str, Any] | None = None
    ingested: dict[str, Any] | None = None
    retrained_version: str | None = None
    retrain_failed: str | None = None


def summarize(
    monitored: Monitored,
    decision: RetrainDecision,
    *,
    followed: registry.ChallengerFollowed | None = None,
    ingested: Any | None = None,
    retrained_version: str | None = None,
    retrain_failed: str | None = None,
) -> MonitoringSummary:
    """The monitoring run's summary from its stages' results (``ingested``: the data
    version a labelled batch became, with its ``to_dict``)."""
    report = monitored.report
    return MonitoringSummary(
        champion_version=monitored.version,
        drifted_share=report.drifted_share,
        weighted_drift_share=report.weighted_share,
        drifted_columns=list(report.drifted),
        prediction_drifted=bool(report.prediction and report.prediction.drifted),
        performance=dict(report.performance),
        estimated=dict(report.estimated),
        estimate_audit=report.audit.to_dict() if report.audit else None,
        retrain=decision.retrain,
        reasons=list(decision.reasons),
        warnings=list(decision.warnings),
        run_id=monitored.run.run_id,
        challenger=followed.to_dict() if followed else None,
        ingested=ingested.to_dict() if ingested else None,
        retrained_version=retrained_version,
        retrain_failed=retrain_failed,
    )
