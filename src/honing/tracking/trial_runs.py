"""The search's trials in MLflow: one nested run per trial, and the leaderboard on the
parent run (best first, each row linked to its trial's run, an ensemble member's weight in
the chosen model beside it), with the search's convergence curve."""

from __future__ import annotations

import time
from typing import Any

from honing import metric_keys, tracking
from honing.search import SearchResult, TrialResult

#: MLflow run status of each trial status.
TRIAL_RUN_STATUS = {"completed": "FINISHED", "stopped": "KILLED", "failed": "FAILED"}


def log_trials(
    parent_run_id: str,
    experiment_id: str,
    search: SearchResult,
    weights: dict[str, float] | None = None,
) -> list[str]:
    """One nested MLflow run per search trial (params and feature options, CV score in the
    metric's units, per-fold scores, rungs reached, status, errors), each written in one
    batch: a search of a hundred trials costs seconds, not minutes, on SQLite. ``weights``:
    the chosen ensemble's members' weights by spec label
    (:meth:`honing.search.ensembles.EnsembleDecision.member_weights`), on the members' runs (tag
    ``honing.ensemble_weight``) and in the leaderboard."""
    from mlflow.entities import Metric, Param, RunTag

    from honing.metrics import metric_value

    weights = weights or {}

    client = tracking.client()
    now = int(time.time() * 1000)
    run_ids = []
    for i, trial in enumerate(search.trials):
        run_id = tracking.start_run(
            experiment_id,
            run_name=trial_run_name(i, trial),
            tags={
                "honing.kind": "trial",
                "honing.trial_id": trial.trial_id,
                "honing.family": trial.spec.family,
                "honing.trial_status": trial.status,
                **({"honing.trial_cut": "true"} if trial.cut else {}),
                **({"honing.trial_fit_rows": str(trial.fit_rows)} if trial.fit_rows else {}),
            },
            parent_run_id=parent_run_id,
            start_time_ms=None if trial.started_at is None else int(trial.started_at * 1000),
        )
        params = {
            "family": trial.spec.family,
            **trial.spec.effective().params,
            **{f"features.{k}": v for k, v in trial.spec.features.items()},
        }
        metrics: dict[str, float] = {}
        if trial.score is not None:
            metrics[metric_keys.cv(search.metric)] = metric_value(search.metric, trial.score)
            metrics[metric_keys.cv(f"{search.metric}_std")] = trial.score_std or 0.0
        if trial.fit_seconds is not None:
            metrics[metric_keys.seconds("fit")] = trial.fit_seconds
        if trial.rungs is not None:  # under a scheduler: fewer than max_t = stopped early
            metrics[f"{metric_keys.SEARCH}rungs"] = trial.rungs
        for k, score in enumerate(trial.fold_scores):
            fold = metric_keys.cv(f"fold_{k}_{search.metric}")
            metrics[fold] = metric_value(search.metric, score)
        tags = {}
        if trial.spec.label() in weights:
            tags["honing.ensemble_weight"] = f"{weights[trial.spec.label()]:.4f}"
        if trial.node:
            tags["honing.ray_node"] = trial.node
        if trial.error:
            tags["honing.error"] = trial.error[:4000]
        rungs = [  # the score at each rung, at its real time: the trial's learning curve
            Metric(
                metric_keys.cv(f"rung_{search.metric}"),
                metric_value(search.metric, score),
                int((trial.started_at + seconds) * 1000) if trial.started_at else now,
                rung,
            )
            for rung, score, seconds in trial.rung_scores
        ]
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()] + rungs,
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        end = None  # the trial's real end when known (the run is logged after the search)
        if trial.started_at is not None and trial.fit_seconds is not None:
            end = int((trial.started_at + trial.fit_seconds) * 1000)
        tracking.end_run(run_id, TRIAL_RUN_STATUS[trial.status], end, owned=False)
        run_ids.append(run_id)
    _log_leaderboard(client, parent_run_id, experiment_id, search, run_ids, weights)
    return run_ids


