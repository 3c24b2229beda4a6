"""Registered versions described in Markdown for the MLflow UI: the gate's verdict and
statistics, the test metrics beside the champion's, the lineage, and links."""

from __future__ import annotations

from typing import Protocol

from honing.evaluation import EvaluationReport
from honing.lineage import Lineage


class Gate(Protocol):
    """What a description shows of a gate decision (:class:`honing.champion.GateDecision`)."""

    @property
    def verdict(self) -> str: ...

    reason: str
    champion_version: str | None
    champion_metrics: dict[str, float]


def version_description(
    decision: Gate, report: EvaluationReport, lineage: Lineage, *, name: str, run: str
) -> str:
    """The version's description, in Markdown: the verdict, the gate's statistics, a table
    of test metrics against the champion's on the same rows, the lineage, and links (MLflow
    UI routes) to the training run and to the champion version."""
    verdict = {
        "promote": "PROMOTED to champion",
        "keep": "NOT promoted: champion kept",
        "undecidable": "NOT promoted: undecidable",
    }[decision.verdict]
    theirs = decision.champion_metrics
    head = f"| test metric ({report.n_test} rows) | this version |"
    rule = "|---|---|"
    if theirs:
        head += f" champion v{decision.champion_version} |"
        rule += "---|"
    rows = [
        f"| {k} | {v:.4f} |" + (f" {theirs[k]:.4f} |" if k in theirs else (" |" if theirs else ""))
        for k, v in sorted(report.metrics.items())
    ]
    threshold = (
        "" if report.threshold is None else f" Decisions at threshold {report.threshold:.4f}."
    )
    links = [f"[training run]({run})"]
    if decision.champion_version:
        links.append(
            f"[champion v{decision.champion_version}](#/models/{name}/versions/"
            f"{decision.champion_version})"
        )
    dirty = " (dirty)" if lineage.git_dirty else ""
    return "\n".join(
        [
            f"### {verdict}",
            "",
            f"**Gate**: {decision.reason}.{threshold}",
            "",
            head,
            rule,
            *rows,
            "",
            f"**Lineage**: data `{lineage.data_path}` (md5 `{lineage.data_md5}`), commit "
            f"`{lineage.git_commit}`{dirty}, config `{lineage.config_name}` (hash "
            f"`{lineage.config_hash}`), Prefect flow run `{lineage.flow_run_id}`.",
            "",
            "**Links**: " + " · ".join(links),
        ]
    )
