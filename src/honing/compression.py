"""Compression: smaller and faster candidates of a trained pipeline, measured on one test set.

From the refit pipeline (features + model) this module builds candidates, each a deployable
artifact (files) plus an in-memory predictor loaded *from those files*:

* ``native``: the pipeline as registered (skops, or cloudpickle for the PyTorch MLP);
* ``onnx``: a scikit-learn pipeline converted with skl2onnx and run by onnxruntime;
* ``onnx_int8``: onnxruntime's dynamic int8 quantization of that graph, where it applies
  (graphs with MatMul/Gemm nodes; tree ensembles and linear classifiers use ``ai.onnx.ml``
  operators it does not touch);
* for the PyTorch MLP: ``fp32`` (the dense network exported, batch norm folded), global
  ``pruned_unstructured`` magnitude pruning and ``pruned_structured`` pruning that removes
  hidden neurons, both fine-tuned, and ``int8`` dynamic quantization of the Linear layers;
* ``distilled``: a small MLP student trained on the soft labels of the model (any family).

:func:`measure` scores every candidate the same way (metric, serialized size, single-row p50/p99
latency at one thread, batch throughput) into a :class:`CompressionReport`; the pure :func:`pick`
then chooses the deployable one. Artifacts are numpy ``.npz`` arrays, skops files, ONNX graphs
and JSON: loading a served model never unpickles arbitrary objects.
"""

from __future__ import annotations

import copy
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from honing.evaluation import evaluate
from honing.exceptions import HoningError
from honing.metrics import lower_is_better

TECHNIQUES = ("onnx", "onnx_int8", "prune_unstructured", "prune_structured", "int8", "distill")
MANIFEST = "manifest.json"


class CompressionError(HoningError):
    """No candidate is deployable, or a served artifact is malformed."""


# -- dense networks: export, rebuild, train --------------------------------------------------


