"""MLflow Model Registry and the champion/challenger gate.

Every trained model that passed validation and the quality gate becomes a registered version.
Only a version that the pure :func:`champion_gate` accepts gets the ``champion`` alias; the gate's
numbers and reason are written into the version's description and tags either way.

The package also holds the champion/challenger decision (:mod:`~honing.registry.champion`) and
its statistics (:mod:`~honing.registry.promotion`, :mod:`~honing.registry.sequential`), alias
moves (:mod:`~honing.registry.aliases`), versions' descriptions
(:mod:`~honing.registry.describe`), the version a run would only copy
(:mod:`~honing.registry.unchanged`), and the load-and-query check
(:mod:`~honing.registry.infra`, run by :mod:`~honing.registry.probe`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from honing.compression.predictors import load_model_folder
from honing.config.gates_config import RegistryConfig
from honing.evaluation import EvaluationReport, evaluate
from honing.exceptions import (
    HoningError,
    RegistryError,
    TrackingUnavailableError,
    UnsafeModelError,
)
from honing.lineage import DIGEST_TAG, QUALITY_MISSED_TAG, RUN_ID_TAG, Lineage, metric_tags
from honing.modeling.decision import answers
from honing.models.artifacts import digests, verify
from honing.registry.aliases import SERVED_TAG, move_alias, served_name
from honing.registry.champion import ChampionScore, GateDecision
from honing.registry.describe import served_links, version_description
from honing.registry.infra import InfraCheck, InfraReport, check_for, load_and_query

if TYPE_CHECKING:
    from honing.registry.promotion import Recorded


@dataclass(frozen=True)
class RegistrationResult:
    name: str
    version: str
    promoted: bool
    decision: GateDecision
    model_uri: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def newest_version(name: str) -> str | None:
    """The newest registered version of ``name`` (the latest training, promoted or not)."""
    found = _client().search_model_versions(f"name='{name}'")
    return max((str(v.version) for v in found), key=int, default=None)


def version_importances(name: str, version: str) -> dict[str, float]:
    """The permutation importance of each input column, as the training run of version
    ``version`` of ``name`` measured it (``explain/importances.json``; empty if absent)."""
    import mlflow

    try:
        run_id = _client().get_model_version(name, version).run_id
        found = mlflow.artifacts.load_dict(f"runs:/{run_id}/explain/importances.json")
    except Exception:  # noqa: BLE001 - no importances recorded: drift is not weighted
        return {}
    for imp in found.get("importances", []):
        if imp.get("method") == "permutation":
            return {str(f): float(m) for f, m in zip(imp["features"], imp["mean"], strict=True)}
    return {}


#: The version tag holding the latest check of its label-free estimate against labels.
AUDIT_TAG = "honing.estimate_audit"


def record_audit(name: str, version: str, audit: dict[str, Any]) -> None:
    """Keep ``audit`` (:class:`honing.monitoring.EstimateAudit` as a dict) on the version,
    replacing the one before: the latest labelled batch says whether its estimate is
    trusted."""
    _client().set_model_version_tag(name, version, AUDIT_TAG, json.dumps(audit))


def latest_audit(name: str, version: str) -> dict[str, Any] | None:
    """The version's latest audit of its estimate, None before any labelled batch."""
    raw = _client().get_model_version(name, version).tags.get(AUDIT_TAG)
    return None if raw is None else dict(json.loads(raw))


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


