"""Registered versions described in Markdown for the MLflow UI: the gate's verdict and
statistics, the test metrics beside the champion's, the lineage, and links; and the
registered model itself: who holds each alias now, and the story of its alias moves."""

from __future__ import annotations

import time
from typing import Protocol

from honing.evaluation import EvaluationReport
from honing.lineage import Lineage


class Gate(Protocol):
    """What a description shows of a gate decision
    (:class:`honing.registry.champion.GateDecision`)."""

    @property
    def verdict(self) -> str: ...

    reason: str
    champion_version: str | None
    champion_metrics: dict[str, float]


def version_description(
    decision: Gate,
    report: EvaluationReport,
    lineage: Lineage,
    *,
    name: str,
    run: str,
    past_thresholds: tuple[str, ...] = (),
) -> str:
    """The version's description, in Markdown: the verdict, the gate's statistics, a
    version registered past a quality threshold (``past_thresholds``, which the champion
    misses too) said so, a table of test metrics against the champion's on the same rows,
    the lineage, and links (MLflow UI routes) to the training run and to the champion
    version."""
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
            verdict,  # a plain first line: the versions table shows it as it is
            "",
            f"**Gate**: {decision.reason}.{threshold}",
            "",
            *(
                [
                    f"**Quality**: registered past its threshold for {', '.join(past_thresholds)}"
                    ", which the serving champion misses too on the same rows, scoring no "
                    "better (see the table).",
                    "",
                ]
                if past_thresholds
                else []
            ),
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


class Move(Protocol):
    """What the model's description shows of an alias move
    (:class:`honing.registry.aliases.AliasMove`)."""

    alias: str
    version: str
    previous: str | None
    by: str
    reason: str
    at: float


#: The latest alias moves the registered model's description lists.
STORY_MOVES = 20


def model_description(name: str, moves: list[Move], *, limit: int = STORY_MOVES) -> str:
    """The registered model's description, in Markdown: each alias and the version holding
    it now (linked), then the latest ``limit`` alias moves, newest first, as a table (when,
    alias, from, to, by whom, why). ``moves``: oldest first, as recorded."""

    def link(version: str | None) -> str:
        return f"[v{version}](#/models/{name}/versions/{version})" if version else "none"

    holders: dict[str, str | None] = {}
    for m in moves:
        holders[m.alias] = m.version or None
    now = " · ".join(f"`@{a}` {link(v)}" for a, v in sorted(holders.items())) or "no alias yet"
    rows = [
        f"| {time.strftime('%Y-%m-%d %H:%M', time.localtime(m.at))} | @{m.alias} | "
        f"{link(m.previous)} | {link(m.version)} | {_cell(m.by)} | {_cell(m.reason)} |"
        for m in reversed(moves[-limit:])
    ]
    older = len(moves) - len(rows)
    hidden = f"; {older} older moves not shown" if older else ""
    return "\n".join(
        [
            f"**{name}** now: {now}",
            "",
            f"### Alias history (newest first{hidden})",
            "",
            "| when | alias | from | to | by | why |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "The whole history: `honing aliases " + name + "`.",
        ]
    )


def _cell(text: str, width: int = 160) -> str:
    """``text`` as one Markdown table cell: one line, no pipe, at most ``width`` characters."""
    flat = " ".join(text.split()).replace("|", "/")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def served_links(
    source: str, source_version: str, served: str, served_version: str
) -> tuple[str, str]:
    """The two links between a version and its served flavor, in Markdown: what the flavor's
    description starts with, and the line the source version's description ends with."""
    to_source = f"[{source} v{source_version}](#/models/{source}/versions/{source_version})"
    to_served = f"[{served} v{served_version}](#/models/{served}/versions/{served_version})"
    return to_source, f"**Served flavor**: {to_served}"
