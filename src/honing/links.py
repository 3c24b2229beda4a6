"""Links into the MLflow UI that a run prints and publishes: pure string building, no
client."""

from __future__ import annotations

from dataclasses import dataclass

#: Where ``honing ui`` serves the embedded store's UI.
LOCAL_UI = "http://127.0.0.1:5000"


@dataclass(frozen=True)
class UiLinks:
    """Direct links into the MLflow UI: the run, and its experiment's runs table (machine
    learning view, sorted by a test metric)."""

    run: str
    runs_table: str


def ui_links(tracking_uri: str, experiment_id: str, run_id: str, metric: str = "") -> UiLinks:
    """:class:`UiLinks` for a run: on the tracking server itself when the store is one
    (credentials removed), else on ``honing ui``'s local address."""
    from urllib.parse import quote, urlsplit, urlunsplit

    base = LOCAL_UI
    if tracking_uri.startswith(("http://", "https://")):
        parts = urlsplit(tracking_uri)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    table = f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    if metric:
        table += f"&orderByKey={quote(f'metrics.`test_{metric}`')}&orderByAsc=false"
    return UiLinks(f"{base}/#/experiments/{experiment_id}/runs/{run_id}", table)
