"""The statistical champion/challenger gate: promote, keep or undecidable, on real data."""

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from honing.config import RegistryConfig
from honing.evaluation import evaluate
from honing.modeling.decision import answers
from honing.registry import promotion
from honing.registry.champion import ChampionScore, champion_gate, decide


@pytest.fixture(scope="module")
def churn(churn_df):
    X = churn_df[["tenure", "monthly_charges", "contract", "internet_service"]]
    y = (churn_df["churn"] == "Yes").astype(int).to_numpy()
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def _model(columns, C=1.0):
    from sklearn.compose import make_column_transformer

    cats = [c for c in columns if c in ("contract", "internet_service")]
    nums = [c for c in columns if c not in cats]
    return make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), cats), ("passthrough", nums)
        ),
        LogisticRegression(C=C, max_iter=2000),
    )


def _gate(challenger, champion, X, y, *, metric="roc_auc", margin=0.0, flips=None):
    classes = [0, 1]
    theirs = ChampionScore(
        "1", evaluate(champion, X, y, classes), answers=answers(champion, X, classes)
    )
    cfg = RegistryConfig(
        model_name="m", metric=metric, promotion_margin=margin, max_flip_share=flips
    )
    return decide(evaluate(challenger, X, y, classes), challenger, None, X, y, theirs, cfg)


def test_a_clearly_better_challenger_is_promoted_and_a_worse_one_is_not(churn):
    X_train, X_test, y_train, y_test = churn
    full = _model(list(X_train.columns)).fit(X_train, y_train)
    weak = _model(["monthly_charges"]).fit(X_train, y_train)
    promoted = _gate(full, weak, X_test, y_test)
    assert promoted.promote and promoted.outcome == "promote"
    assert promoted.comparison.method == "DeLong" and promoted.comparison.low > 0
    kept = _gate(weak, full, X_test, y_test)
    assert not kept.promote and kept.outcome == "keep" and "champion" in kept.reason
    # label metrics: a bootstrap interval and McNemar's test
    by_f1 = _gate(full, weak, X_test, y_test, metric="accuracy")
    assert "bootstrap" in by_f1.comparison.method and by_f1.comparison.mcnemar_p is not None


def test_a_small_split_cannot_resolve_two_close_models(churn):
    X_train, X_test, y_train, y_test = churn
    a = _model(list(X_train.columns), C=1.0).fit(X_train, y_train)
    b = _model(list(X_train.columns), C=0.05).fit(X_train, y_train)
    small_X, small_y = X_test.iloc[:150], y_test[:150]
    decision = _gate(a, b, small_X, small_y)
    assert decision.outcome == "undecidable" and not decision.promote
    assert decision.rows_needed is None or decision.rows_needed > 150
    assert "cannot resolve" in decision.reason
    # the point gate would have moved on the same numbers
    point = champion_gate(
        evaluate(a, small_X, small_y, [0, 1]),
        ChampionScore("1", evaluate(b, small_X, small_y, [0, 1])),
        metric="roc_auc",
        margin=0.0,
    )
    assert point.outcome == "" and point.verdict in ("promote", "keep")


def test_too_many_flipped_decisions_keep_the_champion(churn):
    X_train, X_test, y_train, y_test = churn
    full = _model(list(X_train.columns)).fit(X_train, y_train)
    prior = DummyClassifier(strategy="prior").fit(X_train, y_train)
    decision = _gate(full, prior, X_test, y_test, margin=0.5, flips=0.05)
    assert decision.outcome == "keep" and "flip" in decision.reason
    assert decision.comparison.flip_share > 0.05


def test_delong_agrees_with_a_bootstrap(churn):
    X_train, X_test, y_train, y_test = churn
    a = _model(list(X_train.columns)).fit(X_train, y_train).predict_proba(X_test)[:, 1]
    b = _model(["tenure"]).fit(X_train, y_train).predict_proba(X_test)[:, 1]
    diff, se, _ = promotion.delong(y_test, a, b)
    from sklearn.metrics import roc_auc_score

    assert diff == pytest.approx(roc_auc_score(y_test, a) - roc_auc_score(y_test, b))
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(400):
        rows = rng.integers(0, len(y_test), len(y_test))
        boots.append(roc_auc_score(y_test[rows], a[rows]) - roc_auc_score(y_test[rows], b[rows]))
    assert se == pytest.approx(np.std(boots), rel=0.25)


