"""MLflow Model Registry and the champion/challenger gate.

Every trained model that passed validation and the quality gate becomes a registered version.
Only a version that the pure :func:`champion_gate` accepts gets the ``champion`` alias; the gate's
numbers and reason are written into the version's description and tags either way.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from honing import promotion
from honing.aliases import SERVED_TAG, move_alias
from honing.artifacts import digests, verify
from honing.config import EvaluationConfig, RegistryConfig
from honing.decision import Answers, DecisionRule, answers
from honing.describe import version_description
from honing.evaluation import EvaluationReport, evaluate
from honing.exceptions import (
    HoningError,
    RegistryError,
    TrackingUnavailableError,
    UnsafeModelError,
)
from honing.inference import load_model_folder
from honing.lineage import DIGEST_TAG, RUN_ID_TAG, Lineage, metric_tags
from honing.metrics import compare
from honing.promotion import Comparison, Evidence
from honing.slices import slice_regressions


@dataclass(frozen=True)
class ChampionScore:
    version: str
    report: EvaluationReport | None
    error: str | None = None
    answers: Answers | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    metric: str
    challenger: float
    champion: float | None
    margin: float
    champion_version: str | None
    outcome: str = ""  # promote | keep | undecidable (empty: promote or keep by ``promote``)
    comparison: Comparison | None = None
    rows_needed: int | None = None
    champion_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return self.outcome or ("promote" if self.promote else "keep")

    def log_lines(self) -> list[str]:
        return [f"gate: {self.verdict.upper()}: {self.reason}"]

    def tags(self) -> dict[str, str]:
        extra = {}
        if self.comparison is not None:
            c = self.comparison
            extra = {
                "honing.gate.method": c.method,
                "honing.gate.interval": f"{c.low:+.6f}..{c.high:+.6f}",
                "honing.gate.flip_share": "n/a" if c.flip_share is None else f"{c.flip_share:.4f}",
                "honing.gate.rows_needed": str(self.rows_needed or "n/a"),
            }
        return {
            "honing.gate.outcome": self.verdict,
            **extra,
            "honing.gate.promoted": str(self.promote).lower(),
            "honing.gate.metric": self.metric,
            "honing.gate.challenger": f"{self.challenger:.6f}",
            "honing.gate.champion": "none" if self.champion is None else f"{self.champion:.6f}",
            "honing.gate.champion_version": self.champion_version or "none",
            "honing.gate.margin": f"{self.margin:g}",
            "honing.gate.reason": self.reason,
        }


@dataclass(frozen=True)
class RegistrationResult:
    name: str
    version: str
    promoted: bool
    decision: GateDecision
    model_uri: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def champion_gate(
    challenger: EvaluationReport,
    champion: ChampionScore | None,
    *,
    metric: str,
    margin: float,
    evidence: Evidence | None = None,
    confidence: float = 0.95,
    max_flip_share: float | None = None,
    seed: int = 0,
) -> GateDecision:
    """Promote the challenger when there is no champion. With ``evidence`` (both models'
    answers on the same test rows), decide on the confidence interval of the metric
    difference: promote, keep or undecidable (:func:`honing.promotion.judge`). Without it,
    on the point values: ``challenger >= champion - margin`` (``challenger <= champion +
    margin`` for errors such as RMSE). A champion that cannot be scored blocks promotion."""
    value = challenger.metrics[metric]
    if not math.isfinite(value):
        return GateDecision(
            False,
            f"challenger {metric} is not finite",
            metric,
            value,
            None,
            margin,
            champion.version if champion else None,
        )
    if champion is None:
        return GateDecision(
            True, "no champion yet: first model is promoted", metric, value, None, margin, None
        )
    if champion.report is None:
        return GateDecision(
            False,
            f"champion v{champion.version} could not be scored on this test set "
            f"({champion.error}); not promoted, review and set the alias by hand",
            metric,
            value,
            None,
            margin,
            champion.version,
        )
    best = champion.report.metrics[metric]
    theirs = dict(champion.report.metrics)
    if evidence is not None:
        comparison = promotion.compare(evidence, metric, confidence=confidence, seed=seed)
        verdict = promotion.judge(comparison, margin=margin, max_flip_share=max_flip_share)
        return GateDecision(
            verdict.outcome == "promote",
            f"{verdict.outcome} against champion v{champion.version}: {verdict.reason}",
            metric,
            value,
            best,
            margin,
            champion.version,
            outcome=verdict.outcome,
            comparison=comparison,
            rows_needed=verdict.rows_needed,
            champion_metrics=theirs,
        )
    ok, words = compare(metric, value, best, margin)
    mine, op, theirs = words.split(" ", 2)
    reason = (
        f"challenger {metric} {mine} {op} champion v{champion.version} {theirs} "
        f"(delta {value - best:+.4f})" + ("" if ok else "; champion kept")
    )
    return GateDecision(
        ok, reason, metric, value, best, margin, champion.version, champion_metrics=theirs
    )


def decide(
    challenger: EvaluationReport,
    model: Any,
    rule: DecisionRule | None,
    X: pd.DataFrame,
    y: np.ndarray,
    champion: ChampionScore | None,
    cfg: RegistryConfig,
    *,
    seed: int = 0,
    evaluation: EvaluationConfig | None = None,
) -> GateDecision:
    """The gate as configured (``cfg.gate``): statistical on both models' answers on the
    same test rows (the challenger ``model`` deciding by ``rule``), or on point values.
    With ``evaluation.slice_gate.non_inferiority`` set, a challenger that would be promoted
    is kept when any slice of ``evaluation.slices`` is that much worse than the champion's."""
    evidence = None
    if champion is not None and champion.answers is not None:
        evidence = Evidence(
            np.asarray(y), answers(model, X, challenger.classes, rule), champion.answers
        )
    decision = champion_gate(
        challenger,
        champion,
        metric=cfg.metric,
        margin=cfg.promotion_margin,
        evidence=evidence if cfg.gate == "statistical" else None,
        confidence=cfg.confidence,
        max_flip_share=cfg.max_flip_share,
        seed=seed,
    )
    tolerance = evaluation.slice_gate.non_inferiority if evaluation is not None else None
    if not decision.promote or evidence is None or tolerance is None or evaluation is None:
        return decision
    worse = slice_regressions(
        X,
        y,
        evidence.challenger,
        evidence.champion,
        columns=list(evaluation.slices),
        metric=evaluation.slice_gate.metric or cfg.metric,
        tolerance=tolerance,
        min_rows=evaluation.slice_gate.min_rows,
    )
    if not worse:
        return decision
    return replace(
        decision,
        promote=False,
        outcome="keep",
        reason=f"{decision.reason}; but slices are more than {tolerance:g} worse than the "
        f"champion's: {'; '.join(worse)}",
    )


