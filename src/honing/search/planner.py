"""The time budget as a contract for the whole pipeline.

``time_budget_s`` in a pipeline config covers everything a run does: validation, search,
ensembles, refit, explanations, compression and registration. :func:`plan` shares it out
before the search (the search gets what the later stages do not need), and :func:`trim`
decides, once the search is over, what optional work still fits, saying what it cut. A
:class:`StageClock` measures the seconds each stage took, for the run summary and MLflow.

All of it is data and pure decisions: the flow reads the clock and passes the numbers in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from honing.config import CompressionConfig, SearchConfig

#: Seconds kept for each stage after the search, as shares of the whole budget, with a floor
#: in seconds. At B = 60 s the stages after the search took 7-8 s on a quiet 2-core machine
#: (refit 1-3 s, evaluation 0.1-0.2 s, explanations 1-3 s, registration 3-4 s; ames, movies)
#: and 15-22 s beside other work (attrition's ensembles: refit 4-8 s, registration 7-10 s);
#: at B = 300 s, under load, 28 s with compression. Shares of a third of the budget had
#: left runs ending well inside it, with a search of a quarter of it. Explanations and
#: compression are trimmed to the time that is left (:func:`trim`), so their shares are what
#: they may use, not what they must.
RESERVE: dict[str, tuple[float, float]] = {
    "refit": (0.06, 3.0),
    "evaluation": (0.01, 1.0),
    "explain": (0.02, 2.0),
    "compression": (0.10, 8.0),
    "registration": (0.03, 8.0),
}
#: Compression is planned for when its share of the budget comes to this many seconds (from
#: B = 60 s, where it keeps its floor of 8 s): below it nothing fits. A boosted ensemble's own
#: ONNX export needs 10-45 s, more than a short budget's share, but its booster student
#: (``distill_booster``, a few thousand nodes) exports in about a second, so a 60 s run
#: still ends with a served flavor (:func:`trim`).
COMPRESSION_PLANNED_S = 6.0
#: Seconds ``honing run`` takes on a quiet 2-core machine from its start to its first stage
#: (imports, Prefect's API, the MLflow store, the run: 11-14 s measured), whatever the
#: table: the yardstick of how busy the machine is. A run that took longer to get there keeps
#: its reserves as many times longer (at most MAX_SLOWDOWN): on a busy machine the later
#: stages slow down as much.
QUIET_START_S = 15.0
MAX_SLOWDOWN = 2.0
#: Seconds a ``honing run`` spends before its search on this 2-core machine: Prefect's API
#: and the imports side by side, then validation (measured 11-16 s quiet, at B = 60 s): what
#: the command guesses, before the real number is known, to decide whether the search will
#: need Ray (started beside Prefect's API, not inside the search's budget).
COMMAND_START_S = 15.0
#: The contract: a run ends within this multiple of its budget, Ray's start-up apart.
SLACK = 1.10
#: The shortest budget a run keeps on a quiet 2-core machine: the command's fixed start
#: (~18 s: imports, Prefect's API), validation (2-8 s) and the stages after the search
#: (7-8 s) leave a shorter one no search. ``init`` says so when asked for less.
KEEPABLE_BUDGET_S = 40.0
#: The search never gets less than this share of the budget.
MIN_SEARCH_SHARE = 0.15
#: What the cheapest useful explanation needs, in seconds, and the compression stage's fixed
#: part besides the export itself: the converters' and onnxruntime's first use, parity on the
#: test split and single-row latency (1.2-1.4 s on 2 cores with one busy, a small model's
#: whole stage; ``bench/export_cost.py``).
SHAP_MIN_S = 6.0
COMPRESSION_MIN_S = 1.5


class StageClock:
    """Wall-clock seconds per named stage, and the time left of a budget (``None``: none)."""

    def __init__(self, budget_s: float | None, started: float | None = None) -> None:
        self.budget_s = budget_s
        self.started = time.monotonic() if started is None else started
        self.seconds: dict[str, float] = {}
        self.began: float | None = None  # when the first stage began
        self.current = "start"  # the stage running, or the last one that ran

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        if self.began is None:
            self.began = start
        self.current = name
        done = False
        try:
            yield
            done = True
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - start
            if done:  # a stage that raised stays the current one: where the run failed
                self.current = f"the step after {name}"

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def startup(self) -> float:
        """Seconds from the start to the first stage (all of them when none began yet)."""
        first = self.began if self.began is not None else time.monotonic()
        return first - self.started

    def left(self) -> float | None:
        return None if self.budget_s is None else self.budget_s - self.elapsed()


def _reserve(budget_s: float, stages: tuple[str, ...], slowdown: float = 1.0) -> float:
    return slowdown * sum(
        max(budget_s * share, floor) for s, (share, floor) in RESERVE.items() if s in stages
    )


def compression_planned(budget_s: float, *, compression: bool) -> bool:
    """Whether the plan keeps a reserve for compression (see :data:`COMPRESSION_PLANNED_S`)."""
    return compression and budget_s * RESERVE["compression"][0] >= COMPRESSION_PLANNED_S


def slowdown(startup_s: float) -> float:
    """How many times longer than on a quiet machine the later stages are expected to take,
    judged by the ``startup_s`` seconds the command took to reach its first stage."""
    return round(min(MAX_SLOWDOWN, max(1.0, startup_s / QUIET_START_S)), 2)


#: A contention reading (:func:`honing.runtime.contention`) up to this is a quiet core: it
#: read 1.00 on an idle 2-core machine, 1.1-2.9 beside the test suite's two workers, and 2.8
#: in a test's flow with two busy loops on the two cores.
QUIET_CONTENTION = 1.15


@dataclass(frozen=True)
class MachineLoad:
    """How busy the machine looked before the search, the two ways a run can tell: the
    seconds it took to reach its first stage (``startup_s``: a command's imports and services;
    a flow called in a running process has none of them to time), and the wall seconds per
    CPU second of a short CPU-bound loop of this thread just then (``contention``,
    :func:`honing.runtime.contention`: 1 on an idle core, 2 where two runnable threads share
    each core). Either unmeasured is None."""

    startup_s: float | None = None
    contention: float | None = None

    @property
    def slowdown(self) -> float:
        """How many times longer than on a quiet machine the later stages are expected to
        take: the larger of the two readings, at most :data:`MAX_SLOWDOWN`."""
        by_start = 1.0 if self.startup_s is None else slowdown(self.startup_s)
        return max(by_start, self._by_contention())

    def _by_contention(self) -> float:
        if self.contention is None or self.contention <= QUIET_CONTENTION:
            return 1.0
        return round(min(MAX_SLOWDOWN, self.contention), 2)

    def reason(self) -> str:
        """Why the reserves are longer, for the plan's note ('' when they are not)."""
        why = []
        if self.startup_s is not None and slowdown(self.startup_s) > 1:
            why.append(f"a start of {self.startup_s:.0f}s, a quiet machine's ~{QUIET_START_S:.0f}s")
        if self._by_contention() > 1:
            why.append(f"CPU work ran {self.contention:.1f}x slower than on an idle core")
        return "; ".join(why)


