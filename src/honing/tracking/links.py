"""Links into the MLflow UI that a run prints and publishes, and the saved view they open:
pure string building, no client."""

from __future__ import annotations

import json
from dataclasses import dataclass

from honing import metric_keys
from honing.config.settings import LOCAL_UI

#: The id of the saved view every link opens (its experiment tag:
#: ``mlflow.sharedViewState.<id>``, the format of the UI's own "Save view").
REVIEW_VIEW = "honingreview"
#: The experiment's kind, so that the UI opens it as classic model training, not GenAI.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
_MODE = "workflowType=machine_learning"


@dataclass(frozen=True)
class UiLinks:
    """Direct links into the MLflow UI: the run, and its experiment's runs table (the saved
    review view: training runs only, metric columns, best first)."""

    run: str
    runs_table: str


def ui_base(tracking_uri: str, ui_url: str = LOCAL_UI) -> str:
    """The UI's address: the tracking server itself when the store is one (credentials
    removed), else ``ui_url``, where ``honing ui`` serves the embedded store."""
    from urllib.parse import urlsplit, urlunsplit

    if not tracking_uri.startswith(("http://", "https://")):
        return ui_url.rstrip("/")
    parts = urlsplit(tracking_uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def ui_links(tracking_uri: str, experiment_id: str, run_id: str, ui_url: str = LOCAL_UI) -> UiLinks:
    """:class:`UiLinks` for a run, in the machine-learning view of the UI."""
    base = ui_base(tracking_uri, ui_url)
    experiment = f"{base}/#/experiments/{experiment_id}"
    return UiLinks(
        f"{experiment}/runs/{run_id}?{_MODE}",
        f"{experiment}/runs?viewStateShareKey={REVIEW_VIEW}&{_MODE}",
    )


def review_view(metric: str, others: list[str], *, lower_is_better: bool, now_ms: int) -> dict:
    """The experiment tags of the review view: the training runs (not their trials, whose
    rows would flatten the tree when sorted), best ``metric`` on the test split first (an
    error ascending), and as columns the test and CV ``metric``, the model, the gate's
    outcome, the version, the seconds, then the other test metrics (``others``)."""
    columns = [  # what a reviewer reads first, within a laptop's width; the rest after
        f"metrics.`{metric_keys.test(metric)}`",
        f"metrics.`{metric_keys.cv(metric)}`",
        "params.`final_model`",
        "tags.`honing.gate.outcome`",
        "tags.`honing.registered_version`",
        f"metrics.`{metric_keys.seconds('total')}`",
        *(f"metrics.`{metric_keys.test(m)}`" for m in others if m != metric),
        "params.`best_family`",
    ]
    state = {
        "searchFilter": "tags.`honing.kind` = 'training'",
        "orderByKey": f"metrics.`{metric_keys.test(metric)}`",
        "orderByAsc": lower_is_better,
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "datasetsFilter": [],
        "modelVersionFilter": "All Runs",
        "selectedColumns": columns,
        "columnOrder": columns,
        "runsHiddenMode": "SHOW_ALL",
    }
    envelope = {
        "name": f"honing: training runs by test {metric}",
        "createdAt": now_ms,
        "updatedAt": now_ms,
        "state": json.dumps(state),
    }
    return {f"mlflow.sharedViewState.{REVIEW_VIEW}": json.dumps(envelope), **EXPERIMENT_KIND}