def _client():  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient()


def champion_version(name: str, alias: str) -> str | None:
    """The version number holding ``alias``, or None when the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise RegistryError(f"cannot read alias '{alias}' of model '{name}': {exc}") from exc


def _version(uri: str) -> tuple[str, str]:
    """(name, version) of ``models:/<name>/<version>`` or ``models:/<name>@<alias>``."""
    body = uri.removeprefix("models:/")
    if "@" in body:
        name, alias = body.split("@", 1)
        version = champion_version(name, alias)
        if version is None:
            raise RegistryError(f"model {uri!r}: '{name}' has no version with alias '{alias}'")
        return name, version
    name, _, version = body.rpartition("/")
    if not name or not version.isdigit():
        raise RegistryError(
            f"model {uri!r}: rule: models:/<name>/<version> or models:/<name>@<alias>"
        )
    return name, version


def _download(name: str, version: str, into: Path) -> Path:
    import mlflow

    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=str(into)
        )
    )


def fetch_version(uri: str, into: Path) -> Path:
    """The files of a registered version, downloaded under ``into``, once they match the
    SHA-256 recorded when it was registered (the registration's last tag: a version without
    it did not finish registering, and is refused)."""
    name, version = _version(uri)
    try:
        recorded = _client().get_model_version(name, version).tags.get(DIGEST_TAG)
    except Exception as exc:  # noqa: BLE001
        raise RegistryError(f"cannot read model {name} v{version}: {exc}") from exc
    if not recorded:
        raise UnsafeModelError(
            f"models:/{name}/{version}: rule: load only complete registrations; this version has "
            "no recorded file digests (its registration was cut off, or honing did not write it)"
        )
    folder = _download(name, version, into)
    verify(folder, json.loads(recorded), f"models:/{name}/{version}")
    return folder


def load_model(uri: str) -> Any:
    """A registered version (``models:/<name>@<alias>`` or ``models:/<name>/<version>``),
    whose files are first checked against the SHA-256 recorded at registration, or a local
    model folder; either way loaded by :func:`load_model_folder` (into memory: the download
    is removed afterwards). Anything else is refused."""
    if not (uri.startswith("models:/") or Path(uri).is_dir()):
        raise HoningError(
            f"model {uri!r}: rule: load only models:/<name>@<alias>, models:/<name>/<version> "
            "or a local MLflow model folder"
        )
    with tempfile.TemporaryDirectory(prefix="honing-model-") as tmp:
        folder = fetch_version(uri, Path(tmp)) if uri.startswith("models:/") else Path(uri)
        try:
            return load_model_folder(folder)
        except HoningError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken file is one clear message
            raise HoningError(
                f"model {uri!r} cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc


def _seal(name: str, version: str) -> None:
    """Record the SHA-256 of the version's files as its last tag: from here on it is a
    complete registration that loaders accept."""
    with tempfile.TemporaryDirectory(prefix="honing-seal-") as tmp:
        files = digests(_download(name, version, Path(tmp)))
    _client().set_model_version_tag(name, version, DIGEST_TAG, json.dumps(files, sort_keys=True))


def score_champion(
    name: str, alias: str, X: pd.DataFrame, y: np.ndarray, classes: list[Any]
) -> ChampionScore | None:
    """Evaluate the current champion on the challenger's test data (None: no champion)."""

    version = champion_version(name, alias)
    if version is None:
        return None
    try:
        model = load_model(f"models:/{name}/{version}")
        return ChampionScore(
            version, evaluate(model, X, y, classes), answers=answers(model, X, classes)
        )
    except Exception as exc:  # noqa: BLE001 - any failure to score blocks promotion
        return ChampionScore(version, None, f"{type(exc).__name__}: {exc}"[:500])