@dataclass
class DenseLayers:
    """A feed-forward network as plain arrays: ``weights[i]`` is (out, in), activation between
    layers. Dropout is gone (inference) and batch norm is folded into the preceding layer."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: str

    @property
    def n_parameters(self) -> int:
        return int(sum(w.size + b.size for w, b in zip(self.weights, self.biases, strict=True)))

    @property
    def widths(self) -> list[int]:
        return [int(w.shape[0]) for w in self.weights[:-1]]


def export_dense(net: Any, activation: str) -> DenseLayers:
    """``DenseLayers`` of a ``TorchMLPClassifier.model_`` (Linear [BatchNorm] act Dropout ...)."""
    import torch.nn as tnn

    weights: list[np.ndarray] = []
    biases: list[np.ndarray] = []
    for module in net:
        if isinstance(module, tnn.Linear):
            weights.append(module.weight.detach().numpy().astype(np.float32).copy())
            biases.append(module.bias.detach().numpy().astype(np.float32).copy())
        elif isinstance(module, tnn.BatchNorm1d):
            scale = (
                module.weight.detach().numpy() / np.sqrt(module.running_var.numpy() + module.eps)
            ).astype(np.float32)
            weights[-1] = weights[-1] * scale[:, None]
            biases[-1] = (
                biases[-1] - module.running_mean.numpy()
            ) * scale + module.bias.detach().numpy()
            biases[-1] = biases[-1].astype(np.float32)
    return DenseLayers(weights, biases, activation)


def build_module(layers: DenseLayers) -> Any:
    """A float ``torch.nn.Sequential`` holding ``layers``."""
    import torch
    import torch.nn as tnn

    act = {"relu": tnn.ReLU, "tanh": tnn.Tanh, "gelu": tnn.GELU}[layers.activation]
    modules: list[Any] = []
    for i, (w, b) in enumerate(zip(layers.weights, layers.biases, strict=True)):
        linear = tnn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
        modules.append(linear)
        if i < len(layers.weights) - 1:
            modules.append(act())
    return tnn.Sequential(*modules).eval()


def new_dense(n_in: int, widths: list[int], n_out: int, activation: str, seed: int) -> Any:
    """A freshly initialised float network (used for students)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sizes = [n_in, *widths, n_out]
    weights = [
        (rng.standard_normal((o, i)) * math.sqrt(2.0 / i)).astype(np.float32)
        for i, o in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    biases = [np.zeros(o, dtype=np.float32) for o in sizes[1:]]
    return build_module(DenseLayers(weights, biases, activation))


def train_dense(
    module: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    learning_rate: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    soft_targets: np.ndarray | None = None,
    temperature: float = 1.0,
    alpha: float = 1.0,
) -> Any:
    """Train ``module`` in place with Adam on cross-entropy; with ``soft_targets`` the loss is
    ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels)`` (distillation).
    Pruning masks registered with ``torch.nn.utils.prune`` stay applied while training."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    teacher = None
    if soft_targets is not None:
        logits = np.log(np.clip(soft_targets, 1e-7, 1.0)) / temperature
        teacher = torch.softmax(torch.from_numpy(logits.astype(np.float32)), dim=1)
    opt = torch.optim.Adam(module.parameters(), lr=learning_rate)
    module.train()
    for _ in range(int(epochs)):
        order = torch.randperm(len(Xt), generator=gen)
        for start in range(0, len(Xt), batch_size):
            idx = order[start : start + batch_size]
            out = module(Xt[idx])
            loss = F.cross_entropy(out, yt[idx])
            if teacher is not None:
                soft = F.kl_div(
                    F.log_softmax(out / temperature, dim=1), teacher[idx], reduction="batchmean"
                )
                loss = alpha * temperature**2 * soft + (1.0 - alpha) * loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    return module.eval()


def prune_unstructured(layers: DenseLayers, amount: float) -> tuple[Any, list[Any]]:
    """Global magnitude pruning of every layer's weights; returns the module (masks attached,
    so fine-tuning keeps pruned weights at zero) and the pruned Linear layers."""
    import torch.nn as tnn
    import torch.nn.utils.prune as prune

    module = build_module(layers)
    linears = [m for m in module if isinstance(m, tnn.Linear)]
    prune.global_unstructured(
        [(m, "weight") for m in linears], pruning_method=prune.L1Unstructured, amount=amount
    )
    return module, linears


def remove_masks(linears: list[Any]) -> None:
    import torch.nn.utils.prune as prune

    for m in linears:
        prune.remove(m, "weight")


def prune_structured(layers: DenseLayers, amount: float) -> DenseLayers:
    """Remove ``amount`` of each hidden layer's neurons, those with the smallest L2 norm of
    incoming weights; the next layer loses the matching input columns. The result is a
    genuinely smaller dense network."""
    weights = [w.copy() for w in layers.weights]
    biases = [b.copy() for b in layers.biases]
    for i in range(len(weights) - 1):
        n = weights[i].shape[0]
        keep_n = max(1, int(round(n * (1.0 - amount))))
        norms = np.linalg.norm(weights[i], axis=1)
        keep = np.sort(np.argsort(-norms)[:keep_n])
        weights[i] = weights[i][keep]
        biases[i] = biases[i][keep]
        weights[i + 1] = weights[i + 1][:, keep]
    return DenseLayers(weights, biases, layers.activation)


def quantize_int8(layers: DenseLayers) -> dict[str, np.ndarray]:
    """Per-tensor symmetric int8 weights (as ``torch.ao`` dynamic quantization uses), with
    their scales; biases stay float32."""
    out: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(zip(layers.weights, layers.biases, strict=True)):
        scale = float(np.abs(w).max()) / 127.0 or 1.0
        out[f"w{i}"] = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        out[f"s{i}"] = np.array([scale], dtype=np.float32)
        out[f"b{i}"] = b.astype(np.float32)
    return out


def quantized_module(arrays: dict[str, np.ndarray], activation: str) -> Any:
    """The int8 network for serving: ``torch.ao`` dynamic quantization of Linear layers whose
    weights are exactly the stored int8 values."""
    import torch

    n = len([k for k in arrays if k.startswith("w")])
    layers = DenseLayers(
        [arrays[f"w{i}"].astype(np.float32) * arrays[f"s{i}"][0] for i in range(n)],
        [arrays[f"b{i}"] for i in range(n)],
        activation,
    )
    return torch.ao.quantization.quantize_dynamic(
        build_module(layers), {torch.nn.Linear}, dtype=torch.qint8
    )


# -- artifacts -------------------------------------------------------------------------------


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _dense_arrays(layers: DenseLayers) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(zip(layers.weights, layers.biases, strict=True)):
        out[f"w{i}"], out[f"b{i}"] = w, b
    return out


def _skops_bytes(obj: Any) -> bytes:
    import skops.io as sio

    return sio.dumps(obj)


def _trusted(data: bytes) -> list[str]:
    import skops.io as sio

    from honing.tracking import SKOPS_TRUSTED_TYPES

    unknown = sio.get_untrusted_types(data=data)
    bad = [t for t in unknown if t not in SKOPS_TRUSTED_TYPES]
    if bad:
        raise CompressionError(f"served artifact holds untrusted types {bad}; refusing to load")
    return unknown


def _load_skops(data: bytes) -> Any:
    import skops.io as sio

    return sio.loads(data, trusted=_trusted(data))


class TorchPredictor:
    """Preprocessor (scikit-learn) + dense torch network; ``predict`` gives class indices."""

    def __init__(self, preprocessor: Any, module: Any) -> None:
        self.preprocessor = preprocessor
        self.module = module

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        import torch

        Z = np.asarray(self.preprocessor.transform(X), dtype=np.float32)
        with torch.inference_mode():
            return torch.softmax(self.module(torch.from_numpy(Z)), dim=1).numpy()

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)


class OnnxPredictor:
    """An onnxruntime session (one thread) fed from a DataFrame, column by column."""

    def __init__(
        self,
        model_bytes: bytes,
        numeric: list[str],
        categorical: list[str],
        regression: bool = False,
    ) -> None:
        import onnxruntime as ort

        self.regression = regression
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
        self.numeric, self.categorical = numeric, categorical
        self.outputs = [o.name for o in self.session.get_outputs()]

    def _feed(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        feed: dict[str, np.ndarray] = {}
        if self.numeric:
            num = X[self.numeric].to_numpy(dtype=np.float32)
            feed.update({c: num[:, i : i + 1] for i, c in enumerate(self.numeric)})
        if self.categorical:
            cat = X[self.categorical].to_numpy(dtype=object)
            cat[pd.isna(cat)] = ""
            cat = cat.astype(str)
            feed.update({c: cat[:, i : i + 1] for i, c in enumerate(self.categorical)})
        return feed

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        out = self.session.run(self.outputs[-1:], self._feed(X))[0]
        return np.asarray(out, dtype=np.float64)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.regression:  # skl2onnx regressors: one output, shape (n, 1)
            out = self.session.run(self.outputs[:1], self._feed(X))[0]
            return np.asarray(out, dtype=np.float64).reshape(-1)
        return np.argmax(self.predict_proba(X), axis=1)


def load_served(files: dict[str, bytes]) -> Any:
    """Rebuild a candidate's predictor from its artifact files (``manifest.json`` says how)."""
    try:
        manifest = json.loads(files[MANIFEST])
        kind = manifest["format"]
    except (KeyError, ValueError) as exc:
        raise CompressionError(f"served artifact has no valid {MANIFEST}: {exc}") from exc
    if kind == "onnx":
        return OnnxPredictor(
            files["model.onnx"],
            manifest["numeric"],
            manifest["categorical"],
            regression=manifest.get("task") == "regression",
        )
    if kind in ("dense", "dense_int8"):
        preprocessor = _load_skops(files["preprocessor.skops"])
        with np.load(io.BytesIO(files["network.npz"])) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if kind == "dense_int8":
            module = quantized_module(arrays, manifest["activation"])
        else:
            n = len([k for k in arrays if k.startswith("w")])
            module = build_module(
                DenseLayers(
                    [arrays[f"w{i}"] for i in range(n)],
                    [arrays[f"b{i}"] for i in range(n)],
                    manifest["activation"],
                )
            )
        return TorchPredictor(preprocessor, module)
    if kind == "pipeline":
        return _load_skops(files["pipeline.skops"])
    raise CompressionError(f"served artifact format {kind!r} is not one honing serves")


