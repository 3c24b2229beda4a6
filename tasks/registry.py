"""Champion/challenger gate and registration tasks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from honing import registry, unchanged
from honing.champion import ChampionScore, GateDecision, decide
from honing.config import EvaluationConfig, RegistryConfig
from honing.decision import DecisionRule
from honing.evaluation import EvaluationReport
from honing.infra import InfraCheck
from honing.lineage import Lineage
from honing_flows.tasks import compute_task, io_task, logged


@io_task
def score_champion(
    name: str, alias: str, X: pd.DataFrame, y: np.ndarray, classes: list
) -> ChampionScore | None:
    return registry.score_champion(name, alias, X, y, classes)


@compute_task
def champion_gate(
    challenger: EvaluationReport,
    model: Any,
    rule: DecisionRule,
    X: pd.DataFrame,
    y: np.ndarray,
    champion: ChampionScore | None,
    cfg: RegistryConfig,
    seed: int,
    evaluation: EvaluationConfig,
) -> GateDecision:
    return logged(
        decide(challenger, model, rule, X, y, champion, cfg, seed=seed, evaluation=evaluation)
    )


# Retried: registration first looks for a version of this run, so a retry never duplicates.
@io_task
def register_version(
    model_uri: str,
    name: str,
    run_id: str,
    decision: GateDecision,
    report: EvaluationReport,
    lineage: Lineage,
    alias: str,
    infra: InfraCheck | None,
) -> registry.RegistrationResult:
    return registry.register_version(
        model_uri=model_uri,
        name=name,
        run_id=run_id,
        decision=decision,
        report=report,
        lineage=lineage,
        alias=alias,
        infra=infra,
    )


@io_task
def register_served(
    model_uri: str,
    source: registry.RegistrationResult,
    candidate: str,
    reason: str,
    alias: str,
) -> registry.ServedRegistration:
    return registry.register_served(
        model_uri=model_uri, source=source, candidate=candidate, reason=reason, alias=alias
    )


@io_task
def unchanged_version(name: str, lineage: Lineage) -> unchanged.UnchangedVersion | None:
    return unchanged.unchanged_version(name, lineage)
