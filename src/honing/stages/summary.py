"""What one training run did, as a typed record: built from the stages' own reports once the
run is registered, printed by the CLI, written by ``honing run --metrics-out``, logged to
Prefect, and read by the benchmarks. Nothing here decides anything."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from honing import metric_keys
from honing.config import PipelineConfig
from honing.data import CleaningReport
from honing.evaluation.nested import NestedCVResult
from honing.lineage import Lineage
from honing.metrics import metric_value
from honing.modeling.decision import DecisionFit
from honing.modeling.training import ENSEMBLES
from honing.registry.unchanged import UnchangedVersion
from honing.search import SearchResult
from honing.search.ensembles import EnsembleDecision
from honing.stages.context import RunRef
from honing.stages.evaluate import Fitted
from honing.stages.prepare import Prepared
from honing.stages.register import Registered


@dataclass(frozen=True)
class ServedSummary:
    """The registered served (compressed) flavor and why that candidate was picked."""

    model_name: str
    version: str
    candidate: str
    reason: str
    candidates: dict[str, list[Any]]
    skipped: dict[str, str]

    def against_native(self) -> str:
        """The served flavor against the native model, from the candidates table: size,
        single-row p50 and p99 latency (one thread) and batch throughput ("" when the table
        lacks either row)."""
        t = self.candidates
        names = t.get("candidate", [])
        if self.candidate not in names or "native" not in names:
            return ""
        a, n = names.index(self.candidate), names.index("native")
        return (
            f"size {t['size_bytes'][a] / 1e3:,.1f} KB against {t['size_bytes'][n] / 1e3:,.1f} KB "
            f"native; single-row p50 {t['p50_ms'][a]:.3f} ms against {t['p50_ms'][n]:.3f}, p99 "
            f"{t['p99_ms'][a]:.3f} against {t['p99_ms'][n]:.3f}; batches "
            f"{t['throughput_rows_s'][a]:,.0f} rows/s against {t['throughput_rows_s'][n]:,.0f}"
        )


#: Classes up to which the summary writes the confusion matrix out, row by row.
CONFUSION_SHOWN = 5


@dataclass(frozen=True)
class TrainingSummary:
    """One training run: the registered version and its gate, the search and the chosen
    model, the test metrics, the time per stage, the data lineage and the served flavor."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    task: str
    model_name: str
    version: str
    promoted: bool
    gate_reason: str
    champion_version: str | None
    best_model: str
    model_choice: str
    cv_metric: str
    cv_score: float
    trials: int
    trials_failed: int
    trials_stopped: int
    trials_restored: int
    validation_scheme: str
    time_budget_s: float | None
    test_metrics: dict[str, float]
    classes: list[Any]
    confusion_matrix: list[list[int]] | None
    lineage: dict[str, str]
    cleaning: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    trimmed: list[str] = field(default_factory=list)
    ray_nodes: list[str] = field(default_factory=list)
    top_features: list[tuple[str, float]] = field(default_factory=list)
    nested_cv: dict[str, Any] | None = None
    served: ServedSummary | None = None
    decision: str = ""  # how probabilities become labels (honing.modeling.decision)
    threshold: float | None = None
    test_at_default: dict[str, float] = field(default_factory=dict)  # label metrics at 0.5

    @property
    def dirty(self) -> bool:
        """Whether the code had uncommitted changes when the run started."""
        return self.lineage.get("honing.git_dirty") == "True"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def metrics(self) -> dict[str, float]:
        """The run's numbers, flat, named as its MLflow metrics (:mod:`honing.metric_keys`):
        ``test/<metric>``, ``cv/<metric>``, the trial counts and ``seconds/<stage>`` (what
        benchmarks and dashboards compare)."""
        out = {metric_keys.test(k): float(v) for k, v in self.test_metrics.items()}
        out[metric_keys.cv(self.cv_metric)] = float(self.cv_score)
        out.update(
            trials=float(self.trials),
            trials_failed=float(self.trials_failed),
            trials_stopped=float(self.trials_stopped),
        )
        out.update({metric_keys.seconds(k): float(v) for k, v in self.timings.items()})
        return out

    def params(self) -> dict[str, str]:
        """The run's choices, flat: the model, the validation scheme, the budget, the gate,
        the registered version and what the budget trimmed."""
        return {
            "model": self.best_model,
            "model_choice": self.model_choice,
            "validation": self.validation_scheme,
            "time_budget_s": str(self.time_budget_s),
            "registered": f"{self.model_name} v{self.version}",
            "promoted": str(self.promoted),
            "served": self.served.candidate if self.served else "none",
            "trimmed": "; ".join(self.trimmed) or "nothing",
        }

    def markdown(self) -> str:
        """The run as Markdown: its description in MLflow and its ``summary.md``."""
        s = self
        verdict = f"**{s.verdict}**"
        lines = [
            f"# {s.model_name} v{s.version}: {verdict}",
            "",
            f"- **gate**: {s.gate_reason}",
            f"- **data**: `{s.lineage.get('honing.data_path', '?')}` (md5 "
            f"`{s.lineage.get('honing.data_md5', '?')}`), {s.cleaning.get('rows_in', 0)} rows, "
            f"{s.cleaning.get('duplicates_dropped', 0)} duplicates and "
            f"{s.cleaning.get('invalid_labels_dropped', 0)} invalid labels dropped; validation "
            "passed",
            f"- **search**: {s.trials} trials ({s.trials_stopped} stopped, "
            f"{s.trials_failed} failed), scored by {s.validation_scheme}",
            f"- **model**: {s.best_model}"
            + ("" if s.unchanged else f"; CV {s.cv_metric} {s.cv_score:.4f}"),
            f"- **choice**: {s.model_choice}",
            *([f"- **decision**: {s.decision}"] if s.decision else []),
            "",
            "| test metric | value |",
            "|---|---|",
            *[
                f"| {k} | {v:.4f}"
                + (f" (at 0.5: {s.test_at_default[k]:.4f})" if k in s.test_at_default else "")
                + " |"
                for k, v in s.test_metrics.items()
            ],
            "",
        ]
        if s.served is not None:
            lines += [
                f"- **served flavor**: {s.served.model_name} v{s.served.version} "
                f"({s.served.candidate}): {s.served.reason}",
            ]
            if s.served.against_native():
                lines.append(f"- **served against native**: {s.served.against_native()}")
        if s.timings:
            budget = f" of a {s.time_budget_s:.0f} s budget" if s.time_budget_s else ""
            stages = ", ".join(f"{k} {v:.1f}" for k, v in s.timings.items() if k != "total")
            lines.append(
                f"- **seconds**: {stages}; total {s.timings.get('total', 0.0):.1f}{budget}"
            )
        if s.trimmed:
            lines.append(f"- **trimmed to the budget**: {'; '.join(s.trimmed)}")
        commit = s.lineage.get("honing.git_commit", "unknown")[:12]
        lines += [
            f"- **code**: commit `{commit}`{' (dirty)' if s.dirty else ''}, config hash "
            f"`{s.lineage.get('honing.config_hash', '?')}`",
            f"- **Prefect flow run**: `{s.lineage.get('honing.flow_run_id', '?')}`",
            f"- **registry**: `models:/{s.model_name}/{s.version}`"
            + (f", `models:/{s.served.model_name}/{s.served.version}`" if s.served else ""),
        ]
        return "\n".join(lines) + "\n"

    @property
    def unchanged(self) -> bool:
        """The run found its version already made: it reports it, registers nothing."""
        return self.model_choice == "unchanged"

    @property
    def verdict(self) -> str:
        if self.unchanged:
            return "unchanged, the champion" if self.promoted else "unchanged, not the champion"
        return "promoted to champion" if self.promoted else "not promoted"

    def rows(self) -> list[tuple[str, str]]:
        """(item, value) rows of the run's summary table, as the CLI prints it."""
        rows = [
            ("registry", f"{self.model_name} version {self.version}: {self.verdict}"),
            ("gate", self.gate_reason),
            ("best model", self.best_model),
        ]
        if not self.unchanged:
            rows.append((f"CV {self.cv_metric}", f"{self.cv_score:.4f}"))
        if self.model_choice:
            rows.append(("ensembles", self.model_choice))
        if self.nested_cv:
            n = self.nested_cv
            rows.append(
                (
                    f"nested CV {self.cv_metric}",
                    f"{n['mean']:.4f} ± {n['std']:.4f} (optimism {n['optimism']:+.4f})",
                )
            )
        if self.top_features:
            top = ", ".join(f"{name} ({value:.3f})" for name, value in self.top_features)
            rows.append(("top features", top))
        rows.append(
            (
                "trials",
                f"{self.trials} ({self.trials_stopped} stopped by the budget or scheduler, "
                f"{self.trials_failed} failed, {self.trials_restored} restored from an "
                f"earlier run; scored by {self.validation_scheme})",
            )
        )
        if self.timings:
            budget = f" of a {self.time_budget_s:.0f} s budget" if self.time_budget_s else ""
            stages = ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items() if k != "total")
            rows.append(("seconds", f"{stages}; total {self.timings['total']:.1f}{budget}"))
        if self.trimmed:
            rows.append(("trimmed to the budget", "; ".join(self.trimmed)))
        if self.decision:
            rows.append(("decision", self.decision))
        rows += [
            (
                f"test {name}",
                f"{value:.4f}"
                + (
                    f" (at 0.5: {self.test_at_default[name]:.4f})"
                    if name in self.test_at_default
                    else ""
                ),
            )
            for name, value in self.test_metrics.items()
        ]
        cm = self.confusion_matrix
        if cm:
            if len(cm) == 2:
                shown = f"TN={cm[0][0]} FP={cm[0][1]} FN={cm[1][0]} TP={cm[1][1]}"
            elif len(cm) <= CONFUSION_SHOWN:
                shown = " / ".join(" ".join(str(v) for v in row) for row in cm) + " (rows: true)"
            else:  # a wall of counts says nothing on screen; the run's figure shows it
                right, rows_in = sum(cm[i][i] for i in range(len(cm))), sum(map(sum, cm))
                shown = (
                    f"{len(cm)} classes: {right} of {rows_in} test rows on the diagonal "
                    "(the run's confusion_matrix.png)"
                )
            rows.append(("confusion matrix", shown))
        lin = self.lineage
        rows += [
            ("data", f"{lin['honing.data_path']} md5 {lin['honing.data_md5']}"),
            ("commit", lin["honing.git_commit"][:12] + (" (dirty)" if self.dirty else "")),
            ("config hash", lin["honing.config_hash"]),
        ]
        if self.served:
            sv = self.served
            rows.append(("served flavor", f"{sv.model_name} v{sv.version}: {sv.reason}"))
            if sv.against_native():
                rows.append(("served vs native", sv.against_native()))
        rows.append(("MLflow run", self.run_id))
        return rows

    def log_lines(self) -> list[str]:
        did = "reported" if self.unchanged else "registered"
        cv = "" if self.unchanged else f"; CV {self.cv_metric} {self.cv_score:.4f}"
        lines = [
            f"{did} {self.model_name} v{self.version}: {self.verdict} ({self.gate_reason})",
            f"model: {self.best_model}{cv}",
            "test: " + ", ".join(f"{k} {v:.4f}" for k, v in self.test_metrics.items()),
        ]
        if self.served is not None:
            versus = self.served.against_native()
            lines.append(
                f"served: {self.served.model_name} v{self.served.version} "
                f"({self.served.candidate})" + (f": {versus}" if versus else "")
            )
        total = self.timings.get("total")
        if total is not None:
            budget = f" of a {self.time_budget_s:.0f} s budget" if self.time_budget_s else ""
            lines.append(f"seconds: {total:.1f}{budget}")
        return lines


