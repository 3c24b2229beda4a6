"""ONNX export of fitted pipelines (skl2onnx, with :mod:`honing.tree_graphs` for LightGBM and
scikit-learn's forests, :mod:`honing.catboost_graph` for CatBoost, onnxmltools' converter
for XGBoost), the dense network exported by PyTorch and merged onto its feature graph, and
onnxruntime's int8 quantization: dynamic, or static with calibration rows."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from honing.compression.dense import DenseLayers

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
    predictor expands them with :class:`honing.features.DateFeatures`, and the graph takes
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
    target encoding of a multiclass target (:func:`honing.converters.target_encoder_onnx`)."""
    from honing.compression.inputs import scatter_onnx
    from honing.converters import target_encoder_onnx
    from honing.models import FAMILY_TABLE

    target_encoder_onnx()
    scatter_onnx()
    for family in FAMILY_TABLE.values():
        if family.onnx_converter is not None:
            family.onnx_converter()


def _onnx_inputs(numeric: list[str], categorical: list[str], dates: list[str]) -> list[Any]:
    """The graph's inputs, one column each: numeric (float32), categorical (strings), then
    each date column's parts (float32), in :class:`honing.features.DateFeatures`' order."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from honing.features import DATE_PARTS

    inputs = [(c, FloatTensorType([None, 1])) for c in numeric]
    inputs += [(c, StringTensorType([None, 1])) for c in categorical]
    parts = [f"{c}_{p}" for c in dates for p in (*DATE_PARTS, "days")]
    return inputs + [(p, FloatTensorType([None, 1])) for p in parts]


def _with_dates(model: Any, dates: list[str]) -> Any:
    """``model`` naming in its metadata the date columns whose parts it takes (metadata
    already there is kept)."""
    from onnx import helper

    if dates:
        props = {p.key: p.value for p in model.metadata_props}
        helper.set_model_props(model, {**props, DATES_KEY: json.dumps(dates)})
    return model


def onnx_bytes(
    pipeline: Any, numeric: list[str], categorical: list[str], rows: pd.DataFrame | None = None
) -> bytes:
    """The fitted scikit-learn pipeline as one ONNX graph (numeric inputs float32, categorical
    strings, date columns as their parts, named in the graph's metadata; missing categories
    are fed as the empty string). A weighted soft vote of pipelines (ensemble selection, soft
    voting) is one graph too: each member's graph side by side on the same inputs, their
    answers averaged with the vote's weights.

    Given training ``rows``, the graph takes only the columns the model reads
    (:func:`honing.compression.inputs.cut_inputs`, checked on those rows), and its metadata
    names them (:data:`COLUMNS_KEY`)."""
    from honing.compression.inputs import cut_inputs

    register_boosting_converters()
    cut = None if rows is None else cut_inputs(pipeline, numeric, categorical, rows)
    if cut is not None:
        pipeline, numeric, categorical = cut.pipeline, cut.numeric, cut.categorical
    vote = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    if type(vote).__name__ in ("VotingClassifier", "VotingRegressor"):
        graph, dates = _vote_graph(vote, numeric, categorical)
    else:
        graph, dates = _graph(pipeline, numeric, categorical)
    if cut is not None:
        from onnx import helper

        read = {"numeric": numeric, "categorical": categorical, "dropped": cut.dropped}
        helper.set_model_props(graph, {COLUMNS_KEY: json.dumps(read)})
    return _with_dates(graph, dates).SerializeToString()


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


def _vote_graph(vote: Any, numeric: list[str], categorical: list[str]) -> tuple[Any, list[str]]:
    """A fitted soft vote as one graph: every member's graph (names prefixed ``m<i>_``) fed
    from the shared inputs, and the weighted mean of their probabilities (a classifier:
    outputs ``label``, the argmax, and ``probabilities``) or of their predictions (a
    regressor: output ``variable``)."""
    from onnx import TensorProto, compose, helper

    if getattr(vote, "voting", "soft") != "soft":
        raise ValueError("a hard vote has no probabilities to average")
    graphs = [_graph(m, numeric, categorical) for m in vote.estimators_]
    members = [g for g, _ in graphs]
    if len({tuple(d) for _, d in graphs}) > 1:
        raise ValueError("the vote's members expand different date columns")
    weights = np.asarray(vote.weights or [1.0] * len(members), dtype=np.float64)
    weights = weights / weights.sum()
    classify = is_classifier(vote)
    answer = "probabilities" if classify else "variable"
    inputs = list(members[0].graph.input)
    nodes, inits, terms = [], [], []
    opsets: dict[str, int] = {}
    for i, member in enumerate(members):
        member = compose.add_prefix(member, prefix=f"m{i}_")
        for d in member.opset_import:
            opsets[d.domain] = max(opsets.get(d.domain, 0), d.version)
        nodes += [helper.make_node("Identity", [x.name], [f"m{i}_{x.name}"]) for x in inputs]
        nodes += list(member.graph.node)
        inits += list(member.graph.initializer)
        inits.append(helper.make_tensor(f"w{i}", TensorProto.FLOAT, [], [float(weights[i])]))
        nodes.append(helper.make_node("Mul", [f"m{i}_{answer}", f"w{i}"], [f"weighted{i}"]))
        terms.append(f"weighted{i}")
    nodes.append(helper.make_node("Sum", terms, [answer]))
    outputs = [helper.make_tensor_value_info(answer, TensorProto.FLOAT, None)]
    if classify:
        nodes.append(helper.make_node("ArgMax", [answer], ["label"], axis=1, keepdims=0))
        outputs.insert(0, helper.make_tensor_value_info("label", TensorProto.INT64, None))
    graph = helper.make_graph(nodes, "soft_vote", inputs, outputs, initializer=inits)
    imports = [helper.make_opsetid(domain, version) for domain, version in opsets.items()]
    model = helper.make_model(graph, opset_imports=imports, ir_version=members[0].ir_version)
    return model, graphs[0][1]


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

    from honing.compression.dense import build_module

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
    return _with_dates(merged, dates).SerializeToString()


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
