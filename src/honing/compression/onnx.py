"""ONNX export of fitted pipelines (skl2onnx, with :mod:`honing.models.tree_graphs` for LightGBM,
scikit-learn's forests and HistGradientBoosting, :mod:`honing.models.catboost_graph` for CatBoost,
onnxmltools' converter for XGBoost), of votes and stacks of them as one graph, the dense
network exported by PyTorch and merged onto its feature graph, and onnxruntime's int8
quantization: dynamic, or static with calibration rows."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from honing.models.dense import DenseLayers

ONNX_OPSET = 17


#: The graph's metadata key naming the date columns whose parts it takes as inputs.
DATES_KEY = "honing.dates"
#: The graph's metadata key naming the columns it reads (numeric, categorical) and those it
#: does not (dropped): written when its inputs were cut (:mod:`honing.compression.inputs`).
COLUMNS_KEY = "honing.columns"


def _onnx_ready(estimator: Any) -> tuple[Any, list[str]]:
    """A copy whose categorical imputers mark missing values with "" (skl2onnx imputes strings
    only with a string marker; :class:`OnnxPredictor` feeds missing categories as ""), and
    whose date features start from the dates' parts (no ONNX operator parses a date: the
    predictor expands them with :class:`honing.modeling.features.DateFeatures`, and the graph takes
    each part as an input of its own, ``<column>_<part>``); with the date columns. The
    feature steps are copied, a final predictor is shared (the ONNX export only reads it)."""
    if hasattr(estimator, "steps") and hasattr(estimator.steps[-1][1], "predict"):
        from sklearn.pipeline import Pipeline

        export = Pipeline([*copy.deepcopy(estimator.steps[:-1]), estimator.steps[-1]])
    else:
        export = copy.deepcopy(estimator)
    transformer = export.steps[0][1] if hasattr(export, "steps") else export
    dates: list[str] = []
    for i, (name, step, columns) in enumerate(transformer.transformers_):
        if name in ("categorical", "high_cardinality"):
            step.steps[0][1].missing_values = ""
        elif name == "dates" and len(columns):
            expand, impute = step.steps[0][1], step.steps[1][1]
            parts = [str(p) for p in expand.get_feature_names_out()]
            transformer.transformers_[i] = (name, impute, parts)
            dates = [str(c) for c in columns]
    return export, dates


def register_boosting_converters() -> None:
    """Teach skl2onnx every family's estimators that it does not know (each
    :class:`honing.models.Family` with an ``onnx_converter`` registers its own), and the
    target encoding of a multiclass target
    (:func:`honing.models.converters.target_encoder_onnx`)."""
    from honing.compression.inputs import scatter_onnx
    from honing.models import FAMILY_TABLE
    from honing.models.converters import target_encoder_onnx

    target_encoder_onnx()
    scatter_onnx()
    for family in FAMILY_TABLE.values():
        if family.onnx_converter is not None:
            family.onnx_converter()


def _onnx_inputs(numeric: list[str], categorical: list[str], dates: list[str]) -> list[Any]:
    """The graph's inputs, one column each: numeric (float32), categorical (strings), then
    each date column's parts (float32), in :class:`honing.modeling.features.DateFeatures`' order."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from honing.modeling.features import DATE_PARTS

    inputs = [(c, FloatTensorType([None, 1])) for c in numeric]
    inputs += [(c, StringTensorType([None, 1])) for c in categorical]
    parts = [f"{c}_{p}" for c in dates for p in (*DATE_PARTS, "days")]
    return inputs + [(p, FloatTensorType([None, 1])) for p in parts]


def _with_metadata(model: Any, entries: dict[str, Any]) -> Any:
    """``model`` with ``entries`` added to its metadata as JSON (an empty one left out; what
    is already there is kept): the date columns whose parts it takes (:data:`DATES_KEY`),
    the columns it reads (:data:`COLUMNS_KEY`)."""
    from onnx import helper

    props = {p.key: p.value for p in model.metadata_props}
    props.update({key: json.dumps(value) for key, value in entries.items() if value})
    helper.set_model_props(model, props)
    return model


