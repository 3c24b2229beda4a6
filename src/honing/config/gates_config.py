"""The config sections that decide: ``evaluation`` (quality thresholds, slices and their
gates), ``decision`` (calibration and threshold), ``registry`` (the champion/challenger
gate and the load-and-query check) and ``monitoring`` (when to retrain). Named in
:mod:`honing.config` too, where the pipeline config assembles them."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from honing import metrics
from honing.config.settings import StrictModel
from honing.drift import DriftMethodName
from honing.metrics import Metric


class SliceGateConfig(StrictModel):
    """Gates on the slices of ``evaluation.slices`` (slices smaller than ``min_rows`` are
    reported, not gated)."""

    metric: Metric | None = Field(default=None, description="Default: registry.metric.")
    minimum: float | None = Field(default=None, description="Every slice's metric floor.")
    max_gap: float | None = Field(
        default=None, ge=0.0, description="Largest shortfall of a slice against the overall."
    )
    max_fairness_difference: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Largest demographic-parity or equalized-odds difference of a sensitive "
        "column.",
    )
    non_inferiority: float | None = Field(
        default=None,
        ge=0.0,
        description="Promotion: no slice may be more than this worse than the champion's.",
    )
    min_rows: int = Field(default=30, ge=1)


class EvaluationConfig(StrictModel):
    thresholds: dict[Metric, float] = Field(
        default_factory=dict,
        description="Test metric limits: minimums, maximums for rmse/mae; past any, nothing is "
        "registered.",
    )
    slices: list[str] = Field(
        default_factory=list, description="Columns whose groups get their own test metrics."
    )
    sensitive: list[str] = Field(
        default_factory=list,
        description="Columns whose fairness differences are reported (fairlearn; binary).",
    )
    slice_gate: SliceGateConfig = SliceGateConfig()
    explain: bool = Field(
        default=True,
        description="Feature importances on the test split (permutation; SHAP where it "
        "applies), logged with the run and the version. Off saves their time on a wide table; "
        "monitoring then weighs every column's drift alike.",
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


class CostsConfig(StrictModel):
    """What each wrong decision costs (any unit): the threshold minimizes their mean."""

    false_positive: float = Field(gt=0.0)
    false_negative: float = Field(gt=0.0)


class DecisionConfig(StrictModel):
    """How a classifier's probabilities become decisions (see honing.modeling.decision): a binary
    task's calibration and threshold, a multiclass task's calibration."""

    objective: Literal["auto", "f1", "accuracy", "balanced_accuracy", "youden", "cost", "none"] = (
        Field(
            default="auto",
            description="What the threshold maximizes on out-of-fold predictions; auto: the "
            "search metric when it scores labels (accuracy, f1), else f1; none: 0.5.",
        )
    )
    costs: CostsConfig | None = Field(
        default=None, description="With objective cost: the cost of each kind of error."
    )
    min_precision: float | None = Field(default=None, gt=0.0, le=1.0)
    min_recall: float | None = Field(default=None, gt=0.0, le=1.0)
    calibration: Literal["auto", "sigmoid", "isotonic", "temperature", "none"] = Field(
        default="auto",
        description="Cross-fitted on out-of-fold predictions; kept only when it lowers the "
        "Brier score and the log loss. auto tries sigmoid and isotonic on a binary task "
        "(sigmoid only for ranking metrics) and temperature scaling on a multiclass one.",
    )

    @model_validator(mode="after")
    def _costs_with_cost(self) -> DecisionConfig:
        if self.objective == "cost" and self.costs is None:
            raise ValueError("decision.objective cost needs decision.costs")
        if self.costs is not None and self.objective != "cost":
            raise ValueError(f"decision.costs apply with objective cost, not {self.objective!r}")
        return self


class InfraCheckConfig(StrictModel):
    """The load-and-query check before an alias moves (honing.registry.infra)."""

    enabled: bool = True
    latency_budget_ms: float = Field(
        default=1000.0, gt=0.0, description="p50 of answering `rows` test rows, in ms."
    )
    rows: int = Field(default=5, ge=1, le=1000)
    timeout_s: float = Field(default=120.0, gt=0.0)


#: What a registered model's name (and ``honing init``'s pipeline name, which makes it) may
#: hold: letters, digits, ``_``, ``.`` and ``-``; no path separator, no space.
NAME_CHARS = r"A-Za-z0-9_.\-"
NAME_PATTERN = rf"^[{NAME_CHARS}]+$"


class RegistryConfig(StrictModel):
    model_name: str = Field(min_length=1, pattern=NAME_PATTERN)
    metric: Metric = "roc_auc"
    promotion_margin: float = Field(
        default=0.0,
        ge=0.0,
        description="Challenger is promoted when its metric >= champion's metric - margin.",
    )
    champion_alias: str = Field(default="champion", max_length=255, pattern=r"^[A-Za-z0-9_\-]+$")
    gate: Literal["statistical", "point"] = Field(
        default="statistical",
        description="statistical: promote only when the confidence interval of the metric "
        "difference on the same test rows clears the margin (undecidable otherwise); point: "
        "compare the two numbers.",
    )
    confidence: float = Field(default=0.95, ge=0.5, lt=1.0)
    sequential_promotion: bool = Field(
        default=True,
        description="An undecidable challenger waits as @challenger, and each labelled batch "
        "that monitoring sees adds its rows to the comparison, until the evidence promotes "
        "or drops it (honing.registry.sequential).",
    )
    max_flip_share: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Keep the champion when more than this share of test rows would change "
        "their decision.",
    )
    infra_check: InfraCheckConfig = InfraCheckConfig()

    @field_validator("champion_alias")
    @classmethod
    def _not_reserved(cls, alias: str) -> str:
        # MLflow resolves @latest (and v<N>) itself: a gate against "latest" would compare
        # with the newest version, whatever the champion; honing moves @challenger itself
        if alias.lower() in ("latest", "challenger") or re.fullmatch(r"[vV]\d+", alias):
            raise ValueError(
                f"{alias!r} is reserved ('latest' and 'v<number>' by MLflow, 'challenger' by "
                "honing); name the champion's alias otherwise"
            )
        return alias


class MonitoringConfig(StrictModel):
    """When the monitoring flow asks for retraining (see honing.monitoring.gate)."""

    drift_share: float = Field(
        default=0.3,
        gt=0.0,
        le=1.0,
        description="Share of drifted feature columns that means drift: of the champion's "
        "permutation importance when it was recorded, else of the columns.",
    )
    prediction_drift: bool = Field(
        default=True, description="Count the champion's answers drifting as a signal."
    )
    trigger: Literal["auto", "drift", "performance"] = Field(
        default="auto",
        description="Which signals retrain. auto: a labelled batch's measured metric alone "
        "(drift is then reported, not acted on), else drift and the estimated metric; "
        "drift: any signal; performance: the metric only.",
    )
    metric: Metric = "roc_auc"
    max_metric_drop: float = Field(
        default=0.05,
        ge=0.0,
        description="Worsening allowed, in the metric's units (measured on a labeled batch, "
        "else estimated from the champion's calibrated probabilities).",
    )
    max_metric_drop_relative: float | None = Field(
        default=None,
        gt=0.0,
        description="Worsening allowed as a share of the metric's value at registration "
        "(0.1: an RMSE 10% higher); replaces max_metric_drop when set. For errors, whose "
        "units are the target's.",
    )

    retrain_after_new_rows: float | None = Field(
        default=None,
        gt=0.0,
        description="Retrain once the labelled rows no training has seen (ingested since "
        "the newest registered version's data, and the batch) reach this share of the rows "
        "that training used, whatever the trigger (1.0: when the data has doubled, or a "
        "window's worth is new); off when unset. honing init writes 1.0.",
    )

    def allowed_drop(self, reference: float) -> float:
        """The worsening allowed from ``reference``, the metric's value at registration."""
        if self.max_metric_drop_relative is None:
            return self.max_metric_drop
        return self.max_metric_drop_relative * abs(reference)

    drift_method: DriftMethodName = Field(
        default="auto",
        description="How a column's drift is measured: an entry of honing.drift.DRIFT_METHODS "
        "(auto: Evidently's defaults, p-values on small samples; effect_size: normed "
        "Wasserstein and PSI with thresholds, whatever the batch size).",
    )
    max_rows: int | None = Field(
        default=50_000, ge=100, description="Rows sampled from each table for drift checks."
    )
    min_rows: int = Field(
        default=30,
        ge=1,
        description="A batch of fewer rows is reported but decides nothing, and a metric is "
        "measured only on this many labelled rows or more: on a handful of rows, drift tests "
        "and metrics are noise.",
    )
