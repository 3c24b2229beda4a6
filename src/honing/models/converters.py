"""ONNX converters for the estimators skl2onnx does not know, or converts too slowly for a
run's budget: each registers one library's classifier and regressor with skl2onnx
(LightGBM's and scikit-learn's forests are built by :mod:`honing.models.tree_graphs` from the
model's own arrays, CatBoost's by :mod:`honing.models.catboost_graph`). A
:class:`honing.models.Family` names its converter (``onnx_converter``), and the ONNX export
registers every family's before it converts, so a new boosting library is one table entry
plus its converter here (or anywhere importable).

Each function imports its library when called, never on import, and may be called again
(skl2onnx replaces an earlier registration)."""

from __future__ import annotations

from typing import Any

#: skl2onnx options of a boosted classifier's converter: no class labels in the graph, and
#: ZipMap (a dictionary per row) optional.
CLASSIFIER_OPTIONS: dict[str, list[Any]] = {
    "nocl": [True, False],
    "zipmap": [True, False, "columns"],
}
#: The name CatBoost's classifier is registered under in skl2onnx.
CATBOOST_CLASSIFIER = "CatBoostCatBoostClassifier"


def _register(classifier: Any, regressor: Any, prefix: str, converter: Any) -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    update_registered_converter(
        classifier, f"{prefix}{classifier.__name__}",
        calculate_linear_classifier_output_shapes, converter, options=CLASSIFIER_OPTIONS,
    )  # fmt: skip
    update_registered_converter(
        regressor, f"{prefix}{regressor.__name__}",
        calculate_linear_regressor_output_shapes, converter,
    )  # fmt: skip


def lightgbm_onnx() -> None:
    """LightGBM's estimators, through :func:`honing.models.tree_graphs.convert_lightgbm` (the tree
    ensemble from the booster's model text; onnxmltools' converter for what it does not
    cover)."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    from honing.models.tree_graphs import convert_lightgbm

    _register(LGBMClassifier, LGBMRegressor, "LightGbm", convert_lightgbm)


#: skl2onnx's options of a forest's converter, kept when honing's converter replaces its own.
FOREST_CLASSIFIER_OPTIONS: dict[str, list[Any]] = {
    "zipmap": [True, False, "columns"],
    "raw_scores": [True, False],
    "nocl": [True, False],
    "output_class_labels": [False, True],
    "decision_path": [True, False],
    "decision_leaf": [True, False],
}


def forest_onnx() -> None:
    """scikit-learn's random and extra-trees forests, through
    :func:`honing.models.tree_graphs.convert_forest` (each tree's arrays at once, not skl2onnx's
    node-by-node walk), under skl2onnx's own names and options."""
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.ensemble_shapes import (
        calculate_tree_classifier_output_shapes,
        calculate_tree_regressor_output_shapes,
    )
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    from honing.models.tree_graphs import convert_forest

    for classifier in (RandomForestClassifier, ExtraTreesClassifier):
        update_registered_converter(
            classifier, f"Sklearn{classifier.__name__}", calculate_tree_classifier_output_shapes,
            convert_forest, overwrite=True, options=FOREST_CLASSIFIER_OPTIONS,
        )  # fmt: skip
    options = {"decision_path": [True, False], "decision_leaf": [True, False]}
    for regressor in (RandomForestRegressor, ExtraTreesRegressor):
        update_registered_converter(
            regressor, f"Sklearn{regressor.__name__}", calculate_tree_regressor_output_shapes,
            convert_forest, overwrite=True, options=options,
        )  # fmt: skip


def hist_gradient_boosting_onnx() -> None:
    """scikit-learn's HistGradientBoosting, through :func:`honing.models.tree_graphs.convert_hgb`
    (its predictors' node arrays; skl2onnx 1.20's own converter fails on scikit-learn 1.9),
    under skl2onnx's own names and options."""
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.ensemble_shapes import (
        calculate_tree_classifier_output_shapes,
        calculate_tree_regressor_output_shapes,
    )
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from honing.models.tree_graphs import convert_hgb

    update_registered_converter(
        HistGradientBoostingClassifier, "SklearnHistGradientBoostingClassifier",
        calculate_tree_classifier_output_shapes, convert_hgb, overwrite=True,
        options={"zipmap": [True, False, "columns"], "raw_scores": [True, False],
                 "output_class_labels": [False, True], "nocl": [True, False]},
    )  # fmt: skip
    update_registered_converter(
        HistGradientBoostingRegressor, "SklearnHistGradientBoostingRegressor",
        calculate_tree_regressor_output_shapes, convert_hgb, overwrite=True,
        options={"raw_scores": [True, False]},
    )  # fmt: skip


