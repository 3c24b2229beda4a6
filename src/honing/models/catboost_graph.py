"""CatBoost's symmetric trees as a handful of dense ONNX operators, not as a tree ensemble.

CatBoost's own ONNX export writes each symmetric tree of depth ``d`` as a full binary tree in
``TreeEnsemble*``: ``2^d - 1`` split nodes and ``2^d`` leaves, each node with its feature,
threshold, two children, and its mode as a string. CatBoost's own file keeps ``d`` splits and
the ``2^d`` leaf values, so its graph came out 1.2-1.4x the native model's size on the
benchmark tables. A symmetric tree asks the same question of every row at each level, so
the whole model is, for ``T`` trees of depth ``D``:

1. ``Gather`` the ``T x D`` split features from the input, ``Greater`` than their borders
   (a missing value is not greater: CatBoost's default ``nan_mode`` Min; a feature whose
   missing values go the other way, ``AsTrue``, is ``Or``-ed with ``IsNaN``);
2. the bits of each tree, weighted ``1, 2, 4, ...`` and summed, are its leaf's index;
3. ``Gather`` the leaves' values and ``ReduceSum`` over trees, times CatBoost's scale, plus
   its bias; a sigmoid (two classes: both columns) or a softmax (more) for a classifier.

What it stores is the splits' features and borders and the leaf values, as tensors. A tree
shallower than the deepest is padded with splits no value passes. Models this does not
express (categorical or text features, other losses) keep CatBoost's own export
(:func:`catboost_supported`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

#: CatBoost's losses this graph answers: the raw score's link to what ``predict`` gives.
_LINKS = {"Logloss": "sigmoid", "CrossEntropy": "sigmoid", "MultiClass": "softmax", "RMSE": ""}


def catboost_json(model: Any) -> dict[str, Any]:
    """The fitted model as CatBoost's JSON (its trees, features, scale and bias)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.json"
        model.save_model(str(path), format="json")
        return json.loads(path.read_text())


def _loss(model: Any) -> str:
    return str(model.get_all_params().get("loss_function", "")).split(":")[0]


def catboost_supported(model: Any, tree_json: dict[str, Any]) -> bool:
    """Whether :func:`convert_catboost`'s operators answer as ``model``: symmetric trees on
    float features only, a Logloss, CrossEntropy, MultiClass or RMSE loss, integer classes,
    and leaf indices that float32 counts exactly."""
    import numbers

    trees = tree_json.get("oblivious_trees")
    info = tree_json.get("features_info", {})
    if not trees or set(info) - {"float_features"} or _loss(model) not in _LINKS:
        return False
    classes = getattr(model, "classes_", None)
    if classes is not None and not all(isinstance(c, numbers.Integral) for c in classes):
        return False
    depth = max(len(t["splits"]) for t in trees)
    if len(trees) * 2**depth > 2**24:
        return False
    return all(s.get("split_type") == "FloatFeature" for t in trees for s in t["splits"])


def catboost_arrays(tree_json: dict[str, Any]) -> dict[str, Any]:
    """The model's splits as ``features``/``borders``/``nan_true`` (trees x depth, padded),
    ``leaves`` (trees x 2^depth x dimensions), ``scale`` and ``bias``."""
    import numpy as np

    trees = tree_json["oblivious_trees"]
    depth = max(len(t["splits"]) for t in trees)
    dims = len(trees[0]["leaf_values"]) // 2 ** len(trees[0]["splits"])
    nan_true = {  # by float feature index, as the splits name them
        f["feature_index"]: f.get("nan_value_treatment") == "AsTrue"
        for f in tree_json["features_info"]["float_features"]
    }
    features = np.zeros((len(trees), depth), dtype=np.int64)
    borders = np.full((len(trees), depth), np.inf, dtype=np.float32)
    leaves = np.zeros((len(trees), 2**depth, dims), dtype=np.float32)
    for t, tree in enumerate(trees):
        for d, split in enumerate(tree["splits"]):
            features[t, d] = split["float_feature_index"]
            borders[t, d] = split["border"]
        values = np.asarray(tree["leaf_values"], dtype=np.float64).reshape(-1, dims)
        leaves[t, : len(values)] = values
    nan = np.vectorize(lambda f: nan_true.get(int(f), False))(features) & np.isfinite(borders)
    scale, bias = tree_json.get("scale_and_bias", [1.0, [0.0] * dims])
    return {
        "features": features, "borders": borders, "nan_true": nan, "leaves": leaves,
        "scale": float(scale), "bias": np.asarray(bias, dtype=np.float32).reshape(dims),
    }  # fmt: skip