def onnx_bytes(
    pipeline: Any, numeric: list[str], categorical: list[str], rows: pd.DataFrame | None = None
) -> bytes:
    """The fitted scikit-learn pipeline as one ONNX graph (numeric inputs float32, categorical
    strings, date columns as their parts, named in the graph's metadata; missing categories
    are fed as the empty string). A weighted soft vote of pipelines (ensemble selection, soft
    voting) is one graph too: each member's graph side by side on the same inputs, their
    answers averaged with the vote's weights; so is a stack (:func:`_stack_graph`).

    Given training ``rows``, the graph takes only the columns the model reads
    (:func:`honing.compression.inputs.cut_inputs`, checked on those rows), and its metadata
    names them (:data:`COLUMNS_KEY`)."""
    from honing.compression.inputs import cut_inputs

    register_boosting_converters()
    cut = None if rows is None else cut_inputs(pipeline, numeric, categorical, rows)
    if cut is not None:
        pipeline, numeric, categorical = cut.pipeline, cut.numeric, cut.categorical
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    if type(final).__name__ in ("VotingClassifier", "VotingRegressor"):
        graph, dates = _vote_graph(final, numeric, categorical)
    elif type(final).__name__ in ("StackingClassifier", "StackingRegressor"):
        graph, dates = _stack_graph(final, numeric, categorical)
    else:
        graph, dates = _graph(pipeline, numeric, categorical)
    read = None
    if cut is not None:
        read = {"numeric": numeric, "categorical": categorical, "dropped": cut.dropped}
    return _with_metadata(graph, {DATES_KEY: dates, COLUMNS_KEY: read}).SerializeToString()


def _graph(pipeline: Any, numeric: list[str], categorical: list[str]) -> tuple[Any, list[str]]:
    from skl2onnx import convert_sklearn

    export, dates = _onnx_ready(pipeline)
    model = export.steps[-1][1]
    graph = convert_sklearn(
        export,
        initial_types=_onnx_inputs(numeric, categorical, dates),
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": 3},
        options={id(model): {"zipmap": False}} if is_classifier(model) else None,
    )
    return graph, dates


@dataclass
class _SideBySide:
    """Member graphs (names prefixed ``m<i>_``) fed from the shared inputs, as the parts of
    one graph: their nodes, initializers and opsets; member ``i``'s answer is
    ``m<i>_probabilities`` (a classifier) or ``m<i>_variable`` (a regressor)."""

    inputs: list[Any]
    nodes: list[Any]
    inits: list[Any]
    opsets: dict[str, int]
    ir_version: int
    dates: list[str]

    @classmethod
    def of(cls, members: list[Any], numeric: list[str], categorical: list[str]) -> _SideBySide:
        from onnx import helper

        graphs = [_graph(m, numeric, categorical) for m in members]
        if len({tuple(d) for _, d in graphs}) > 1:
            raise ValueError("the ensemble's members expand different date columns")
        inputs = list(graphs[0][0].graph.input)
        parts = cls(inputs, [], [], {}, graphs[0][0].ir_version, graphs[0][1])
        for i, (member, _) in enumerate(graphs):
            feeds = [helper.make_node("Identity", [x.name], [f"m{i}_{x.name}"]) for x in inputs]
            parts.nodes += feeds
            parts.take(member, f"m{i}_")
        return parts

    def take(self, graph: Any, prefix: str) -> None:
        """``graph``'s nodes and initializers, names prefixed, and its opsets (the highest
        version of each domain)."""
        from onnx import compose

        graph = compose.add_prefix(graph, prefix=prefix)
        for d in graph.opset_import:
            self.opsets[d.domain] = max(self.opsets.get(d.domain, 0), d.version)
        self.nodes += list(graph.graph.node)
        self.inits += list(graph.graph.initializer)

    def model(self, name: str, outputs: list[Any]) -> Any:
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, self.inputs, outputs, initializer=self.inits)
        imports = [helper.make_opsetid(domain, v) for domain, v in self.opsets.items()]
        return helper.make_model(graph, opset_imports=imports, ir_version=self.ir_version)


def _outputs(classify: bool) -> list[Any]:
    from onnx import TensorProto, helper

    if not classify:
        return [helper.make_tensor_value_info("variable", TensorProto.FLOAT, None)]
    return [
        helper.make_tensor_value_info("label", TensorProto.INT64, None),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, None),
    ]