def _version_of_run(name: str, run_id: str, tag: str = RUN_ID_TAG) -> str | None:
    """The version of ``name`` whose ``tag`` is ``run_id`` (registration is idempotent)."""
    from mlflow.exceptions import MlflowException

    try:
        found = _client().search_model_versions(f"name = '{name}' and tags.`{tag}` = '{run_id}'")
    except MlflowException:
        return None
    return str(found[0].version) if found else None


def _run_link(run_id: str) -> str:
    """The MLflow UI route of a run (relative: it works wherever the UI is served)."""
    try:
        experiment = _client().get_run(run_id).info.experiment_id
    except Exception:  # noqa: BLE001 - a link is a courtesy
        return f"#/runs/{run_id}"
    return f"#/experiments/{experiment}/runs/{run_id}"


def register_version(
    *,
    model_uri: str,
    name: str,
    run_id: str,
    decision: GateDecision,
    report: EvaluationReport,
    lineage: Lineage,
    alias: str,
) -> RegistrationResult:
    """Register ``model_uri`` as a new version of ``name``, write the gate result and lineage
    into its description and tags, and move ``alias`` to it only if the gate promoted it."""
    import mlflow

    client = _client()
    try:
        existing = _version_of_run(name, run_id)
        if existing is None:  # a retry after a partial success must not register twice
            existing = str(
                mlflow.register_model(model_uri, name, tags={RUN_ID_TAG: run_id}).version
            )
        version = existing
        moved = champion_version(name, alias) if decision.promote else None
        if decision.promote and moved != decision.champion_version:
            # Another run moved the alias after this one was gated: fail closed.
            decision = GateDecision(
                False,
                f"champion changed from v{decision.champion_version or 'none'} to v{moved} "
                "while this run was gated; not promoted, run again to gate against it",
                decision.metric,
                decision.challenger,
                None,
                decision.margin,
                moved,
            )
        client.update_model_version(
            name,
            version,
            description=version_description(
                decision, report, lineage, name=name, run=_run_link(run_id)
            ),
        )
        tags = {
            **lineage.tags(),
            **decision.tags(),
            **metric_tags(report.metrics),
        }
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        _seal(name, version)
        move_alias(
            name,
            alias if decision.promote else "challenger",
            version,
            by=f"training run {run_id}",
            reason=f"gate {decision.verdict}: {decision.reason}",
        )
    except (RegistryError, TrackingUnavailableError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise RegistryError(f"cannot register {model_uri} as '{name}': {exc}") from exc
    return RegistrationResult(name, version, decision.promote, decision, model_uri)


@dataclass(frozen=True)
class ServedRegistration:
    name: str
    version: str
    candidate: str
    source: RegistrationResult


def served_name(name: str) -> str:
    """Registered-model name of the served (compressed) flavor of ``name``."""
    return f"{name}-served"


def register_served(
    *,
    model_uri: str,
    source: RegistrationResult,
    candidate: str,
    reason: str,
    alias: str,
) -> ServedRegistration:
    """Register the compressed candidate as a version of ``<name>-served``, linked both ways
    with the uncompressed version it was built from; it takes ``alias`` only when that version
    was promoted (else ``challenger``), so the served champion always matches the champion."""
    import mlflow

    name = served_name(source.name)
    client = _client()
    try:
        link = f"{source.name}/{source.version}"
        existing = _version_of_run(name, link, tag="honing.source")
        if existing is None:  # retried after a partial success: do not register twice
            existing = str(
                mlflow.register_model(model_uri, name, tags={"honing.source": link}).version
            )
        version = existing
        tags = {
            "honing.source_model": source.name,
            "honing.source_version": source.version,
            "honing.source_uri": source.model_uri,
            "honing.compression.candidate": candidate,
            "honing.compression.reason": reason,
        }
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        client.update_model_version(
            name,
            version,
            description=f"Served flavor ({candidate}) of {source.name} v{source.version}. "
            f"{reason}.",
        )
        client.set_model_version_tag(source.name, source.version, SERVED_TAG, f"{name}/{version}")
        _seal(name, version)
        move_alias(
            name,
            alias if source.promoted else "challenger",
            version,
            by=f"training of {source.name} v{source.version}",
            reason=f"follows {source.name} v{source.version} ({source.decision.verdict})",
        )
    except (RegistryError, TrackingUnavailableError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise RegistryError(f"cannot register served model {model_uri} as '{name}': {exc}") from exc
    return ServedRegistration(name, version, candidate, source)