def catboost_own_graph(scope: Any, operator: Any, container: Any) -> None:
    """CatBoost's own ONNX export (one TreeEnsemble node) placed into skl2onnx's graph."""
    from catboost.utils import convert_to_onnx_object
    from onnx import helper

    onx = convert_to_onnx_object(operator.raw_operator)
    node = next(n for n in onx.graph.node if n.op_type.startswith("TreeEnsemble"))
    opsets = {d.domain: d.version for d in onx.opset_import}
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    container.add_node(
        node.op_type, [operator.inputs[0].full_name], [o.full_name for o in operator.outputs],
        op_domain=node.domain, op_version=opsets.get(node.domain), **attributes,
    )  # fmt: skip


def convert_catboost(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's converter for CatBoost's classifier and regressor: the dense operators
    above, or CatBoost's own export (:func:`catboost_own_graph`) where
    :func:`catboost_supported` says the model needs it."""
    import numpy as np
    from onnx import TensorProto as T

    model = operator.raw_operator
    tree_json = catboost_json(model)
    if not catboost_supported(model, tree_json):
        catboost_own_graph(scope, operator, container)
        return
    a = catboost_arrays(tree_json)
    trees, depth = a["features"].shape
    dims = a["leaves"].shape[2]

    def const(name: str, value: Any, kind: int) -> str:
        full = scope.get_unique_variable_name(name)
        array = np.asarray(value)
        container.add_initializer(full, kind, list(array.shape), array.ravel().tolist())
        return full

    def node(op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        out = scope.get_unique_variable_name(name)
        container.add_node(op, inputs, out, name=scope.get_unique_operator_name(op), **attrs)
        return out

    source = operator.inputs[0].full_name
    values = node("Gather", [source, const("features", a["features"].ravel(), T.INT64)],
                  "split_values", axis=1)  # fmt: skip
    passed = node("Greater", [values, const("borders", a["borders"].ravel(), T.FLOAT)], "passed")
    if a["nan_true"].any():
        missing = node("IsNaN", [values], "missing")
        goes = node("And", [missing, const("nan_true", a["nan_true"].ravel(), T.BOOL)], "nan_goes")
        passed = node("Or", [passed, goes], "passed_or_missing")
    bits = node("Cast", [passed], "bits", to=T.FLOAT)
    bits = node("Reshape", [bits, const("tree_shape", [-1, trees, depth], T.INT64)], "tree_bits")
    weighted = node("Mul", [bits, const("powers", 2.0 ** np.arange(depth), T.FLOAT)], "weighted")
    leaf = node("ReduceSum", [weighted, const("depth_axis", [2], T.INT64)], "leaf", keepdims=0)
    offsets = const("offsets", np.arange(trees) * 2.0**depth, T.FLOAT)
    index = node("Cast", [node("Add", [leaf, offsets], "flat_leaf")], "leaf_index", to=T.INT64)
    table = const("leaves", a["leaves"].reshape(trees * 2**depth, dims), T.FLOAT)
    picked = node("Gather", [table, index], "leaf_values", axis=0)  # rows x trees x dims
    total = node("ReduceSum", [picked, const("tree_axis", [1], T.INT64)], "sum", keepdims=0)
    scaled = node("Mul", [total, const("scale", [a["scale"]], T.FLOAT)], "scaled")
    raw = node("Add", [scaled, const("bias", a["bias"], T.FLOAT)], "raw")
    link = _LINKS[_loss(model)]
    if not link:
        container.add_node("Identity", [raw], operator.outputs[0].full_name)
        return
    if link == "sigmoid":
        positive = node("Sigmoid", [raw], "positive")
        negative = node("Sub", [const("one", [1.0], T.FLOAT), positive], "negative")
        probabilities = node("Concat", [negative, positive], "probabilities", axis=1)
    else:
        probabilities = node("Softmax", [raw], "probabilities", axis=1)
    container.add_node("Identity", [probabilities], operator.outputs[1].full_name)
    best = node("ArgMax", [probabilities], "best", axis=1, keepdims=0)
    classes = const("classes", [int(c) for c in model.classes_], T.INT64)
    container.add_node("Gather", [classes, best], operator.outputs[0].full_name, axis=0)