def describe_model(choice: EnsembleDecision) -> str:
    """The chosen model in a few words: its spec, or the ensemble and its size."""
    spec = choice.spec
    if spec.family not in ENSEMBLES:
        return spec.effective().label()
    return f"{spec.family} of {len(spec.params['members'])} trials"


def summarize(
    run: RunRef,
    cfg: PipelineConfig,
    *,
    prepared: Prepared,
    fitted: Fitted,
    registered: Registered,
    timings: dict[str, float],
) -> TrainingSummary:
    """The run's summary, from the bundles of its stages."""
    search, choice, decision = fitted.search, fitted.choice, fitted.refit.decision
    evaluation, trims = fitted.evaluated.report, fitted.evaluated.trims
    importances, nested = fitted.explained.importances, fitted.nested
    registration, compressed, served = (
        registered.registration,
        registered.compressed,
        registered.served,
    )
    lineage, cleaning = prepared.lineage, prepared.cleaning
    served_summary = None
    if served is not None and compressed is not None:
        served_summary = ServedSummary(
            model_name=served.name,
            version=served.version,
            candidate=served.candidate,
            reason=compressed.choice.reason,
            candidates=compressed.report.table(),
            skipped=dict(compressed.report.skipped),
        )
    return TrainingSummary(
        run_id=run.run_id,
        experiment_id=run.experiment_id,
        tracking_uri=run.tracking_uri,
        task=cfg.task,
        model_name=registration.name,
        version=registration.version,
        promoted=registration.promoted,
        gate_reason=registration.decision.reason,
        champion_version=registration.decision.champion_version,
        best_model=describe_model(replace(choice, spec=fitted.refit.trained.spec)),
        model_choice=choice.reason,
        cv_metric=search.metric,
        cv_score=metric_value(search.metric, choice.score),
        trials=len(search.trials),
        trials_failed=len(search.failed),
        trials_stopped=len(search.stopped),
        trials_restored=search.restored,
        validation_scheme=search.validation,
        time_budget_s=cfg.time_budget_s,
        test_metrics=dict(evaluation.metrics),
        classes=list(evaluation.classes),
        confusion_matrix=evaluation.confusion_matrix,
        lineage=lineage.tags(),
        cleaning={
            "rows_in": cleaning.rows_in,
            "duplicates_dropped": cleaning.duplicates_dropped,
            "invalid_labels_dropped": cleaning.invalid_labels_dropped,
        },
        timings=dict(timings),
        trimmed=[n for n in (fitted.refit.cut(), *trims.notes) if n],
        ray_nodes=list(search.nodes),
        top_features=importances[0].top(5) if importances else [],
        nested_cv=None if nested is None else nested.to_dict(),
        served=served_summary,
        decision="" if not decision.rule.classes else decision.rule.describe(),
        threshold=evaluation.threshold,
        test_at_default=dict(evaluation.at_default),
    )