def read_served(folder: Path) -> dict[str, bytes]:
    folder = Path(folder)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def write_served(files: dict[str, bytes], folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


# -- candidates ------------------------------------------------------------------------------


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
    techniques: tuple[str, ...] = TECHNIQUES
    prune_amount: float = 0.5
    fine_tune_epochs: int = 5
    student_hidden_layers: int = 1
    student_width: int = 16
    student_epochs: int = 30
    student_learning_rate: float = 3e-3
    temperature: float = 2.0
    alpha: float = 0.7
    seed: int = 0


def options_from_config(cfg: Any, *, seed: int) -> CompressionOptions:
    """:class:`CompressionOptions` from a :class:`honing.config.CompressionConfig`."""
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
    )


def feature_steps(pipeline: Any) -> Any:
    """The fitted steps before the estimator (encoding, selection, PCA) as one transformer;
    for an ensemble, those of its first member. Students and exports start from these."""
    from sklearn.pipeline import Pipeline

    model = pipeline.steps[-1][1]
    members = getattr(model, "estimators_", None)
    if type(model).__name__ in ("VotingClassifier", "StackingClassifier") and members:
        pipeline = members[0]
    return Pipeline(pipeline.steps[:-1])


def _torch_mlp(pipeline: Any) -> Any | None:
    from honing.nn import _TorchMLP

    model = pipeline.steps[-1][1]
    return model if isinstance(model, _TorchMLP) else None


