"""A run's summary in the Prefect UI: a Markdown artifact and a link artifact to the MLflow
run, under keys named after the model, so that each key keeps its history across runs."""

from __future__ import annotations

import re

from honing.stages.summary import TrainingSummary
from honing.tracking.links import ui_links


def key(name: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) for ``name``."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "honing"


def publish(summary: TrainingSummary, ui_url: str) -> str:
    """Create the Markdown and link artifacts of ``summary``; returns the MLflow run link
    (on ``ui_url`` for an embedded store)."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact

    links = ui_links(summary.tracking_uri, summary.experiment_id, summary.run_id, ui_url)
    name = key(summary.model_name)
    create_markdown_artifact(
        markdown=summary.markdown() + f"\n\n[Open the run in MLflow]({links.run})\n",
        key=f"{name}-summary",
        description=f"{summary.model_name} v{summary.version}: training summary",
    )
    create_link_artifact(
        link=links.run,
        link_text=f"MLflow run of {summary.model_name} v{summary.version}",
        key=f"{name}-mlflow-run",
        description="The run in the MLflow UI (make ui / honing ui for the embedded store)",
    )
    return links.run


def published(summary: TrainingSummary, ui_url: str) -> TrainingSummary:
    """``summary``, once :func:`publish` has made its artifacts."""
    publish(summary, ui_url)
    return summary


#: The key of a failed training run's Markdown artifact (its history: every failure).
FAILURE_KEY = "honing-run-failure"


def publish_failure(run_id: str, stage: str, reason: str) -> None:
    """A failed run's reason as a Markdown artifact of its flow run: what the Prefect UI shows
    on the failed run's page (its Artifacts tab, under "Flow run"), beside its logs. It is the
    flow run's own even when a task publishes it, as the failure is the whole run's."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.utilities.context import get_task_and_flow_run_ids

    lines = reason.strip().splitlines() or ["(no reason given)"]
    rest = "\n".join(lines[1:])
    markdown = (
        f"# FAILED at {stage}\n\n{lines[0]}\n"
        + (f"\n```\n{rest}\n```\n" if rest else "")
        + f"\nMLflow run `{run_id}` (tags `honing.failed_stage`, `honing.error`).\n"
    )
    _, flow_run_id = get_task_and_flow_run_ids()
    with get_client(sync_client=True) as client:
        client.create_artifact(
            artifact=ArtifactCreate(
                type="markdown", key=FAILURE_KEY, description=f"FAILED at {stage}",
                data=markdown, flow_run_id=flow_run_id,
            )
        )  # fmt: skip
