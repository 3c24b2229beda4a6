"""No wasted re-runs: find the complete registered version trained from the same data,
config and commit as a run about to start."""

from __future__ import annotations

from dataclasses import dataclass

from honing.lineage import DIGEST_TAG, RUN_ID_TAG, Lineage, metrics_from_tags
from honing.registry.aliases import holder


def _client():  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient()


@dataclass(frozen=True)
class UnchangedVersion:
    """A complete registered version trained from the same data, config and code as a run
    about to start: retraining would only register a copy of it."""

    name: str
    version: str
    promoted: bool  # its own gate promoted it
    gate_reason: str
    metrics: dict[str, float]
    run_id: str
    #: The version holding the champion's alias now (None: none), which a rollback may have
    #: moved since: what a re-run reports, not what the version's gate once said.
    champion: str | None = None

    @property
    def is_champion(self) -> bool:
        return self.champion == self.version

    def log_lines(self) -> list[str]:
        now = "it is the champion" if self.is_champion else f"the champion is v{self.champion}"
        return [
            f"nothing changed since {self.name} v{self.version} (same data MD5, config hash "
            f"and commit): no retraining, nothing registered; {now}; --force retrains"
        ]


def unchanged(name: str, lineage: Lineage, alias: str = "champion") -> UnchangedVersion | None:
    """The newest complete version of ``name`` whose lineage equals ``lineage`` (data MD5,
    config hash, commit), or None, with the version holding ``alias`` now. Code with
    uncommitted changes never matches: its commit does not say what ran."""

    if lineage.git_dirty or lineage.git_commit == "unknown":
        return None
    wanted = {k: v for k, v in lineage.tags().items() if k.split(".")[-1] in _SAME}
    try:
        versions = _client().search_model_versions(f"name='{name}'")
    except Exception:  # noqa: BLE001 - no registered model yet
        return None
    for mv in sorted(versions, key=lambda v: -int(v.version)):
        tags = mv.tags
        if DIGEST_TAG in tags and all(tags.get(k) == v for k, v in wanted.items()):
            return UnchangedVersion(
                name=name,
                version=str(mv.version),
                promoted=tags.get("honing.gate.promoted") == "true",
                gate_reason=tags.get("honing.gate.reason", ""),
                metrics=metrics_from_tags(tags),
                run_id=tags.get(RUN_ID_TAG, ""),
                champion=holder(name, alias),
            )
    return None


#: The lineage fields that decide whether a run would retrain the same model.
_SAME = ("data_md5", "config_hash", "git_commit", "git_dirty")