def _vote_graph(vote: Any, numeric: list[str], categorical: list[str]) -> tuple[Any, list[str]]:
    """A fitted soft vote as one graph: every member's graph side by side on the shared
    inputs (:class:`_SideBySide`), and the weighted mean of their probabilities (a
    classifier: outputs ``label``, the argmax, and ``probabilities``) or of their
    predictions (a regressor: output ``variable``)."""
    from onnx import TensorProto, helper

    if getattr(vote, "voting", "soft") != "soft":
        raise ValueError("a hard vote has no probabilities to average")
    parts = _SideBySide.of(vote.estimators_, numeric, categorical)
    weights = np.asarray(vote.weights or [1.0] * len(vote.estimators_), dtype=np.float64)
    weights = weights / weights.sum()
    classify = is_classifier(vote)
    answer = "probabilities" if classify else "variable"
    terms = []
    for i, weight in enumerate(weights):
        parts.inits.append(helper.make_tensor(f"w{i}", TensorProto.FLOAT, [], [float(weight)]))
        parts.nodes.append(helper.make_node("Mul", [f"m{i}_{answer}", f"w{i}"], [f"weighted{i}"]))
        terms.append(f"weighted{i}")
    parts.nodes.append(helper.make_node("Sum", terms, [answer]))
    if classify:
        parts.nodes.append(helper.make_node("ArgMax", [answer], ["label"], axis=1, keepdims=0))
    return parts.model("soft_vote", _outputs(classify)), parts.dates


def _stack_graph(stack: Any, numeric: list[str], categorical: list[str]) -> tuple[Any, list[str]]:
    """A fitted stack as one graph: every member's graph side by side on the shared inputs
    (:class:`_SideBySide`), their answers laid side by side as scikit-learn's stack lays
    them (a binary classifier's positive-class probability, every class's for more, a
    regressor's prediction), and the final estimator's graph on them."""
    from onnx import TensorProto, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    if getattr(stack, "passthrough", False):
        raise ValueError("a stack that passes the raw features on has no graph here")
    classify = is_classifier(stack)
    if classify and any(m != "predict_proba" for m in stack.stack_method_):
        raise ValueError("the stack's members answer by a method other than predict_proba")
    parts = _SideBySide.of(stack.estimators_, numeric, categorical)
    columns, width = [], 0
    for i in range(len(stack.estimators_)):
        if not classify:
            parts.nodes.append(
                helper.make_node("Reshape", [f"m{i}_variable", "column_shape"], [f"meta{i}"])
            )
            width += 1
        elif len(stack.classes_) == 2:  # scikit-learn keeps the positive class's column
            parts.nodes.append(helper.make_node(
                "Slice", [f"m{i}_probabilities", "one", "two", "one"], [f"meta{i}"]
            ))  # fmt: skip
            width += 1
        else:
            parts.nodes.append(helper.make_node("Identity", [f"m{i}_probabilities"], [f"meta{i}"]))
            width += len(stack.classes_)
        columns.append(f"meta{i}")
    parts.inits += [
        helper.make_tensor("column_shape", TensorProto.INT64, [2], [-1, 1]),
        helper.make_tensor("one", TensorProto.INT64, [1], [1]),
        helper.make_tensor("two", TensorProto.INT64, [1], [2]),
    ]
    parts.nodes.append(helper.make_node("Concat", columns, ["meta"], axis=1))
    final = stack.final_estimator_
    head = convert_sklearn(
        final, initial_types=[("meta", FloatTensorType([None, width]))],
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": 3},
        options={id(final): {"zipmap": False}} if classify else None,
    )  # fmt: skip
    parts.nodes.append(helper.make_node("Identity", ["meta"], ["f_meta"]))
    parts.take(head, "f_")
    for out in _outputs(classify):  # label and probabilities, or variable
        parts.nodes.append(helper.make_node("Identity", [f"f_{out.name}"], [out.name]))
    return parts.model("stack", _outputs(classify)), parts.dates


def network_onnx(layers: DenseLayers) -> Any:
    """The dense network (and a Softmax) exported by ``torch.onnx.export``: one input
    ``features`` (float32, any number of rows), one output ``probabilities``.

    The TorchScript exporter (``dynamo=False``) is used on purpose: for these small
    feed-forward nets it gives the same Gemm/activation/Softmax graph as the ``torch.export``
    exporter, in about 5 ms instead of 0.6-3 s per network (that one also needs
    ``onnxscript``), and compression runs inside the pipeline's time budget."""
    import io
    import warnings

    import onnx
    import torch

    from honing.models.dense import build_module

    net = torch.nn.Sequential(build_module(layers), torch.nn.Softmax(dim=1)).eval()
    buffer = io.BytesIO()
    n_in = int(layers.weights[0].shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            net,
            (torch.zeros(2, n_in),),
            buffer,
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["features"],
            output_names=["probabilities"],
            dynamic_axes={"features": {0: "rows"}, "probabilities": {0: "rows"}},
        )
    return onnx.load_from_string(buffer.getvalue())


