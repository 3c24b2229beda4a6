"""A cost-aware search over model families: one Optuna TPE study per family, and a scheduler
that decides which family the next trial belongs to.

Sampling the family as one more categorical of a joint TPE space lets cheap families crowd
out the others: a one-dimensional logistic regression scoring well takes trial after trial
long after it has converged. Here, instead (in the spirit of FLAML's cost-frugal search):

* the portfolio (:mod:`honing.search.portfolio`) runs first, interleaved across families;
* then each family gets search *time* in proportion to how competitive it is: its share
  decays exponentially with the gap between its best score and the overall best, so a
  cheap family gets many trials for the same time and a slow one few, and a family far
  behind is tried only now and then;
* a family has at most :data:`TRIALS_PER_DIMENSION` trials per searched dimension (a 1-D
  space converges fast);
* each family's TPE uses ``constant_liar``, so trials running side by side do not crowd the
  same point, and a configuration already tried is not run again: its known score is told
  to the study and another is asked for.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import time
from collections.abc import Iterator, Mapping
from typing import Any

from honing.config import SearchConfig
from honing.search.portfolio import PORTFOLIO, in_space

TRIALS_PER_DIMENSION = 12
#: How fast a family's time share decays with its gap to the best score: the gap is measured
#: in units of ``TAU`` (bounded metrics) or ``TAU_RELATIVE`` x |best| (errors).
TAU = 0.01
TAU_RELATIVE = 0.02
MAX_REASKS = 10


def _distribution(spec: Any) -> Any:
    import optuna.distributions as od

    kind, args = next(iter(spec.items()))
    if kind in ("choice", "grid"):
        return od.CategoricalDistribution(list(args))
    if kind == "uniform":
        return od.FloatDistribution(float(args[0]), float(args[1]))
    if kind == "loguniform":
        return od.FloatDistribution(float(args[0]), float(args[1]), log=True)
    return od.IntDistribution(int(args[0]), int(args[1]))  # randint: both ends inclusive


#: The deadlines of the searches under way in this process (the innermost last).
_DEADLINE: list[float] = []


@contextlib.contextmanager
def deadline(when: float | None) -> Iterator[None]:
    """Within the block, the family searcher starts no trial after ``when`` (``time.time()``
    seconds; None: no deadline)."""
    if when is None:
        yield
        return
    _DEADLINE.append(when)
    try:
        yield
    finally:
        _DEADLINE.pop()


class FamilySearcher:
    """Builds the Ray Tune searcher (``build()``); kept apart so this module imports Ray only
    when a search runs."""

    @staticmethod
    def build(cfg: SearchConfig, *, family_key: str, sep: str, bounded: bool) -> Any:
        """The searcher; past the :func:`deadline` of the search under way it starts no
        trial (a restored searcher reads the new search's, not the one it was saved in)."""
        from ray.tune.search import Searcher

        class FamilyTPESearcher(Searcher):
            def __init__(self) -> None:
                super().__init__(metric="score", mode="max")
                self.state = FamilyState(cfg, family_key=family_key, sep=sep, bounded=bounded)

            def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
                if _DEADLINE and time.time() >= _DEADLINE[-1]:
                    return Searcher.FINISHED
                config = self.state.suggest(trial_id)
                return Searcher.FINISHED if config is None else config

            def on_trial_complete(
                self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
            ) -> None:
                self.state.complete(trial_id, result, error)

            def save(self, checkpoint_path: str) -> None:
                with open(checkpoint_path, "wb") as fh:
                    pickle.dump(self.state, fh)

            def restore(self, checkpoint_path: str) -> None:
                with open(checkpoint_path, "rb") as fh:
                    self.state = pickle.load(fh)  # noqa: S301 - the file this searcher wrote

        return FamilyTPESearcher()


class FamilyState:
    """The scheduler's state: studies, queue, per-family time and scores (picklable)."""

    def __init__(self, cfg: SearchConfig, *, family_key: str, sep: str, bounded: bool) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.family_key, self.sep, self.bounded = family_key, sep, bounded
        self.features = {
            f"features{sep}{k}": v for k, v in cfg.features.items() if isinstance(v, Mapping)
        }
        self.constants = {
            f"features{sep}{k}": v for k, v in cfg.features.items() if not isinstance(v, Mapping)
        }
        self.space: dict[str, dict[str, Any]] = {}
        self.studies: dict[str, Any] = {}
        for i, (family, params) in enumerate(sorted(cfg.families.items())):
            self.space[family] = {
                f"{family}{sep}{k}": v for k, v in params.items() if isinstance(v, Mapping)
            }
            self.constants.update(
                {f"{family}{sep}{k}": v for k, v in params.items() if not isinstance(v, Mapping)}
            )
            sampler = optuna.samplers.TPESampler(
                seed=cfg.seed + i,
                n_startup_trials=4,
                constant_liar=True,
                multivariate=True,
            )
            self.studies[family] = optuna.create_study(direction="maximize", sampler=sampler)
        self.queue: list[tuple[str, dict[str, Any]]] = []
        if cfg.portfolio:
            for family, params in PORTFOLIO:
                if family in self.studies and self._fits(family, params):
                    self.queue.append((family, params))
        for family in sorted(self.studies):  # every family at least once
            if family not in {f for f, _ in self.queue}:
                self.queue.append((family, {}))
        self.limit = cfg.trials_per_family
        self.running: dict[str, tuple[str, Any, str]] = {}  # trial id -> family, trial, label
        self.counts = dict.fromkeys(self.studies, 0)
        self.seconds = dict.fromkeys(self.studies, 0.0)
        self.best: dict[str, float] = {}
        self.seen: dict[str, float | None] = {}

    def _fits(self, family: str, params: dict[str, Any]) -> bool:
        dims = self.space[family]
        return all(
            in_space(dims[key], v)
            for k, v in params.items()
            if (key := f"{family}{self.sep}{k}") in dims
        )

    def _cap(self, family: str) -> int:
        dims = len(self.space[family]) + len(self.features)
        cap = TRIALS_PER_DIMENSION * max(dims, 1)
        return cap if self.limit is None else min(cap, self.limit)

    def _cost(self, family: str) -> float:
        done = self.counts[family] - sum(1 for f, _, _ in self.running.values() if f == family)
        return self.seconds[family] / done if done > 0 else 1.0

    def _weight(self, family: str) -> float:
        if family not in self.best or not self.best:
            return 1.0
        top = max(self.best.values())
        tau = TAU if self.bounded else max(TAU_RELATIVE * abs(top), 1e-12)
        return math.exp(-(top - self.best[family]) / tau)

    def _next_family(self) -> str | None:
        open_ = [f for f in self.studies if self.counts[f] < self._cap(f)]
        if not open_:
            return None

        def load(f: str) -> float:  # time used and committed, per unit of share
            pending = sum(1 for g, _, _ in self.running.values() if g == f) * self._cost(f)
            return (self.seconds[f] + pending + self._cost(f)) / self._weight(f)

        return min(open_, key=lambda f: (load(f), f))

    def _label(self, family: str, params: dict[str, Any]) -> str:
        return family + repr(sorted((k, round(v, 6) if isinstance(v, float) else v)
                                    for k, v in params.items()))  # fmt: skip

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """The next trial's config; None when every family has reached its cap."""
        import optuna

        if self.queue:
            family, fixed = self.queue.pop(0)
            if self.counts[family] >= self._cap(family):
                return self.suggest(trial_id)
            study = self.studies[family]
            keyed = {f"{family}{self.sep}{k}": v for k, v in fixed.items()}
            study.enqueue_trial({k: v for k, v in keyed.items() if k in self.space[family]})
        else:
            family = self._next_family()
            if family is None:
                return None
            study = self.studies[family]
        dists = {**self.space[family], **self.features}
        for _ in range(MAX_REASKS):
            trial = study.ask({k: _distribution(v) for k, v in dists.items()})
            label = self._label(family, trial.params)
            known = self.seen.get(label, "new")
            if known == "new":
                break
            # tried before: tell the study what it scored (or that it failed) and ask again
            state = optuna.trial.TrialState.COMPLETE if known is not None else None
            study.tell(trial, known, state=state or optuna.trial.TrialState.FAIL)
        self.seen[label] = None
        self.counts[family] += 1
        self.running[trial_id] = (family, trial, label)
        return {self.family_key: family, **self.constants, **trial.params}

    def complete(self, trial_id: str, result: dict[str, Any] | None, error: bool) -> None:
        import optuna

        if trial_id not in self.running:
            return
        family, trial, label = self.running.pop(trial_id)
        score = None if result is None else result.get("score")
        seconds = 0.0 if result is None else float(result.get("time_total_s") or 0.0)
        self.seconds[family] += seconds
        study = self.studies[family]
        if score is None or (isinstance(score, float) and math.isnan(score)):
            state = optuna.trial.TrialState.FAIL if error else optuna.trial.TrialState.PRUNED
            study.tell(trial, state=state)
            return
        study.tell(trial, float(score))
        self.seen[label] = float(score)
        self.best[family] = max(self.best.get(family, -math.inf), float(score))
