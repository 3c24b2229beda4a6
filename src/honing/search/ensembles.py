"""Ensembles of the search trials, kept only when they beat the best single model.

* **Ensemble selection** (Caruana et al., 2004; as in auto-sklearn and AutoGluon): every trial
  keeps its out-of-fold predictions, and members are added greedily, with replacement, to the
  average that scores best on those predictions. It costs no fitting to score; only the
  chosen members are refit, as a weighted soft vote.
* **Stacking** and plain soft voting of the top-k trials (an option): cross-validated by
  :func:`honing.modeling.training.train_model` on the same folds as the trials.

The pure :func:`choose` then decides which model is refit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from honing.config import EnsembleConfig
from honing.metrics import metric_value, score_predictions
from honing.modeling.training import CVResult, ModelSpec, TrainingSetup, train_model
from honing.models import FAMILY_TABLE
from honing.models.boosters import MIN_FIT_ROUNDS, scaled_rate
from honing.search import SearchResult, TrialResult


def ensemble_specs(result: SearchResult, cfg: EnsembleConfig) -> list[ModelSpec]:
    """One spec per configured method over the ``top_k`` best distinct finished trials (none
    when fewer than two finished)."""
    seen: set[str] = set()
    top: list[TrialResult] = []
    for trial in sorted(result.completed, key=lambda t: -(t.score or 0.0)):
        if trial.spec.label() not in seen:
            seen.add(trial.spec.label())
            top.append(trial)
        if len(top) == cfg.top_k:
            break
    if len(top) < 2:
        return []
    members = [asdict(t.spec) for t in top]
    return [ModelSpec(method, {"members": members}) for method in cfg.methods]


#: Cost of cross-validating an ensemble relative to the sum of its members' CV times: soft
#: voting refits each member once per fold; stacking also fits them on 3 inner folds.
COST_FACTOR = {"soft_voting": 1.0, "stacking": 4.0}


def affordable(
    specs: list[ModelSpec], result: SearchResult, time_left_s: float | None, rows: int
) -> tuple[list[ModelSpec], list[str]]:
    """The ensemble specs whose estimated CV cost (members' measured CV seconds times
    :data:`COST_FACTOR`, on ``rows`` training rows) fits in what is left of the time budget;
    notes for those skipped.
    ``time_left_s=None``: no budget, all are kept."""
    if time_left_s is None:
        return specs, []
    seconds = {
        t.spec.label(): (t.fit_seconds or 0.0) * unsampled(t, rows) for t in result.completed
    }
    kept, notes = [], []
    for spec in specs:
        members = [ModelSpec(**m).label() for m in spec.params["members"]]
        cost = COST_FACTOR[spec.family] * sum(seconds.get(m, 0.0) for m in members)
        if cost <= time_left_s:
            kept.append(spec)
        else:
            notes.append(
                f"{spec.family} skipped: needs ~{cost:.0f}s, {max(time_left_s, 0):.0f}s "
                "of the time budget left"
            )
    return kept, notes


@dataclass(frozen=True)
class Selection:
    """The outcome of ensemble selection: a weighted soft vote (``spec``), its score on the
    out-of-fold rows and the best single trial's on the same rows (greater-is-better), and
    the estimated seconds to refit its members."""

    spec: ModelSpec
    score: float
    best_single: float
    refit_s: float
    rounds: int
    oof: np.ndarray | None = field(default=None, repr=False, compare=False)
    oof_rows: np.ndarray | None = field(default=None, repr=False, compare=False)

    def describe(self, metric: str) -> str:
        members = self.spec.params["members"]
        parts = ", ".join(
            f"{w:.2f} {m['family']}"
            for m, w in sorted(
                zip(members, self.spec.params["weights"], strict=True), key=lambda mw: -mw[1]
            )
        )
        return (
            f"ensemble selection of {len(members)} trials ({parts}): out-of-fold {metric} "
            f"{metric_value(metric, self.score):.4f} vs best single "
            f"{metric_value(metric, self.best_single):.4f}"
        )


def refit_seconds(trial: TrialResult, rows: int) -> float:
    """Estimated seconds to fit ``trial`` once on all ``rows`` training rows: its mean
    validation fit time, scaled up for the larger training set (by the rows a sampled trial
    did not fit: a forest of 10,000 rows refit on 260,000 takes about 26 times as long)."""
    fits = max(len(trial.fold_scores), 1)
    return float(trial.fit_seconds or 0.0) / fits * 1.3 * unsampled(trial, rows)


def unsampled(trial: TrialResult, rows: int) -> float:
    """How many times its own seconds ``trial`` takes on all ``rows`` rows: the rows its
    sample left out (1 for a trial on all rows)."""
    return max(1.0, rows / trial.fit_rows) if trial.fit_rows else 1.0


#: A boosted refit cut to the rounds its time affords keeps at least
#: :data:`honing.models.boosters.MIN_FIT_ROUNDS` rounds, and at least this share of its
#: rounds, whatever the estimate says: a trial's seconds can overstate its refit many times
#: (a cold, loaded process), and a deep cut is a worse model than a late one. A 22-class
#: LightGBM of 40 rounds, costed at 6 s for a 2 s refit, cut to 14 rounds at rate 0.29,
#: scored 0.77 test ROC-AUC where its trial had 0.999; at 20 rounds and rate 0.2, 0.999.
MIN_REFIT_SHARE = 0.5
#: How much faster a boosting library fits on ``n`` threads than on one: ``n ** THREAD_GAIN``
#: (LightGBM, XGBoost and CatBoost gain about 1.6x from a second core). Trials on Ray fit on
#: the CPUs each holds (one by default); the refit fits on every core.
THREAD_GAIN = 0.7


def affordable_rounds(
    trial: TrialResult, rows: int, refit_s: float | None, *, threads: int = 1, classes: int = 2
) -> tuple[TrialResult, str | None]:
    """A boosted ``trial`` with the rounds that its refit on all ``rows`` affords in
    ``refit_s`` seconds on ``threads`` threads, and a note, when its estimate
    (:func:`refit_seconds`, less what threads its trial did not have gain) is longer; else
    itself.
    The rounds shrink in proportion (a boosted round costs about the same all along), to no
    fewer than :data:`MIN_REFIT_SHARE` of them (past that the refit runs late), and the
    learning rate grows by as much (:func:`honing.models.boosters.scaled_rate`; kept for
    more than two ``classes``): the same way down the loss in fewer, larger steps, where the
    configured rate cut short would underfit. A trial
    fitted on a sample is not costed (its seconds were mostly scoring and warming up: see
    :func:`refittable_best`); the search fitted its best ones on all rows."""
    family = FAMILY_TABLE.get(trial.spec.family)
    rounds = int(trial.spec.params.get("n_estimators") or 0)
    if refit_s is None or trial.fit_rows or family is None or family.booster is None or not rounds:
        return trial, None
    gain = max(1.0, threads / max(trial.threads, 1)) ** THREAD_GAIN
    estimate = refit_seconds(trial, rows) / gain
    if estimate <= refit_s or rounds <= MIN_FIT_ROUNDS:
        return trial, None
    affords = int(rounds * max(refit_s, 0.0) / estimate)
    kept = max(MIN_FIT_ROUNDS, int(MIN_REFIT_SHARE * rounds), affords)
    spec, rate = trial.spec.with_rounds(kept), trial.spec.params.get("learning_rate")
    faster = ""
    scaled = scaled_rate(rate, rounds, kept, classes)
    if scaled is not None:  # fewer, larger steps
        spec = replace(spec, params={**spec.params, "learning_rate": scaled})
        faster = f" at learning rate {scaled:g} (was {rate:g})"
    return replace(trial, spec=spec), (
        f"best trial {trial.trial_id} ({trial.spec.family}) refit with {kept} of its {rounds} "
        f"rounds{faster}: ~{estimate:.0f}s for all of them on {rows:,} rows, {refit_s:.0f}s for "
        "the refit"
    )


def refittable_best(
    result: SearchResult, rows: int, refit_s: float | None, *, threads: int = 1, classes: int = 2
) -> tuple[TrialResult, str | None]:
    """The best trial, unless it is a forest or another family without boosting rounds,
    scored on a sample of the rows, whose refit on all ``rows`` would not fit in ``refit_s``
    seconds: such a trial may cost many times its trial's seconds to refit. Then the best
    trial whose refit fits, or the one quickest to refit, and a note that says so. A boosted
    trial is refit, with the rounds its time affords (:func:`affordable_rounds`): its
    configuration stays the best the search found (an XGBoost trial's estimate of 143 s on
    262,000 rows once had a logistic regression refit instead, 0.69 ROC-AUC where boosting
    reaches 0.79)."""
    best = result.best
    family = FAMILY_TABLE.get(best.spec.family)
    if family is not None and family.booster is not None:
        return affordable_rounds(best, rows, refit_s, threads=threads, classes=classes)
    if refit_s is None or not best.fit_rows or refit_seconds(best, rows) <= refit_s:
        return best, None
    ranked = sorted(result.completed, key=lambda t: -(t.score or 0.0))
    fits = [t for t in ranked if refit_seconds(t, rows) <= refit_s]
    chosen = fits[0] if fits else min(ranked, key=lambda t: refit_seconds(t, rows))
    if chosen is best:  # the quickest to refit already: nothing else to say
        return best, None
    return chosen, (
        f"best trial {best.trial_id} ({best.spec.family}) not refit: ~"
        f"{refit_seconds(best, rows):.0f}s on all {rows:,} rows, {refit_s:.0f}s for the refit; "
        f"{chosen.trial_id} ({chosen.spec.family}) instead"
    )


#: Smallest gain a round of ensemble selection must bring: in the metric's units for bounded
#: metrics, relative to the score for errors.
MIN_GAIN = 2e-4


def min_gain(metric: str, score: float) -> float:
    from honing.metrics import METRICS

    return MIN_GAIN if METRICS[metric].bounded else MIN_GAIN * abs(score)


def select_ensemble(
    result: SearchResult,
    y: np.ndarray,
    *,
    rounds: int = 25,
    max_candidates: int = 25,
    refit_budget_s: float | None = None,
) -> Selection | None:
    """Greedy ensemble selection with replacement over the finished trials' out-of-fold
    predictions. Each round adds the trial that most improves the score of the averaged
    predictions; the best round is kept. A trial whose refit would push the members' total
    refit time past ``refit_budget_s`` is not added. None when fewer than two distinct trials
    have predictions, or when no mixture beats the best single trial on the same rows."""
    metric = result.metric
    pool: list[TrialResult] = []
    seen: set[str] = set()
    for trial in sorted(result.completed, key=lambda t: -(t.score or 0.0)):
        if trial.oof is None or trial.spec.label() in seen:
            continue
        if pool and not np.array_equal(trial.oof_rows, pool[0].oof_rows):
            continue  # scored on other rows (a restored search with another split)
        seen.add(trial.spec.label())
        pool.append(trial)
        if len(pool) == max_candidates:
            break
    if len(pool) < 2:
        return None
    y_rows = y[pool[0].oof_rows]
    preds = [np.asarray(t.oof, dtype=np.float64) for t in pool]
    single = [score_predictions(metric, y_rows, p) for p in preds]
    cost = [refit_seconds(t, len(y)) for t in pool]
    counts = np.zeros(len(pool), dtype=int)
    total = np.zeros_like(preds[0])
    best_counts, best_score = None, -np.inf
    for n in range(1, rounds + 1):
        spent = sum(c for c, k in zip(cost, counts, strict=True) if k)
        choice, choice_score = None, -np.inf
        for i, p in enumerate(preds):
            if not counts[i] and refit_budget_s is not None and spent + cost[i] > refit_budget_s:
                continue
            score = score_predictions(metric, y_rows, (total + p) / n)
            if score > choice_score:
                choice, choice_score = i, score
        if choice is None:
            break
        counts[choice] += 1
        total += preds[choice]
        # a round counts only when it gains more than noise-level: chance gains on the
        # out-of-fold rows would otherwise pull in useless members
        if best_counts is None or choice_score > best_score + min_gain(metric, best_score):
            best_counts, best_score = counts.copy(), choice_score
    if best_counts is None or (best_counts > 0).sum() < 2 or best_score <= max(single):
        return None
    members = [i for i in range(len(pool)) if best_counts[i]]
    weights = [float(best_counts[i] / best_counts.sum()) for i in members]
    spec = ModelSpec(
        "ensemble_selection",
        {"members": [asdict(pool[i].spec) for i in members], "weights": weights},
    )
    return Selection(
        spec=spec,
        score=float(best_score),
        best_single=float(max(single)),
        refit_s=float(sum(cost[i] for i in members)),
        rounds=int(best_counts.sum()),
        oof=np.sum([preds[i] * best_counts[i] for i in members], axis=0) / best_counts.sum(),
        oof_rows=pool[0].oof_rows,
    )


@dataclass(frozen=True)
class EnsembleScore:
    spec: ModelSpec
    cv: CVResult


def score_ensembles(
    X: pd.DataFrame,
    y: np.ndarray,
    specs: list[ModelSpec],
    setup: TrainingSetup,
) -> list[EnsembleScore]:
    """Cross-validate each ensemble spec exactly as a search trial is."""
    out = []
    for spec in specs:
        res = train_model(
            X,
            y,
            spec,
            setup,
            cross_validate=True,
            refit=False,
        )
        assert res.cv is not None
        out.append(EnsembleScore(spec, res.cv))
    return out


@dataclass(frozen=True)
class EnsembleDecision:
    spec: ModelSpec
    reason: str
    scores: dict[str, float]  # CV, scikit-learn's greater-is-better convention (metric_value)
    # the chosen model's out-of-fold predictions of training rows ``oof_rows`` (decision rule)
    oof: np.ndarray | None = field(default=None, repr=False, compare=False)
    oof_rows: np.ndarray | None = field(default=None, repr=False, compare=False)
    grown: tuple[str, ...] = ()  # cut trials grown again before the choice (honing.search.anytime)

    @property
    def score(self) -> float:
        """The chosen model's own CV score (greater-is-better): the ensemble's on the
        out-of-fold rows when one was chosen, else the best single trial's."""
        if self.spec.family in self.scores:
            return self.scores[self.spec.family]
        return self.scores["best_single"]

    def member_weights(self) -> dict[str, float]:
        """Each member's weight in the chosen ensemble, by its spec's label (a trial's
        :meth:`ModelSpec.label`); equal weights for a plain vote, none for a single model."""
        members = self.spec.params.get("members")
        if not members:
            return {}
        weights = self.spec.params.get("weights") or [1.0 / len(members)] * len(members)
        total = float(sum(weights)) or 1.0
        found: dict[str, float] = {}
        for member, weight in zip(members, weights, strict=True):
            label = ModelSpec(**member).label()
            found[label] = found.get(label, 0.0) + float(weight) / total
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.spec.family,
            "reason": self.reason,
            "cv_scores": self.scores,
            "spec": self.spec.to_dict(),  # what `honing reproduce` refits
            "grown": list(self.grown),
        }

    def log_lines(self) -> list[str]:
        return [*self.grown, f"model choice: {self.reason}"]


