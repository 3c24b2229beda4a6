"""Lineage: where a model came from, and the one schema of the tags that record it on MLflow
runs and registered versions (``honing.<field>``, ``honing.metric.<name>``, ``honing.run_id``).
Everything that writes or reads these tags goes through this module."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

PREFIX = "honing."
#: The training run a registered version came from.
RUN_ID_TAG = f"{PREFIX}run_id"
FLOW_RUN_TAG = f"{PREFIX}flow_run_id"  # the orchestrator's run (Lineage.flow_run_id)
METRIC_PREFIX = f"{PREFIX}metric."
#: The last tag a registration writes: the SHA-256 of every file of the version's artifacts
#: (JSON, by relative path). Loading verifies it; a version without it is incomplete.
DIGEST_TAG = f"{PREFIX}sha256"


def metric_tags(metrics: Mapping[str, float]) -> dict[str, str]:
    """Test metrics as version tags (``honing.metric.<name>``)."""
    return {f"{METRIC_PREFIX}{k}": f"{v:.6f}" for k, v in metrics.items()}


def metrics_from_tags(tags: Mapping[str, str]) -> dict[str, float]:
    return {
        k.removeprefix(METRIC_PREFIX): float(v)
        for k, v in tags.items()
        if k.startswith(METRIC_PREFIX)
    }


@dataclass(frozen=True)
class Lineage:
    """Where a model came from: enough to rebuild it."""

    data_path: str
    data_md5: str
    git_commit: str
    git_dirty: bool
    config_hash: str
    config_name: str
    flow_run_id: str

    def tags(self) -> dict[str, str]:
        tags = {f"{PREFIX}{k}": str(v) for k, v in asdict(self).items()}
        tags["mlflow.source.git.commit"] = self.git_commit
        return tags

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Lineage:
        """The lineage a run or version was tagged with; ``ValueError`` names the missing
        tags (a version registered by something else, or cut off before it was tagged)."""
        names = [f.name for f in fields(cls)]
        missing = [f"{PREFIX}{n}" for n in names if f"{PREFIX}{n}" not in tags]
        if missing:
            raise ValueError(f"no lineage tags {missing}")
        values: dict[str, Any] = {n: tags[f"{PREFIX}{n}"] for n in names}
        values["git_dirty"] = values["git_dirty"] == "True"
        return cls(**values)


def git_state(repo: Path) -> tuple[str, bool]:
    """(commit, dirty) of the git checkout at ``repo``; ("unknown", True) outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo,
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown", True
    return commit, bool(status)


def build_lineage(
    *,
    data_path: Path,
    data_md5: str,
    repo: Path,
    config_hash: str,
    config_path: str,
    flow_run_id: str,
) -> Lineage:
    """Lineage of a training run; paths inside ``repo`` are stored relative to it."""
    repo = Path(repo).resolve()

    def shown(path: Path) -> str:
        path = Path(path).resolve()
        return str(path.relative_to(repo) if path.is_relative_to(repo) else path)

    commit, dirty = git_state(repo)
    return Lineage(
        data_path=shown(data_path),
        data_md5=data_md5,
        git_commit=commit,
        git_dirty=dirty,
        config_hash=config_hash,
        config_name=shown(Path(config_path)),
        flow_run_id=flow_run_id,
    )