def decision_metrics(fit: DecisionFit) -> dict[str, float]:
    """The decision rule's numbers, as MLflow metrics: the threshold, the out-of-fold
    objective at it and at 0.5, and the cross-fitted Brier score of each calibration tried."""
    out: dict[str, float] = {}
    if fit.rule.threshold is not None:
        out["threshold"] = fit.rule.threshold
    if fit.objective_tuned is not None and fit.objective_default is not None:
        out["oof_objective_tuned"] = fit.objective_tuned
        out["oof_objective_at_0.5"] = fit.objective_default
    out.update({f"oof_brier_{k}": v["brier"] for k, v in fit.calibration_scores.items()})
    return metric_keys.prefixed(metric_keys.DECISION, out)


def data_metrics(cleaning: CleaningReport, rows_train: int, rows_test: int) -> dict[str, float]:
    """Rows at each step, as MLflow metrics."""
    rows = {
        "raw": cleaning.rows_in,
        "duplicates_dropped": cleaning.duplicates_dropped,
        "invalid_labels_dropped": cleaning.invalid_labels_dropped,
        "train": rows_train,
        "test": rows_test,
    }
    return metric_keys.prefixed(metric_keys.ROWS, rows)


def search_params(
    search: SearchResult, choice: EnsembleDecision, *, algorithm: str, scheduler: str
) -> dict[str, Any]:
    """The search's setup and winner, as MLflow params."""
    best = search.best
    return {
        "best_family": best.spec.family,
        **{f"best.{k}": v for k, v in best.spec.effective().params.items()},
        **{f"best.features.{k}": v for k, v in best.spec.features.items()},
        "search_trials": len(search.trials),
        "search_validation": search.validation,
        "search_algorithm": algorithm,
        "search_scheduler": scheduler,
        "final_model": choice.spec.family,
    }


