"""The inputs a model never reads, cut from its served graph and from its request check.

A tree model splits on some of its features only, and a sparse linear model has zero
coefficients. A raw column none of whose encoded features is read is dead weight:
its encoders stay in the graph, and every request must still carry it. :func:`cut_inputs`
rewrites a fitted pipeline to read only the raw columns its model reads:

1. the features the final estimator reads (:func:`read_features`: the split features of
   every tree of a forest or a HistGradientBoosting model, LightGBM's and XGBoost's
   features with a split, CatBoost's splits, non-zero coefficients) are traced back through
   the selection steps to the encoder's outputs;
2. each group of the fitted ``ColumnTransformer`` is cut to the raw columns behind those
   outputs: its per-column fitted state (imputer statistics, scaler offsets, categories,
   target encodings) is sliced, not fitted again, so the kept columns are encoded exactly
   as before;
3. a :class:`Scatter` puts the kept outputs back at the positions the estimator reads
   (the positions it never reads are filled with a kept column: never read, any value
   does), so the estimator itself is not touched.

The cut is kept only when its answers equal the whole pipeline's on sample rows (the
encoders' outputs and the model's predictions both), so a transformer whose state is not
per column is never cut wrongly: the cut is refused instead. A vote or stack keeps the
columns any member reads, every member cut to that set.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, is_classifier

from honing.compression.members import final_step, vote_members, with_members
from honing.models.tree_graphs import FOREST_NAMES

#: Rows a cut is checked on (the encoders' outputs and the model's answers).
CHECK_ROWS = 256
#: Fitted attributes that are not one entry per input column, whatever their length.
_NOT_PER_COLUMN = frozenset({"classes_", "target_mean_", "n_features_in_"})


class Scatter(TransformerMixin, BaseEstimator):
    """Columns of its input placed at the positions ``index`` names: output column ``j`` is
    input column ``index[j]``. Puts a cut encoder's outputs where the estimator reads them;
    fitting learns nothing."""

    def __init__(self, index: tuple[int, ...] = ()) -> None:
        self.index = index

    def fit(self, X: Any, y: object = None) -> Scatter:
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True  # nothing to learn

    def transform(self, X: Any) -> np.ndarray:
        return np.asarray(X)[:, list(self.index)]


class _Frozen(TransformerMixin, BaseEstimator):
    """A fitted transformer a ``ColumnTransformer`` can be fitted around without fitting it
    again (scikit-learn's ``FrozenEstimator`` passes ``fit_transform`` through)."""

    def __init__(self, fitted: Any = None) -> None:
        self.fitted = fitted

    def __sklearn_clone__(self) -> _Frozen:
        return self

    def fit(self, X: Any, y: object = None) -> _Frozen:
        return self

    def transform(self, X: Any) -> Any:
        return self.fitted.transform(X)


@dataclass(frozen=True)
class InputCut:
    """A pipeline cut to the raw columns its model reads, those columns by kind, and the
    columns it no longer reads."""

    pipeline: Any
    numeric: list[str]
    categorical: list[str]
    dropped: list[str]


def read_features(estimator: Any) -> np.ndarray | None:
    """The positions of the features a fitted estimator reads (sorted); None when it is not
    known (every feature is then read)."""
    name = type(estimator).__name__
    if name in FOREST_NAMES or hasattr(estimator, "tree_"):
        trees = estimator.estimators_ if name in FOREST_NAMES else [estimator]
        features = np.concatenate([t.tree_.feature for t in trees])
        return np.unique(features[features >= 0])
    if hasattr(estimator, "_predictors"):  # HistGradientBoosting: its split nodes' features
        nodes = [p.nodes for trees in estimator._predictors for p in trees]
        return np.unique(np.concatenate([n["feature_idx"][n["is_leaf"] == 0] for n in nodes]))
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    if hasattr(estimator, "booster_"):  # LightGBM: features with a split
        if params.get("linear_tree"):  # its leaves' linear models read more features
            return None
        return np.flatnonzero(estimator.booster_.feature_importance("split"))
    if hasattr(estimator, "tree_count_"):  # CatBoost: the float features its splits name
        return _catboost_features(estimator)
    if hasattr(estimator, "get_booster"):  # XGBoost: features with a split
        if params.get("booster") not in (None, "gbtree", "dart"):
            return None
        booster = estimator.get_booster()
        names = booster.feature_names or [f"f{i}" for i in range(booster.num_features())]
        split = booster.get_score(importance_type="weight")
        return np.asarray(sorted(names.index(k) for k in split), dtype=np.int64)
    coef = getattr(estimator, "coef_", None)
    if coef is not None and type(estimator).__module__.startswith("sklearn.linear_model"):
        return np.flatnonzero(np.any(np.atleast_2d(coef) != 0, axis=0))
    return None


def _catboost_features(model: Any) -> np.ndarray | None:
    from honing.models.catboost_graph import catboost_json

    tree_json = catboost_json(model)
    trees = tree_json.get("oblivious_trees")
    if not trees or set(tree_json.get("features_info", {})) - {"float_features"}:
        return None  # categorical or text features: their indices are not positions
    splits = [s for t in trees for s in t["splits"]]
    if any(s.get("split_type") != "FloatFeature" for s in splits):
        return None
    return np.unique(np.asarray([s["float_feature_index"] for s in splits], dtype=np.int64))


def _read_before(steps: list[Any], read: np.ndarray | None) -> np.ndarray | None:
    """The encoder's outputs behind ``read`` (the estimator's inputs), traced back through
    the selection and projection ``steps`` between them; None when a step is not known."""
    for step in reversed(steps):
        if read is None:
            return None
        if hasattr(step, "get_support"):  # a feature selector
            read = np.asarray(step.get_support(indices=True))[read]
        elif hasattr(step, "components_"):  # a projection (PCA) reads every input it has
            read = np.arange(step.n_features_in_) if len(read) else read
        else:
            return None
    return read


def _sliced(step: Any, keep: list[int]) -> Any:
    """A copy of a fitted per-column step that reads only its input columns ``keep``: each
    fitted attribute with one entry per input column is cut to those entries."""
    n = int(step.n_features_in_)
    out = copy.copy(step)
    per_class = 1
    if getattr(step, "target_type_", None) == "multiclass":  # one encoding per column and class
        per_class = len(step.classes_)
    for key, value in vars(step).items():
        if key in _NOT_PER_COLUMN or not (key.endswith("_") or key.startswith("_")):
            continue
        if not isinstance(value, list | tuple | np.ndarray):
            continue
        if isinstance(value, np.ndarray) and value.ndim == 0:
            continue
        if len(value) != n * (per_class if key == "encodings_" else 1):
            continue
        width = per_class if key == "encodings_" else 1
        picked = [value[j * width + k] for j in keep for k in range(width)]
        setattr(out, key, np.asarray(picked, dtype=value.dtype) if isinstance(value, np.ndarray)
                else type(value)(picked))  # fmt: skip
    out.n_features_in_ = len(keep)
    return out


def _columns(Z: Any, keep: list[int]) -> Any:
    return Z.iloc[:, keep] if isinstance(Z, pd.DataFrame) else np.asarray(Z)[:, keep]


@dataclass
class _Group:
    """One group of a fitted ``ColumnTransformer``: its raw columns, its steps, each step's
    output width per input column, and where its outputs start in the encoder's output."""

    name: str
    columns: list[str]
    steps: list[Any]
    widths: list[list[int]]
    start: int

    def outputs(self, keep: list[int]) -> list[int]:
        """The encoder's output positions of the group's input columns ``keep``."""
        for widths in self.widths:
            keep = _through(widths, keep)
        return [self.start + p for p in keep]

    def cut(self, keep: list[int]) -> Any:
        """The group's transformer reading only its columns ``keep``."""
        from sklearn.pipeline import Pipeline

        steps = []
        for step, widths in zip(self.steps, self.widths, strict=True):
            steps.append(_sliced(step, keep))
            keep = _through(widths, keep)
        return Pipeline([(f"s{i}", s) for i, s in enumerate(steps)]) if len(steps) > 1 else steps[0]


def _through(widths: list[int], keep: list[int]) -> list[int]:
    """The output positions of a step's input columns ``keep``, given each input column's
    output width."""
    ends = np.cumsum([0, *widths])
    return [p for j in keep for p in range(int(ends[j]), int(ends[j + 1]))]


def _groups(encoder: Any, rows: pd.DataFrame) -> list[_Group] | None:
    """The encoder's groups with their per-column widths, measured by passing ``rows``
    through each step cut to one column at a time; None when a group is not a chain of
    steps (a passthrough or a remainder)."""
    groups = []
    for name, transformer, columns in encoder.transformers_:
        if isinstance(transformer, str):
            if transformer == "drop":
                continue
            return None
        steps = [s for _, s in getattr(transformer, "steps", [(name, transformer)])]
        Z: Any = rows[list(columns)]
        widths = []
        for step in steps:
            one = [_sliced(step, [j]) for j in range(int(step.n_features_in_))]
            widths.append([s.transform(_columns(Z, [j])).shape[1] for j, s in enumerate(one)])
            Z = step.transform(Z)
        groups.append(_Group(name, [str(c) for c in columns], steps, widths,
                             encoder.output_indices_[name].start))  # fmt: skip
    return groups


@dataclass
class _Member:
    """One pipeline of the model (the model itself, or a member of its vote or stack): its
    encoder's groups and the raw columns it reads (None: not known)."""

    pipeline: Any
    groups: list[_Group]
    reads: set[str] | None
    positions: list[int]  # the encoder's outputs the rest of the pipeline reads

    @classmethod
    def of(cls, pipeline: Any, rows: pd.DataFrame) -> _Member:
        steps = getattr(pipeline, "steps", [])
        encoder = steps[0][1] if len(steps) >= 2 else None
        groups = _groups(encoder, rows) if hasattr(encoder, "transformers_") else None
        if groups is None:
            return cls(pipeline, [], None, [])
        read = _read_before([s for _, s in steps[1:-1]], read_features(steps[-1][1]))
        if read is None:
            return cls(pipeline, groups, None, [])
        wanted = set(read.tolist())
        reads = {c for g in groups for j, c in enumerate(g.columns) if wanted & set(g.outputs([j]))}
        return cls(pipeline, groups, reads, sorted(wanted))

    def encodes_alike(self, cut: Any, rows: pd.DataFrame) -> bool:
        """Whether the ``cut`` pipeline's encoder (and scatter) gives the outputs the rest of
        the pipeline reads exactly as the whole encoder does."""
        whole = np.asarray(self.pipeline.steps[0][1].transform(rows), dtype=np.float64)
        part = np.asarray(cut[:2].transform(rows), dtype=np.float64)
        at = self.positions
        return whole.shape == part.shape and np.array_equal(
            whole[:, at], part[:, at], equal_nan=True
        )

    def cut(self, kept: set[str], rows: pd.DataFrame) -> Any:
        """The pipeline reading only the raw columns ``kept``: its encoder cut, a
        :class:`Scatter` after it, the rest of its steps shared."""
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        steps = self.pipeline.steps
        parts, old = [], []
        for g in self.groups:
            keep = [j for j, c in enumerate(g.columns) if c in kept]
            if keep:
                parts.append((g.name, _Frozen(g.cut(keep)), [g.columns[j] for j in keep]))
                old += g.outputs(keep)
        encoder = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
        encoder.fit(rows[[c for _, _, cols in parts for c in cols]])
        encoder.transformers_ = [
            (n, t.fitted if isinstance(t, _Frozen) else t, c) for n, t, c in encoder.transformers_
        ]
        width = sum(s.stop - s.start for s in steps[0][1].output_indices_.values())
        new = {p: i for i, p in enumerate(old)}
        scatter = Scatter(tuple(new.get(p, 0) for p in range(width)))
        return Pipeline([(steps[0][0], encoder), ("scatter", scatter), *steps[1:]])


def _answers(model: Any, rows: pd.DataFrame) -> np.ndarray:
    if is_classifier(model):
        return np.asarray(model.predict_proba(rows), dtype=np.float64)
    return np.asarray(model.predict(rows), dtype=np.float64)


def cut_inputs(
    pipeline: Any, numeric: list[str], categorical: list[str], rows: pd.DataFrame
) -> InputCut | None:
    """``pipeline`` reading only the raw columns its model reads, checked on ``rows`` (up to
    :data:`CHECK_ROWS` of them); None when every column is read, when what a step reads is
    not known, or when the cut's answers differ from the whole pipeline's."""
    rows = rows.iloc[:CHECK_ROWS]
    try:
        members = [_Member.of(p, rows) for p in vote_members(pipeline) or [pipeline]]
        if any(m.reads is None for m in members) or _passes_inputs(pipeline):
            return None
        kept = set().union(*[m.reads or set() for m in members])
        declared = list(dict.fromkeys([*numeric, *categorical, *_dates(members[0].groups)]))
        if not kept:  # a constant model still takes one column, to know the batch's rows
            kept = {declared[0]}
        dropped = [c for c in declared if c not in kept]
        if not dropped:
            return None
        cuts = [m.cut(kept, rows) for m in members]
        if not all(m.encodes_alike(c, rows) for m, c in zip(members, cuts, strict=True)):
            return None
        cut = with_members(pipeline, cuts) if vote_members(pipeline) else cuts[0]
        if not np.array_equal(_answers(cut, rows), _answers(pipeline, rows), equal_nan=True):
            return None
    except Exception:  # noqa: BLE001 - a step whose state is not per column, or any other
        return None  # failure of the cut: the graph is served whole, never lost
    return InputCut(
        cut, [c for c in numeric if c in kept], [c for c in categorical if c in kept], dropped
    )


def _dates(groups: list[_Group]) -> list[str]:
    return [c for g in groups if g.name == "dates" for c in g.columns]


def _passes_inputs(model: Any) -> bool:
    """Whether a stack hands the raw features to its final estimator as well."""
    return bool(getattr(final_step(model), "passthrough", False))


def scatter_onnx() -> None:
    """Teach skl2onnx :class:`Scatter`: one ``Gather`` of the input's columns."""
    from skl2onnx import update_registered_converter

    update_registered_converter(Scatter, "HoningScatter", _scatter_shape, _convert_scatter)


def _scatter_shape(operator: Any) -> None:
    source, width = operator.inputs[0], len(operator.raw_operator.index)
    operator.outputs[0].type = type(source.type)([source.get_first_dimension(), width])


def _convert_scatter(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    index = list(operator.raw_operator.index)
    name = scope.get_unique_variable_name("scatter_index")
    container.add_initializer(name, TensorProto.INT64, [len(index)], index)
    container.add_node(
        "Gather", [operator.inputs[0].full_name, name], operator.outputs[0].full_name,
        axis=1, name=scope.get_unique_operator_name("Gather"),
    )  # fmt: skip