def test_a_split_with_one_row_of_a_class_is_undecidable_not_a_nan(churn):
    """DeLong's variance is taken over each class's rows: one churner gives none. The gate
    says so (no NaN interval, no p-value of 0, no numpy warning) and promotes nothing."""
    import warnings

    X_train, X_test, y_train, y_test = churn
    full = _model(list(X_train.columns)).fit(X_train, y_train)
    weak = _model(["monthly_charges"]).fit(X_train, y_train)
    rows = np.r_[np.flatnonzero(y_test == 1)[:1], np.flatnonzero(y_test == 0)[:60]]
    X, y = X_test.iloc[rows], y_test[rows]
    a, b = full.predict_proba(X)[:, 1], weak.predict_proba(X)[:, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "degrees of freedom <= 0" before
        diff, se, p = promotion.delong(y, a, b)
        decision = _gate(full, weak, X, y)
    from sklearn.metrics import roc_auc_score

    assert diff == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    assert se == np.inf and p == 1.0
    assert not decision.promote and decision.outcome == "undecidable"
    assert "too few rows" in decision.reason and "nan" not in decision.reason
    assert decision.comparison.low == -np.inf and decision.comparison.high == np.inf


def _looks(challenger, champion, X, y, sizes):
    """A test split of ``sizes[0]`` rows, then labelled batches of the next sizes."""
    from honing.registry import sequential

    looks, start = [], 0
    for i, n in enumerate(sizes):
        rows = slice(start, start + n)
        evidence = promotion.Evidence(
            y[rows], answers(challenger, X[rows], [0, 1]), answers(champion, X[rows], [0, 1])
        )
        looks.append(sequential.look(promotion.compare(evidence, "roc_auc"), f"look {i}"))
        start += n
    return looks


def test_evidence_accumulated_over_batches_decides_what_one_split_could_not(churn):
    """Adding the contract to a churn model gains 0.007 of ROC-AUC: 300 test rows cannot
    tell, and neither can any single batch of 450. Pooled, the batches promote it; the
    reverse comparison drops the weaker model. Each further look is held to a stricter
    confidence, so that repeated looks do not inflate the error rate."""
    from honing.registry.sequential import judge_looks

    X_train, X_test, y_train, y_test = churn
    full = _model(list(X_train.columns)).fit(X_train, y_train)
    fewer = _model(["tenure", "monthly_charges", "contract"]).fit(X_train, y_train)
    sizes = [300, 450, 450, 450, 450]
    looks = _looks(full, fewer, X_test, y_test, sizes)
    single = [judge_looks([lk], metric="roc_auc", margin=0.0, confidence=0.95, seeded=False)
              for lk in looks]  # fmt: skip
    assert all(v.outcome == "undecidable" for v in single[:2]), single
    verdicts = [
        judge_looks(looks[: k + 1], metric="roc_auc", margin=0.0, confidence=0.95, seeded=True)
        for k in range(len(looks))
    ]
    assert verdicts[0].outcome == "undecidable"
    levels = [v.confidence for v in verdicts[1:]]
    assert levels == sorted(levels) and levels[0] == pytest.approx(0.975)  # alpha / 2**k
    decided = next(v for v in verdicts if v.outcome != "undecidable")
    assert decided.outcome == "promote" and decided.low > 0, [v.reason for v in verdicts]
    assert "pooled over" in decided.reason

    backwards = _looks(fewer, full, X_test, y_test, sizes)
    last = judge_looks(backwards, metric="roc_auc", margin=0.0, confidence=0.95, seeded=True)
    assert last.outcome == "drop" and last.high < 0
    # an error metric reads the interval the other way round
    rmse = judge_looks(backwards, metric="rmse", margin=0.0, confidence=0.95, seeded=True)
    assert rmse.outcome == "promote"


def test_the_registered_models_story_is_bounded_newest_first_and_one_line_per_move():
    from types import SimpleNamespace

    from honing.registry.describe import model_description

    moves = [
        SimpleNamespace(alias="champion", version=str(v), previous=str(v - 1) if v > 1 else None,
                        by="training run abc", reason=f"gate promote | line\nbreak {v}",
                        at=v * 86400.0)
        for v in range(1, 26)
    ]  # fmt: skip
    moves.append(SimpleNamespace(alias="challenger", version="", previous="7", by="gate",
                                 reason="dropped", at=30 * 86400.0))  # fmt: skip
    text = model_description("m", moves, limit=20)
    assert text.startswith("**m** now: `@challenger` none · `@champion` [v25](#/models/m/")
    rows = [line for line in text.splitlines() if line.startswith("| 19")]
    assert len(rows) == 20 and "dropped" in rows[0] and "break 25" in rows[1]
    assert "6 older moves not shown" in text
    assert all(row.count("|") == 7 for row in rows)  # a pipe or a line break in a reason