def search_metrics(
    search: SearchResult, choice: EnsembleDecision, nested: NestedCVResult | None
) -> dict[str, float]:
    """CV scores of the chosen model (``cv/<metric>``: an ensemble's on the out-of-fold rows),
    of the best single trial and of each candidate the choice weighed (and nested CV), in the
    metric's own units (RMSE positive), as MLflow metrics."""
    m, best = search.metric, search.best
    out = {
        m: metric_value(m, choice.score),
        f"{m}_std": best.score_std or 0.0,
        **{f"{m}_{k}": metric_value(m, v) for k, v in choice.scores.items()},
    }
    if nested is not None:
        out |= {
            f"nested_{m}": nested.mean,
            f"nested_{m}_std": nested.std,
            "nested_optimism": nested.optimism,
        }
    return metric_keys.prefixed(metric_keys.CV, out)


def unchanged(
    run: RunRef,
    cfg: PipelineConfig,
    *,
    same: UnchangedVersion,
    lineage: Lineage,
    timings: dict[str, float],
) -> TrainingSummary:
    """The summary of a run that found nothing changed: it reports the existing version."""
    task, time_budget_s, metric = cfg.task, cfg.time_budget_s, cfg.search.metric
    return TrainingSummary(
        run_id=run.run_id,
        experiment_id=run.experiment_id,
        tracking_uri=run.tracking_uri,
        task=task,
        model_name=same.name,
        version=same.version,
        promoted=same.is_champion,
        gate_reason=f"unchanged since v{same.version} (same data, config and commit): nothing "
        f"retrained or registered; its own gate said: {same.gate_reason}"
        + ("" if same.is_champion else f"; the champion is now v{same.champion or 'none'}"),
        champion_version=same.champion,
        best_model=f"{same.name} v{same.version} (unchanged)",
        model_choice="unchanged",
        cv_metric=metric,
        cv_score=float("nan"),
        trials=0,
        trials_failed=0,
        trials_stopped=0,
        trials_restored=0,
        validation_scheme="none (unchanged)",
        time_budget_s=time_budget_s,
        test_metrics=dict(same.metrics),
        classes=[],
        confusion_matrix=None,
        lineage=lineage.tags(),
        cleaning={},
        timings=timings,
    )
