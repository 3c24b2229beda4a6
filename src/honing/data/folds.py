"""Validation splits: k-fold (stratified for classifiers), one holdout, forward folds for rows
in time order, and group folds that keep an entity's rows together. Every trial, ensemble,
nested CV and decision rule of a run validates on the splits these functions make."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.model_selection import KFold, StratifiedKFold

from honing.data import group_holdout_rows, holdout_rows, pinned_rows


def splits_for(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    folds: int,
    seed: int,
    holdout: float | None,
    forward_gap: int | None = None,
    groups: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The validation splits: k-fold (stratified for classifiers), or one holdout of that
    share. A class with a single row is on the training side of every split. Every trial
    and ensemble uses the same splits for the same seed.

    With ``forward_gap`` (rows in time order), every split is forward: expanding-window
    folds (scikit-learn's ``TimeSeriesSplit``), or the newest ``holdout`` share of the rows
    validating a model trained on the rows before them, ``forward_gap`` rows apart.

    With ``groups`` (one per row), a group's rows are on one side of every split: group
    k-fold (stratified for classifiers), with at most as many folds as groups, or about a
    ``holdout`` share of the groups held out."""
    if forward_gap is not None:
        return forward_splits(len(y), folds=folds, holdout=holdout, gap=forward_gap)
    if groups is not None:
        return group_splits(y, groups, folds=folds, seed=seed, holdout=holdout,
                            stratify=is_classifier(model))  # fmt: skip
    classify = is_classifier(model)
    if holdout:
        train, valid = holdout_rows(y, holdout, seed=seed, stratify=classify)
        return [(np.sort(train), np.sort(valid))]
    if not classify:
        return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y))
    codes = np.asarray(y, dtype=int)
    rows = np.arange(len(codes))
    single = np.bincount(codes)[codes] < 2  # never validated: every fold trains on them
    pool = rows[~single]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [
        (np.sort(np.concatenate([pool[t], rows[single]])), pool[v])
        for t, v in splitter.split(pool, codes[~single])
    ]


def group_splits(
    y: np.ndarray,
    groups: np.ndarray,
    *,
    folds: int,
    seed: int,
    holdout: float | None,
    stratify: bool,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Validation splits that keep each group's rows together (see :func:`splits_for`)."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    if len(groups) != len(y):
        raise ValueError(f"{len(groups)} groups for {len(y)} rows")
    codes = np.asarray(y, dtype=int) if stratify else None
    if holdout:
        return [group_holdout_rows(groups, holdout, seed=seed, codes=codes)]
    rows = np.arange(len(y))
    pinned = pinned_rows(groups, codes)  # on the training side of every fold
    pool = rows[~pinned]
    k = min(folds, len(np.unique(groups[pool])))
    if k < 2:
        raise ValueError("split.group_column: fewer than two groups to validate on")
    if stratify:
        splitter: Any = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [
        (np.sort(np.concatenate([pool[t], rows[pinned]])), np.sort(pool[v]))
        for t, v in splitter.split(pool.reshape(-1, 1), y[pool], groups[pool])
    ]


def forward_splits(
    rows: int, *, folds: int, holdout: float | None, gap: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Forward validation splits of ``rows`` rows in time order (see :func:`splits_for`)."""
    from sklearn.model_selection import TimeSeriesSplit

    if holdout:
        cut = rows - max(1, int(round(holdout * rows)))
        return [(np.arange(max(1, cut - gap)), np.arange(cut, rows))]
    return [
        (np.asarray(t), np.asarray(v))
        for t, v in TimeSeriesSplit(n_splits=folds, gap=gap).split(np.arange(rows))
    ]
