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
