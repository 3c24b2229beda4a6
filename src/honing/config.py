"""Pydantic models for the YAML configs in ``configs/``.

Two files drive a run:

* a *pipeline* config (``configs/churn.yaml``): what data, which checks, which search, which gates;
* an *environment* profile (``configs/env/local.yaml``): where MLflow, Ray and DVC live.

Both are loaded once, at the entry point (CLI, flow, DVC stage), and passed down as objects.
Every model forbids unknown keys, so a typo is an error and not a silently ignored setting.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from honing import metrics
from honing.exceptions import ConfigError
from honing.models import task_families

CLASSIFICATION_METRICS = metrics.names("classification")
REGRESSION_METRICS = metrics.names("regression")


def _known_metric(name: str) -> str:
    if name not in metrics.METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {list(metrics.METRICS)}")
    return name


#: A metric name of :data:`honing.metrics.METRICS` (the one table of metrics).
Metric = Annotated[str, AfterValidator(_known_metric)]
Task = Literal["classification", "regression"]
#: Families per task, from the one family table (``linear``: ridge / lasso / elastic net;
#: ``logistic_regression``: the classifier).
TASK_FAMILIES = {task: task_families(task) for task in ("classification", "regression")}


Family = Literal[
    "logistic_regression",
    "linear",
    "svm",
    "knn",
    "random_forest",
    "extra_trees",
    "hist_gradient_boosting",
    "lightgbm",
    "xgboost",
    "mlp",
]
DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint", "grid")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    path: Path
    target: str
    positive_label: str | int | bool | None = Field(
        default=None, description="Label value mapped to class 1; others become 0."
    )
    drop_columns: list[str] = Field(default_factory=list, description="Identifiers and leaks.")
    format: Literal["auto", "csv", "parquet"] = "auto"


class QualityConfig(_Strict):
    """Rules checked beside the expectation suite (see honing.quality)."""

    forbid_constant_columns: bool = True
    min_minority_fraction: float = Field(default=0.01, ge=0.0, lt=0.5)
    max_duplicate_fraction: float = Field(default=0.05, ge=0.0, le=1.0)
    max_abs_correlation: float = Field(default=0.99, gt=0.0, le=1.0)


class ValidationConfig(_Strict):
    suite: Path
    quality: QualityConfig = QualityConfig()


class CleaningConfig(_Strict):
    deduplicate: bool = True
    drop_invalid_labels: bool = True


class SplitConfig(_Strict):
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 42


class FeaturesConfig(_Strict):
    numeric: list[str] | None = Field(default=None, description="None: inferred from dtypes.")
    categorical: list[str] | None = Field(default=None, description="None: inferred from dtypes.")
    dates: list[str] | None = Field(
        default=None,
        description="Date/datetime columns, expanded into calendar parts and elapsed days. "
        "None: detected from dtypes and values; []: none.",
    )
    numeric_imputer: Literal["median", "mean"] = "median"
    scaler: Literal["standard", "minmax", "robust", "none"] = "standard"
    encoder: Literal["auto", "onehot", "ordinal"] = Field(
        default="auto",
        description="auto: each family's own choice (trees and boosting: ordinal, split "
        "natively by LightGBM; the others: one-hot).",
    )
    max_onehot_categories: int = Field(
        default=25,
        ge=2,
        description="Categoricals with more distinct values are high-cardinality.",
    )
    high_cardinality: Literal["target", "frequency"] = Field(
        default="target",
        description="target: cross-fitted target encoding (scikit-learn's TargetEncoder); "
        "frequency: one-hot of the max_onehot_categories most frequent values, the rest pooled.",
    )
    min_category_frequency: int | None = Field(default=None, ge=1)
    selection: Literal["none", "mutual_info", "l1"] = Field(
        default="none", description="Feature selection after encoding."
    )
    selection_fraction: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Share of features mutual_info keeps."
    )
    selection_C: float = Field(default=0.1, gt=0.0, description="L1 strength (inverse).")
    pca: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Keep the principal components that explain this share of variance.",
    )
    sampling: Literal["none", "oversample", "undersample"] = Field(
        default="none",
        description="Class rebalancing of training rows only (each CV fold's, then the refit's).",
    )


#: Feature options the search may vary per trial (``search.features``).
SEARCHABLE_FEATURES = (
    "numeric_imputer",
    "scaler",
    "encoder",
    "selection",
    "selection_fraction",
    "selection_C",
    "pca",
    "sampling",
)


def _check_space(where: str, space: Mapping[str, Any]) -> None:
    for name, spec in space.items():
        if not isinstance(spec, Mapping):
            continue
        if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
            raise ValueError(
                f"{where}.{name}: a distribution is one key of {DISTRIBUTIONS}, got {dict(spec)}"
            )
        kind, args = next(iter(spec.items()))
        if kind in ("uniform", "loguniform", "randint"):
            if not (isinstance(args, list) and len(args) == 2 and args[0] < args[1]):
                raise ValueError(
                    f"{where}.{name}: {kind} needs [low, high] with low < high, got {args}"
                )
            if kind == "loguniform" and args[0] <= 0:
                raise ValueError(f"{where}.{name}: loguniform needs low > 0")
        elif not (isinstance(args, list) and args):
            raise ValueError(f"{where}.{name}: {kind} needs a non-empty list")


class SchedulerConfig(_Strict):
    """Early stopping of trials at low-fidelity rungs (:mod:`honing.fidelity`). The resource,
    cut into ``max_t`` rungs, is each family's own: boosting rounds (``lightgbm``, ``xgboost``,
    which also stop by themselves when their validation loss stops improving), trees
    (forests), epochs (``mlp``), iterations (``hist_gradient_boosting``), or a growing row
    subsample for the others (only on tables large enough to subsample)."""

    kind: Literal["none", "asha", "hyperband", "median"] = "none"
    max_t: int = Field(default=8, ge=1, le=1000, description="Rungs of the resource.")
    grace_period: int = Field(default=1, ge=1, description="Rungs before a trial may stop.")
    reduction_factor: float = Field(default=3.0, gt=1.0)


class NestedCVConfig(_Strict):
    """Nested CV: the whole search repeated inside each outer fold, scored on the held-out
    outer fold: an unbiased estimate of the procedure (reported, not used to choose)."""

    enabled: bool = False
    outer_folds: int = Field(default=3, ge=2, le=10)


class EnsembleConfig(_Strict):
    """Ensembles of the trials, kept only when they beat the best single model: ensemble
    selection on the trials' out-of-fold predictions (no extra fitting to score it), and
    optionally soft voting / stacking of the top-k trials (cross-validated again)."""

    enabled: bool = False
    selection: bool = Field(
        default=True, description="Greedy ensemble selection (Caruana) on out-of-fold predictions."
    )
    top_k: int = Field(default=3, ge=2, le=10)
    methods: list[Literal["soft_voting", "stacking"]] = Field(
        default_factory=list,
        description="Top-k ensembles cross-validated after the search (each costs a CV).",
    )


class SearchConfig(_Strict):
    families: dict[Family, dict[str, Any]] = Field(min_length=1)
    features: dict[str, Any] = Field(
        default_factory=dict,
        description="Feature options searched per trial: keys of SEARCHABLE_FEATURES.",
    )
    algorithm: Literal["random", "grid", "tpe", "evolutionary"] = Field(
        default="random",
        description="random/grid: Ray's variant generator; tpe: Optuna TPE; evolutionary: "
        "Optuna NSGA-II (a genetic algorithm), both through Ray Tune's OptunaSearch.",
    )
    trials_per_family: int | None = Field(
        default=4,
        ge=1,
        le=1000,
        description="random/grid: per family; tpe/evolutionary: x families in total. None: "
        "no cap, the time budget ends the search.",
    )
    portfolio: bool = Field(
        default=True,
        description="tpe/evolutionary: start from known-good configurations (honing.portfolio).",
    )
    validation: Literal["cv", "holdout", "auto"] = Field(
        default="cv",
        description="How trials are scored: k-fold CV, one holdout split, or auto (holdout when "
        "rows x columns is large for the time budget).",
    )
    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    cv_folds: int = Field(default=5, ge=2, le=20)
    metric: Metric = "roc_auc"
    seed: int = 42
    max_concurrent_trials: int | None = Field(default=None, ge=1)
    cpus_per_trial: float = Field(default=1.0, gt=0)
    time_budget_s: float | None = Field(default=None, gt=0)
    scheduler: SchedulerConfig = SchedulerConfig()
    nested_cv: NestedCVConfig = NestedCVConfig()
    ensemble: EnsembleConfig = EnsembleConfig()

    @field_validator("families")
    @classmethod
    def _check_spaces(cls, families: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for family, space in families.items():
            _check_space(f"search.families.{family}", space or {})
        return {k: dict(v or {}) for k, v in families.items()}

    @field_validator("features")
    @classmethod
    def _check_features(cls, features: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(features) - set(SEARCHABLE_FEATURES))
        if unknown:
            raise ValueError(
                f"search.features: {unknown} cannot be searched; choose from "
                f"{list(SEARCHABLE_FEATURES)}"
            )
        _check_space("search.features", features)
        return features

    @model_validator(mode="after")
    def _grid_is_discrete(self) -> SearchConfig:
        if self.trials_per_family is None and self.algorithm == "grid":
            raise ValueError("search.trials_per_family: grid search needs a number, not null")
        if self.algorithm != "grid":
            return self
        spaces = [("search.features", self.features)] + [
            (f"search.families.{f}", p) for f, p in self.families.items()
        ]
        for where, space in spaces:
            for name, spec in space.items():
                if isinstance(spec, Mapping) and next(iter(spec)) not in ("choice", "grid"):
                    raise ValueError(
                        f"{where}.{name}: algorithm grid needs choice/grid lists or constants, "
                        f"got {next(iter(spec))}"
                    )
        return self


class EvaluationConfig(_Strict):
    thresholds: dict[Metric, float] = Field(
        default_factory=dict,
        description="Test metric limits: minimums, maximums for rmse/mae; past any, nothing is "
        "registered.",
    )

    @field_validator("thresholds")
    @classmethod
    def _in_range(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for name, value in thresholds.items():
            if not metrics.METRICS[name].bounded:
                if value <= 0:
                    raise ValueError(f"evaluation.thresholds.{name} must be > 0, got {value}")
            elif not (value <= 1.0 if name == "r2" else 0.0 <= value <= 1.0):
                raise ValueError(f"evaluation.thresholds.{name} must be in [0, 1], got {value}")
        return thresholds


class MonitoringConfig(_Strict):
    """When the monitoring flow asks for retraining (see honing.monitoring.gate)."""

    drift_share: float = Field(
        default=0.3,
        gt=0.0,
        le=1.0,
        description="Share of drifted feature columns that means drift.",
    )
    metric: Metric = "roc_auc"
    max_metric_drop: float = Field(
        default=0.05, ge=0.0, description="Worsening allowed, in the metric's units."
    )


class RegistryConfig(_Strict):
    model_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    metric: Metric = "roc_auc"
    promotion_margin: float = Field(
        default=0.0,
        ge=0.0,
        description="Challenger is promoted when its metric >= champion's metric - margin.",
    )
    champion_alias: str = "champion"


class TrackingConfig(_Strict):
    experiment: str = Field(min_length=1)


Technique = Literal[
    "onnx", "onnx_int8", "prune_unstructured", "prune_structured", "int8", "distill"
]


class DistillConfig(_Strict):
    """The student MLP trained on the model's soft labels."""

    hidden_layers: int = Field(default=1, ge=1, le=4)
    width: int = Field(default=16, ge=1, le=4096)
    epochs: int = Field(default=30, ge=1, le=1000)
    learning_rate: float = Field(default=3e-3, gt=0.0, le=1.0)
    temperature: float = Field(default=2.0, gt=0.0, le=20.0)
    alpha: float = Field(default=0.7, ge=0.0, le=1.0, description="Weight of the soft loss.")


