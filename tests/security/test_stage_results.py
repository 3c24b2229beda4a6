"""Reused stage results load with honing's reviewed types only: a stored result that holds
anything else is refused (and the stage then runs again), never executed."""

import base64
import collections

import numpy as np
import pytest

from honing import artifacts
from honing.exceptions import UnsafeModelError
from honing.search import SearchResult, TrialResult
from honing.training import ModelSpec
from honing_flows.results import SkopsResults


def _search() -> SearchResult:
    trial = TrialResult(
        "t0",
        ModelSpec("lightgbm", {"n_estimators": 50}),
        0.81,
        0.01,
        [0.8, 0.82],
        1.5,
        oof=np.array([0.2, 0.7]),
        oof_rows=np.array([0, 1]),
        rung_scores=((1, 0.8, 0.7), (2, 0.81, 1.5)),
    )
    return SearchResult("roc_auc", [trial], wall_s=3.0)


def test_a_stage_result_round_trips_through_the_serializer():
    serializer = SkopsResults()
    blob = serializer.dumps(_search())
    blob.decode("ascii")  # Prefect stores the record as text
    back = serializer.loads(blob)
    assert back.best.score == 0.81 and back.best.spec.params == {"n_estimators": 50}
    assert back.trials[0].rung_scores == ((1, 0.8, 0.7), (2, 0.81, 1.5))
    assert np.array_equal(back.trials[0].oof, [0.2, 0.7])


def test_a_stored_result_with_an_unreviewed_type_is_refused():
    # what a tampered result file would hold: a type outside honing's reviewed lists
    blob = base64.b64encode(artifacts.skops_bytes(collections.Counter(a=1)))
    with pytest.raises(UnsafeModelError, match="collections.Counter"):
        SkopsResults().loads(blob)
