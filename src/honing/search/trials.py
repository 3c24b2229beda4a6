"""What a search returns: its trials, each with its score, its fold scores and its
validation predictions, and the search's summary (best trial, counts, where it ran)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from honing.exceptions import SearchError
from honing.metrics import metric_value
from honing.modeling.training import ModelSpec


@dataclass(frozen=True)
class TrialResult:
    """One trial. ``status``: ``completed``; ``stopped`` (by the time budget or the
    scheduler before it had a score, or cut early by the scheduler); ``failed`` (an error).
    ``oof``/``oof_rows``: its validation predictions (see
    :class:`honing.modeling.training.CVResult`)."""

    trial_id: str
    spec: ModelSpec
    score: float | None
    score_std: float | None
    fold_scores: list[float]
    fit_seconds: float | None
    error: str | None = None
    node: str | None = None
    restored: bool = False
    rungs: int | None = None
    status: str = ""  # empty: "failed" when there is an error, else "completed"
    oof: np.ndarray | None = field(default=None, repr=False, compare=False)
    oof_rows: np.ndarray | None = field(default=None, repr=False, compare=False)
    started_at: float | None = None
    rung_scores: tuple[tuple[int, float, float], ...] = ()  # (rung, score, seconds) per report
    #: The trial's deadline stopped its growth (boosting rounds, a forest's trees) before
    #: its configured end: its score is that of what it had grown by then.
    cut: bool = False
    #: A boosted trial cut while its validation loss still fell, or fitted on a sample: the
    #: rounds its configuration allows (``spec`` holds the rounds it reached), which
    #: :func:`honing.search.anytime.finish_cut` may grow it to after the search. None otherwise.
    grows_to: int | None = None
    #: The training rows each of its splits fitted, when a sample of them (a large table's
    #: first rung; see :func:`honing.search.anytime.sample_rows`); None: all of them.
    fit_rows: int | None = None
    #: The threads it fitted on: one per trial on Ray (``search.cpus_per_trial``), every core
    #: for a trial in the driver. A refit on more threads is that much quicker.
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", "failed" if self.error else "completed")


@dataclass
class SearchResult:
    metric: str
    trials: list[TrialResult] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    validation: str = "cv"  # "5-fold CV" or "holdout 20%": what scored the trials
    startup_s: float = 0.0  # starting or joining Ray, before the search's own budget
    holdout: float | None = None  # the holdout share that scored the trials; None: k-fold CV
    notes: list[str] = field(default_factory=list)  # what happened after the trials (promotion)

    def log_lines(self) -> list[str]:
        line = (
            f"search: {len(self.completed)} trials completed, {len(self.stopped)} stopped by the "
            f"budget or scheduler, {len(self.failed)} failed "
            f"({self.validation}, {self.wall_s:.0f}s)"
        )
        if self.completed:
            best = self.best
            score = metric_value(self.metric, best.score or 0.0)
            line += f"; best {best.spec.effective().label()}: {self.metric} {score:.4f}"
        return [line, *self.notes]

    @property
    def stopped(self) -> list[TrialResult]:
        return [t for t in self.trials if t.status == "stopped"]

    @property
    def failed(self) -> list[TrialResult]:
        return [t for t in self.trials if t.status == "failed"]

    @property
    def completed(self) -> list[TrialResult]:
        return [t for t in self.trials if t.error is None and t.score is not None]

    @property
    def restored(self) -> int:
        """Trials whose results came from an earlier, interrupted or finished run."""
        return sum(t.restored for t in self.trials)

    @property
    def best(self) -> TrialResult:
        done = self.completed
        if not done:
            errors = "; ".join(sorted({t.error or "no score" for t in self.trials}))[:2000]
            raise SearchError(f"no search trial finished ({len(self.trials)} tried): {errors}")
        # ties: first by trial order, so results are deterministic
        return max(done, key=lambda t: (t.score, -self.trials.index(t)))
