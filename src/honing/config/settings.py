"""Where the services live: the environment profile (``configs/env/*.yaml``) that says where
MLflow, Ray and DVC are, plus the YAML reading and error formatting every config shares.
Switching from the embedded default to the distributed profile changes these objects only."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from honing.exceptions import ConfigError
from honing.store_artifacts import location

#: Where ``honing ui`` serves the embedded store's UI unless the profile says otherwise.
LOCAL_UI = "http://127.0.0.1:5000"

_USERINFO = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^:/@\s]*):[^@/\s]+@")
_SECRET_PARAM = re.compile(r"(?P<head>\b(?:password|passwd|token|secret)=)[^&\s'\"]+", re.I)


def redact(text: str) -> str:
    """``text`` with the secrets of any URI in it masked: ``postgresql://u:***@host/db``,
    ``?password=***``. Every message and artifact that may show a tracking URI goes
    through it."""
    return _SECRET_PARAM.sub(r"\g<head>***", _USERINFO.sub(r"\g<head>:***@", text))


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo is never silently ignored); values are frozen; no
    number is infinite or NaN (``.inf`` in YAML is a float, and no budget or bound is)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MlflowSettings(StrictModel):
    tracking_uri: str = "sqlite:///mlflow.db"
    registry_uri: str | None = None
    artifact_root: str | None = Field(
        default="mlartifacts",
        description="Where new experiments keep artifacts; None: the tracking server decides. "
        "A folder inside an SQLite store's folder is recorded relative to it "
        "(`honing-store:mlartifacts/...`), so the project can be moved or copied.",
    )
    ui_url: str = Field(
        default=LOCAL_UI,
        description="Where `honing ui` serves an embedded store's UI, and where the links a "
        "run prints point (a tracking server's own address is used instead).",
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


#: The most values a config may expand to once its aliases are followed. Real configs are a
#: few hundred; a few aliases nested in each other can otherwise expand to gigabytes.
MAX_EXPANDED_NODES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key that appears twice in one mapping (YAML itself
    keeps the last one silently, which replaces a whole section)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen and key != "<<":
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (each key may appear once)",
                    key_node.start_mark,
                )  # fmt: skip
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping
)


def _expanded_nodes(root: yaml.Node | None) -> int:
    """How many nodes the document has once every alias is expanded (aliases share node
    objects in the composed graph, so each distinct node is sized once)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a recursive alias counts once instead of looping
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in node.value)
        else:
            total = 1
        sizes[id(node)] = min(total, MAX_EXPANDED_NODES + 1)
        return sizes[id(node)]

    return 0 if root is None else size(root)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping; every failure is one :class:`ConfigError` naming it.
    Duplicate keys are errors, and so is a document whose aliases expand past
    :data:`MAX_EXPANDED_NODES` values."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    loader = _StrictLoader(text)
    try:  # parsed once: the node graph is sized, then built
        node = loader.get_single_node()
        if _expanded_nodes(node) > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"{path}: rule: aliases may expand to at most {MAX_EXPANDED_NODES:,} values; "
                "this document expands to more (an alias bomb?)"
            )
        raw = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except TypeError as exc:  # a key YAML allows and Python does not: a list, a mapping
        raise ConfigError(f"{path}: rule: keys are names, not lists or mappings ({exc})") from exc
    finally:
        loader.dispose()
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


#: Tracking stores honing runs on: the ones with a model registry.
TRACKING_SCHEMES = (
    "sqlite:///",
    "postgresql",
    "mysql",
    "mssql",
    "http://",
    "https://",
    "databricks",
)


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
    tracking_uri = _absolute_sqlite(mlflow.tracking_uri, root)
    artifact_root = mlflow.artifact_root
    if artifact_root is not None and not _has_scheme(artifact_root):
        folder = (root / artifact_root).resolve()
        # a folder inside an SQLite store's folder stays relative to it: the two can move
        artifact_root = location(folder, tracking_uri) or folder.as_uri()
    mlflow = mlflow.model_copy(
        update={
            "tracking_uri": tracking_uri,
            "registry_uri": _absolute_sqlite(mlflow.registry_uri, root)
            if mlflow.registry_uri
            else None,
            "artifact_root": artifact_root,
        }
    )
    for uri in (mlflow.tracking_uri, mlflow.registry_uri):
        where = "MLFLOW_TRACKING_URI" if environ.get("MLFLOW_TRACKING_URI") else f"{source}"
        if uri and not uri.startswith(TRACKING_SCHEMES):
            raise ConfigError(
                f"{where}: mlflow.tracking_uri {redact(uri)!r}: rule: use a database or a "
                f"server ({', '.join(s.rstrip(':/') for s in TRACKING_SCHEMES)}); the file "
                "store has no model registry (sqlite:///mlflow.db is the embedded default)"
            )
    ray = settings.ray
    if environ.get("RAY_ADDRESS"):
        ray = ray.model_copy(update={"address": environ["RAY_ADDRESS"]})
    storage = ray.storage_path
    if not _has_scheme(storage):
        ray = ray.model_copy(update={"storage_path": str((root / storage).resolve())})
    return settings.model_copy(update={"mlflow": mlflow, "ray": ray})


#: Folders outside the project that configs may read data from (``os.pathsep``-separated).
DATA_ROOTS_VAR = "HONING_DATA_ROOTS"


def data_roots(environ: Mapping[str, str]) -> tuple[Path, ...]:
    """The extra data folders the environment allows (:data:`DATA_ROOTS_VAR`)."""
    return tuple(Path(p) for p in environ.get(DATA_ROOTS_VAR, "").split(os.pathsep) if p)


#: The environment profile a command reads unless told otherwise (``--env``).
DEFAULT_ENV_PATH = Path("configs/env/local.yaml")


def load_env_settings(
    path: Path | str | None,
    *,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> EnvSettings:
    """Read an environment profile (``None``: the built-in embedded defaults, as is the
    default profile :data:`DEFAULT_ENV_PATH` when a project has none: a table's own folder
    runs embedded, as the repository's ``configs/env/local.yaml`` says)."""
    root = (root or Path.cwd()).resolve()
    if path is not None and Path(path) == DEFAULT_ENV_PATH and not (root / path).exists():
        path = None
    if path is None:
        return parse_env_settings({}, source=Path("<defaults>"), root=root, environ=environ)
    path = Path(path)
    return parse_env_settings(read_yaml(path), source=path, root=root, environ=environ)
