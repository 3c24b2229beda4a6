"""One builder per compression technique, named by its entry of
:data:`honing.techniques.TECHNIQUES` (``build``). A builder takes a :class:`Build` (the fitted
pipeline, its training rows and what several builders share: the ONNX graph, converted once,
and the MLP's dense export) and returns its candidates, or records in ``Build.skipped`` why it
has none. A *judged* technique (``trim``) is built after the others are measured, from a
:class:`Judged` (the test rows and the native model's metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from honing.compression.candidates import (
    CALIBRATION_ROWS,
    Candidate,
    CompressionOptions,
    calibration_feeds,
    dense_candidate,
    distill,
    feature_steps,
    n_parameters,
    native_candidate,
    onnx_candidate,
    onnx_or_skip,
    torch_candidate,
    torch_mlp,
)
from honing.compression.onnx import (
    has_matmul,
    mlp_onnx_bytes,
    onnx_bytes,
    ort_quantize,
    ort_quantize_static,
)
from honing.compression.student import booster_student, student_nodes
from honing.compression.trees import trimmed_candidate
from honing.modeling.decision import DecisionRule
from honing.models.dense import (
    DenseLayers,
    build_module,
    export_dense,
    prune_structured,
    prune_unstructured,
    remove_masks,
    train_dense,
)
from honing.techniques import TECHNIQUES, applicable, builder


@dataclass
class Build:
    """What a technique's builder reads. ``mlp``: the PyTorch MLP classifier at the end of the
    pipeline (None for any other model); ``wanted``: the techniques that apply; ``skipped``:
    where builders say why a technique yielded nothing."""

    pipeline: Any
    X_train: pd.DataFrame
    y_train: np.ndarray
    numeric: list[str]
    categorical: list[str]
    options: CompressionOptions
    wanted: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    mlp: Any | None = None

    @property
    def cols(self) -> tuple[list[str], list[str]]:
        return self.numeric, self.categorical

    @cached_property
    def preprocessor(self) -> Any:
        return feature_steps(self.pipeline)

    @cached_property
    def layers(self) -> DenseLayers:
        """The MLP's network as plain arrays."""
        return export_dense(self.mlp.model_, self.mlp.activation)

    @cached_property
    def graph(self) -> bytes | None:
        """The model as one ONNX graph, converted once for every graph technique; None (each
        of them skipped, with the converter's reason) when it cannot be converted."""
        names = [t for t in self.wanted if TECHNIQUES[t].graph]
        if self.mlp is not None:
            return onnx_or_skip(
                lambda: mlp_onnx_bytes(self.preprocessor, self.layers, *self.cols),
                names, self.skipped, "the feature pipeline",
            )  # fmt: skip
        return onnx_or_skip(
            lambda: onnx_bytes(self.pipeline, *self.cols, rows=self.X_train),
            names, self.skipped, "this pipeline",
        )  # fmt: skip

    @property
    def graph_note(self) -> str:
        return "skl2onnx + torch.onnx.export" if self.mlp is not None else "skl2onnx"

    @property
    def task(self) -> str:
        classifier = self.mlp is not None or is_classifier(self.pipeline)
        return "classification" if classifier else "regression"

    @property
    def n_params(self) -> int | None:
        return self.layers.n_parameters if self.mlp is not None else None

    @cached_property
    def dense_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The training rows through the MLP's features, and their class positions (what
        fine-tuning a pruned network trains on)."""
        Z = np.asarray(self.preprocessor.transform(self.X_train), dtype=np.float32)
        return Z, np.searchsorted(self.mlp.classes_, self.y_train)

    def fine_tune(self, module: Any) -> None:
        Z, y = self.dense_rows
        o = self.options
        train_dense(
            module, Z, y, epochs=o.fine_tune_epochs, seed=o.seed, deadline=o.deadline
        )  # fmt: skip


@dataclass(frozen=True)
class Judged:
    """What a judged technique reads: the test rows and the native model's metrics on them."""

    pipeline: Any
    X_test: pd.DataFrame
    y_test: np.ndarray
    classes: list[Any]
    reference: dict[str, float]
    rule: DecisionRule | None
    metric: str
    tolerance: float
    numeric: list[str]
    categorical: list[str]


def build_onnx(b: Build) -> list[Candidate]:
    """The whole model as one ONNX graph."""
    data = b.graph
    if data is None:
        return []
    return [onnx_candidate("onnx", data, *b.cols, b.graph_note, b.task, b.n_params)]


def _quantized(b: Build, name: str, how: str, quantize: Any) -> list[Candidate]:
    data = b.graph
    if data is None:
        return []
    if not has_matmul(data):
        b.skipped[name] = (
            "ORT int8 quantization does not apply: the graph has no MatMul/Gemm nodes "
            "(ai.onnx.ml tree or linear operators)"
        )
        return []
    try:
        quantized = quantize(data)
    except Exception as exc:  # noqa: BLE001 - a quantizer gap is reported, not fatal
        b.skipped[name] = f"{how} failed: {type(exc).__name__}: {exc}"
        return []
    if quantized is None:
        b.skipped[name] = f"{how} found nothing to quantize"
        return []
    return [onnx_candidate(name, quantized, *b.cols, how, b.task, b.n_params)]


def build_onnx_int8(b: Build) -> list[Candidate]:
    """onnxruntime's dynamic int8 of the graph."""
    return _quantized(b, "onnx_int8", "ORT dynamic int8", ort_quantize)


