"""Data validation: one entry point, :func:`validate`, gives one report for the expectation
suite (Great Expectations, :mod:`~honing.validation.expectations`) and the quality rules a
suite does not state (:mod:`~honing.validation.rules`); the pure :func:`gate` then decides.
The report's types are in :mod:`~honing.validation.report`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from honing.config import PipelineConfig, QualityConfig
from honing.exceptions import HoningError
from honing.validation.expectations import (
    check_expectations,
    load_suite,
    save_suite,
    text_columns,
    value_set,
    with_values,
)
from honing.validation.fast import check_fast
from honing.validation.report import ExpectationFailure, ValidationReport, gate
from honing.validation.rules import RULES, check_rules

__all__ = [
    "RULES",
    "GX_MODULE",
    "ExpectationFailure",
    "QualityRules",
    "ValidationReport",
    "check_expectations",
    "check_rules",
    "gate",
    "load_suite",
    "may_use_gx",
    "save_suite",
    "text_columns",
    "validate",
    "value_set",
    "with_values",
]


#: Above this many expectations, or this many rows, Great Expectations' pace (about 25 ms an
#: expectation: 2,000 columns took 160 s; 300,000 rows 15 s) would spend a run's budget on
#: validation; honing's evaluator of the same suite takes 2.4 s and 0.2 s there.
GX_MAX_EXPECTATIONS = 300
GX_MAX_ROWS = 100_000
#: Great Expectations' pace per expectation on a quiet 2-core machine (a busy one is slower),
#: and the share of a run's time budget it may take: past it, honing's evaluator decides.
GX_SECONDS_PER_EXPECTATION = 0.025
GX_BUDGET_SHARE = 0.05


def uses_gx(expectations: int, rows: int, budget_s: float | None = None) -> bool:
    """Whether Great Expectations evaluates a suite of ``expectations`` on ``rows`` rows, in
    a run with ``budget_s`` seconds (None: no budget): not on a large table, nor where its
    pace would take more than :data:`GX_BUDGET_SHARE` of the budget (a 60 s run: 120
    expectations)."""
    if expectations > GX_MAX_EXPECTATIONS or rows > GX_MAX_ROWS:
        return False
    cost = expectations * GX_SECONDS_PER_EXPECTATION
    return budget_s is None or cost <= GX_BUDGET_SHARE * budget_s


#: The module Great Expectations' evaluation imports (some 2.6 s of CPU on this 2-core
#: machine, on the start of every command that validates): preloaded only where
#: :func:`may_use_gx` says the run's validation may need it.
GX_MODULE = "great_expectations"


def may_use_gx(suite_path: Path, budget_s: float | None) -> bool:
    """Whether a run of ``budget_s`` seconds validating against the suite at ``suite_path``
    may have Great Expectations evaluate it (:func:`uses_gx` before the rows are known: a
    large table still goes to honing's evaluator). True for a suite that cannot be read yet
    (the validation says why)."""
    try:
        suite = load_suite(suite_path)
    except HoningError:
        return True
    return uses_gx(len(suite.get("expectations", [])), 0, budget_s)


@dataclass(frozen=True)
class QualityRules:
    """What the quality rules need to know about a training table: its label, the task,
    the columns to ignore, and the thresholds (``validation.quality`` in the config)."""

    target: str
    task: str
    cfg: QualityConfig
    ignore: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> QualityRules:
        return cls(
            target=cfg.data.target,
            task=cfg.task,
            cfg=cfg.validation.quality,
            ignore=tuple(cfg.identifiers),
        )


def validate(
    df: pd.DataFrame,
    suite: dict[str, Any],
    *,
    source: str,
    rules: QualityRules | None,
    budget_s: float | None = None,
) -> ValidationReport:
    """The one entry point: every expectation of ``suite`` on ``df``, plus the quality rules
    when ``rules`` is given (a training table; a scoring batch has no label to check), as
    one report. Never raises on bad data: :func:`gate` decides. Great Expectations
    evaluates the suite, unless the table is large or the run's ``budget_s`` short
    (:func:`uses_gx`): honing's own evaluator of the same expectations then does, with GX's
    semantics (:mod:`~honing.validation.fast`, parity-tested), in seconds, not minutes."""
    gx = uses_gx(len(suite.get("expectations", [])), len(df), budget_s)
    report = (check_expectations if gx else check_fast)(df, suite, source=source)
    if rules is None:
        return report
    extra = check_rules(
        df, target=rules.target, ignore=list(rules.ignore), cfg=rules.cfg, task=rules.task
    )
    return ValidationReport(
        source=report.source,
        suite=report.suite,
        rows=report.rows,
        evaluated=report.evaluated + len(RULES),
        failures=[*report.failures, *extra],
        engine=report.engine,
    )