class CompressionConfig(_Strict):
    """Candidates built from the refit model, and how the served one is picked
    (see honing.compression)."""

    enabled: bool = True
    techniques: list[Technique] = Field(
        default_factory=lambda: [
            "onnx",
            "onnx_int8",
            "prune_unstructured",
            "prune_structured",
            "int8",
            "distill",
        ]
    )
    metric: Metric = "accuracy"
    tolerance: float = Field(
        default=0.005,
        ge=0.0,
        le=1.0,
        description="A candidate may lose at most this much of the metric (0.005 = 0.5 point).",
    )
    prefer: Literal["latency", "size"] = "latency"
    prune_amount: float = Field(default=0.5, gt=0.0, lt=1.0)
    fine_tune_epochs: int = Field(default=5, ge=0, le=1000)
    distill: DistillConfig = DistillConfig()
    latency_rows: int = Field(default=200, ge=10, le=100_000)


class PipelineConfig(_Strict):
    name: str = Field(min_length=1)
    task: Task = "classification"
    time_budget_s: float | None = Field(
        default=None,
        gt=0,
        description="Wall-clock seconds for the whole run (validation, search, ensembles, "
        "refit, explanations, compression, registration), shared out by honing.planner. "
        "search.time_budget_s, when also set, caps the search's share.",
    )
    data: DataConfig
    validation: ValidationConfig
    cleaning: CleaningConfig = CleaningConfig()
    split: SplitConfig = SplitConfig()
    features: FeaturesConfig = FeaturesConfig()
    search: SearchConfig
    evaluation: EvaluationConfig = EvaluationConfig()
    compression: CompressionConfig = CompressionConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    registry: RegistryConfig
    tracking: TrackingConfig
    _content_hash: str = PrivateAttr(default="")

    @property
    def content_hash(self) -> str:
        """Hash of the config as written (before paths were resolved), for lineage."""
        return self._content_hash or config_hash(self)

    @model_validator(mode="before")
    @classmethod
    def _regression_defaults(cls, raw: Any) -> Any:
        """Regression configs get regression metrics where they leave them out."""
        if not isinstance(raw, Mapping) or raw.get("task") != "regression":
            return raw
        raw = dict(raw)
        for section, metric in (
            ("search", "rmse"),
            ("registry", "rmse"),
            ("monitoring", "rmse"),
            ("compression", "r2"),
        ):
            if isinstance(raw.get(section, {}), Mapping):
                raw[section] = {"metric": metric, **dict(raw.get(section) or {})}
        return raw

    @model_validator(mode="after")
    def _metrics_fit_the_task(self) -> PipelineConfig:
        allowed = CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS
        used = {
            "search.metric": self.search.metric,
            "registry.metric": self.registry.metric,
            "monitoring.metric": self.monitoring.metric,
            "compression.metric": self.compression.metric,
            **{f"evaluation.thresholds.{k}": k for k in self.evaluation.thresholds},
        }
        for where, metric in used.items():
            if metric not in allowed:
                raise ValueError(
                    f"{where}: '{metric}' is not a {self.task} metric; use one of {list(allowed)}"
                )
        families = sorted(set(self.search.families) - set(TASK_FAMILIES[self.task]))
        if families:
            raise ValueError(
                f"search.families: {families} cannot do {self.task}; use "
                f"{list(TASK_FAMILIES[self.task])}"
            )
        if self.task == "regression" and self.features.sampling != "none":
            raise ValueError("features.sampling: class rebalancing applies to classification")
        return self

    @model_validator(mode="after")
    def _search_ends(self) -> PipelineConfig:
        if (
            self.search.trials_per_family is None
            and self.time_budget_s is None
            and self.search.time_budget_s is None
        ):
            raise ValueError(
                "search.trials_per_family: null (no cap) needs time_budget_s or "
                "search.time_budget_s, or the search would never end"
            )
        return self

    @model_validator(mode="after")
    def _target_not_dropped(self) -> PipelineConfig:
        if self.data.target in self.data.drop_columns:
            raise ValueError(f"data.target '{self.data.target}' is also in data.drop_columns")
        for group in (self.features.numeric or [], self.features.categorical or []):
            if self.data.target in group:
                raise ValueError(f"data.target '{self.data.target}' is listed as a feature")
        return self


