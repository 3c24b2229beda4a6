"""Pydantic models for the YAML configs in ``configs/``.

Two files drive a run:

* a *pipeline* config (``configs/churn.yaml``): what data, which checks, which search, which gates;
* an *environment* profile (``configs/env/local.yaml``): where MLflow, Ray and DVC live.

Both are loaded once, at the entry point (CLI, flow, DVC stage), and passed down as objects.
Every model forbids unknown keys, so a typo is an error and not a silently ignored setting.

The package holds the sections by kind: :mod:`~honing.config.search_config` (the search),
:mod:`~honing.config.gates_config` (the deciding sections) and :mod:`~honing.config.settings`
(the environment profile: where the services live).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from honing import metrics
from honing.config.gates_config import (
    CostsConfig,
    DecisionConfig,
    EvaluationConfig,
    InfraCheckConfig,
    MonitoringConfig,
    RegistryConfig,
    SliceGateConfig,
)
from honing.config.search_config import (
    SEARCHABLE_FEATURES,
    EnsembleConfig,
    NestedCVConfig,
    SchedulerConfig,
    SearchConfig,
)
from honing.config.settings import (
    DATA_ROOTS_VAR,
    DvcSettings,
    EnvSettings,
    MlflowSettings,
    RaySettings,
    StrictModel,
    data_roots,
    format_errors,
    load_env_settings,
    parse_env_settings,
    read_yaml,
)
from honing.exceptions import ConfigError
from honing.metrics import Metric
from honing.models import task_families
from honing.techniques import TECHNIQUES
from honing.techniques import known as known_technique

#: The search section lives in :mod:`honing.config.search_config`, the deciding sections in
#: :mod:`honing.config.gates_config` and the environment settings in :mod:`honing.config.settings`;
#: they
#: are named here too, so that one import gives every model.
__all__ = [
    "CostsConfig",
    "DecisionConfig",
    "EvaluationConfig",
    "InfraCheckConfig",
    "RegistryConfig",
    "SliceGateConfig",
    "SEARCHABLE_FEATURES",
    "EnsembleConfig",
    "NestedCVConfig",
    "SchedulerConfig",
    "SearchConfig",
    "DvcSettings",
    "EnvSettings",
    "MlflowSettings",
    "RaySettings",
    "load_env_settings",
    "parse_env_settings",
    "data_roots",
]


Task = Literal["classification", "regression"]


class WindowConfig(StrictModel):
    """Which rows of the data's newest version train the model (see honing.data.windowing.window):
    ``all``; ``last_n_rows`` (the file's last ``rows``, the latest ingested); or
    ``last_period``, the rows whose ``time_column`` falls in the ``period`` (a pandas
    offset such as ``90D``) before the newest time."""

    kind: Literal["all", "last_n_rows", "last_period"] = "all"
    rows: int | None = Field(default=None, ge=10)
    period: str | None = None
    time_column: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> WindowConfig:
        if self.kind == "last_n_rows" and self.rows is None:
            raise ValueError("data.window.kind last_n_rows needs data.window.rows")
        if self.kind == "last_period" and not (self.period and self.time_column):
            raise ValueError(
                "data.window.kind last_period needs data.window.period and data.window.time_column"
            )
        if self.period:
            from pandas.tseries.frequencies import to_offset

            try:
                to_offset(self.period)
            except ValueError as exc:
                raise ValueError(f"data.window.period {self.period!r}: {exc}") from None
        return self


class DataConfig(StrictModel):
    path: Path
    target: str
    positive_label: str | int | bool | None = Field(
        default=None, description="Label value mapped to class 1; others become 0."
    )
    drop_columns: list[str] = Field(default_factory=list, description="Identifiers and leaks.")
    format: Literal["auto", "csv", "parquet"] = "auto"
    missing_values: list[str] = Field(
        default_factory=list,
        description="Cell values read as missing in every column, spaces around them aside, "
        "besides an empty cell (and pandas' NA, NaN, null): markers such as `.` or `?`, or "
        "a sentinel such as `-999`. Applied wherever honing reads a table of this pipeline "
        "(training, `validate`, `predict`, `monitor`, `ingest`, `reproduce`); in a Parquet "
        "file, to its text cells. A text column whose other values are then all numbers reads "
        "as numbers. `honing init` writes the markers it finds in columns of numbers, so that "
        "they are read as numbers. A JSON row sent to `serve-model` says missing with null.",
    )
    thousands: Literal[",", "'", "_", " "] | None = Field(
        default=None,
        description="The thousands separator of the numbers in a CSV file (`,` in "
        "`1,234.5`), which then read as numbers rather than text; the decimal point stays "
        "`.`. `honing init` writes `,` when a column of numbers, or the label, uses it.",
    )
    window: WindowConfig = WindowConfig()

    @model_validator(mode="after")
    def _markers_are_values(self) -> DataConfig:
        blank = [m for m in self.missing_values if not m.strip()]
        if blank:
            raise ValueError(
                "data.missing_values: an empty marker; rule: an empty cell is missing already, "
                "list only the other values that mean missing"
            )
        return self


class QualityConfig(StrictModel):
    """Rules checked beside the expectation suite (see honing.validation.rules)."""

    forbid_constant_columns: bool = Field(
        default=True,
        description="Refuse a table with a feature column that holds one value in every row. "
        "`honing init` writes false where its table has one, and keeps the column: a flag "
        "the first sample never sets may vary in later batches.",
    )
    min_minority_fraction: float = Field(
        default=0.01,
        ge=0.0,
        lt=0.5,
        description="The rarest class's least share; `init`: half its table's, 0 past 2 classes.",
    )
    max_duplicate_fraction: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="The largest share of exact duplicate rows (judged, for a batch, on the "
        "table it would make). `honing init` writes twice its table's share and 2 points "
        "more where that is higher: batches repeat rows more or less often.",
    )
    max_abs_correlation: float = Field(
        default=0.99,
        gt=0.0,
        le=1.0,
        description="A numeric feature at least this correlated with the label leaks it.",
    )


class ValidationConfig(StrictModel):
    suite: Path
    quality: QualityConfig = QualityConfig()


class CleaningConfig(StrictModel):
    deduplicate: bool = Field(
        default=True,
        description="Drop exact duplicate rows (copies) before the split. `honing init` "
        "writes false for a table whose columns allow no more distinct rows than it has: "
        "there each repeat is a case, and dropping them would drop the class frequencies.",
    )
    drop_invalid_labels: bool = Field(
        default=True, description="Drop the rows whose target is missing."
    )


class SplitConfig(StrictModel):
    """The held-out test split: random (stratified for classification; by ``group_column``
    when rows repeat an entity), or in time. ``kind: time`` trains on the past and tests on
    the most recent ``test_size`` of the rows by ``time_column``: the champion/challenger gate then
    scores both models on the newest window, a forward backtest. Every inner validation is
    then forward too: expanding-window folds (or the newest rows as the holdout), ``gap``
    rows apart, so that no training fold holds a row later than those it is scored on."""

    kind: Literal["random", "time"] = "random"
    time_column: str | None = None
    group_column: str | None = Field(
        default=None,
        description="kind random: the column naming each row's entity (a customer, a "
        "patient, a store). All the rows of one group fall on one side of every split: "
        "the test split, and every inner validation (the search's folds or holdout, the "
        "ensembles and nested CV). The column identifies, it does not predict: it is not "
        "a feature, and a served model does not need it.",
    )
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 42
    gap: int = Field(
        default=0,
        ge=0,
        description="kind time: rows left out between each inner training window and the "
        "rows it is validated on (the search, ensembles and decision rule validate forward).",
    )

    @model_validator(mode="after")
    def _time_needs_a_column(self) -> SplitConfig:
        if self.kind == "time" and not self.time_column:
            raise ValueError("split.kind time needs split.time_column")
        if self.time_column and self.kind != "time":
            raise ValueError("split.time_column applies with split.kind time")
        if self.gap and self.kind != "time":
            raise ValueError("split.gap applies with split.kind time")
        if self.group_column and self.kind != "random":
            raise ValueError("split.group_column applies with split.kind random")
        return self


class FeaturesConfig(StrictModel):
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


class TrackingConfig(StrictModel):
    experiment: str = Field(min_length=1)


#: A technique of :data:`honing.techniques.TECHNIQUES` (the one table of techniques).
Technique = Annotated[str, AfterValidator(known_technique)]


class DistillConfig(StrictModel):
    """The student MLP trained on the model's soft labels."""

    hidden_layers: int = Field(default=1, ge=1, le=4)
    width: int = Field(default=16, ge=1, le=4096)
    epochs: int = Field(default=30, ge=1, le=1000)
    learning_rate: float = Field(default=3e-3, gt=0.0, le=1.0)
    temperature: float = Field(default=2.0, gt=0.0, le=20.0)
    alpha: float = Field(default=0.7, ge=0.0, le=1.0, description="Weight of the soft loss.")


class CompressionConfig(StrictModel):
    """Candidates built from the refit model, and how the served one is picked
    (see honing.compression)."""

    enabled: bool = True
    techniques: list[Technique] = Field(default_factory=lambda: list(TECHNIQUES))
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


class PipelineConfig(StrictModel):
    name: str = Field(min_length=1)
    task: Task = "classification"
    time_budget_s: float | None = Field(
        default=None,
        gt=0,
        description="Wall-clock seconds for the whole run (validation, search, ensembles, "
        "refit, explanations, compression, registration), shared out by honing.search.planner. "
        "search.time_budget_s, when also set, caps the search's share.",
    )
    data: DataConfig
    validation: ValidationConfig
    cleaning: CleaningConfig = CleaningConfig()
    split: SplitConfig = SplitConfig()
    features: FeaturesConfig = FeaturesConfig()
    search: SearchConfig
    evaluation: EvaluationConfig = EvaluationConfig()
    decision: DecisionConfig = DecisionConfig()
    compression: CompressionConfig = CompressionConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    registry: RegistryConfig
    tracking: TrackingConfig
    _content_hash: str = PrivateAttr(default="")

    @property
    def content_hash(self) -> str:
        """Hash of the config as written (before paths were resolved), for lineage."""
        return self._content_hash or config_hash(self)

    @property
    def identifiers(self) -> list[str]:
        """The columns of the table that are not features: ``data.drop_columns`` and the
        group column of the split. A batch to score may leave them out."""
        group = [self.split.group_column] if self.split.group_column else []
        return list(dict.fromkeys([*self.data.drop_columns, *group]))

    @property
    def inputs(self) -> tuple[Path, ...]:
        """The table and its suite: no output of a command may replace them, even forced."""
        return (Path(self.data.path), Path(self.validation.suite))

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
        allowed = metrics.names(self.task)  # read now: the table is the one home
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
        families = sorted(set(self.search.families) - set(task_families(self.task)))
        if families:
            raise ValueError(
                f"search.families: {families} cannot do {self.task}; use "
                f"{list(task_families(self.task))}"
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
            if self.split.group_column and self.split.group_column in group:
                raise ValueError(
                    f"split.group_column '{self.split.group_column}' is listed as a feature: "
                    "it names the groups, it is not one"
                )
        if self.split.group_column == self.data.target:
            raise ValueError(f"split.group_column '{self.data.target}' is the target")
        return self


def _resolve(root: Path, value: Path, source: Path, key: str, *, follow: bool = False) -> Path:
    try:  # relative paths (and, with ``follow``, all) resolved; a link loop is a config error
        return (root / value).resolve() if follow or not value.is_absolute() else value
    except (RuntimeError, OSError) as exc:
        raise ConfigError(f"{source}: {key} {value}: rule: a path that resolves ({exc})") from exc


def parse_config(raw: Mapping[str, Any], *, source: Path, root: Path) -> PipelineConfig:
    """Validate a mapping as a pipeline config; relative paths are resolved against ``root``."""
    try:
        cfg = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_errors(source, exc)) from exc
    digest = config_hash(cfg)
    data = cfg.data.model_copy(update={"path": _resolve(root, cfg.data.path, source, "data.path")})
    suite = _resolve(root, cfg.validation.suite, source, "validation.suite")
    validation = cfg.validation.model_copy(update={"suite": suite})
    resolved = cfg.model_copy(update={"data": data, "validation": validation})
    resolved._content_hash = digest
    return resolved


def load_config(
    path: Path | str, *, root: Path | None = None, extra_roots: tuple[Path, ...] = ()
) -> PipelineConfig:
    """Read and validate a pipeline config. ``root`` (default: the current directory) is
    the project relative paths are resolved against. ``data.path`` must stay inside the
    project (the folder holding the config's ``configs/``, or ``root`` unless it is the file
    system's root or the home folder) or one of ``extra_roots``: a config cannot make honing
    read, and log, any file of the machine."""
    path = Path(path)
    root = (root or Path.cwd()).resolve()
    cfg = parse_config(read_yaml(path), source=path, root=root)
    folder = path.resolve().parent
    project = folder.parent if folder.name == "configs" else folder
    broad = {Path(root.anchor), Path.home().resolve()}  # a run from there reads anything
    allowed = [project, *([root] if root not in broad else []),
               *(p.resolve() for p in extra_roots)]  # fmt: skip
    # links followed: a link out of the project is out
    data = _resolve(root, Path(cfg.data.path), path, "data.path", follow=True)
    if not any(data == a or a in data.parents for a in allowed):
        raise ConfigError(
            f"{path}: data.path {cfg.data.path}: rule: data must be inside the project "
            f"({root}) or a folder listed in {DATA_ROOTS_VAR}; it resolves to {data}"
        )
    return cfg


def config_hash(cfg: BaseModel) -> str:
    """Stable content hash of a validated config (key order and YAML formatting do not matter)."""
    payload = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