def native_candidate(pipeline: Any) -> Candidate:
    """The pipeline as registered: skops bytes for scikit-learn, cloudpickle for the MLP."""
    mlp = _torch_mlp(pipeline)
    if mlp is None:
        data = _skops_bytes(pipeline)
        files = {MANIFEST: json.dumps({"format": "pipeline"}).encode(), "pipeline.skops": data}
        return Candidate("native", pipeline, files, n_parameters(pipeline))
    import cloudpickle

    files = {"model.pkl": cloudpickle.dumps(pipeline)}
    return Candidate(
        "native",
        pipeline,
        files,
        mlp.n_parameters(),
        note="cloudpickle (MLflow's format for the MLP pipeline)",
        servable=False,
    )


def n_parameters(model: Any) -> int | None:
    """Coefficients, or tree nodes, of a fitted model (summed over ensemble members);
    None when it has neither."""
    if hasattr(model, "steps"):
        return n_parameters(model.steps[-1][1])
    if hasattr(model, "coef_"):
        return int(np.asarray(model.coef_).size + np.asarray(model.intercept_).size)
    if hasattr(model, "tree_"):
        return int(model.tree_.node_count)
    if hasattr(model, "booster_"):  # LightGBM: nodes of each tree
        return int(sum(2 * t["num_leaves"] - 1 for t in model.booster_.dump_model()["tree_info"]))
    if hasattr(model, "get_booster"):  # XGBoost: one dump line per node
        return int(sum(d.count("\n") for d in model.get_booster().get_dump()))
    members: list[Any] = []
    for e in getattr(model, "estimators_", []) or []:
        members.extend(e if isinstance(e, list | np.ndarray) else [e])
    counts = [c for c in (n_parameters(m) for m in members) if c is not None]
    return int(sum(counts)) if counts else None


def _torch_candidate(
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
        "preprocessor.skops": _skops_bytes(preprocessor),
        "network.npz": _npz(quantize_int8(layers) if int8 else _dense_arrays(layers)),
    }
    return Candidate(name, load_served(files), files, layers.n_parameters, note)