def mlp_onnx() -> None:
    """The PyTorch MLP's regressor (its classifier's network is exported by PyTorch and
    merged onto the feature graph, :func:`honing.compression.onnx.mlp_onnx_bytes`)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes

    from honing.models.nn import TorchMLPRegressor

    update_registered_converter(
        TorchMLPRegressor, "HoningTorchMLPRegressor", calculate_linear_regressor_output_shapes,
        convert_mlp_regressor,
    )  # fmt: skip


def convert_mlp_regressor(scope: Any, operator: Any, container: Any) -> None:
    """The regressor's network as ``Gemm`` layers (batch norm folded, dropout gone) with its
    activation between them, and the standardized target mapped back (times its scale,
    plus its mean)."""
    import numpy as np
    from onnx import TensorProto
    from skl2onnx.common.data_types import FloatTensorType

    from honing.models.dense import export_dense

    model = operator.raw_operator
    layers = export_dense(model.model_, model.activation)

    def constant(name: str, values: Any) -> str:
        values = np.asarray(values, dtype=np.float32)
        unique = scope.get_unique_variable_name(name)
        container.add_initializer(unique, TensorProto.FLOAT, list(values.shape), values.ravel())
        return unique

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = scope.get_unique_variable_name(op.lower())
        container.add_node(op, inputs, out, name=scope.get_unique_operator_name(op), **attrs)
        return out

    x = operator.inputs[0].full_name
    if not isinstance(operator.inputs[0].type, FloatTensorType):
        x = node("Cast", [x], to=TensorProto.FLOAT)
    last = len(layers.weights) - 1
    for i, (w, b) in enumerate(zip(layers.weights, layers.biases, strict=True)):
        x = node("Gemm", [x, constant("w", w), constant("b", b)], transB=1)
        if i == last:
            break
        if layers.activation == "relu":
            x = node("Relu", [x])
        elif layers.activation == "tanh":
            x = node("Tanh", [x])
        else:  # GELU (exact): x * (1 + erf(x / sqrt 2)) / 2, as torch computes it
            erf = node("Erf", [node("Div", [x, constant("sqrt2", np.sqrt(2.0))])])
            half = node("Mul", [x, constant("half", 0.5)])
            x = node("Mul", [half, node("Add", [erf, constant("one", 1.0)])])
    scaled = node("Mul", [x, constant("scale", model.target_scale_)])
    container.add_node(
        "Add", [scaled, constant("mean", model.target_mean_)], operator.outputs[0].full_name,
        name=scope.get_unique_operator_name("Add"),
    )  # fmt: skip


def xgboost_onnx() -> None:
    """XGBoost's estimators, through onnxmltools' converter."""
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from xgboost import XGBClassifier, XGBRegressor

    _register(XGBClassifier, XGBRegressor, "XGBoost", convert_xgboost)


def _catboost_classifier_parser(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None):
    """skl2onnx's parser for CatBoost's classifier: a label and the probabilities (no
    ZipMap, which honing's exports never ask for)."""
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

    operator = scope.declare_local_operator(CATBOOST_CLASSIFIER, model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable("label", Int64TensorType()))
    operator.outputs.append(scope.declare_local_variable("probabilities", FloatTensorType()))
    return operator.outputs


def catboost_onnx() -> None:
    """CatBoost's estimators, through :func:`honing.models.catboost_graph.convert_catboost` (its
    symmetric trees as dense operators; CatBoost's own export for what they do not cover)."""
    from catboost import CatBoostClassifier, CatBoostRegressor
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    from honing.models.catboost_graph import convert_catboost

    update_registered_converter(
        CatBoostClassifier, CATBOOST_CLASSIFIER,
        calculate_linear_classifier_output_shapes, convert_catboost,
        parser=_catboost_classifier_parser, options={"nocl": [True, False], "zipmap": [False]},
    )  # fmt: skip
    update_registered_converter(
        CatBoostRegressor, "CatBoostCatBoostRegressor",
        calculate_linear_regressor_output_shapes, convert_catboost,
    )  # fmt: skip


def _target_encoder_shape(operator: Any) -> None:
    """A TargetEncoder's output: one column per input column, times the classes of a
    multiclass target (scikit-learn's layout)."""
    from skl2onnx.common.data_types import FloatTensorType

    op = operator.raw_operator
    per = len(op.classes_) if op.target_type_ == "multiclass" else 1
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType(shape=[rows, len(op.categories_) * per])


def _convert_target_encoder(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's TargetEncoder converter, and a multiclass target's encoding, which it lacks:
    for each column and class (feature-major, scikit-learn's order), a lookup of the category's
    encoding, an unknown category taking the class's mean."""
    import numpy as np
    from skl2onnx.common._apply_operation import apply_concat, apply_reshape
    from skl2onnx.operator_converters.target_encoder import convert_sklearn_target_encoder
    from skl2onnx.proto import onnx_proto

    op = operator.raw_operator
    if op.target_type_ != "multiclass":
        convert_sklearn_target_encoder(scope, operator, container)
        return
    source = operator.inputs[0]
    classes = len(op.classes_)
    outputs = []
    for f, categories in enumerate(op.categories_):
        column = source.onnx_name
        if source.get_second_dimension() != 1:
            index = scope.get_unique_variable_name("index")
            container.add_initializer(index, onnx_proto.TensorProto.INT64, [], [f])
            column = scope.get_unique_variable_name("feature_column")
            name = scope.get_unique_operator_name("ArrayFeatureExtractor")
            container.add_node(
                "ArrayFeatureExtractor", [source.onnx_name, index], column,
                op_domain="ai.onnx.ml", name=name,
            )  # fmt: skip
        keys = np.array([str(c).encode("utf-8") for c in categories])
        for k in range(classes):
            encoded = scope.get_unique_variable_name("target_encoded")
            container.add_node(
                "LabelEncoder", column, encoded, op_domain="ai.onnx.ml", op_version=2,
                name=scope.get_unique_operator_name("LabelEncoder"), keys_strings=keys,
                values_floats=np.asarray(op.encodings_[f * classes + k], dtype=np.float32),
                default_float=float(op.target_mean_[k]),
            )  # fmt: skip
            outputs.append(scope.get_unique_variable_name("target_column"))
            apply_reshape(scope, encoded, outputs[-1], container, desired_shape=(-1, 1))
    apply_concat(scope, outputs, operator.outputs[0].full_name, container, axis=1)


def target_encoder_onnx() -> None:
    """scikit-learn's TargetEncoder for every target type (skl2onnx's own converter takes
    binary and continuous targets only)."""
    from skl2onnx import update_registered_converter
    from sklearn.preprocessing import TargetEncoder

    update_registered_converter(
        TargetEncoder, "SklearnTargetEncoder", _target_encoder_shape, _convert_target_encoder
    )