@dataclass(frozen=True)
class BudgetPlan:
    """How the budget is shared: seconds for the search, and seconds kept for the stages
    after it (refit, evaluation, explain, compression, registration)."""

    budget_s: float | None
    search_s: float | None
    reserved_s: float
    note: str
    slowdown: float = 1.0
    compression: bool = False  # the config's: whether the stages after the refit compress
    load: MachineLoad = field(default_factory=MachineLoad)  # what the slowdown was read from

    def log_lines(self) -> list[str]:
        return [self.note]

    def refit_s(self, left_s: float | None) -> float | None:
        """Seconds an ensemble's members may take to refit, with ``left_s`` of the budget
        left after the search (:func:`refit_budget` under this plan)."""
        return refit_budget(
            self.budget_s, left_s, compression=self.compression, slowdown=self.slowdown
        )

    def refit_limit_s(self, left_s: float | None) -> float | None:
        """Seconds the refit may grow its model, with ``left_s`` of the budget left
        (:func:`refit_limit` under this plan)."""
        return refit_limit(self.budget_s, left_s, slowdown=self.slowdown)

    def to_dict(self) -> dict[str, float | str | None]:
        return {
            "budget_s": self.budget_s,
            "search_s": self.search_s,
            "reserved_s": self.reserved_s,
            "note": self.note,
            "slowdown": self.slowdown,
            "startup_s": self.load.startup_s,
            "contention": self.load.contention,
        }


