"""Validating and versioning the table: load it, record its lineage on the run, validate it
against the suite and the quality rules, and log the report (the gate decides afterwards)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from honing import data, lineage, tracking, validation
from honing.config import PipelineConfig
from honing.stages.context import RunRef


@dataclass(frozen=True)
class Validated:
    """The table as loaded, where it came from, and what validation said of it."""

    raw: pd.DataFrame
    lineage: lineage.Lineage
    report: validation.ValidationReport

    def log_lines(self) -> list[str]:
        return [
            f"data {self.lineage.data_path}: {len(self.raw)} rows, MD5 {self.lineage.data_md5}, "
            f"commit {self.lineage.git_commit[:7]}{' (dirty)' if self.lineage.git_dirty else ''}",
            f"validation: {self.report.evaluated - len(self.report.failures)} of "
            f"{self.report.evaluated} expectations of suite {self.report.suite!r} passed"
            + ("" if self.report.engine == "great_expectations" else " (honing's evaluator: "
               "a large table, the suite's expectations with Great Expectations' semantics)"),
        ]  # fmt: skip


def located(
    cfg: PipelineConfig,
    suite: dict[str, Any],
    *,
    repo: str,
    config_path: str,
    flow_run_id: str,
) -> tuple[pd.DataFrame, lineage.Lineage]:
    """The table at ``cfg.data.path`` (the columns ``suite`` types as text read as text), and
    its lineage (data MD5, commit, config hash)."""
    text = validation.text_columns(suite)
    raw = data.load_table(cfg.data.path, cfg.data, text=text)
    found = lineage.build_lineage(
        data_path=Path(cfg.data.path),
        data_md5=data.file_md5(cfg.data.path),
        repo=Path(repo),
        config_hash=cfg.content_hash,
        config_path=config_path,
        flow_run_id=flow_run_id,
    )
    return raw, found


def report(
    cfg: PipelineConfig, raw: pd.DataFrame, suite: dict[str, Any]
) -> validation.ValidationReport:
    """``raw`` validated against the config's ``suite`` and quality rules."""
    return validation.validate(
        raw,
        suite,
        source=str(cfg.data.path),
        rules=validation.QualityRules.from_config(cfg),
        budget_s=cfg.time_budget_s,
    )


def check(cfg: PipelineConfig, *, repo: str, config_path: str, flow_run_id: str) -> Validated:
    """The table, its lineage and its validation report, with nothing logged."""
    suite = validation.load_suite(cfg.validation.suite)
    raw, found = located(cfg, suite, repo=repo, config_path=config_path, flow_run_id=flow_run_id)
    return Validated(raw=raw, lineage=found, report=report(cfg, raw, suite))


def validate(
    cfg: PipelineConfig, run: RunRef, *, repo: str, config_path: str, flow_run_id: str
) -> Validated:
    """Load ``cfg.data.path``, tag the run with its lineage (data MD5, commit, config hash),
    log it as the run's dataset input and the config beside it, validate it and log the
    report. :func:`honing.validation.gate` then decides on it."""
    suite = validation.load_suite(cfg.validation.suite)
    raw, found = located(cfg, suite, repo=repo, config_path=config_path, flow_run_id=flow_run_id)
    tracking.set_tags(run.run_id, found.tags())
    tracking.log_dataset(
        run.run_id, raw, source=found.data_path, name=cfg.name, digest=found.data_md5
    )
    tracking.log_config(run.run_id, cfg, Path(repo))
    checked = report(cfg, raw, suite)
    tracking.log_json(run.run_id, checked.to_dict(), "validation/report.json", root=repo)
    return Validated(raw=raw, lineage=found, report=checked)