def _dense_candidate(
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
        return _torch_candidate(
            name, preprocessor, layers, f"{note}; PyTorch (no ONNX: {type(exc).__name__})"
        )
    return _onnx_candidate(
        name, data, numeric, categorical, f"{note}; ONNX", n_parameters=layers.n_parameters
    )


ONNX_OPSET = 17


def _onnx_ready(estimator: Any) -> Any:
    """A copy whose categorical imputers mark missing values with "" (skl2onnx imputes strings
    only with a string marker; :class:`OnnxPredictor` feeds missing categories as ""). The
    feature steps are copied, a final predictor is shared (the ONNX export only reads it)."""
    if hasattr(estimator, "steps") and hasattr(estimator.steps[-1][1], "predict"):
        from sklearn.pipeline import Pipeline

        export = Pipeline([*copy.deepcopy(estimator.steps[:-1]), estimator.steps[-1]])
    else:
        export = copy.deepcopy(estimator)
    transformer = export.steps[0][1] if hasattr(export, "steps") else export
    for name, step, _ in transformer.transformers_:
        if name in ("categorical", "high_cardinality"):
            step.steps[0][1].missing_values = ""
    return export


def register_boosting_converters() -> None:
    """Teach skl2onnx the LightGBM and XGBoost estimators (onnxmltools' converters)."""
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from xgboost import XGBClassifier, XGBRegressor

    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for model, alias, converter, shapes, opts in (
        (LGBMClassifier, "LightGbmLGBMClassifier", convert_lightgbm,
         calculate_linear_classifier_output_shapes, options),
        (LGBMRegressor, "LightGbmLGBMRegressor", convert_lightgbm,
         calculate_linear_regressor_output_shapes, None),
        (XGBClassifier, "XGBoostXGBClassifier", convert_xgboost,
         calculate_linear_classifier_output_shapes, options),
        (XGBRegressor, "XGBoostXGBRegressor", convert_xgboost,
         calculate_linear_regressor_output_shapes, None),
    ):  # fmt: skip
        update_registered_converter(model, alias, shapes, converter, options=opts)


def _onnx_inputs(numeric: list[str], categorical: list[str]) -> list[Any]:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    inputs = [(c, FloatTensorType([None, 1])) for c in numeric]
    return inputs + [(c, StringTensorType([None, 1])) for c in categorical]


def onnx_bytes(pipeline: Any, numeric: list[str], categorical: list[str]) -> bytes:
    """The fitted scikit-learn pipeline as one ONNX graph (numeric inputs float32, categorical
    strings; missing categories are fed as the empty string)."""
    from skl2onnx import convert_sklearn

    register_boosting_converters()
    export = _onnx_ready(pipeline)
    model = export.steps[-1][1]
    onx = convert_sklearn(
        export,
        initial_types=_onnx_inputs(numeric, categorical),
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": 3},
        options={id(model): {"zipmap": False}} if is_classifier(model) else None,
    )
    return onx.SerializeToString()


def mlp_onnx_bytes(
    preprocessor: Any, layers: DenseLayers, numeric: list[str], categorical: list[str]
) -> bytes:
    """The feature pipeline (skl2onnx) followed by the dense network as MatMul/Add/activation
    nodes and a Softmax: one graph, so onnxruntime serves the whole MLP pipeline and its
    dynamic int8 quantization applies to the MatMuls."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import convert_sklearn

    onx = convert_sklearn(
        _onnx_ready(preprocessor),
        initial_types=_onnx_inputs(numeric, categorical),
        target_opset=ONNX_OPSET,
    )
    graph = onx.graph
    x = graph.output[0].name
    if graph.output[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        graph.node.append(helper.make_node("Cast", [x], ["features_f32"], to=TensorProto.FLOAT))
        x = "features_f32"
    last = len(layers.weights) - 1
    for i, (w, b) in enumerate(zip(layers.weights, layers.biases, strict=True)):
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w.T), f"W{i}"))
        graph.initializer.append(numpy_helper.from_array(b, f"B{i}"))
        graph.node.append(helper.make_node("MatMul", [x, f"W{i}"], [f"mm{i}"]))
        graph.node.append(helper.make_node("Add", [f"mm{i}", f"B{i}"], [f"z{i}"]))
        x = f"z{i}"
        if i < last:
            if layers.activation == "relu":
                graph.node.append(helper.make_node("Relu", [x], [f"a{i}"]))
            elif layers.activation == "tanh":
                graph.node.append(helper.make_node("Tanh", [x], [f"a{i}"]))
            else:  # exact GELU: 0.5 * x * (1 + erf(x / sqrt(2)))
                for name, value in (("c_half", 0.5), ("c_one", 1.0), ("c_sqrt2", math.sqrt(2))):
                    if not any(t.name == name for t in graph.initializer):
                        graph.initializer.append(
                            numpy_helper.from_array(np.array(value, dtype=np.float32), name)
                        )
                graph.node.extend(
                    [
                        helper.make_node("Div", [x, "c_sqrt2"], [f"g{i}_d"]),
                        helper.make_node("Erf", [f"g{i}_d"], [f"g{i}_e"]),
                        helper.make_node("Add", [f"g{i}_e", "c_one"], [f"g{i}_p"]),
                        helper.make_node("Mul", [x, f"g{i}_p"], [f"g{i}_m"]),
                        helper.make_node("Mul", [f"g{i}_m", "c_half"], [f"a{i}"]),
                    ]
                )
            x = f"a{i}"
    graph.node.append(helper.make_node("Softmax", [x], ["probabilities"], axis=1))
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(
            "probabilities", TensorProto.FLOAT, [None, len(layers.biases[-1])]
        )
    )
    onnx.checker.check_model(onx)
    return onx.SerializeToString()


def _onnx_candidate(
    name: str,
    data: bytes,
    numeric: list[str],
    cat: list[str],
    note: str,
    task: str = "classification",
    n_parameters: int | None = None,
) -> Candidate:
    manifest = {"format": "onnx", "numeric": numeric, "categorical": cat, "task": task}
    files = {
        MANIFEST: json.dumps(manifest).encode(),
        "model.onnx": data,
    }
    return Candidate(name, load_served(files), files, n_parameters, note)


def ort_quantize(model_bytes: bytes) -> bytes | None:
    """onnxruntime dynamic int8 quantization; None when the graph has nothing it quantizes."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        src.write_bytes(model_bytes)
        quantize_dynamic(
            src,
            dst,
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        out = dst.read_bytes()
    ops = {n.op_type for n in onnx.load_from_string(out).graph.node}
    return out if ops & {"MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul"} else None


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
) -> DenseLayers:
    """A student MLP on the teacher's features, trained on the teacher's soft labels (and the
    hard labels, weighted ``1 - alpha``)."""
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
    )
    return export_dense(student, activation)