class MlflowSettings(_Strict):
    tracking_uri: str = "sqlite:///mlflow.db"
    registry_uri: str | None = None
    artifact_root: str | None = Field(
        default="mlartifacts",
        description="Where new experiments keep artifacts; None: the tracking server decides.",
    )


class RaySettings(_Strict):
    address: str | None = Field(default=None, description="None: start Ray on this machine.")
    num_cpus: int | None = Field(default=2, ge=1)
    storage_path: str = ".honing/ray_results"


class DvcSettings(_Strict):
    remote: str | None = None


class EnvSettings(_Strict):
    """Where the services live. Switching profiles changes this object only, never code."""

    profile: str = "local"
    mlflow: MlflowSettings = MlflowSettings()
    ray: RaySettings = RaySettings()
    dvc: DvcSettings = DvcSettings()


def _read_yaml(path: Path) -> dict[str, Any]:
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


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: {exc.error_count()} config error(s)"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        rule = "unknown key (not allowed)" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  - {where}: {rule}")
    return "\n".join(lines)


def _resolve(root: Path, value: Path) -> Path:
    return value if value.is_absolute() else (root / value).resolve()


def parse_config(raw: Mapping[str, Any], *, source: Path, root: Path) -> PipelineConfig:
    """Validate a mapping as a pipeline config; relative paths are resolved against ``root``."""
    try:
        cfg = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from exc
    digest = config_hash(cfg)
    data = cfg.data.model_copy(update={"path": _resolve(root, cfg.data.path)})
    validation = cfg.validation.model_copy(update={"suite": _resolve(root, cfg.validation.suite)})
    resolved = cfg.model_copy(update={"data": data, "validation": validation})
    resolved._content_hash = digest
    return resolved


def load_config(path: Path | str, *, root: Path | None = None) -> PipelineConfig:
    """Read and validate a pipeline config. ``root`` defaults to the current directory."""
    path = Path(path)
    return parse_config(_read_yaml(path), source=path, root=(root or Path.cwd()).resolve())


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
        raise ConfigError(_format_errors(source, exc)) from exc
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
    return parse_env_settings(_read_yaml(path), source=path, root=root, environ=environ)


def config_hash(cfg: BaseModel) -> str:
    """Stable content hash of a validated config (key order and YAML formatting do not matter)."""
    payload = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
