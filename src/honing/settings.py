"""Where the services live: the environment profile (``configs/env/*.yaml``) that says where
MLflow, Ray and DVC are, plus the YAML reading and error formatting every config shares.
Switching from the embedded default to the distributed profile changes these objects only."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from honing.exceptions import ConfigError


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo is never silently ignored); values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MlflowSettings(StrictModel):
    tracking_uri: str = "sqlite:///mlflow.db"
    registry_uri: str | None = None
    artifact_root: str | None = Field(
        default="mlartifacts",
        description="Where new experiments keep artifacts; None: the tracking server decides.",
    )


class RaySettings(StrictModel):
    address: str | None = Field(default=None, description="None: start Ray on this machine.")
    num_cpus: int | None = Field(default=2, ge=1)
    storage_path: str = ".honing/ray_results"


class DvcSettings(StrictModel):
    remote: str | None = None


class EnvSettings(StrictModel):
    """Where the services live. Switching profiles changes this object only, never code."""

    profile: str = "local"
    mlflow: MlflowSettings = MlflowSettings()
    ray: RaySettings = RaySettings()
    dvc: DvcSettings = DvcSettings()


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping; every failure is one :class:`ConfigError` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def format_errors(path: Path, exc: ValidationError) -> str:
    """Pydantic's errors as lines naming the file and the dotted key of each."""
    lines = [f"{path}: {exc.error_count()} config error(s)"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        rule = "unknown key (not allowed)" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  - {where}: {rule}")
    return "\n".join(lines)


def _has_scheme(uri: str) -> bool:
    """True for ``s3://b``, ``file:///x``, ``mlflow-artifacts:/x``; False for plain paths."""
    scheme, sep, _ = uri.partition(":")
    return bool(sep) and len(scheme) > 1 and scheme.replace("-", "").replace("+", "").isalnum()


def _absolute_sqlite(uri: str, root: Path) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((root / uri[len(prefix) :]).resolve())
    return uri


def parse_env_settings(
    raw: Mapping[str, Any], *, source: Path, root: Path, environ: Mapping[str, str] | None = None
) -> EnvSettings:
    """Validate an environment profile; ``environ`` overrides (MLFLOW_TRACKING_URI, RAY_ADDRESS).

    The caller passes ``os.environ`` (or a test dict): the library never reads it by itself.
    """
    try:
        settings = EnvSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_errors(source, exc)) from exc
    environ = environ or {}
    mlflow = settings.mlflow
    if environ.get("MLFLOW_TRACKING_URI"):
        mlflow = mlflow.model_copy(update={"tracking_uri": environ["MLFLOW_TRACKING_URI"]})
    if environ.get("MLFLOW_REGISTRY_URI"):
        mlflow = mlflow.model_copy(update={"registry_uri": environ["MLFLOW_REGISTRY_URI"]})
    artifact_root = mlflow.artifact_root
    if artifact_root is not None and not _has_scheme(artifact_root):
        artifact_root = (root / artifact_root).resolve().as_uri()
    mlflow = mlflow.model_copy(
        update={
            "tracking_uri": _absolute_sqlite(mlflow.tracking_uri, root),
            "registry_uri": _absolute_sqlite(mlflow.registry_uri, root)
            if mlflow.registry_uri
            else None,
            "artifact_root": artifact_root,
        }
    )
    ray = settings.ray
    if environ.get("RAY_ADDRESS"):
        ray = ray.model_copy(update={"address": environ["RAY_ADDRESS"]})
    storage = ray.storage_path
    if not _has_scheme(storage):
        ray = ray.model_copy(update={"storage_path": str((root / storage).resolve())})
    return settings.model_copy(update={"mlflow": mlflow, "ray": ray})


def load_env_settings(
    path: Path | str | None,
    *,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> EnvSettings:
    """Read an environment profile (``None``: the built-in embedded defaults)."""
    root = (root or Path.cwd()).resolve()
    if path is None:
        return parse_env_settings({}, source=Path("<defaults>"), root=root, environ=environ)
    path = Path(path)
    return parse_env_settings(read_yaml(path), source=path, root=root, environ=environ)
