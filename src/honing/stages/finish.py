"""Finishing a run: its summary (also the run's description), the stage timings and the
budget report, and the run's end state."""

from __future__ import annotations

from honing import metric_keys, tracking
from honing.lineage import Lineage
from honing.registry.unchanged import UnchangedVersion
from honing.search import planner
from honing.stages import summary
from honing.stages.evaluate import Fitted
from honing.stages.prepare import Prepared
from honing.stages.register import Registered
from honing.stages.start import Started


def finish(
    started: Started,
    *,
    prepared: Prepared,
    fitted: Fitted,
    registered: Registered,
    timings: dict[str, float],
) -> summary.TrainingSummary:
    """The run's summary, logged with the stage timings (``seconds/<stage>``) and the budget
    report; the run ends FINISHED."""
    cfg, run = started.cfg, started.run
    search, evaluated = fitted.search, fitted.evaluated
    timings = {**timings, "ray_start": search.startup_s}
    tracking.log_metrics(run.run_id, metric_keys.prefixed(metric_keys.SECONDS, timings))
    tracking.log_json(
        run.run_id,
        planner.budget_report(prepared.budget, evaluated.trims, timings),
        "budget.json",
    )
    result = summary.summarize(
        run, cfg, prepared=prepared, fitted=fitted, registered=registered, timings=timings
    )
    tracking.log_summary(run.run_id, result.markdown())
    tracking.end_run(run.run_id, "FINISHED")
    return result


def finish_unchanged(
    started: Started, *, lineage: Lineage, same: UnchangedVersion, timings: dict[str, float]
) -> summary.TrainingSummary:
    """The summary of a run that found nothing changed (it reports the existing version),
    logged; the run ends FINISHED."""
    cfg, run = started.cfg, started.run
    result = summary.unchanged(run, cfg, same=same, lineage=lineage, timings=timings)
    tracking.log_summary(run.run_id, result.markdown())
    tracking.end_run(run.run_id, "FINISHED")
    return result
