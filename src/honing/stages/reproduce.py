"""``honing reproduce``: rebuild a registered model version from its lineage and check that the
metrics match.

The version's tags name the data (path and MD5), the git commit and the training run; the run
holds the exact config as ``config.json``. The data of that commit comes back through DVC.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from honing.config import PipelineConfig, parse_config
from honing.data import file_md5
from honing.exceptions import DataLoadError, RegistryError, ReproducibilityError
from honing.lineage import RUN_ID_TAG, Lineage, metrics_from_tags
from honing.modeling.decision import DecisionRule
from honing.modeling.training import ModelSpec
from honing.monitoring import versions


@dataclass(frozen=True)
class VersionLineage:
    name: str
    version: str
    run_id: str
    data_path: str
    data_md5: str
    git_commit: str
    config: dict[str, Any]
    metrics: dict[str, float]


@dataclass(frozen=True)
class ReproReport:
    name: str
    version: str
    tolerance: float
    expected: dict[str, float]
    actual: dict[str, float]
    differences: dict[str, float] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return all(abs(d) <= self.tolerance for d in self.differences.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "matches": self.matches}


def version_lineage(name: str, version: str) -> VersionLineage:
    """Read a registered version's lineage tags and its training run's config."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        mv = client.get_model_version(name, version)
        tags = mv.tags
        lineage = Lineage.from_tags(tags)
        run_id = tags[RUN_ID_TAG]
        with tempfile.TemporaryDirectory(prefix="honing-repro-") as folder:
            config = json.loads(
                Path(client.download_artifacts(run_id, "config.json", folder)).read_text()
            )
    except (KeyError, ValueError) as exc:
        raise RegistryError(
            f"model {name} v{version} has incomplete lineage ({exc}); it was not registered by "
            "honing, or its registration was cut off"
        ) from exc
    except MlflowException as exc:
        raise RegistryError(f"cannot read model {name} v{version}: {exc}") from exc
    return VersionLineage(
        name=name,
        version=str(version),
        run_id=run_id,
        data_path=lineage.data_path,
        data_md5=lineage.data_md5,
        git_commit=lineage.git_commit,
        config=config,
        metrics=metrics_from_tags(tags),
    )


@dataclass(frozen=True)
class RecordedChoice:
    """What a training run chose, as it recorded it: the model spec (family, hyperparameters,
    an ensemble's members and weights, boosting rounds) and the decision rule."""

    spec: ModelSpec
    rule: DecisionRule


def recorded_choice(run_id: str) -> RecordedChoice | None:
    """The choice the run recorded (``search/model_choice.json`` and
    ``evaluation/decision.json``); None for a run that recorded no spec (an older version)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    folder = tempfile.mkdtemp(prefix="honing-repro-")
    try:
        choice = json.loads(
            Path(client.download_artifacts(run_id, "search/model_choice.json", folder)).read_text()
        )
        if "spec" not in choice:
            return None
        decision = json.loads(
            Path(client.download_artifacts(run_id, "evaluation/decision.json", folder)).read_text()
        )
    except (MlflowException, OSError, ValueError):
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return RecordedChoice(
        ModelSpec.from_dict(choice["spec"]), DecisionRule.from_dict(decision["rule"])
    )


def fetch_data_version(repo: Path, data_path: str, md5: str, commit: str, dest: Path) -> Path:
    """The exact data a version was trained on: the working-tree file when its MD5 matches,
    else the file at ``commit`` through DVC (local cache or remote). The MD5 is verified."""
    repo = Path(repo).resolve()
    current = repo / data_path
    if current.is_file() and file_md5(current) == md5:
        return current
    cached = versions.cached_copy(repo, md5)
    if cached is not None:  # an ingested version: in the DVC cache whatever git holds
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, dest)
        if file_md5(dest) == md5:
            return dest
    if commit in ("", "unknown"):
        raise DataLoadError(
            f"{data_path}: md5 {md5} is not in the working tree and the "
            "version has no git commit to fetch it from"
        )
    import dvc.api

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            dvc.api.open(data_path, repo=str(repo), rev=commit, mode="rb") as src,
            dest.open("wb") as out,
        ):
            for chunk in iter(lambda: src.read(1 << 20), b""):
                out.write(chunk)
    except Exception as exc:  # noqa: BLE001 - DVC raises many kinds
        raise DataLoadError(
            f"{data_path}@{commit[:10]}: DVC cannot provide md5 {md5}: {exc}; "
            "run `dvc pull` or configure the remote"
        ) from exc
    if file_md5(dest) != md5:
        raise DataLoadError(
            f"{data_path}@{commit[:10]}: DVC returned md5 {file_md5(dest)}, "
            f"the version was trained on {md5}"
        )
    return dest


def lineage_config(lineage: VersionLineage, data_path: Path, root: Path) -> PipelineConfig:
    """The version's training config, reading the fetched data file."""
    raw = json.loads(json.dumps(lineage.config))
    raw["data"]["path"] = str(data_path)
    return parse_config(
        raw, source=Path(f"{lineage.name} v{lineage.version} config.json"), root=root
    )


def compare(lineage: VersionLineage, actual: dict[str, float], tolerance: float) -> ReproReport:
    expected = {k: v for k, v in lineage.metrics.items() if k in actual}
    diffs = {k: actual[k] - v for k, v in expected.items()}
    return ReproReport(
        lineage.name, lineage.version, tolerance, expected, {k: actual[k] for k in expected}, diffs
    )


def gate(report: ReproReport) -> None:
    if not report.expected:
        raise ReproducibilityError(f"model {report.name} v{report.version}: no metrics to compare")
    if not report.matches:
        worst = ", ".join(
            f"{k}: {report.expected[k]:.4f} -> {report.actual[k]:.4f}"
            for k, d in report.differences.items()
            if abs(d) > report.tolerance
        )
        raise ReproducibilityError(
            f"model {report.name} v{report.version} did not reproduce "
            f"within {report.tolerance}: {worst}"
        )
