"""ONNX export of fitted pipelines (skl2onnx, with onnxmltools' converters for LightGBM and
XGBoost), the dense network appended to its feature graph, and onnxruntime quantization."""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import is_classifier

from honing.compression.dense import DenseLayers

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


def ort_quantize(model_bytes: bytes) -> bytes | None:
    """onnxruntime dynamic int8 quantization; None when the graph has nothing it quantizes."""
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
