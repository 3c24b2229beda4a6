"""Requests scored many at a time (`honing.serving.scoring`) get the answers they would get alone:
the same predictions, their own refusals, and the model's error only where it breaks."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from honing.modeling.decision import Decided, DecisionRule
from honing.serving import scoring

SUITE = {
    "name": "requests",
    "expectations": [
        {"type": "expect_table_columns_to_match_set",
         "kwargs": {"column_set": ["size", "kind"], "exact_match": True}},
        {"type": "expect_column_values_to_be_in_type_list",
         "kwargs": {"column": "size", "type_list": ["int64", "float64"]}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "size", "min_value": 0, "max_value": 1000}},
        {"type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "kind", "value_set": ["a", "b"]}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "kind"}},
    ],
}  # fmt: skip


def _guard(frame: pd.DataFrame) -> pd.DataFrame:
    if (frame["size"] == 666).any():
        raise ValueError("size 666 breaks the model")
    return frame


@pytest.fixture(scope="module")
def model() -> Decided:
    X = pd.DataFrame({"size": [1.0, 2, 3, 4, 5, 6, 7, 8], "kind": list("abababab")})
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    columns = ColumnTransformer(
        [("n", SimpleImputer(), ["size"]), ("c", OneHotEncoder(handle_unknown="ignore"), ["kind"])]
    )
    pipe = make_pipeline(FunctionTransformer(_guard), columns, LogisticRegression()).fit(X, y)
    return Decided(pipe, DecisionRule(["no", "yes"], 0.5))


def _alone(model, requests, suite=SUITE):
    return [scoring.score_many(model, suite, [r])[0] for r in requests]


def _same(together, alone):
    """The same answers: the same refusals, labels and keys, and the same numbers up to a
    matrix product's last bits (a row's product in a batch may be summed in another order
    than alone, by the BLAS kernel that the CPU and the number of rows select)."""
    assert len(together) == len(alone)
    for a, b in zip(together, alone, strict=True):
        assert type(a) is type(b)
        if isinstance(a, scoring.Answer):
            assert len(a.predictions) == len(b.predictions)
            for x, y in zip(a.predictions, b.predictions, strict=True):
                assert x.keys() == y.keys()
                assert {k: v for k, v in x.items() if not isinstance(v, float)} == {
                    k: v for k, v in y.items() if not isinstance(v, float)
                }
                assert {k: v for k, v in x.items() if isinstance(v, float)} == pytest.approx(
                    {k: v for k, v in y.items() if isinstance(v, float)}, rel=1e-12, abs=0
                )
        else:
            assert str(a) == str(b)


def test_requests_scored_together_answer_as_they_would_alone(model):
    payloads = [
        {"dataframe_records": [{"size": s, "kind": k}]}
        for s, k in [(1.5, "a"), (7.0, "b"), (3.0, "b"), (9.5, "a")]
    ]
    payloads += [
        [{"size": 2, "kind": "a"}, {"size": 8, "kind": "b"}],  # ints: a group of their own
        {"dataframe_split": {"columns": ["size", "kind"], "data": [[4.0, "a"], [6.0, "b"]]}},
        {"dataframe_records": [{"kind": "b", "size": 5.0}]},  # another column order
        {"dataframe_records": [{"size": 5.0, "kind": "a"}, {"size": None, "kind": "b"}]},
    ]
    requests = [scoring.parse(p) for p in payloads]
    assert len({r.key for r in requests[:4]}) == 1 and requests[4].key != requests[0].key
    assert requests[5].frame is not None and requests[7].frame is not None  # scored alone
    together = scoring.score_many(model, SUITE, requests, inputs=True)
    _same(together, _alone(model, requests))
    assert [len(a.predictions) for a in together] == [1, 1, 1, 1, 2, 2, 1, 2]
    assert together[0].inputs == [{"size": 1.5, "kind": "a"}]  # the rows as sent
    expected = model.outputs(pd.DataFrame({"size": [1.5, 7.0], "kind": ["a", "b"]}))
    got = [together[i].predictions[0]["probability"] for i in (0, 1)]
    np.testing.assert_allclose(got, expected["probability"], rtol=1e-12)


def test_a_refused_request_hears_its_own_failures_and_the_others_are_answered(model):
    good = [{"dataframe_records": [{"size": float(s), "kind": "a"}]} for s in range(1, 5)]
    unseen = {"dataframe_records": [{"size": 2.0, "kind": "z"}]}  # same kinds: same group
    text = {"dataframe_records": [{"size": "big", "kind": "a"}]}  # a kind of its own
    requests = [scoring.parse(p) for p in [*good[:2], unseen, text, *good[2:]]]
    results = scoring.score_many(model, SUITE, requests)
    _same(results, _alone(model, requests))
    assert [type(r).__name__ for r in results] == [
        "Answer", "Answer", "RequestError", "RequestError", "Answer", "Answer"
    ]  # fmt: skip
    assert results[2].status == 422 and "'kind'" in str(results[2])
    assert "expect_column_values_to_be_in_set" in str(results[2])
    assert "'size'" in str(results[3])


def test_a_request_that_breaks_the_model_fails_alone(model):
    payloads = [{"dataframe_records": [{"size": s, "kind": "b"}]} for s in (1.0, 666.0, 3.0)]
    results = scoring.score_many(model, SUITE, [scoring.parse(p) for p in payloads])
    assert isinstance(results[1], ValueError) and "666" in str(results[1])
    assert all(isinstance(results[i], scoring.Answer) for i in (0, 2))


def test_a_rule_with_a_share_is_judged_on_each_request_not_on_the_batch(model):
    suite = copy.deepcopy(SUITE)
    suite["expectations"][3]["kwargs"]["mostly"] = 0.5  # half of a request's kinds may be new
    one_bad = {"dataframe_records": [{"size": 1.0, "kind": "z"}]}  # 100% new: refused
    good = {"dataframe_records": [{"size": 2.0, "kind": "a"}, {"size": 3.0, "kind": "b"}]}
    requests = [scoring.parse(p) for p in (one_bad, good, good)]  # batched: 1 of 5 new
    results = scoring.score_many(model, suite, requests)
    _same(results, _alone(model, requests, suite))
    assert isinstance(results[0], scoring.RequestError)
    assert all(isinstance(r, scoring.Answer) for r in results[1:])


def test_the_shape_of_a_request_is_refused_before_it_is_queued():
    for payload, status in [
        ({"rows": []}, 400),
        ({"dataframe_records": []}, 400),
        ({"dataframe_records": [1, 2]}, 400),
        ([{"size": 1.0, "kind": "a"}] * (scoring.MAX_ROWS + 1), 413),
        ({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}, 400),
    ]:
        with pytest.raises(scoring.RequestError) as refused:
            scoring.parse(payload)
        assert refused.value.status == status


def test_a_request_missing_a_column_is_refused_naming_it_and_the_rule():
    """The columns' rule belongs to the whole table: the 422 says "the request's columns"
    (no placeholder column name), the rule, and which column is missing."""
    refused = scoring.refusal(pd.DataFrame({"size": [1.0]}), SUITE)
    assert refused is not None and refused.status == 422
    message = str(refused)
    assert message.startswith("the request's columns: rule expect_table_columns_to_match_set")
    assert "'missing': ['kind']" in message and "<table>" not in message