def mlp_onnx_bytes(
    preprocessor: Any, layers: DenseLayers, numeric: list[str], categorical: list[str]
) -> bytes:
    """The feature pipeline (skl2onnx) joined to the exported network
    (:func:`network_onnx`) with ``onnx.compose.merge_models``: one graph, so onnxruntime
    serves the whole MLP pipeline and its int8 quantization applies to the network's Gemms."""
    import onnx
    from onnx import TensorProto, compose, helper
    from skl2onnx import convert_sklearn

    ready, dates = _onnx_ready(preprocessor)
    features = convert_sklearn(
        ready, initial_types=_onnx_inputs(numeric, categorical, dates), target_opset=ONNX_OPSET
    )
    graph = features.graph
    out = graph.output[0]
    if out.type.tensor_type.elem_type != TensorProto.FLOAT:  # e.g. a float64 scaler output
        graph.node.append(helper.make_node("Cast", [out.name], ["features_f32"], to=1))
        del graph.output[:]
        graph.output.append(helper.make_tensor_value_info("features_f32", TensorProto.FLOAT, None))
    network = network_onnx(layers)
    ir_version = max(features.ir_version, network.ir_version)
    for model in (features, network):
        model.ir_version = ir_version
    merged = compose.merge_models(
        features, network, io_map=[(graph.output[0].name, "features")], prefix2="net_"
    )
    opsets = {(o.domain or "ai.onnx"): o.version for o in merged.opset_import}
    del merged.opset_import[:]  # one entry per domain (the merge can repeat the default one)
    merged.opset_import.extend(
        helper.make_opsetid("" if d == "ai.onnx" else d, v) for d, v in opsets.items()
    )
    onnx.checker.check_model(merged)
    return _with_metadata(merged, {DATES_KEY: dates}).SerializeToString()


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """ORT's quantizer advises pre-processing on the root logger at every call; that advice
    is for image models, so it is kept out of the run's logs."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def has_matmul(model_bytes: bytes) -> bool:
    """Whether the graph has MatMul/Gemm nodes, the only ones ORT's int8 quantizes here
    (tree and linear models are ``ai.onnx.ml`` operators)."""
    import onnx

    graph = onnx.load_from_string(model_bytes).graph
    return any(n.op_type in ("MatMul", "Gemm") for n in graph.node)


def _quantized(
    model_bytes: bytes, quantize: Callable[[Path, Path], None], marks: set[str]
) -> bytes | None:
    """Run an ORT quantizer (it works on files) over ``model_bytes``; the result, or None
    when it holds none of the ``marks`` node types (nothing was quantized)."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        src.write_bytes(model_bytes)
        with _quiet_quantizer():
            quantize(src, dst)
        out = dst.read_bytes()
    ops = {n.op_type for n in onnx.load_from_string(out).graph.node}
    return out if ops & marks else None


def ort_quantize(model_bytes: bytes) -> bytes | None:
    """onnxruntime dynamic int8 quantization; None when the graph has nothing it quantizes."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def run(src: Path, dst: Path) -> None:
        quantize_dynamic(
            src,
            dst,
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )

    return _quantized(model_bytes, run, {"MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul"})


def ort_quantize_static(model_bytes: bytes, feeds: list[dict[str, np.ndarray]]) -> bytes | None:
    """onnxruntime static int8 in QDQ form: int8 weights (per output channel) and uint8
    activations whose ranges are calibrated (min/max) on ``feeds``, batches of training rows
    fed as the served graph's inputs. Only MatMul/Gemm nodes are quantized; None when the
    graph has none.

    The weights use 7 of their 8 bits (``reduce_range``): on x86 CPUs without VNNI, the
    uint8 x int8 kernels add pairs of products in 16 bits, which saturate at full range.
    Measured on the demo MLP (AMD EPYC, no VNNI): the largest probability error falls from
    0.054 to 0.009."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class _Rows(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    def run(src: Path, dst: Path) -> None:
        quantize_static(
            src,
            dst,
            _Rows(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=True,
            reduce_range=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )

    return _quantized(model_bytes, run, {"QuantizeLinear"})