def build_candidates(
    pipeline: Any,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    *,
    numeric: list[str],
    categorical: list[str],
    options: CompressionOptions,
) -> tuple[list[Candidate], dict[str, str]]:
    """All candidates that apply to ``pipeline``, and why the others were skipped.

    Regression models get ``native`` and ``onnx``; pruning, int8 and distillation are built
    for classifiers (their losses and outputs are class probabilities)."""
    candidates = [native_candidate(pipeline)]
    skipped: dict[str, str] = {}
    techniques = set(options.techniques)
    if not is_classifier(pipeline):
        for name in ("onnx_int8", "prune_unstructured", "prune_structured", "int8", "distill"):
            if name in techniques:
                skipped[name] = "classification only"
        if "onnx" in techniques:
            try:
                data = onnx_bytes(pipeline, numeric, categorical)
            except Exception as exc:  # noqa: BLE001 - a converter gap is reported, not fatal
                skipped["onnx"] = f"skl2onnx cannot convert this pipeline: {type(exc).__name__}"
            else:
                candidates.append(
                    _onnx_candidate("onnx", data, numeric, categorical, "skl2onnx", "regression")
                )
        return candidates, skipped
    preprocessor = feature_steps(pipeline)
    mlp = _torch_mlp(pipeline)
    if mlp is None:
        for name in ("prune_unstructured", "prune_structured", "int8"):
            if name in techniques:
                skipped[name] = "applies to the PyTorch MLP only"
        if "onnx" in techniques or "onnx_int8" in techniques:
            try:
                data = onnx_bytes(pipeline, numeric, categorical)
            except Exception as exc:  # noqa: BLE001 - a converter gap is reported, not fatal
                reason = f"skl2onnx cannot convert this pipeline: {type(exc).__name__}"
                skipped["onnx"] = skipped["onnx_int8"] = reason
            else:
                if "onnx" in techniques:
                    candidates.append(
                        _onnx_candidate("onnx", data, numeric, categorical, "skl2onnx")
                    )
                if "onnx_int8" in techniques:
                    quantized = ort_quantize(data)
                    if quantized is None:
                        skipped["onnx_int8"] = (
                            "ORT dynamic quantization does not apply: the graph has no "
                            "MatMul/Gemm nodes (ai.onnx.ml tree or linear operators)"
                        )
                    else:
                        candidates.append(
                            _onnx_candidate(
                                "onnx_int8", quantized, numeric, categorical, "ORT dynamic int8"
                            )
                        )
    else:
        layers = export_dense(mlp.model_, mlp.activation)
        candidates.append(_torch_candidate("fp32", preprocessor, layers, "dense export, PyTorch"))
        if "onnx" in techniques or "onnx_int8" in techniques:
            try:
                data = mlp_onnx_bytes(preprocessor, layers, numeric, categorical)
            except Exception as exc:  # noqa: BLE001 - a converter gap is reported, not fatal
                reason = f"skl2onnx cannot convert the feature pipeline: {type(exc).__name__}"
                skipped["onnx"] = skipped["onnx_int8"] = reason
            else:
                if "onnx" in techniques:
                    candidates.append(
                        _onnx_candidate(
                            "onnx",
                            data,
                            numeric,
                            categorical,
                            "skl2onnx + MatMul",
                            n_parameters=layers.n_parameters,
                        )
                    )
                if "onnx_int8" in techniques:
                    quantized = ort_quantize(data)
                    assert quantized is not None  # the network's MatMuls always quantize
                    candidates.append(
                        _onnx_candidate(
                            "onnx_int8",
                            quantized,
                            numeric,
                            categorical,
                            "ORT dynamic int8",
                            n_parameters=layers.n_parameters,
                        )
                    )
        Z = np.asarray(preprocessor.transform(X_train), dtype=np.float32)
        y_idx = np.searchsorted(mlp.classes_, y_train)
        if "prune_unstructured" in techniques:
            module, linears = prune_unstructured(layers, options.prune_amount)
            train_dense(module, Z, y_idx, epochs=options.fine_tune_epochs, seed=options.seed)
            remove_masks(linears)
            pruned = export_dense(module, layers.activation)
            zeros = int(sum((w == 0).sum() for w in pruned.weights))
            candidates.append(
                _dense_candidate(
                    "pruned_unstructured",
                    preprocessor,
                    pruned,
                    numeric,
                    categorical,
                    f"{zeros} zero weights; dense kernels, so no speed-up",
                )
            )
        if "prune_structured" in techniques:
            smaller = prune_structured(layers, options.prune_amount)
            module = build_module(smaller)
            train_dense(module, Z, y_idx, epochs=options.fine_tune_epochs, seed=options.seed)
            smaller = export_dense(module, layers.activation)
            candidates.append(
                _dense_candidate(
                    "pruned_structured",
                    preprocessor,
                    smaller,
                    numeric,
                    categorical,
                    f"hidden widths {smaller.widths}",
                )
            )
        if "int8" in techniques:
            candidates.append(
                _torch_candidate(
                    "int8", preprocessor, layers, "torch.ao dynamic int8 Linear", int8=True
                )
            )
    if "distill" in techniques:
        widths = [options.student_width] * options.student_hidden_layers
        student = distill(
            pipeline,
            preprocessor,
            X_train,
            np.searchsorted(np.unique(y_train), y_train),
            widths=widths,
            epochs=options.student_epochs,
            learning_rate=options.student_learning_rate,
            temperature=options.temperature,
            alpha=options.alpha,
            seed=options.seed,
        )
        candidates.append(
            _dense_candidate(
                "distilled", preprocessor, student, numeric, categorical, f"student {widths}"
            )
        )
    return candidates, skipped


