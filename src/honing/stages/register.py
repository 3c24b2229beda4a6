"""Registering: log the model (and the compressed flavor), score the champion on the same
test rows, let the pure champion gate decide, then register the version, with its alias only
when promoted, and its served flavor."""

from __future__ import annotations

from dataclasses import dataclass

from honing import compression, evaluation, registry, tracking
from honing.config import PipelineConfig
from honing.registry.champion import ChampionScore, decide
from honing.registry.infra import check_for
from honing.stages.context import RunRef
from honing.stages.evaluate import Evaluated, Fitted
from honing.stages.prepare import Prepared
from honing.tracking import model_logging


@dataclass(frozen=True)
class Registered:
    """The registered version (with the gate's decision), its served flavor and the
    compression result it was built from (both None: no compression)."""

    registration: registry.RegistrationResult
    served: registry.ServedRegistration | None
    compressed: compression.CompressionResult | None

    def log_lines(self) -> list[str]:
        lines = self.registration.decision.log_lines()
        reg = self.registration
        lines.append(
            f"registered {reg.name} v{reg.version}: "
            + ("promoted" if reg.promoted else "not promoted")
        )
        if self.served is not None:
            lines.append(
                f"served flavor {self.served.name} v{self.served.version}: {self.served.candidate}"
            )
        return lines


def _champion_on_test(cfg: PipelineConfig, prepared: Prepared) -> ChampionScore | None:
    """The serving champion scored on the run's test rows (None: no champion yet)."""
    split = prepared.split
    return registry.score_champion(
        cfg.registry.model_name,
        cfg.registry.champion_alias,
        split.X_test,
        split.y_test,
        prepared.classes,
    )


def quality_gate(cfg: PipelineConfig, prepared: Prepared, evaluated: Evaluated) -> list[str]:
    """The quality thresholds and slice gates on the run's evaluation
    (:func:`honing.evaluation.gate`); raises :class:`~honing.exceptions.ModelQualityError`
    when they stop the model. Where a threshold is missed, the serving champion is scored on
    the same test rows first: a miss it shares, scoring no better, does not stop the model
    (the lines returned say each one), so that a retrain on a window where no model reaches
    the floor can still replace a worse champion."""
    gates = cfg.evaluation
    champion = None
    if evaluation.threshold_misses(evaluated.report, gates.thresholds):
        scored = _champion_on_test(cfg, prepared)
        champion = None if scored is None else scored.report
    return evaluation.gate(
        evaluated.report, gates.thresholds, evaluated.slices, gates.slice_gate, champion=champion
    )


def register(
    run: RunRef,
    cfg: PipelineConfig,
    *,
    prepared: Prepared,
    fitted: Fitted,
    compressed: compression.CompressionResult | None,
) -> Registered:
    """Log, gate and register the run's model (``fitted``'s refit, with its evaluation) and
    its served flavor."""
    refit, evaluated = fitted.refit, fitted.evaluated
    split, model, rule = prepared.split, refit.trained.model, refit.decision.rule
    served_uri = None
    if compressed is not None:
        tracking.log_compression(
            run.run_id,
            compressed.report,
            compressed.choice,
            compression.plot_tradeoff(compressed.report),
        )
        served_uri = model_logging.log_served_model(
            run.run_id,
            compressed.files,
            split.X_test.head(5),
            f"{cfg.name}-{compressed.choice.name}",
            compressed.report.row(compressed.choice.name).metrics,
        )
    model_uri = model_logging.log_native_model(
        run.run_id,
        model,
        split.X_test.head(5),
        rule,
        name=f"{cfg.name}-{refit.trained.spec.family}",
        metrics=evaluated.report.metrics,
    )
    name, alias = cfg.registry.model_name, cfg.registry.champion_alias
    champion = _champion_on_test(cfg, prepared)
    decision = decide(
        evaluated.report,
        model,
        rule,
        split.X_test,
        split.y_test,
        champion,
        cfg.registry,
        seed=cfg.search.seed,
        evaluation=cfg.evaluation,
    )
    registration = registry.register_version(
        model_uri=model_uri,
        name=name,
        run_id=run.run_id,
        decision=decision,
        report=evaluated.report,
        lineage=prepared.lineage,
        alias=alias,
        infra=check_for(cfg.registry.infra_check, split.X_test),
        # a threshold missed here was let through by quality_gate: the champion misses it too
        past_thresholds=tuple(
            evaluation.threshold_misses(evaluated.report, cfg.evaluation.thresholds)
        ),
    )
    tracking.set_tags(
        run.run_id,
        {**registration.decision.tags(), "honing.registered_version": registration.version},
    )
    served = None
    if compressed is not None and served_uri is not None:
        served = registry.register_served(
            model_uri=served_uri,
            source=registration,
            candidate=compressed.choice.name,
            reason=compressed.choice.reason,
            alias=alias,
        )
    return Registered(registration=registration, served=served, compressed=compressed)
