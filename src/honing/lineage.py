"""Lineage: where a model came from, and the one schema of the tags that record it on MLflow
runs and registered versions (``honing.<field>``, ``honing.metric.<name>``, ``honing.run_id``).
Everything that writes or reads these tags goes through this module; so does the schema of
the training table that a run records as its dataset input."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

PREFIX = "honing."
#: The training run a registered version came from.
RUN_ID_TAG = f"{PREFIX}run_id"
FLOW_RUN_TAG = f"{PREFIX}flow_run_id"  # the orchestrator's run (Lineage.flow_run_id)
METRIC_PREFIX = f"{PREFIX}metric."
#: The quality thresholds a run's model missed and went on past, because the serving
#: champion misses them too (on the run, and on the version it registered).
QUALITY_MISSED_TAG = f"{PREFIX}quality_threshold_missed"
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


def table_schema(df: pd.DataFrame) -> Any:
    """MLflow's schema of ``df``, as ``mlflow.data.from_pandas`` infers it, without its
    Python loops over every value: a text column's type is found by pandas' own inference,
    and whether a column is required by ``isna``; MLflow types the other columns. None when
    a column has no single type, as MLflow leaves it."""
    import pandas as pd
    from mlflow.types import ColSpec, DataType, Schema
    from mlflow.types.utils import _infer_pandas_column

    def spec(name: Any, col: pd.Series) -> Any:
        text = col.dtype.kind == "O" and pd.api.types.infer_dtype(col, skipna=True) == "string"
        kind = DataType.string if text else _infer_pandas_column(col)
        return ColSpec(type=kind, name=name, required=not bool(col.isna().any()))

    try:
        return Schema([spec(name, col) for name, col in df.items()])
    except Exception:  # as MLflow's own inference: a column it cannot type leaves no schema
        return None


def portable(value: Any, root: Path) -> Any:
    """``value`` (JSON-like) with every absolute path inside ``root`` made relative to it, so
    that an artifact does not carry the machine it was written on."""
    if isinstance(value, dict):
        return {k: portable(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, root) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        path = Path(value)
        if path.is_relative_to(root):
            return str(path.relative_to(root))
    return value