def plan(
    budget_s: float | None,
    *,
    elapsed_s: float,
    compression: bool,
    search_cap_s: float | None = None,
    load: MachineLoad | None = None,
) -> BudgetPlan:
    """The search's share of ``budget_s`` after ``elapsed_s`` already spent (validation):
    what is left less the reserves of the later stages (:attr:`MachineLoad.slowdown` times
    longer on a machine that ``load`` shows busy), at least :data:`MIN_SEARCH_SHARE` of the
    budget, at most ``search_cap_s`` (the config's own ``search.time_budget_s``)."""
    if budget_s is None:
        return BudgetPlan(None, search_cap_s, 0.0, "no pipeline time budget")
    compress = compression_planned(budget_s, compression=compression)
    stages = tuple(s for s in RESERVE if compress or s != "compression")
    load = load or MachineLoad()
    slow = load.slowdown
    reserved = _reserve(budget_s, stages, slow)
    search = max(budget_s - elapsed_s - reserved, MIN_SEARCH_SHARE * budget_s)
    if search_cap_s is not None:
        search = min(search, search_cap_s)
    note = (
        f"budget {budget_s:.0f}s: {elapsed_s:.1f}s spent before the search, {search:.1f}s for "
        f"the search, {reserved:.1f}s kept for {', '.join(stages)}"
        + (f" (x{slow:g}: {load.reason()})" if slow > 1 else "")
    )
    return BudgetPlan(budget_s, round(search, 1), round(reserved, 1), note, slow, compression, load)


def search_config(search: SearchConfig, budget: BudgetPlan) -> SearchConfig:
    """The search config with the planned time budget."""
    if budget.search_s is None:
        return search
    return search.model_copy(update={"time_budget_s": budget.search_s})


def refit_budget(
    budget_s: float | None, left_s: float | None, *, compression: bool, slowdown: float = 1.0
) -> float | None:
    """Seconds an ensemble's members may take to refit, decided after the search: what is
    left less the reserves of the stages after the refit, ``slowdown`` times longer on a
    busy machine (None: no budget)."""
    if budget_s is None or left_s is None:
        return None
    compress = compression_planned(budget_s, compression=compression)
    stages = ("evaluation", "explain", "registration") + (("compression",) if compress else ())
    left = left_s - _reserve(budget_s, stages, slowdown)
    return round(max(left, budget_s * RESERVE["refit"][0]), 1)


#: The stages after the refit that no run skips; explanations and compression are trimmed to
#: the time the refit leaves them (:func:`trim`).
REQUIRED_AFTER_REFIT = ("evaluation", "registration")


def refit_limit(
    budget_s: float | None, left_s: float | None, *, slowdown: float = 1.0
) -> float | None:
    """Seconds the refit may grow its model (boosting rounds, a forest's trees: see
    :func:`honing.models.fidelity.fit_by`), with ``left_s`` of the budget left: what is left
    less the reserves of :data:`REQUIRED_AFTER_REFIT`, ``slowdown`` times longer on a busy
    machine, and at least the refit's own share (None: no budget). Where :func:`refit_budget`
    plans the choice with every later stage's reserve, this is the hard stop: a model cut
    short to keep time for an optional stage would trade the model for an extra (on a loaded
    machine a 36-round LightGBM refit of flights' delays, given 3.6 s, kept 10 rounds and
    scored r2 0.73, then spent 10 s on explanations and compression)."""
    if budget_s is None or left_s is None:
        return None
    left = left_s - _reserve(budget_s, REQUIRED_AFTER_REFIT, slowdown)
    return round(max(left, budget_s * RESERVE["refit"][0]), 1)


@dataclass(frozen=True)
class Trims:
    """Optional work after the evaluation, sized to the time left. ``notes`` say what was
    cut."""

    permutation_repeats: int = 5
    shap_rows: int = 100
    compression: tuple[str, ...] | None = None  # None: as configured
    latency_rows: int | None = None  # single-row latency samples; None: as configured
    notes: list[str] = field(default_factory=list)
    #: Seconds compression may take from its start (training a student or fine-tuning stops
    #: there); None: no budget.
    compression_s: float | None = None

    def log_lines(self) -> list[str]:
        return [f"trimmed: {note}" for note in self.notes] or ["nothing trimmed: the budget fits"]

    def compression_config(self, cfg: CompressionConfig) -> CompressionConfig:
        """The compression config with the trimmed techniques (disabled when none are left)."""
        if self.compression is not None and not self.compression:
            return cfg.model_copy(update={"enabled": False})
        update: dict[str, object] = {}
        if self.compression is not None:
            update["techniques"] = list(self.compression)
        if self.latency_rows is not None and self.latency_rows < cfg.latency_rows:
            update["latency_rows"] = self.latency_rows
        return cfg.model_copy(update=update)

    def to_dict(self) -> dict[str, object]:
        return {
            "permutation_repeats": self.permutation_repeats,
            "shap_rows": self.shap_rows,
            "compression": None if self.compression is None else list(self.compression),
            "latency_rows": self.latency_rows,
            "compression_s": self.compression_s,
            "notes": self.notes,
        }


