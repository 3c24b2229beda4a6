"""Compression: smaller and faster candidates of a trained pipeline, measured on one test set.

From the refit pipeline (features + model) this package builds candidates, each a deployable
artifact (files) plus an in-memory predictor loaded *from those files*:

* ``native``: the pipeline as registered (skops);
* ``onnx``: a scikit-learn pipeline converted with skl2onnx and run by onnxruntime;
* ``onnx_int8`` and ``onnx_int8_static``: onnxruntime's int8 quantization of that graph,
  dynamic or static (QDQ, activation ranges calibrated on training rows), where it applies
  (graphs with MatMul/Gemm nodes; tree ensembles and linear classifiers use ``ai.onnx.ml``
  operators it does not touch);
* for the PyTorch MLP: ``fp32`` (the dense network exported, batch norm folded; its ONNX
  graph is ``torch.onnx.export``'s, merged onto the skl2onnx feature graph), global
  ``pruned_unstructured`` magnitude pruning and ``pruned_structured`` pruning that removes
  hidden neurons (torch-pruning's dependency graph), both fine-tuned, and ``int8`` dynamic
  quantization of the Linear layers;
* ``distilled``: a small MLP student trained on the soft labels of the model (any family);
* ``trimmed``: a tree model cut to its fewest boosting rounds, forest trees and vote members
  that stay within the tolerance on the test rows, as one ONNX graph
  (:mod:`~honing.compression.trees`).

:func:`measure` scores every candidate the same way (metric, serialized size, single-row p50/p99
latency at one thread, batch throughput) into a :class:`CompressionReport`; the pure :func:`pick`
then chooses the deployable one. Artifacts are numpy ``.npz`` arrays, skops files, ONNX graphs
and JSON: loading a served model never unpickles arbitrary objects.

Where things live: :mod:`~honing.compression.onnx` (export and ORT quantization),
:mod:`~honing.compression.candidates` (the candidate kinds and what their builders share),
:mod:`~honing.compression.builders` (one builder per technique, named by its entry of
:data:`honing.techniques.TECHNIQUES`),
:mod:`~honing.compression.predictors` (loading served artifacts and model folders),
:mod:`~honing.compression.trees` (cutting rounds and members),
:mod:`~honing.compression.inputs` (cutting the inputs a model never reads),
:mod:`~honing.compression.members` (a model's final estimator and ensemble members), and
here: measure, pick, compress. The network maths (:mod:`honing.models.dense`) and the file
format itself (:mod:`honing.models.artifacts`) belong to the models; which technique applies to
which model is :data:`honing.techniques.TECHNIQUES`.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from honing.compression.builders import Build, Judged, build_candidates, judged
from honing.compression.candidates import (
    Candidate,
    CompressionOptions,
    distill,
    export_seconds,
    feature_steps,
    n_parameters,
    native_candidate,
    options_from_config,
    torch_mlp,
)
from honing.compression.onnx import (
    ONNX_OPSET,
    has_matmul,
    mlp_onnx_bytes,
    network_onnx,
    onnx_bytes,
    ort_quantize,
    ort_quantize_static,
    register_boosting_converters,
)
from honing.compression.predictors import OnnxPredictor, TorchPredictor, load_served
from honing.evaluation import evaluate
from honing.exceptions import CompressionError
from honing.metrics import lower_is_better, within, worse_than
from honing.modeling.decision import DecisionRule
from honing.models.artifacts import MANIFEST, read_served, write_served
from honing.models.dense import (
    DenseLayers,
    build_module,
    dense_arrays,
    export_dense,
    new_dense,
    prune_structured,
    prune_unstructured,
    quantize_int8,
    quantized_module,
    remove_masks,
    train_dense,
)
from honing.techniques import TECHNIQUES

__all__ = [
    "MANIFEST",
    "ONNX_OPSET",
    "TECHNIQUES",
    "Build",
    "Candidate",
    "CandidateMeasure",
    "CompressionChoice",
    "CompressionError",
    "CompressionOptions",
    "CompressionReport",
    "CompressionResult",
    "Judged",
    "DenseLayers",
    "OnnxPredictor",
    "TorchPredictor",
    "build_candidates",
    "build_module",
    "compress",
    "dense_arrays",
    "distill",
    "export_dense",
    "export_seconds",
    "feature_steps",
    "load_served",
    "measure",
    "has_matmul",
    "mlp_onnx_bytes",
    "n_parameters",
    "native_candidate",
    "network_onnx",
    "new_dense",
    "onnx_bytes",
    "options_from_config",
    "ort_quantize",
    "ort_quantize_static",
    "pick",
    "plot_tradeoff",
    "prune_structured",
    "prune_unstructured",
    "quantize_int8",
    "quantized_module",
    "read_served",
    "register_boosting_converters",
    "remove_masks",
    "single_row_latency",
    "throughput",
    "torch_mlp",
    "train_dense",
    "with_rule",
    "write_served",
]


@dataclass(frozen=True)
class CandidateMeasure:
    name: str
    metrics: dict[str, float]
    size_bytes: int
    p50_ms: float
    p99_ms: float
    throughput_rows_s: float
    n_parameters: int | None
    servable: bool
    note: str


@dataclass
class CompressionReport:
    metric: str
    reference: str
    rows: list[CandidateMeasure] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def row(self, name: str) -> CandidateMeasure:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def table(self) -> dict[str, list[Any]]:
        """Column-oriented table (MLflow ``log_table`` shape), ratios against the reference."""
        ref = self.row(self.reference)
        names = [self.metric, *(k for k in ref.metrics if k != self.metric)]
        cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "candidate",
                *names,
                "size_bytes",
                "size_ratio",
                "p50_ms",
                "p99_ms",
                "p50_ratio",
                "throughput_rows_s",
                "n_parameters",
                "servable",
                "note",
            )
        }
        for r in self.rows:
            cols["candidate"].append(r.name)
            for k in names:
                cols[k].append(round(r.metrics.get(k, float("nan")), 6))
            cols["size_bytes"].append(r.size_bytes)
            cols["size_ratio"].append(round(r.size_bytes / ref.size_bytes, 4))
            cols["p50_ms"].append(round(r.p50_ms, 4))
            cols["p99_ms"].append(round(r.p99_ms, 4))
            cols["p50_ratio"].append(round(r.p50_ms / ref.p50_ms, 4))
            cols["throughput_rows_s"].append(round(r.throughput_rows_s, 1))
            cols["n_parameters"].append(r.n_parameters)
            cols["servable"].append(r.servable)
            cols["note"].append(r.note)
        return cols

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "reference": self.reference,
            "rows": [asdict(r) for r in self.rows],
            "skipped": dict(self.skipped),
        }


def single_row_latency(
    predict: Callable[[pd.DataFrame], Any], X: pd.DataFrame, *, rows: int, warmup: int = 10
) -> tuple[float, float]:
    """p50 and p99 in milliseconds of ``predict`` on one-row frames, at one thread.

    PyTorch is pinned to one thread only when a candidate has loaded it: importing it for a
    table of trees and ONNX graphs would cost seconds of CPU and pin nothing they use."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else 0
    if torch is not None:
        torch.set_num_threads(1)
    try:
        frames = [X.iloc[[i % len(X)]] for i in range(rows + warmup)]
        times = []
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            predict(frame)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    finally:
        if torch is not None:
            torch.set_num_threads(threads)
    ms = np.asarray(times) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def throughput(
    predict: Callable[[pd.DataFrame], Any],
    X: pd.DataFrame,
    repeats: int = 3,
    enough_s: float = 0.25,
) -> float:
    """Rows per second of batch prediction on all of ``X``: the best of ``repeats`` passes,
    or of the passes so far once one took ``enough_s`` (repeats beat the timer's noise on a
    short pass; a big ensemble's long pass is measured well once, and the stage's seconds
    are the run's budget)."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        predict(X)
        best = min(best, time.perf_counter() - start)
        if best >= enough_s:
            break
    return float(len(X) / best)


def measure(
    candidates: list[Candidate],
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    classes: list[Any],
    *,
    metric: str,
    rule: DecisionRule | None = None,
    latency_rows: int = 200,
    skipped: dict[str, str] | None = None,
) -> CompressionReport:
    """Every candidate on the same test rows: all evaluation metrics under the model's
    decision ``rule`` (its calibration and tuned threshold), serialized size, single-row
    p50/p99 latency at one thread and batch throughput."""
    report = CompressionReport(metric=metric, reference=candidates[0].name)
    report.skipped = dict(skipped or {})
    for cand in candidates:
        ev = evaluate(cand.predictor, X_test, y_test, classes, rule)
        predict = cand.predictor.predict_proba if classes else cand.predictor.predict
        p50, p99 = single_row_latency(predict, X_test, rows=latency_rows)
        report.rows.append(
            CandidateMeasure(
                name=cand.name,
                metrics=ev.metrics,
                size_bytes=cand.size_bytes,
                p50_ms=p50,
                p99_ms=p99,
                throughput_rows_s=throughput(predict, X_test),
                n_parameters=cand.n_parameters,
                servable=cand.servable,
                note=cand.note,
            )
        )
    return report


@dataclass(frozen=True)
class CompressionChoice:
    name: str
    reason: str
    eligible: list[str]


def pick(
    report: CompressionReport,
    *,
    tolerance: float,
    prefer: str = "latency",
    slack: float = 0.1,
) -> CompressionChoice:
    """The deployable candidate: among servable candidates whose metric, and every other
    reported metric, is at most ``tolerance`` worse than the reference's (relative to the
    reference for unbounded ones: log loss, RMSE), keep the Pareto front of (size, p50
    latency). With
    ``prefer="latency"`` take the smallest of those within ``slack`` (10%) of the fastest
    p50; with ``prefer="size"`` the fastest of those within ``slack`` of the smallest size."""
    ref = report.row(report.reference)
    reference = ref.metrics[report.metric]
    eligible = [
        r
        for r in report.rows
        if r.servable and within(r.metrics, ref.metrics, report.metric, tolerance)
    ]
    if not eligible:
        direction = "above" if lower_is_better(report.metric) else "below"
        raise CompressionError(
            f"no servable candidate has {report.metric} at most {tolerance:g} {direction} the "
            f"reference {report.reference}'s {reference:.4f}"
        )
    front = [
        r
        for r in eligible
        if not any(
            o.size_bytes <= r.size_bytes
            and o.p50_ms <= r.p50_ms
            and (o.size_bytes < r.size_bytes or o.p50_ms < r.p50_ms)
            for o in eligible
        )
    ]
    if prefer == "latency":
        fastest = min(r.p50_ms for r in front)
        best = min(
            (r for r in front if r.p50_ms <= fastest * (1 + slack)),
            key=lambda r: (r.size_bytes, r.p50_ms),
        )
    else:
        smallest = min(r.size_bytes for r in front)
        best = min(
            (r for r in front if r.size_bytes <= smallest * (1 + slack)),
            key=lambda r: (r.p50_ms, r.size_bytes),
        )
    value = best.metrics[report.metric]
    reason = (
        f"{best.name}: {report.metric} {value:.4f} within {tolerance:g} of "
        f"{report.reference} {reference:.4f}; size {best.size_bytes / ref.size_bytes:.3f}x, "
        f"p50 {best.p50_ms / ref.p50_ms:.3f}x of {report.reference}; "
        f"Pareto front {[r.name for r in front]}, preferring {prefer}"
    )
    return CompressionChoice(best.name, reason, [r.name for r in eligible])


def worse_metrics(row: CandidateMeasure, ref: CandidateMeasure, tolerance: float) -> list[str]:
    """The metrics of :data:`honing.metrics.METRICS` on which ``row`` is more than
    ``tolerance`` worse than ``ref`` (relative for unbounded metrics); NaN on both is equal."""
    return worse_than(row.metrics, ref.metrics, tolerance)


def plot_tradeoff(report: CompressionReport) -> Any:
    """Size versus metric, one point per candidate (p50 latency in the label)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for r in report.rows:
        ax.scatter(r.size_bytes / 1024, r.metrics[report.metric])
        ax.annotate(
            f"{r.name} ({r.p50_ms:.2f} ms)",
            (r.size_bytes / 1024, r.metrics[report.metric]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("serialized size (KiB, log scale)")
    ax.set_ylabel(f"test {report.metric}")
    ax.set_title("Compression candidates: size vs accuracy")
    fig.tight_layout()
    return fig


@dataclass
class CompressionResult:
    report: CompressionReport
    choice: CompressionChoice
    files: dict[str, bytes]
    """The chosen candidate's artifact, its manifest carrying the label order."""


def compress(
    pipeline: Any,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    classes: list[Any],
    *,
    numeric: list[str],
    categorical: list[str],
    options: CompressionOptions,
    metric: str,
    tolerance: float,
    rule: DecisionRule | None = None,
    prefer: str = "latency",
    latency_rows: int = 200,
) -> CompressionResult:
    """Build every candidate, measure them on the test split under the model's decision
    ``rule``, pick the deployable one; its manifest carries the labels and the rule."""
    candidates, skipped = build_candidates(
        pipeline, X_train, y_train, numeric=numeric, categorical=categorical, options=options
    )
    measured = functools.partial(
        measure, X_test=X_test, y_test=y_test, classes=classes, metric=metric, rule=rule,
        latency_rows=latency_rows,
    )  # fmt: skip
    report = measured(candidates, skipped=skipped)
    verdicts = Judged(  # what the judged techniques (trim) read: the native model's metrics
        pipeline, X_test, y_test, classes, report.row(report.reference).metrics, rule, metric,
        tolerance, numeric, categorical,
    )  # fmt: skip
    more, why = judged(options.techniques, verdicts)
    report.skipped.update(why)
    if more:
        candidates += more
        report.rows += measured(more).rows
    choice = pick(report, tolerance=tolerance, prefer=prefer)
    chosen = next(c for c in candidates if c.name == choice.name)
    rule = rule or DecisionRule.argmax(_json_labels(classes))
    return CompressionResult(report, choice, with_rule(chosen.files, chosen.name, rule))


def with_rule(files: dict[str, bytes], name: str, rule: DecisionRule) -> dict[str, bytes]:
    """A candidate's files with its manifest naming it and carrying the labels and the
    decision rule: what every loader of the artifact applies."""
    files = dict(files)
    manifest = json.loads(files[MANIFEST])
    rule = DecisionRule(**{**rule.to_dict(), "classes": _json_labels(rule.classes)})
    manifest.update({"candidate": name, "classes": rule.classes, "decision": rule.to_dict()})
    files[MANIFEST] = json.dumps(manifest).encode()
    return files


def _json_labels(classes: list[Any]) -> list[Any]:
    return [c.item() if isinstance(c, np.generic) else c for c in classes]