def _infra_check(name: str, version: str, infra: InfraCheck) -> InfraReport:
    """The version's files, downloaded as a server would get them, loaded and queried in a
    fresh process."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="honing-infra-") as tmp:
        folder = _download(name, version, Path(tmp))
        return load_and_query(
            str(folder),
            infra.sample,
            tracking_uri=mlflow.get_tracking_uri(),
            budget_ms=infra.budget_ms,
            timeout_s=infra.timeout_s,
        )


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
    infra: InfraCheck | None = None,
    past_thresholds: tuple[str, ...] = (),
) -> RegistrationResult:
    """Register ``model_uri`` as a new version of ``name``, write the gate result and lineage
    into its description and tags, and move ``alias`` to it only if the gate promoted it and,
    with ``infra``, the version's files load and answer in a fresh process
    (:func:`honing.registry.infra.load_and_query`; run, and its result tagged, on every version).
    ``past_thresholds``: thresholds let through (:func:`honing.evaluation.gate`), said too."""
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
        if infra is not None:  # every version: a challenger may be promoted later
            check = _infra_check(name, version, infra)
            client.set_model_version_tag(name, version, "honing.infra_check", check.reason)
            if decision.promote and not check.ok:
                decision = replace(
                    decision,
                    promote=False,
                    outcome="keep",
                    reason=f"{decision.reason}; but the load-and-query check failed: "
                    f"{check.reason}",
                )
        link = _run_link(run_id)
        described = version_description(
            decision, report, lineage, name=name, run=link, past_thresholds=past_thresholds
        )
        client.update_model_version(name, version, description=described)
        tags = {
            **lineage.tags(),
            **decision.tags(),
            **metric_tags(report.metrics),
            **({QUALITY_MISSED_TAG: ", ".join(past_thresholds)} if past_thresholds else {}),
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
        to_source, to_served = served_links(source.name, source.version, name, version)
        client.update_model_version(
            name, version, description=f"Served flavor ({candidate}) of {to_source}.\n\n{reason}."
        )
        described = client.get_model_version(source.name, source.version).description or ""
        if to_served not in described:
            client.update_model_version(
                source.name, source.version, description=f"{described}\n\n{to_served}"
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


#: The version tag holding a waiting challenger's looks and the verdict on them.
SEQUENTIAL_TAG = "honing.sequential"


@dataclass(frozen=True)
class ChallengerFollowed:
    """What a labelled batch did to the waiting ``@challenger``: ``outcome`` ``promote``,
    ``drop``, ``undecidable`` (it waits on) or ``none`` (no challenger waits for evidence)."""

    version: str | None
    outcome: str
    reason: str
    looks: list[dict[str, Any]]

    def log_lines(self) -> list[str]:
        who = f"@challenger v{self.version}" if self.version else "@challenger"
        return [f"{who}: {self.outcome}: {self.reason}"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def follow_challenger(
    name: str,
    X: pd.DataFrame,
    y: np.ndarray,
    classes: list[Any],
    cfg: RegistryConfig,
    *,
    batch: str,
    by: str,
    recorded: Recorded | None = None,
) -> ChallengerFollowed:
    """Judge the ``@challenger`` that its test split left undecidable again, on the labelled
    rows ``X``, ``y`` of ``batch`` with the evidence of the batches before
    (:mod:`honing.registry.sequential`), and act: promote it (the served flavor follows), drop it
    (its alias is removed), or let it wait. A challenger compared with a champion that no
    longer holds the alias is dropped. A promotion first passes the load-and-query check
    (``registry.infra_check``) on the batch's rows, as at registration; a failed check
    leaves it waiting. The looks and each verdict are kept on the version
    (``honing.registry.sequential``); every alias move is in the alias history. ``recorded``
    (:class:`honing.registry.promotion.Recorded`): the answers both versions gave live on these rows
    (a shadowed endpoint's), judged instead of answers computed again, when they are the
    answers of the champion and challenger of now."""
    from honing.registry import aliases, promotion, sequential

    challenger, champion = (
        aliases.holder(name, "challenger"),
        champion_version(name, cfg.champion_alias),
    )
    if not cfg.sequential_promotion:
        return ChallengerFollowed(challenger, "none", "registry.sequential_promotion is off", [])
    if challenger is None or champion is None:
        return ChallengerFollowed(None, "none", "no challenger waits for evidence", [])
    client = _client()
    tags = client.get_model_version(name, challenger).tags
    state = json.loads(tags.get(SEQUENTIAL_TAG, "{}"))
    if tags.get("honing.gate.outcome") != "undecidable" or state.get("outcome") in (
        "promote",
        "drop",
    ):
        why = state.get("reason") or f"its gate said {tags.get('honing.gate.outcome', 'nothing')}"
        return ChallengerFollowed(challenger, "none", f"waits for no evidence ({why})", [])
    looks = [sequential.Look(**d) for d in state.get("looks", [])]
    seeded = bool(state.get("seeded", False))
    if tags.get("honing.gate.champion_version") != champion:
        verdict_reason = (
            f"it was compared with champion v{tags.get('honing.gate.champion_version')}, and "
            f"v{champion} holds @{cfg.champion_alias} now"
        )
        outcome = "drop"
    else:
        if not state:
            seed = sequential.seed_look(tags, cfg.confidence)
            looks, seeded = ([seed], True) if seed is not None else ([], False)
        if recorded is not None and (recorded.champion, recorded.challenger) == (
            champion,
            challenger,
        ):
            evidence, source = recorded.evidence, f"{batch} (answers given live)"
        else:
            mine = answers(load_model(f"models:/{name}/{challenger}"), X, classes)
            theirs = answers(load_model(f"models:/{name}/{champion}"), X, classes)
            evidence, source = promotion.Evidence(np.asarray(y), mine, theirs), batch
        compared = promotion.compare(evidence, cfg.metric, confidence=cfg.confidence)
        looks.append(sequential.look(compared, source))
        verdict = sequential.judge_looks(
            looks, metric=cfg.metric, margin=cfg.promotion_margin,
            confidence=cfg.confidence, seeded=seeded,
        )  # fmt: skip
        outcome, verdict_reason = verdict.outcome, verdict.reason
        check = check_for(cfg.infra_check, X)
        if outcome == "promote" and check is not None:  # as a promotion at registration
            report = _infra_check(name, challenger, check)
            client.set_model_version_tag(name, challenger, "honing.infra_check", report.reason)
            if not report.ok:
                outcome = "undecidable"
                verdict_reason += f"; but the load-and-query check failed: {report.reason}"
    kept = [lk.to_dict() for lk in looks]
    record = {"looks": kept, "seeded": seeded, "outcome": outcome, "reason": verdict_reason}
    client.set_model_version_tag(name, challenger, SEQUENTIAL_TAG, json.dumps(record))
    if outcome == "promote":
        words = f"sequential promotion on {batch}: {verdict_reason}"
        aliases.move_with_served(name, cfg.champion_alias, challenger, by=by, reason=words)
        aliases.clear_alias(name, "challenger", by=by, reason=f"v{challenger} promoted")
    elif outcome == "drop":
        aliases.clear_alias(
            name, "challenger", by=by, reason=f"dropped on {batch}: {verdict_reason}"
        )
    return ChallengerFollowed(challenger, outcome, verdict_reason, kept)
