"""A booster student: one LightGBM model trained on a model's own answers, as AutoGluon's
``distill`` trains its students on an ensemble's.

Ensemble selection's vote of several boosted pipelines usually wins the search, and it is
served as all its members side by side. Its student learns the vote's answers (soft labels,
mixed with the true labels as the MLP student's are) on the training rows, through the
model's own fitted features, so it is one booster of a size chosen here rather than by the
search: a smaller graph and one tree walk per round instead of one per member.

Soft labels need no custom loss: each training row is repeated once per class, labelled with
that class and weighted by its target probability. Log loss summed over the copies is then
exactly the cross-entropy against the soft target, and the student is a plain
``LGBMClassifier`` that every converter and runtime already knows. A regression student
learns the mixed target directly."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

from honing.compression.candidates import LIGHTGBM_NODE_S, LIGHTGBM_TREE_S, n_parameters, torch_mlp
from honing.compression.members import final_step, vote_members

#: The student's boosting rounds at most (early stopping on held-out rows decides), its
#: learning rate at that many rounds, and its leaves.
STUDENT_ROUNDS = 400
STUDENT_RATE = 0.08
STUDENT_LEAVES = 31
#: The student's tree nodes at most, as a share of its teacher's: fewer rounds (at a higher
#: rate, :data:`MAX_RATE` at most) where the teacher is small, so that the student is the
#: smaller model. A student of up to :data:`MIN_ROUNDS` rounds is always allowed: on
#: attrition a vote of 1,800 nodes (a logistic regression and two small boosters) left its
#: student 15 rounds and 1.8 points of ROC-AUC below it; at 100 rounds it was level (0.8265
#: against 0.8272), and still a small graph beside the vote's native file.
SIZE_SHARE = 0.5
MAX_RATE = 0.3
MIN_ROUNDS = 100
#: Rounds without improvement on the held-out rows before the student stops growing.
STUDENT_PATIENCE = 30
#: Training rows times classes the student learns from at most (a sample of the rows beyond).
STUDENT_MAX_CELLS = 200_000
#: Share of the rows held out to stop the student's rounds; fewer rows than
#: :data:`STUDENT_MIN_ROWS` are not worth a student.
STUDENT_HOLDOUT = 0.1
STUDENT_MIN_ROWS = 100
#: The teacher answers this many training rows first; its pace on them decides how many more
#: it answers for the student, within :data:`ANSWER_SHARE` of the time to the deadline (a
#: vote of boosters answers a few thousand rows a second: 100,000 rows of a large table
#: would take compression's whole time).
FIRST_ROWS = 2_000
ANSWER_SHARE = 0.3
#: Soft-label copies weighted below this are dropped (a 30-class table keeps few per row).
MIN_WEIGHT = 1e-4
#: Synthetic rows a student also learns from, labelled by its teacher alone (as AutoGluon's
#: distillation augments its students' data): this many per training row, up to a table of
#: :data:`AUGMENT_UP_TO` rows, and no more than the teacher answers in
#: :data:`AUGMENT_SHARE` of the time left. A small table's own rows teach a student little
#: of its teacher's function: on attrition's 1,176 rows a student of a three-model vote fell
#: 3.8 points of ROC-AUC below it.
AUGMENT_FACTOR = 5
AUGMENT_UP_TO = 20_000
AUGMENT_SHARE = 0.3
#: A synthetic row is a random training row with this share of its cells redrawn from their
#: column, and (as often) its numbers jittered by this share of their column's spread.
PERTURB = 0.1


@dataclass(frozen=True)
class Student:
    """A fitted student pipeline (the teacher's feature steps, then the booster) and what it
    learned from, in words."""

    pipeline: Pipeline
    note: str


def _rows(Z: Any, index: np.ndarray) -> Any:
    return Z.iloc[index] if isinstance(Z, pd.DataFrame) else Z[index]


def _stack(parts: list[Any]) -> Any:
    if isinstance(parts[0], pd.DataFrame):
        return pd.concat(parts, ignore_index=True)
    if hasattr(parts[0], "tocsr"):
        import scipy.sparse as sp

        return sp.vstack(parts, format="csr")
    return np.vstack(parts)


def _soft_copies(
    Z: Any, target: np.ndarray, classes: np.ndarray
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Each row once per class, labelled with it and weighted by its target probability
    (copies of negligible weight dropped)."""
    keep = [np.flatnonzero(target[:, k] >= MIN_WEIGHT) for k in range(len(classes))]
    X = _stack([_rows(Z, rows) for rows in keep])
    y = np.concatenate([np.repeat(classes[k : k + 1], len(rows)) for k, rows in enumerate(keep)])
    w = np.concatenate([target[rows, k] for k, rows in enumerate(keep)])
    return X, y, w


def synthetic_rows(X: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` rows near ``X``'s: each a copy of a random row of it, with each cell redrawn from
    its column with probability :data:`PERTURB`, and each number jittered (as often) by
    :data:`PERTURB` of its column's standard deviation; missing values stay missing."""
    rows = X.iloc[rng.integers(0, len(X), n)].reset_index(drop=True)
    for column in X.columns:
        redraw = rng.random(n) < PERTURB
        if redraw.any():
            drawn = X[column].iloc[rng.integers(0, len(X), int(redraw.sum()))].to_numpy()
            rows.loc[redraw, column] = drawn
        values = rows[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            spread = float(np.nanstd(X[column].to_numpy(dtype=np.float64)))
            jitter = rng.normal(scale=PERTURB * spread, size=n) * (rng.random(n) < PERTURB)
            rows[column] = values.astype(np.float64) + jitter
    return rows


def _augmented(
    X: pd.DataFrame, room: int, answers_s: float, deadline: float | None, seed: int
) -> pd.DataFrame | None:
    """Synthetic rows for a student whose teacher answered ``X`` in ``answers_s``: as many as
    :data:`AUGMENT_FACTOR` and :data:`AUGMENT_UP_TO` allow, at most ``room``, and what the
    teacher's pace answers in :data:`AUGMENT_SHARE` of the time to ``deadline``; None:
    none."""
    n = min(AUGMENT_FACTOR * len(X), max(0, AUGMENT_UP_TO - len(X)), room)
    if deadline is not None:
        pace = len(X) / max(answers_s, 1e-3)
        n = min(n, int(pace * AUGMENT_SHARE * max(deadline - time.time(), 0.0)))
    if n < len(X) // 2:
        return None
    return synthetic_rows(X, n, np.random.default_rng(seed + 1))


class _Deadline:
    """A LightGBM callback that ends training once ``time.time()`` passes ``deadline``."""

    order = 30

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __call__(self, env: Any) -> None:
        if self.deadline is not None and time.time() > self.deadline:
            from lightgbm.callback import EarlyStopException

            raise EarlyStopException(env.iteration, env.evaluation_result_list)


def student_rounds(teacher_nodes: int | None, classes: int) -> tuple[int, float]:
    """Rounds and learning rate of a student whose teacher has ``teacher_nodes`` tree nodes
    (or coefficients; None: unknown) and ``classes`` classes (0: regression): at most
    :data:`SIZE_SHARE` of the teacher's nodes, the rate raised as the square root of the
    rounds given up."""
    if teacher_nodes is None:
        return STUDENT_ROUNDS, STUDENT_RATE
    trees_per_round = classes if classes > 2 else 1
    affordable = SIZE_SHARE * teacher_nodes / ((2 * STUDENT_LEAVES - 1) * trees_per_round)
    rounds = int(min(STUDENT_ROUNDS, max(MIN_ROUNDS, affordable)))
    return rounds, min(MAX_RATE, STUDENT_RATE * (STUDENT_ROUNDS / rounds) ** 0.5)


#: Estimators with no ONNX converter, by class name (every family's has one today).
NO_CONVERTER: tuple[str, ...] = ()


def exportable(model: Any) -> bool:
    """Whether ``model`` (a pipeline, or a vote or stack of them) has an ONNX graph: no
    estimator of :data:`NO_CONVERTER` (date features are fed to the graph as their parts,
    :mod:`honing.compression.onnx`). The planner asks before compression, so that a model with
    none spends no time on it."""
    members = vote_members(model) or [model]
    return all(type(final_step(m)).__name__ not in NO_CONVERTER for m in members)


def student_nodes(teacher: Any, classes: int) -> int | None:
    """The most tree nodes a booster student of ``teacher`` may have (``classes``: 0 for
    regression), for the planner to cost its export before it exists; None where no student
    applies (a linear model or the MLP: each is smaller than a student)."""
    if torch_mlp(teacher) is not None or hasattr(final_step(teacher), "coef_"):
        return None
    rounds, _ = student_rounds(n_parameters(teacher), classes)
    return rounds * (2 * STUDENT_LEAVES - 1) * (classes if classes > 2 else 1)


def student_export_seconds(teacher: Any, classes: int) -> float | None:
    """What the ONNX export of a booster student of ``teacher`` takes at most beyond the
    stage's fixed part (its trees and nodes at LightGBM's rates,
    :data:`~honing.compression.candidates.LIGHTGBM_TREE_S` and ``LIGHTGBM_NODE_S``
    each), for the planner to cost it before it exists; None where no student applies."""
    nodes = student_nodes(teacher, classes)
    if nodes is None:
        return None
    return LIGHTGBM_TREE_S * nodes / (2 * STUDENT_LEAVES - 1) + LIGHTGBM_NODE_S * nodes


def booster_student(
    teacher: Any,
    features: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    alpha: float,
    seed: int,
    teacher_nodes: int | None = None,
    deadline: float | None = None,
) -> Student | None:
    """A LightGBM student of ``teacher`` on its fitted ``features``, trained on the teacher's
    answers for ``X`` (weight ``alpha``) mixed with the labels ``y`` (weight ``1 - alpha``),
    and on synthetic rows it labels (:func:`synthetic_rows`), as many of either as the
    teacher's pace affords before ``deadline``; its rounds bounded by the teacher's size
    (:func:`student_rounds`) and stopped early on held-out rows or at ``deadline``; None on
    fewer rows than :data:`STUDENT_MIN_ROWS`."""
    import lightgbm as lgb

    classify = is_classifier(teacher)
    classes = np.asarray(teacher.classes_) if classify else np.array([0])
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(X))[: max(1, STUDENT_MAX_CELLS // len(classes))]
    if len(rows) < STUDENT_MIN_ROWS:
        return None
    answer = teacher.predict_proba if classify else teacher.predict
    started = time.monotonic()  # the teacher's pace on a first chunk sizes the rest
    soft = np.asarray(answer(X.iloc[rows[:FIRST_ROWS]]), dtype=np.float64)
    if deadline is not None and len(rows) > FIRST_ROWS:
        pace = FIRST_ROWS / max(time.monotonic() - started, 1e-3)
        affordable = int(pace * ANSWER_SHARE * max(deadline - time.time(), 0.0))
        rows = rows[: max(FIRST_ROWS, affordable)]
    if len(rows) > FIRST_ROWS:
        more = np.asarray(answer(X.iloc[rows[FIRST_ROWS:]]), dtype=np.float64)
        soft = np.concatenate([soft, more])
    X, y = X.iloc[rows], np.asarray(y)[rows]
    if classify:
        target = alpha * soft + (1 - alpha) * (y[:, None] == classes[None, :])
    else:
        target = alpha * soft + (1 - alpha) * y
    held = max(1, int(STUDENT_HOLDOUT * len(rows)))  # real rows judge the student's rounds
    room = STUDENT_MAX_CELLS // len(classes) - len(rows)
    extra = _augmented(X.iloc[held:], room, time.monotonic() - started, deadline, seed)
    if extra is not None:  # synthetic rows learn the teacher's answers alone
        X = pd.concat([X, extra], ignore_index=True)
        target = np.concatenate([target, np.asarray(answer(extra), dtype=np.float64)])
    Z = features.transform(X)
    fit_rows, held_rows = np.arange(held, len(X)), np.arange(held)
    n_rounds, rate = student_rounds(teacher_nodes, len(classes) if classify else 0)
    params = {
        "n_estimators": n_rounds,
        "learning_rate": rate,
        "num_leaves": STUDENT_LEAVES,
        "random_state": seed,
        "verbose": -1,
    }
    callbacks = [lgb.early_stopping(STUDENT_PATIENCE, verbose=False), _Deadline(deadline)]
    if classify:
        Xf, yf, wf = _soft_copies(_rows(Z, fit_rows), target[fit_rows], classes)
        Xh, yh, wh = _soft_copies(_rows(Z, held_rows), target[held_rows], classes)
        model: Any = lgb.LGBMClassifier(**params)
        model.fit(
            Xf, yf, sample_weight=wf, eval_X=(Xh,), eval_y=(yh,), eval_sample_weight=[wh],
            callbacks=callbacks,
        )  # fmt: skip
    else:
        model = lgb.LGBMRegressor(**params)
        model.fit(
            _rows(Z, fit_rows), target[fit_rows], eval_X=(_rows(Z, held_rows),),
            eval_y=(target[held_rows],), callbacks=callbacks,
        )  # fmt: skip
    if classify and len(model.classes_) != len(classes):
        return None  # a class the sampled rows never showed (the teacher's answers must match)
    kept = model.best_iteration_ or model.n_estimators
    if kept < model.booster_.current_iteration():  # serve only the rounds it kept
        model.booster_.model_from_string(model.booster_.model_to_string(num_iteration=kept))
    pipeline = Pipeline([*features.steps, ("model", model)])
    made = "" if extra is None else f" and {len(extra):,} synthetic ones"
    note = (
        f"one LightGBM of {model.booster_.current_iteration()} rounds ({n_rounds} allowed, "
        f"rate {rate:.3g}), learned from the model's answers on {len(rows):,} training rows"
        f"{made}"
    )
    return Student(pipeline, note)