def trial_run_name(index: int, trial: TrialResult) -> str:
    """The MLflow run name of the ``index``-th trial of a search (the leaderboard's too)."""
    return f"trial-{index:03d}-{trial.spec.family}"


def leaderboard(
    search: SearchResult,
    run_ids: list[str],
    experiment_id: str,
    weights: dict[str, float] | None = None,
) -> dict[str, list]:
    """One row per trial, best first (unscored trials last), what a reviewer reads first on
    the left: run name, best or not, its weight in the chosen ensemble (``weights`` by spec
    label; None for a trial that is no member), family, CV mean and sd (the metric's units),
    fit seconds, rungs, status, whether its deadline cut it short, key params, fold scores,
    a link to its run and Ray's trial id."""
    weights = weights or {}
    from honing.metrics import metric_value

    best = search.best.trial_id if search.completed else None
    order = sorted(
        range(len(search.trials)),
        key=lambda i: (search.trials[i].score is None, -(search.trials[i].score or 0.0)),
    )
    table: dict[str, list] = {
        k: []
        for k in (
            "trial", "best", "weight", "family", f"cv_{search.metric}", "sd", "fit_seconds",
            "rungs", "status", "cut", "fit_rows", "params", "folds", "run", "ray_trial",
        )
    }  # fmt: skip
    for i in order:
        t = search.trials[i]
        table["trial"].append(trial_run_name(i, t))
        table["best"].append(t.trial_id == best)
        weight = weights.get(t.spec.label())
        table["weight"].append(None if weight is None else round(weight, 4))
        table["family"].append(t.spec.family)
        score = None if t.score is None else round(metric_value(search.metric, t.score), 6)
        table[f"cv_{search.metric}"].append(score)
        table["sd"].append(None if t.score_std is None else round(t.score_std, 6))
        table["fit_seconds"].append(None if t.fit_seconds is None else round(t.fit_seconds, 2))
        table["rungs"].append(t.rungs)
        table["status"].append(t.status)
        table["cut"].append(t.cut)
        table["fit_rows"].append(t.fit_rows)
        table["params"].append(t.spec.effective().label())
        table["folds"].append(
            ", ".join(f"{metric_value(search.metric, f):.4f}" for f in t.fold_scores)
        )
        table["run"].append(f"#/experiments/{experiment_id}/runs/{run_ids[i]}")
        table["ray_trial"].append(t.trial_id)
    return table


def _log_leaderboard(
    client: Any,
    run_id: str,
    experiment_id: str,
    search: SearchResult,
    run_ids: list[str],
    weights: dict[str, float],
) -> None:
    """The leaderboard table on the parent run, the best trial's run tagged, and a stepped
    best-so-far CV score (one step per finished trial, at its real end time): the parent
    run's chart of it is the search's convergence curve."""
    from mlflow.entities import Metric

    from honing.metrics import metric_value

    client.log_table(
        run_id,
        data=leaderboard(search, run_ids, experiment_id, weights),
        artifact_file="search/leaderboard.json",
    )
    if not search.completed:
        return
    best = search.best
    client.set_tag(run_ids[search.trials.index(best)], "honing.best_trial", "true")
    done = sorted(
        (t for t in search.completed if t.started_at is not None),
        key=lambda t: t.started_at + (t.fit_seconds or 0.0),  # type: ignore[operator]
    )
    curve, top, key = [], None, f"{metric_keys.SEARCH}best_cv_{search.metric}"
    for step, t in enumerate(done):
        top = t.score if top is None else max(top, t.score)  # type: ignore[type-var]
        when = int((t.started_at + (t.fit_seconds or 0.0)) * 1000)  # type: ignore[operator]
        curve.append(Metric(key, metric_value(search.metric, top), when, step))
    for start in range(0, len(curve), 1000):  # MLflow's batch limit
        client.log_batch(run_id, metrics=curve[start : start + 1000])
