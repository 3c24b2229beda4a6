"""Tree ensembles as ONNX ``TreeEnsemble*`` attributes, built from the fitted model's own
arrays instead of node by node through a generic converter.

A run's compression stage has a few seconds for the ONNX export of the model it chose. The
generic converters walk the model one node at a time in Python: onnxmltools' LightGBM
converter decodes LightGBM's JSON dump through its own decoder, deep-copies every attribute
list and finds each node's id with a linear scan (2.15 s for a 22-class model of 3,300
trees, where this module takes 0.26 s); skl2onnx's forest converter calls a function per
node (2.15 s for 409,000 nodes; 0.47 s here). Here the same graphs are written from arrays:

- :func:`lightgbm_attributes` reads LightGBM's model text (``model_to_string``: one line of
  numbers per field and tree), with LightGBM's own rule for a missing value on each kind of
  split: ``missing_type`` NaN follows ``default_left``; ``missing_type`` None reads a missing
  value as 0 (left when ``0 <= threshold``); a categorical split sends a missing or negative
  value right, and its category set becomes a chain of ``BRANCH_EQ`` tests sharing the left
  subtree. ``missing_type`` Zero (``zero_as_missing``), linear trees and random-forest
  boosting are left to onnxmltools' converter (:func:`lightgbm_supported`).
- :func:`forest_attributes` writes a scikit-learn forest from each tree's arrays, with
  skl2onnx's float thresholds and leaf weights, value for value.
- :func:`hgb_attributes` writes scikit-learn's HistGradientBoosting from its predictors'
  node arrays (skl2onnx 1.20's own converter fails on scikit-learn 1.9's node ids): numeric
  splits with the same float thresholds, a missing value to the side the node learnt, the
  baseline as the ensemble's base values.

Neither writes ``nodes_hitrates`` (optional, and unread by onnxruntime).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: LightGBM objectives served by a classifier graph (the probability's link), a regressor's
#: identity, or a regressor followed by ``Exp`` (log-link objectives).
_CLASSIFIER_LINKS = {"binary": "LOGISTIC", "multiclass": "SOFTMAX"}
_IDENTITY_OBJECTIVES = ("regression", "quantile", "huber", "fair", "mape")
_LOG_LINK_OBJECTIVES = ("poisson", "gamma", "tweedie")
#: The scikit-learn forests :func:`forest_attributes` writes (by class name: nothing here
#: imports scikit-learn's estimators before a graph is asked for).
FOREST_NAMES = (
    "RandomForestClassifier", "ExtraTreesClassifier", "RandomForestRegressor",
    "ExtraTreesRegressor",
)  # fmt: skip
#: The attributes with one entry per node or per leaf weight.
_PER_NODE = ("nodes_", "class_", "target_")
#: Bits of LightGBM's ``decision_type``: a categorical split, missing values go left, and
#: the missing type (0 None, 1 Zero, 2 NaN) in the two bits above.
_CATEGORICAL, _DEFAULT_LEFT, _NAN = 1, 2, 2


@dataclass(frozen=True)
class LightGBMText:
    """A booster's model text, split: the header's ``key=value`` lines (a bare flag, such as
    random-forest boosting's ``average_output``, maps to "") and each tree's."""

    header: dict[str, str]
    trees: list[dict[str, str]]

    @classmethod
    def of(cls, booster: Any) -> LightGBMText:
        """The trees LightGBM saves (to its best round when it has one, as it predicts)."""
        head, _, rest = booster.model_to_string().partition("\nTree=")
        body = rest.partition("\nend of trees")[0]
        trees = [
            dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
            for block in f"\nTree={body}".split("\nTree=")[1:]
        ]
        header = {k: v for k, _, v in (line.partition("=") for line in head.splitlines() if line)}
        return cls(header, trees)

    @property
    def objective(self) -> str:
        return self.header.get("objective", "").split(" ")[0]

    def numbers(self, field: str, kind: type = float) -> Any:
        """One field of every tree, end to end (an empty field for a one-leaf tree)."""
        import numpy as np

        return np.array(" ".join(t.get(field, "") for t in self.trees).split(), dtype=kind)


def lightgbm_supported(model: Any, text: LightGBMText) -> bool:
    """Whether :func:`lightgbm_attributes` writes this fitted LightGBM estimator exactly: a
    gbdt/goss/dart booster (no random-forest averaging), no linear trees, no
    ``zero_as_missing`` split, and a binary (sigmoid 1), multiclass (softmax) or regression
    objective."""
    import numpy as np

    if model.boosting_type == "rf" or "average_output" in text.header:
        return False
    if any(t.get("is_linear", "0") != "0" for t in text.trees):
        return False
    objective = text.objective
    known = objective in _CLASSIFIER_LINKS or objective.startswith(
        _IDENTITY_OBJECTIVES + _LOG_LINK_OBJECTIVES
    )
    sigmoid = [p for p in text.header.get("objective", "").split(" ") if p.startswith("sigmoid:")]
    if not known or any(float(p.split(":")[1]) != 1.0 for p in sigmoid):
        return False
    return not np.any((text.numbers("decision_type", int) >> 2) & 3 == 1)


def _category_sets(text: LightGBMText, trees: Any, indices: Any) -> list[list[float]]:
    """The categories each categorical split sends left: the bits set in its slice of the
    tree's ``cat_threshold`` words (``threshold`` indexes ``cat_boundaries``)."""
    sets = []
    for tree, index in zip(trees.tolist(), indices.tolist(), strict=True):
        fields = text.trees[tree]
        bounds = [int(b) for b in fields["cat_boundaries"].split()]
        words = [int(w) for w in fields["cat_threshold"].split()]
        sets.append(
            [
                float(32 * k + bit)
                for k, word in enumerate(words[bounds[index] : bounds[index + 1]])
                for bit in range(32)
                if word >> bit & 1
            ]
        )
    return sets


def lightgbm_attributes(text: LightGBMText, n_classes: int) -> dict[str, Any]:
    """The ``TreeEnsembleClassifier`` attributes (``class_*`` leaves; ``n_classes`` 1 for a
    binary or regression model) of a booster's model text: tree ``i`` adds to class
    ``i % n_classes``, and its leaves carry the learning rate already. In each tree, split
    ``j`` is node ``j``, leaf ``k`` node ``splits + k``, and a categorical set's extra tests
    follow its leaves."""
    import numpy as np

    leaves_per_tree = np.array([int(t["num_leaves"]) for t in text.trees])
    splits_per_tree = leaves_per_tree - 1
    n_trees = len(text.trees)
    split_tree = np.repeat(np.arange(n_trees), splits_per_tree)
    split_base = np.repeat(np.cumsum(splits_per_tree) - splits_per_tree, splits_per_tree)
    split_id = np.arange(split_tree.size) - split_base
    first_leaf = splits_per_tree[split_tree]  # a tree's first leaf's node id, per split

    def child(field: str) -> Any:
        c = text.numbers(field, int)
        return np.where(c >= 0, c, first_leaf + (-c - 1))

    feature = text.numbers("split_feature", int)
    threshold = text.numbers("threshold")
    decision = text.numbers("decision_type", int)
    left, right = child("left_child"), child("right_child")
    default_left = (decision & _DEFAULT_LEFT) != 0
    missing_left = np.where((decision >> 2) & 3 == _NAN, default_left, threshold >= 0.0)
    numeric = (decision & _CATEGORICAL) == 0

    leaf_tree = np.repeat(np.arange(n_trees), leaves_per_tree)
    leaf_base = np.repeat(np.cumsum(leaves_per_tree) - leaves_per_tree, leaves_per_tree)
    leaf_id = splits_per_tree[leaf_tree] + np.arange(leaf_tree.size) - leaf_base

    # rows: tree, id, feature, mode (0 leaf, 1 <=, 2 ==), value, true, false, missing-true
    parts = [
        (split_tree[numeric], split_id[numeric], feature[numeric], 1, threshold[numeric],
         left[numeric], right[numeric], missing_left[numeric]),
        (leaf_tree, leaf_id, 0, 0, 0.0, 0, 0, 0),
    ]  # fmt: skip
    categorical = np.flatnonzero(~numeric)
    if categorical.size:
        chain_rows: list[tuple] = []
        next_id = dict(enumerate((leaves_per_tree + splits_per_tree).tolist()))
        sets = _category_sets(text, split_tree[categorical], threshold[categorical].astype(int))
        for j, values in zip(categorical.tolist(), sets, strict=True):
            tree = int(split_tree[j])
            ids = [int(split_id[j]), *range(next_id[tree], next_id[tree] + len(values) - 1)]
            next_id[tree] += len(values) - 1
            falses = [*ids[1:], int(right[j])]
            for test, value, false in zip(ids, values, falses, strict=True):
                chain_rows.append((tree, test, int(feature[j]), 2, value, int(left[j]), false, 0))
        parts.append(tuple(np.array(column) for column in zip(*chain_rows, strict=True)))
    size = [np.size(p[0]) for p in parts]
    columns = [
        np.concatenate([np.broadcast_to(p[k], (n,)) for p, n in zip(parts, size, strict=True)])
        for k in range(8)
    ]
    order = np.lexsort((columns[1], columns[0]))
    tree, ids, feature, mode, value, true, false, missing = (c[order] for c in columns)
    return {
        "nodes_treeids": tree.tolist(),
        "nodes_nodeids": ids.tolist(),
        "nodes_featureids": feature.tolist(),
        "nodes_modes": np.array(["LEAF", "BRANCH_LEQ", "BRANCH_EQ"])[mode].tolist(),
        "nodes_values": value.astype(np.float32),
        "nodes_truenodeids": true.tolist(),
        "nodes_falsenodeids": false.tolist(),
        "nodes_missing_value_tracks_true": missing.astype(np.int64).tolist(),
        "class_treeids": leaf_tree.tolist(),
        "class_nodeids": leaf_id.tolist(),
        "class_ids": (leaf_tree % n_classes).tolist(),
        "class_weights": text.numbers("leaf_value").astype(np.float32),
    }


def _class_labels(classes: Any) -> dict[str, list]:
    import numbers

    if all(isinstance(c, numbers.Real) for c in classes):
        return {"classlabels_int64s": [int(c) for c in classes]}
    if all(isinstance(c, str) for c in classes):
        return {"classlabels_strings": [str(c) for c in classes]}
    raise ValueError("Only string and integer class labels are allowed")


def _add_ensemble(
    container: Any, op_type: str, inputs: list[str], outputs: list[str], name: str, **attrs: Any
) -> None:
    """``container.add_node`` of a ``TreeEnsemble*`` node, its per-node and per-leaf lists
    written into the node's attributes in place: onnx's ``make_node`` would infer each
    list's type element by element and copy every attribute once more (a second or two on
    a forest of 800,000 nodes). Thresholds and leaf weights are written as float tensors
    (``*_as_tensor``), which onnxruntime reads as it reads the lists, in 4 bytes a value
    where a protobuf list of floats takes 5."""
    import numpy as np
    from onnx import AttributeProto, TensorProto

    lists = {k: v for k, v in attrs.items() if k.startswith(_PER_NODE)}
    rest = {k: v for k, v in attrs.items() if k not in lists}
    container.add_node(op_type, inputs, outputs, op_domain="ai.onnx.ml", name=name, **rest)
    node = container.nodes[-1]
    for key in sorted(lists):
        values = lists[key]
        attribute = node.attribute.add()
        attribute.name = key
        if key.endswith(("_values", "_weights")):  # as a tensor: 4 bytes each, where a
            attribute.name = f"{key}_as_tensor"  # list of floats takes 5 (a tag on each)
            attribute.type = AttributeProto.TENSOR
            attribute.t.data_type = TensorProto.FLOAT
            attribute.t.dims.append(len(values))
            attribute.t.raw_data = np.asarray(values, dtype="<f4").tobytes()
            continue
        values = values.tolist() if hasattr(values, "tolist") else values
        if key == "nodes_modes":
            attribute.type = AttributeProto.STRINGS
            attribute.strings.extend(m.encode() for m in values)
        else:
            attribute.type = AttributeProto.INTS
            attribute.ints.extend(values)


def convert_lightgbm(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's converter for LightGBM's classifier and regressor: the tree ensemble from
    :func:`lightgbm_attributes`, or onnxmltools' converter where
    :func:`lightgbm_supported` says the model needs it."""
    model = operator.raw_operator
    text = LightGBMText.of(model.booster_)
    if not lightgbm_supported(model, text):
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import (
            convert_lightgbm as generic,
        )

        generic(scope, operator, container)
        return
    objective = text.objective
    if objective in _CLASSIFIER_LINKS:
        n_classes = int(text.header.get("num_class", 1)) if objective == "multiclass" else 1
        _write_ensemble(
            scope, operator, container, lightgbm_attributes(text, n_classes),
            classes=model.classes_, post_transform=_CLASSIFIER_LINKS[objective],
        )  # fmt: skip
        return
    attrs = {
        (f"target{k[5:]}" if k.startswith("class_") else k): v
        for k, v in lightgbm_attributes(text, 1).items()
    }
    _write_ensemble(
        scope, operator, container, attrs, exp=objective.startswith(_LOG_LINK_OBJECTIVES)
    )


def _write_ensemble(
    scope: Any,
    operator: Any,
    container: Any,
    attrs: dict[str, Any],
    *,
    classes: Any = None,
    post_transform: str = "NONE",
    exp: bool = False,
) -> None:
    """The tree ensemble node as the operator's outputs: a classifier's label and
    probabilities (``classes`` given, ``post_transform`` its link), or a regressor's
    prediction (``exp``: followed by ``Exp``, for a log link)."""
    if classes is not None:
        op, shape = "TreeEnsembleClassifier", _class_labels(classes)
    else:
        op, shape = "TreeEnsembleRegressor", {"n_targets": 1}
    outputs = [o.full_name for o in operator.outputs[:2]]
    if exp:
        outputs = [scope.get_unique_variable_name("output")]
    _add_ensemble(
        container, op, operator.input_full_names, outputs, scope.get_unique_operator_name(op),
        post_transform=post_transform, **shape, **attrs,
    )  # fmt: skip
    if exp:
        container.add_node("Exp", outputs[0], operator.output_full_names)


def _float_thresholds(thresholds: Any) -> Any:
    """scikit-learn's double thresholds as float32 ones that route float32 inputs the same
    way (``x <= t`` in double is ``x <= w`` in float: ``w`` is ``t`` rounded to float, or the
    float below it where rounding went up), as skl2onnx's ``sklearn_threshold`` does one node
    at a time."""
    import numpy as np

    rounded = thresholds.astype(np.float32)
    up = rounded.astype(np.float64) > thresholds
    return np.where(up, np.nextafter(rounded, np.float32(-np.inf)), rounded)


def forest_attributes(forest: Any, classifier: bool) -> dict[str, Any]:
    """The ``TreeEnsemble*`` attributes of a fitted scikit-learn forest (random or extra
    trees, one output), built from each tree's arrays: the forest's mean as every tree's
    weight, a classifier's leaves as class shares (class 1's alone for two classes), the
    thresholds as :func:`_float_thresholds`."""
    import numpy as np

    parts: dict[str, list] = {}
    weight = 1.0 / len(forest.estimators_)
    prefix = "class" if classifier else "target"
    for tree_id, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        ids = np.arange(tree.node_count)
        leaf = (tree.children_left <= ids) & (tree.children_right <= ids)
        split = ~leaf
        values = tree.value[:, 0, :]
        at_leaves = values[leaf]
        if classifier:
            totals = at_leaves.sum(axis=1, keepdims=True)
            at_leaves = at_leaves * (weight / np.where(totals == 0.0, 1.0, totals))
            if at_leaves.shape[1] == 2:
                at_leaves = at_leaves[:, 1:]
        else:
            at_leaves = at_leaves * weight
        outputs = at_leaves.shape[1]
        columns = {
            "nodes_treeids": np.full(tree.node_count, tree_id),
            "nodes_nodeids": ids,
            "nodes_featureids": np.where(split, tree.feature, 0),
            "nodes_modes": np.where(split, "BRANCH_LEQ", "LEAF"),
            "nodes_values": np.where(split, _float_thresholds(tree.threshold), 0.0),
            "nodes_truenodeids": np.where(split, tree.children_left, 0),
            "nodes_falsenodeids": np.where(split, tree.children_right, 0),
            "nodes_missing_value_tracks_true": np.zeros(tree.node_count, dtype=np.int64),
            f"{prefix}_treeids": np.full(at_leaves.size, tree_id),
            f"{prefix}_nodeids": np.repeat(ids[leaf], outputs),
            f"{prefix}_ids": np.tile(np.arange(outputs), len(at_leaves)),
            f"{prefix}_weights": at_leaves.ravel(),
        }
        for name, column in columns.items():
            parts.setdefault(name, []).append(column)
    return _joined(parts)


def _joined(parts: dict[str, list[Any]]) -> dict[str, Any]:
    """Per-tree attribute arrays joined over trees: floats as float32, modes as strings,
    the rest as int lists."""
    import numpy as np

    attrs: dict[str, Any] = {}
    for name, columns in parts.items():
        joined = np.concatenate(columns)
        if name.endswith(("_values", "_weights")):
            attrs[name] = joined.astype(np.float32)
        elif name == "nodes_modes":
            attrs[name] = joined.tolist()
        else:
            attrs[name] = joined.astype(np.int64).tolist()
    return attrs


def _forest_supported(scope: Any, operator: Any) -> bool:
    """Whether :func:`forest_attributes` writes this forest: one output, float32 inputs, and
    none of skl2onnx's extra outputs asked for (decision paths, leaves, raw scores)."""
    from skl2onnx.common.data_types import FloatTensorType

    forest = operator.raw_operator
    asked = {"decision_path": False, "decision_leaf": False}
    if hasattr(forest, "classes_"):
        asked["raw_scores"] = False
    options = scope.get_options(forest, asked)
    return (
        int(getattr(forest, "n_outputs_", 0)) == 1
        and hasattr(forest, "estimators_")
        and isinstance(operator.inputs[0].type, FloatTensorType)
        and not any(options.get(k) for k in asked)
    )


def _skl2onnx_own(scope: Any, operator: Any, container: Any, classifier: bool) -> None:
    """skl2onnx's own converter of a scikit-learn tree ensemble (forests and
    HistGradientBoosting share it), for what honing's graphs do not cover."""
    from skl2onnx.operator_converters import random_forest

    if classifier:
        random_forest.convert_sklearn_random_forest_classifier(scope, operator, container)
    else:
        random_forest.convert_sklearn_random_forest_regressor_converter(scope, operator, container)


def convert_forest(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's converter for a random or extra-trees forest, classifier or regressor, from
    :func:`forest_attributes` (skl2onnx's own for what it does not cover)."""
    forest = operator.raw_operator
    classifier = hasattr(forest, "classes_")
    if not _forest_supported(scope, operator):
        _skl2onnx_own(scope, operator, container, classifier)
        return
    attrs = forest_attributes(forest, classifier=classifier)
    _write_ensemble(scope, operator, container, attrs, classes=getattr(forest, "classes_", None))


#: HistGradientBoosting's links the graph applies: a classifier's (the probability's), or a
#: regressor's (``Exp`` after the sum for a log link).
_HGB_LINKS = {"LogitLink": "LOGISTIC", "MultinomialLogit": "SOFTMAX"}


def hgb_supported(model: Any) -> bool:
    """Whether :func:`hgb_attributes` writes this model: numeric splits only (no categorical
    bitsets), and a link the graph applies (logit, multinomial, identity or log)."""
    link = type(model._loss.link).__name__
    if link not in (*_HGB_LINKS, "IdentityLink", "LogLink"):
        return False
    return not any(p.nodes["is_categorical"].any() for trees in model._predictors for p in trees)


def hgb_attributes(model: Any, classifier: bool) -> dict[str, Any]:
    """The ``TreeEnsemble*`` attributes of a fitted HistGradientBoosting model: every
    iteration's trees (one per class of a multiclass model), thresholds rounded to the
    nearest float, a missing value to the side each split learnt, and the baseline
    prediction as ``base_values``."""
    import numpy as np

    per_iteration = int(model.n_trees_per_iteration_)
    prefix = "class" if classifier else "target"
    parts: dict[str, list] = {}
    for iteration, trees in enumerate(model._predictors):
        for k, predictor in enumerate(trees):
            nodes = predictor.nodes
            tree_id = iteration * per_iteration + k
            ids = np.arange(len(nodes))
            leaf = nodes["is_leaf"].astype(bool)
            split = ~leaf
            columns = {
                "nodes_treeids": np.full(len(nodes), tree_id),
                "nodes_nodeids": ids,
                "nodes_featureids": np.where(split, nodes["feature_idx"], 0),
                "nodes_modes": np.where(split, "BRANCH_LEQ", "LEAF"),
                # rounded to the nearest float, not down as a forest's: served rows are
                # float64 values cast to float32, and a bin edge can be a repeated training
                # value itself (an imputed median), which must go left
                "nodes_values": np.where(split, nodes["num_threshold"].astype(np.float32), 0.0),
                "nodes_truenodeids": np.where(split, nodes["left"], 0),
                "nodes_falsenodeids": np.where(split, nodes["right"], 0),
                "nodes_missing_value_tracks_true": np.where(split, nodes["missing_go_to_left"], 0),
                f"{prefix}_treeids": np.full(int(leaf.sum()), tree_id),
                f"{prefix}_nodeids": ids[leaf],
                f"{prefix}_ids": np.full(int(leaf.sum()), k),
                f"{prefix}_weights": nodes["value"][leaf],
            }
            for name, column in columns.items():
                parts.setdefault(name, []).append(column)
    attrs = _joined(parts)
    attrs["base_values"] = np.ravel(model._baseline_prediction).astype(np.float32).tolist()
    return attrs


def convert_hgb(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's converter for HistGradientBoosting's classifier and regressor, from
    :func:`hgb_attributes` (skl2onnx's own for what it does not cover)."""
    from skl2onnx.common.data_types import FloatTensorType

    model = operator.raw_operator
    classifier = hasattr(model, "classes_")
    raw = scope.get_options(model, {"raw_scores": False}).get("raw_scores")
    if raw or not isinstance(operator.inputs[0].type, FloatTensorType) or not hgb_supported(model):
        _skl2onnx_own(scope, operator, container, classifier)
        return
    link = type(model._loss.link).__name__
    if classifier:
        _write_ensemble(
            scope, operator, container, hgb_attributes(model, classifier=True),
            classes=model.classes_, post_transform=_HGB_LINKS[link],
        )  # fmt: skip
        return
    attrs = hgb_attributes(model, classifier=False)
    _write_ensemble(scope, operator, container, attrs, exp=link == "LogLink")