def build_onnx_int8_static(b: Build) -> list[Candidate]:
    """onnxruntime's static int8 (QDQ) of the graph, calibrated on training rows."""
    rows = min(len(b.X_train), CALIBRATION_ROWS)
    return _quantized(
        b, "onnx_int8_static", f"ORT static int8 (QDQ, {rows} calibration rows)",
        lambda data: ort_quantize_static(
            data, calibration_feeds(data, b.cols, b.X_train, b.options.seed)
        ),
    )  # fmt: skip


def build_prune_unstructured(b: Build) -> list[Candidate]:
    """The MLP with its smallest weights zeroed, fine-tuned."""
    module, linears = prune_unstructured(b.layers, b.options.prune_amount)
    b.fine_tune(module)
    remove_masks(linears)
    pruned = export_dense(module, b.layers.activation)
    zeros = int(sum((w == 0).sum() for w in pruned.weights))
    note = f"{zeros} zero weights; dense kernels, so no speed-up"
    return [dense_candidate("pruned_unstructured", b.preprocessor, pruned, *b.cols, note)]


def build_prune_structured(b: Build) -> list[Candidate]:
    """The MLP with its weakest hidden neurons removed, fine-tuned."""
    module = build_module(prune_structured(b.layers, b.options.prune_amount))
    b.fine_tune(module)
    smaller = export_dense(module, b.layers.activation)
    note = f"hidden widths {smaller.widths}"
    return [dense_candidate("pruned_structured", b.preprocessor, smaller, *b.cols, note)]


def build_int8(b: Build) -> list[Candidate]:
    """The MLP with int8 Linear layers (torch.ao dynamic)."""
    return [
        torch_candidate("int8", b.preprocessor, b.layers, "torch.ao dynamic int8 Linear", int8=True)
    ]


def build_distill(b: Build) -> list[Candidate]:
    """A small student MLP trained on the model's soft labels."""
    o = b.options
    widths = [o.student_width] * o.student_hidden_layers
    student = distill(
        b.pipeline, b.preprocessor, b.X_train, np.searchsorted(np.unique(b.y_train), b.y_train),
        widths=widths, epochs=o.student_epochs, learning_rate=o.student_learning_rate,
        temperature=o.temperature, alpha=o.alpha, seed=o.seed, deadline=o.deadline,
    )  # fmt: skip
    return [dense_candidate("distilled", b.preprocessor, student, *b.cols, f"student {widths}")]


def build_distill_booster(b: Build) -> list[Candidate]:
    """One LightGBM trained on the model's answers (:mod:`honing.compression.student`): one
    ONNX graph where its features convert, the native pipeline otherwise."""
    if student_nodes(b.pipeline, 0) is None:
        b.skipped["distill_booster"] = (
            "a linear model or the MLP: a booster student would not be smaller"
        )
        return []
    o = b.options
    student = booster_student(
        b.pipeline, b.preprocessor, b.X_train, b.y_train, alpha=o.alpha, seed=o.seed,
        teacher_nodes=n_parameters(b.pipeline), deadline=o.deadline,
    )  # fmt: skip
    if student is None:
        b.skipped["distill_booster"] = "too few training rows for a student"
        return []
    params = n_parameters(student.pipeline)
    skipped: dict[str, str] = {}
    data = onnx_or_skip(
        lambda: onnx_bytes(student.pipeline, *b.cols, rows=b.X_train), ["distilled_booster"],
        skipped,
        "the student's features",
    )  # fmt: skip
    if data is not None:
        note = f"{student.note}; ONNX"
        return [onnx_candidate("distilled_booster", data, *b.cols, note, b.task, params)]
    native = native_candidate(student.pipeline)
    note = f"{student.note}; native ({skipped['distilled_booster']})"
    return [Candidate("distilled_booster", native.predictor, native.files, params, note)]


def build_trim(j: Judged) -> tuple[Candidate | None, str]:
    """The fewest boosting rounds, forest trees and vote members the test rows allow."""
    return trimmed_candidate(
        j.pipeline, j.X_test, j.y_test, j.classes, reference=j.reference, rule=j.rule,
        metric=j.metric, tolerance=j.tolerance, numeric=j.numeric, categorical=j.categorical,
    )  # fmt: skip


def build_candidates(
    pipeline: Any,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    *,
    numeric: list[str],
    categorical: list[str],
    options: CompressionOptions,
) -> tuple[list[Candidate], dict[str, str]]:
    """All candidates that apply to ``pipeline`` (the native model first, then each technique's
    in the table's order; what applies comes from :data:`honing.techniques.TECHNIQUES`), and
    why the others were skipped. Judged techniques are built later (:func:`judged`)."""
    mlp = torch_mlp(pipeline)
    classifier = is_classifier(pipeline)
    wanted, skipped = applicable(options.techniques, classifier=classifier, mlp=mlp is not None)
    b = Build(
        pipeline, X_train, y_train, numeric, categorical, options, wanted, skipped,
        mlp=mlp if classifier else None,
    )  # fmt: skip
    candidates = [native_candidate(pipeline)]
    if b.mlp is not None:
        fp32 = torch_candidate("fp32", b.preprocessor, b.layers, "dense export, PyTorch")
        candidates.append(fp32)
    for name, technique in TECHNIQUES.items():
        if name in wanted and not technique.judged:
            candidates += builder(technique)(b)
    return candidates, b.skipped


def judged(techniques: tuple[str, ...], j: Judged) -> tuple[list[Candidate], dict[str, str]]:
    """The judged techniques among ``techniques``: their candidates, and why the others have
    none."""
    made, skipped = [], {}
    for name, technique in TECHNIQUES.items():
        if name in techniques and technique.judged:
            candidate, why = builder(technique)(j)
            if candidate is None:
                skipped[name] = why
            else:
                made.append(candidate)
    return made, skipped
