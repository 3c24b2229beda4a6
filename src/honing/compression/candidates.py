"""Compression candidates and the pieces their builders (:mod:`honing.compression.builders`)
share: the candidate kinds (native, ONNX, dense network), one try-convert-or-skip step, a
student's distillation. Each candidate is a deployable artifact (files) plus a predictor
loaded *from those files*, so what is measured is what is served."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from honing.compression.members import final_step, vote_members
from honing.compression.onnx import (
    mlp_onnx_bytes,
)
from honing.compression.predictors import OnnxPredictor, load_served
from honing.models.artifacts import MANIFEST, npz_bytes, skops_bytes
from honing.models.dense import (
    DenseLayers,
    dense_arrays,
    export_dense,
    new_dense,
    quantize_int8,
    train_dense,
)
from honing.models.tree_graphs import FOREST_NAMES
from honing.techniques import TECHNIQUES


@dataclass
class Candidate:
    name: str
    predictor: Any
    files: dict[str, bytes]
    n_parameters: int | None = None
    note: str = ""
    servable: bool = True

    @property
    def size_bytes(self) -> int:
        return int(sum(len(v) for v in self.files.values()))


@dataclass(frozen=True)
class CompressionOptions:
    techniques: tuple[str, ...] = tuple(TECHNIQUES)
    prune_amount: float = 0.5
    fine_tune_epochs: int = 5
    student_hidden_layers: int = 1
    student_width: int = 16
    student_epochs: int = 30
    student_learning_rate: float = 3e-3
    temperature: float = 2.0
    alpha: float = 0.7
    seed: int = 0
    #: ``time.time()`` past which training steps stop (a student's distillation, fine-tuning):
    #: a student of 41,000 rows took 8 minutes on a loaded machine, a 300 s run's compression.
    deadline: float | None = None


def options_from_config(
    cfg: Any, *, seed: int, deadline: float | None = None
) -> CompressionOptions:
    """:class:`CompressionOptions` from a :class:`honing.config.CompressionConfig` (and the
    ``deadline`` of its training steps)."""
    return CompressionOptions(
        techniques=tuple(cfg.techniques),
        prune_amount=cfg.prune_amount,
        fine_tune_epochs=cfg.fine_tune_epochs,
        student_hidden_layers=cfg.distill.hidden_layers,
        student_width=cfg.distill.width,
        student_epochs=cfg.distill.epochs,
        student_learning_rate=cfg.distill.learning_rate,
        temperature=cfg.distill.temperature,
        alpha=cfg.distill.alpha,
        seed=seed,
        deadline=deadline,
    )


def feature_steps(pipeline: Any) -> Any:
    """The fitted steps before the estimator (encoding, selection, PCA) as one transformer;
    for an ensemble, those of its first member. Students and exports start from these."""
    from sklearn.pipeline import Pipeline

    members = vote_members(pipeline)
    if members:
        pipeline = members[0]
    return Pipeline(pipeline.steps[:-1])


def torch_mlp(pipeline: Any) -> Any | None:
    """The PyTorch MLP at the end of ``pipeline``, or None."""
    from honing.models.nn import TorchMLPBase

    model = final_step(pipeline)
    return model if isinstance(model, TorchMLPBase) else None


def native_candidate(pipeline: Any) -> Candidate:
    """The pipeline as registered: skops bytes (the PyTorch MLP included: it stores its
    network as arrays)."""
    mlp = torch_mlp(pipeline)
    data = skops_bytes(pipeline)
    files = {MANIFEST: json.dumps({"format": "pipeline"}).encode(), "pipeline.skops": data}
    params = n_parameters(pipeline) if mlp is None else mlp.n_parameters()
    return Candidate("native", pipeline, files, params)


def n_parameters(model: Any) -> int | None:
    """Coefficients, or tree nodes, of a fitted model (summed over ensemble members);
    None when it has neither."""
    if hasattr(model, "steps"):
        return n_parameters(model.steps[-1][1])
    if hasattr(model, "coef_"):
        return int(np.asarray(model.coef_).size + np.asarray(model.intercept_).size)
    if hasattr(model, "tree_"):
        return int(model.tree_.node_count)
    if hasattr(model, "booster_"):  # LightGBM: nodes of each tree, read from its model text
        text = model.booster_.model_to_string()  # (its JSON dump is ~8x slower to build)
        return int(sum(2 * int(n) - 1 for n in re.findall(r"^num_leaves=(\d+)$", text, re.M)))
    if hasattr(model, "tree_count_"):  # CatBoost: symmetric trees of one depth
        depth = int(model.get_all_params().get("depth", 6))
        return int(model.tree_count_) * (2 ** (depth + 1) - 1)
    if hasattr(model, "get_booster"):  # XGBoost: one dump line per node
        return int(sum(d.count("\n") for d in model.get_booster().get_dump()))
    if hasattr(model, "_predictors"):  # HistGradientBoosting: its predictors' node arrays
        return int(sum(len(p.nodes) for trees in model._predictors for p in trees))
    counts = [c for c in (n_parameters(m) for m in _fitted_members(model)) if c is not None]
    return int(sum(counts)) if counts else None


def _fitted_members(model: Any) -> list[Any]:
    """A forest's trees, or a vote's or stack's members (``estimators_``, flattened: a
    gradient-boosted forest keeps one list of trees per class)."""
    members: list[Any] = []
    for e in getattr(model, "estimators_", []) or []:
        members.extend(e if isinstance(e, list | np.ndarray) else [e])
    return members


#: Seconds a fitted model's ONNX export takes beyond the compression stage's fixed part (the
#: converters' first use, parity, latency: ``planner.COMPRESSION_MIN_S``), per kind of
#: estimator, from ``bench/export_cost.py`` (2 cores, one kept busy; each model in a fresh
#: process). LightGBM's graph and scikit-learn's forests are written from the model's arrays
#: (:mod:`honing.models.tree_graphs`); what is left of their stage is onnxruntime's session and the
#: native model's own measurement, per tree and per node (LightGBM: 100-3,300 trees, 1.2-4.3 s
#: in all; forests: 179,000-789,000 nodes, 2.1-4.8 s in all). CatBoost's dense graph
#: (:mod:`honing.models.catboost_graph`) costs about the fixed part at any size (38,000-63,500
#: nodes: 1.4-1.7 s in all). XGBoost (onnxmltools' converter, node by node), scikit-learn's
#: other trees and coefficients cost 14 microseconds a node. The planner's busy-machine
#: factor comes on top (``planner.slowdown``).
LIGHTGBM_TREE_S = 6e-4
LIGHTGBM_NODE_S = 8e-6
FOREST_NODE_S = 6e-6
CATBOOST_NODE_S = 2e-6
NODE_S = 1.4e-5
#: Seconds per raw column of a pipeline's encoder that cutting the unread inputs costs
#: (:mod:`honing.compression.inputs`: each column's share of the encoder is measured, and
#: the cut checked on 256 rows): 0.5 s for a vote of four pipelines on 85 columns, 0.2 s for
#: one CatBoost pipeline on 57, with the test suite running beside it.
CUT_COLUMN_S = 2e-3


def export_seconds(model: Any) -> float:
    """What the ONNX export of ``model`` (a pipeline, a vote or stack of them, a forest) takes
    beyond the stage's fixed part, summed over its members (:data:`LIGHTGBM_TREE_S` and
    :data:`LIGHTGBM_NODE_S`, :data:`FOREST_NODE_S`, :data:`CATBOOST_NODE_S`,
    :data:`NODE_S`), and the cut of its unread inputs (:data:`CUT_COLUMN_S` per column of
    each pipeline's encoder): the planner's estimate before compression."""
    if hasattr(model, "steps"):
        encoder = model.steps[0][1] if len(model.steps) > 1 else None
        cut = CUT_COLUMN_S * int(getattr(encoder, "n_features_in_", 0) or 0)
        return cut + export_seconds(model.steps[-1][1])
    if hasattr(model, "booster_"):  # LightGBM: the trees it saves (to its best round)
        booster = model.booster_
        rounds = booster.best_iteration or booster.current_iteration()
        trees = rounds * booster.num_model_per_iteration()
        return LIGHTGBM_TREE_S * trees + LIGHTGBM_NODE_S * (n_parameters(model) or 0)
    if hasattr(model, "tree_count_"):
        return CATBOOST_NODE_S * (n_parameters(model) or 0)
    if type(model).__name__ in FOREST_NAMES or hasattr(model, "_predictors"):
        return FOREST_NODE_S * (n_parameters(model) or 0)  # both written from node arrays
    if hasattr(model, "get_booster") or hasattr(model, "tree_") or hasattr(model, "coef_"):
        return NODE_S * (n_parameters(model) or 0)
    final = getattr(model, "final_estimator_", None)
    members = [*_fitted_members(model), *([final] if final else [])]
    return float(sum(export_seconds(m) for m in members))


def torch_candidate(
    name: str, preprocessor: Any, layers: DenseLayers, note: str = "", *, int8: bool = False
) -> Candidate:
    """Preprocessor (skops) + network arrays (npz: float32, or int8 weights with their
    scales), served by PyTorch."""
    files = {
        MANIFEST: json.dumps(
            {
                "format": "dense_int8" if int8 else "dense",
                "activation": layers.activation,
                "widths": layers.widths,
            }
        ).encode(),
        "preprocessor.skops": skops_bytes(preprocessor),
        "network.npz": npz_bytes(quantize_int8(layers) if int8 else dense_arrays(layers)),
    }
    return Candidate(name, load_served(files), files, layers.n_parameters, note)


def dense_candidate(
    name: str,
    preprocessor: Any,
    layers: DenseLayers,
    numeric: list[str],
    categorical: list[str],
    note: str = "",
) -> Candidate:
    """A dense network served as one ONNX graph with its features (PyTorch when the feature
    pipeline has no ONNX converter)."""
    try:
        data = mlp_onnx_bytes(preprocessor, layers, numeric, categorical)
    except Exception as exc:  # noqa: BLE001 - fall back to the PyTorch artifact
        return torch_candidate(
            name, preprocessor, layers, f"{note}; PyTorch (no ONNX: {type(exc).__name__})"
        )
    note = f"{note}; ONNX"
    return onnx_candidate(
        name, data, numeric, categorical, note, "classification", layers.n_parameters
    )


def onnx_candidate(
    name: str,
    data: bytes,
    numeric: list[str],
    cat: list[str],
    note: str,
    task: str,
    n_parameters: int | None = None,
) -> Candidate:
    """A graph served by onnxruntime. Its manifest lists the columns the graph reads (fewer
    than ``numeric`` and ``cat`` when its inputs were cut), and ``note`` says which it drops."""
    predictor = OnnxPredictor(data, numeric, cat, regression=task == "regression")
    if predictor.dropped:
        kept = len(predictor.columns)
        note = f"{note}; reads {kept} of {kept + len(predictor.dropped)} columns"
    manifest = {
        "format": "onnx",
        "numeric": predictor.numeric,
        "categorical": predictor.categorical,
        "task": task,
    }
    files = {MANIFEST: json.dumps(manifest).encode(), "model.onnx": data}
    return Candidate(name, predictor, files, n_parameters, note)


def distill(
    teacher: Any,
    preprocessor: Any,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    *,
    widths: list[int],
    activation: str = "relu",
    epochs: int,
    temperature: float,
    alpha: float,
    seed: int,
    learning_rate: float = 3e-3,
    deadline: float | None = None,
) -> DenseLayers:
    """A student MLP on the teacher's features, trained on the teacher's soft labels (and the
    hard labels, weighted ``1 - alpha``), for ``epochs`` or until ``deadline``."""
    Z = np.asarray(preprocessor.transform(X_train), dtype=np.float32)
    soft = np.asarray(teacher.predict_proba(X_train), dtype=np.float32)
    student = new_dense(Z.shape[1], widths, soft.shape[1], activation, seed)
    train_dense(
        student,
        Z,
        y_train,
        epochs=epochs,
        learning_rate=learning_rate,
        seed=seed,
        soft_targets=soft,
        temperature=temperature,
        alpha=alpha,
        deadline=deadline,
    )
    return export_dense(student, activation)


def onnx_or_skip(
    convert: Any, names: list[str], skipped: dict[str, str], what: str
) -> bytes | None:
    """The one try-convert-or-skip step: the ONNX bytes, or None with the reason recorded
    for each of ``names`` (a converter gap is reported, not fatal)."""
    if not names:
        return None
    try:
        return bytes(convert())
    except Exception as exc:  # noqa: BLE001 - a converter gap is reported, not fatal
        for name in names:
            skipped[name] = f"skl2onnx cannot convert {what}: {type(exc).__name__}"
        return None


CALIBRATION_ROWS = 512  # training rows that calibrate static int8's activation ranges
CALIBRATION_BATCH = 128


def calibration_feeds(
    data: bytes, cols: tuple[list[str], list[str]], X: pd.DataFrame, seed: int
) -> list[dict[str, np.ndarray]]:
    """Batches of training rows as the graph's inputs (fed exactly as serving feeds them)."""
    rows = X.sample(n=min(len(X), CALIBRATION_ROWS), random_state=seed)
    feeder = OnnxPredictor(data, *cols)
    return [
        feeder.feed(rows.iloc[i : i + CALIBRATION_BATCH])
        for i in range(0, len(rows), CALIBRATION_BATCH)
    ]