def choose(
    best: TrialResult,
    scored: list[EnsembleScore],
    notes: list[str] | None = None,
    selection: Selection | None = None,
    metric: str = "",
) -> EnsembleDecision:
    """The ensemble with the highest CV score when it is strictly above the best single
    trial's; otherwise the best single model. A ``selection`` (already better than the best
    single trial on the out-of-fold rows) is taken unless a scored ensemble beats it too.
    ``notes`` (skipped ensembles) join the reason."""
    assert best.score is not None
    if selection is not None and not any(s.cv.mean > selection.score for s in scored):
        scores = {
            "best_single": selection.best_single,
            "ensemble_selection": selection.score,
            **{s.spec.family: s.cv.mean for s in scored},
        }
        return EnsembleDecision(
            selection.spec, selection.describe(metric), scores, selection.oof, selection.oof_rows
        )
    scores = {"best_single": best.score, **{s.spec.family: s.cv.mean for s in scored}}
    metric = metric or (scored[0].cv.metric if scored else "")

    def shown(score: float) -> str:  # in the metric's units (RMSE positive)
        return f"{metric_value(metric, score) if metric else score:.4f}"

    winner = max(scored, key=lambda s: s.cv.mean, default=None)
    if winner is not None and winner.cv.mean > best.score:
        return EnsembleDecision(
            winner.spec,
            f"{winner.spec.family} CV {metric} {shown(winner.cv.mean)} beats best single "
            f"{best.spec.family} {shown(best.score)}",
            scores,
            winner.cv.oof,
            winner.cv.oof_rows,
        )
    tried = ", ".join([f"{s.spec.family} {shown(s.cv.mean)}" for s in scored] + list(notes or []))
    return EnsembleDecision(
        best.spec,
        f"best single {best.spec.family} {shown(best.score)} kept (ensembles: {tried or 'none'})",
        scores,
        best.oof,
        best.oof_rows,
    )