#: Share of the time left before registration that explanations may use.
EXPLAIN_SHARE = 0.3
#: Tree nodes (or coefficients) converted to ONNX per second, and again as much time to log
#: and load the result, where no estimate per kind of model is given (``export_s``): measured
#: 30-90 thousand per second for LightGBM and XGBoost; on attrition (``ca0eb79``, quiet) a
#: 131,000-node vote's whole compression stage (export, parity, latency of both models) took
#: 4.2 s, where 30,000 a second costed 8.8 s for the export alone.
ONNX_PARAMETERS_PER_S = 60_000
#: Seconds below which compression keeps ONNX alone (distillation and int8 exports took up to
#: 14 s on the benchmark's tables at B = 60 s), and below which it is skipped.
COMPRESSION_FULL_S = 15.0
#: What a served flavor adds to registration (a second version, logged, loaded and checked).
#: Measured on a quiet 2-core machine (attrition, ``ca0eb79``): registration took 5.8 s with
#: a served flavor and 6.4 s without one, so its cost is within the registration reserve's
#: own slack; 5-9 s had been measured before model loading was shared. Kept at 2.5 s.
SERVED_REGISTRATION_S = 2.5
#: Tree nodes (or coefficients) registration logs, checks and loads back per second, beyond
#: its floor: a 2.2-million-node vote of forests and boosters (353 MB of skops; Wage,
#: ``20d3959``) took 20.5 s to register where a small model takes 6-8 s, and that run ended
#: 17 s past its budget.
REGISTRATION_NODES_PER_S = 200_000
#: Registration's floor for one pipeline, not a vote or stack of them (seconds, before the
#: slowdown factor): the single models of the compression benchmark's tables registered in
#: 2.7-4.5 s at B = 60 s (``6858ea6``, quiet), where votes of up to five pipelines took up to
#: 8.4 s; those keep the registration reserve's own floor (:data:`RESERVE`).
SINGLE_REGISTRATION_S = 5.0
#: The least a booster student alone needs besides its export and served flavor, in seconds:
#: its training (its rounds stop at the compression deadline) and the measuring of it and the
#: native model. On attrition's 1,176 rows a student trains in about a second.
STUDENT_MIN_S = 3.0