# -- measure and pick ------------------------------------------------------------------------


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
        cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "candidate",
                self.metric,
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
            cols[self.metric].append(round(r.metrics[self.metric], 6))
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
    """p50 and p99 in milliseconds of ``predict`` on one-row frames, at one thread."""
    import torch

    threads = torch.get_num_threads()
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
        torch.set_num_threads(threads)
    ms = np.asarray(times) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def throughput(predict: Callable[[pd.DataFrame], Any], X: pd.DataFrame, repeats: int = 3) -> float:
    """Rows per second of batch prediction on all of ``X`` (best of ``repeats``)."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        predict(X)
        best = min(best, time.perf_counter() - start)
    return float(len(X) / best)


def measure(
    candidates: list[Candidate],
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    classes: list[Any],
    *,
    metric: str,
    latency_rows: int = 200,
    skipped: dict[str, str] | None = None,
) -> CompressionReport:
    """Every candidate on the same test rows: all evaluation metrics, serialized size,
    single-row p50/p99 latency at one thread and batch throughput."""
    report = CompressionReport(metric=metric, reference=candidates[0].name)
    report.skipped = dict(skipped or {})
    for cand in candidates:
        ev = evaluate(cand.predictor, X_test, y_test, classes)
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
    """The deployable candidate: among servable candidates whose metric is at most
    ``tolerance`` below the reference's, keep the Pareto front of (size, p50 latency). With
    ``prefer="latency"`` take the smallest of those within ``slack`` (10%) of the fastest
    p50; with ``prefer="size"`` the fastest of those within ``slack`` of the smallest size."""
    ref = report.row(report.reference)
    lower = lower_is_better(report.metric)  # errors may grow by at most `tolerance`
    limit = ref.metrics[report.metric] + (tolerance if lower else -tolerance)
    eligible = [
        r
        for r in report.rows
        if r.servable
        and math.isfinite(r.metrics[report.metric])
        and (r.metrics[report.metric] <= limit if lower else r.metrics[report.metric] >= limit)
    ]
    if not eligible:
        raise CompressionError(
            f"no servable candidate has {report.metric} {'<=' if lower else '>='} {limit:.4f} "
            f"(reference {report.reference} {ref.metrics[report.metric]:.4f}, tolerance "
            f"{tolerance:g})"
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
    value, reference = best.metrics[report.metric], ref.metrics[report.metric]
    reason = (
        f"{best.name}: {report.metric} {value:.4f} within {tolerance:g} of "
        f"{report.reference} {reference:.4f}; size {best.size_bytes / ref.size_bytes:.3f}x, "
        f"p50 {best.p50_ms / ref.p50_ms:.3f}x of {report.reference}; "
        f"Pareto front {[r.name for r in front]}, preferring {prefer}"
    )
    return CompressionChoice(best.name, reason, [r.name for r in eligible])


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
    prefer: str = "latency",
    latency_rows: int = 200,
) -> CompressionResult:
    """Build every candidate, measure them on the test split, pick the deployable one."""
    candidates, skipped = build_candidates(
        pipeline, X_train, y_train, numeric=numeric, categorical=categorical, options=options
    )
    report = measure(
        candidates,
        X_test,
        y_test,
        classes,
        metric=metric,
        latency_rows=latency_rows,
        skipped=skipped,
    )
    choice = pick(report, tolerance=tolerance, prefer=prefer)
    chosen = next(c for c in candidates if c.name == choice.name)
    files = dict(chosen.files)
    manifest = json.loads(files[MANIFEST])
    manifest.update({"candidate": chosen.name, "classes": _json_labels(classes)})
    files[MANIFEST] = json.dumps(manifest).encode()
    return CompressionResult(report, choice, files)


def _json_labels(classes: list[Any]) -> list[Any]:
    return [c.item() if isinstance(c, np.generic) else c for c in classes]