def trim(
    budget_s: float | None,
    left_s: float | None,
    *,
    predict_s: float,
    columns: int,
    techniques: tuple[str, ...],
    compression: bool,
    model_size: int = 0,
    export_s: float | None = None,
    student_s: float | None = None,
    exportable: bool = True,
    ensemble: bool = True,
    slowdown: float = 1.0,
    explain: bool = True,
) -> Trims:
    """What still fits in ``left_s`` once the model is evaluated: permutation repeats (each
    costs ``columns`` predictions of the test split, ``predict_s`` each), SHAP rows, and the
    compression techniques (ONNX alone when short, none when shorter). The model's export
    takes :data:`COMPRESSION_MIN_S` and ``export_s`` seconds (its estimate per kind of model,
    :func:`honing.compression.export_seconds`; None: ``2 x model_size /``
    :data:`ONNX_PARAMETERS_PER_S` for its ``model_size`` tree nodes or coefficients), and its
    served flavor :data:`SERVED_REGISTRATION_S` more to register, ``slowdown`` times longer
    on a busy machine. Where that export does not fit, or the model has none (not
    ``exportable``: a family skl2onnx cannot convert), but a booster student whose export
    takes ``student_s`` seconds does (None: no student applies), compression trains and
    exports that student alone. When explanations and compression do not both fit, explanations
    yield to the cheaper route, down to one permutation repeat (the importance that weighs
    drift in monitoring). Registration's reserve is kept aside, with what a large model
    takes beyond it (:data:`REGISTRATION_NODES_PER_S`), ``slowdown`` times longer on a busy
    machine; one pipeline (not an ``ensemble``) keeps :data:`SINGLE_REGISTRATION_S` as its
    floor. Without explanations (``explain`` off) all of it may go to compression."""
    if budget_s is None or left_s is None:
        return Trims() if explain else Trims(permutation_repeats=0, shap_rows=0)
    notes: list[str] = []
    heavy = slowdown * model_size / REGISTRATION_NODES_PER_S  # a big model registers slowly
    share, floor = RESERVE["registration"]
    floor = floor if ensemble else SINGLE_REGISTRATION_S
    available = left_s - slowdown * max(budget_s * share, floor) - heavy
    if heavy >= 2:
        notes.append(f"registration of {model_size:,} parameters: ~{heavy:.0f}s more kept")
    per_repeat = max(columns * predict_s, 1e-3)
    explain_s = (EXPLAIN_SHARE * available if compression else available) if explain else 0.0
    if export_s is None:
        export_s = 2.0 * model_size / ONNX_PARAMETERS_PER_S
    export_s = slowdown * (export_s + SERVED_REGISTRATION_S)
    student = "distill_booster" in techniques and student_s is not None
    student_s = slowdown * ((student_s or 0.0) + SERVED_REGISTRATION_S)
    needs = COMPRESSION_MIN_S + export_s if exportable else float("inf")
    cheapest = min(needs, STUDENT_MIN_S + student_s if student else needs)
    if compression and available - explain_s < cheapest <= available:
        # a served flavor comes before explanations, but after one permutation repeat (the
        # champion's importance weighs its drift in monitoring)
        explain_s = max(available - cheapest, per_repeat if explain_s >= per_repeat else 0.0)
    repeats = int(min(5, max(explain_s, 0.0) // per_repeat))
    if repeats < 5 and explain:
        notes.append(
            f"permutation importance: {repeats} repeat(s) (~{per_repeat:.1f}s each, "
            f"{max(explain_s, 0):.0f}s for explanations)"
        )
    shap_rows = 100
    if explain_s - repeats * per_repeat < SHAP_MIN_S:
        shap_rows = 0
        if explain:
            notes.append(f"SHAP skipped: it needs ~{SHAP_MIN_S:.0f}s")
    kept: tuple[str, ...] | None = None
    rest = available - repeats * per_repeat - (0 if shap_rows == 0 else SHAP_MIN_S)
    if compression:
        whole = (
            f"the ONNX export of {model_size:,} parameters needs ~{needs:.0f}s"
            if exportable
            else "the model has no ONNX graph (a family without converter)"
        )
        if rest < needs and student and rest >= STUDENT_MIN_S + student_s:
            kept, export_s = ("distill_booster",), student_s
            notes.append(f"compression: the booster student alone ({rest:.0f}s left; {whole})")
        elif rest < needs:
            kept = ()
            notes.append(f"compression skipped: {max(rest, 0):.0f}s left for it, {whole}")
        elif rest < COMPRESSION_FULL_S + export_s and set(techniques) - {"onnx"}:
            kept = tuple(t for t in techniques if t == "onnx")
            notes.append(
                f"compression: ONNX only ({rest:.0f}s left for it); skipped "
                f"{', '.join(t for t in techniques if t != 'onnx')}"
            )
    latency_rows = None
    if compression and kept != ():
        # each candidate is timed on single rows, at about the cost of one prediction each
        candidates = 1 + len(kept if kept is not None else techniques)
        latency_rows = int(max(20, min(10_000, 0.5 * rest / (candidates * max(predict_s, 1e-4)))))
        if latency_rows < 200:
            notes.append(f"latency measured on {latency_rows} single rows")
    return Trims(
        permutation_repeats=repeats,
        shap_rows=shap_rows,
        compression=kept,
        latency_rows=latency_rows,
        notes=notes,
        compression_s=max(rest - export_s, 0.0) if compression and kept != () else None,
    )


def budget_report(budget: BudgetPlan, trims: Trims, seconds: dict[str, float]) -> dict[str, object]:
    """What a run logs about its budget: the plan, the trims, the seconds per stage, and
    whether the total kept to ``SLACK`` x the budget (Ray's start-up, ``ray_start``, apart)."""
    limit = None
    if budget.budget_s is not None:
        limit = SLACK * budget.budget_s + seconds.get("ray_start", 0.0)
    return {
        "plan": budget.to_dict(),
        "trims": trims.to_dict(),
        "seconds": seconds,
        "limit_s": limit,
        "within_budget": None if limit is None else seconds["total"] <= limit,
    }
