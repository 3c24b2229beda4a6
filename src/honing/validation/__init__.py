"""Data validation: one entry point, :func:`validate`, gives one report for the expectation
suite (Great Expectations, :mod:`~honing.validation.expectations`) and the quality rules a
suite does not state (:mod:`~honing.validation.rules`); the pure :func:`gate` then decides.
The report's types are in :mod:`~honing.validation.report`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from honing.config import PipelineConfig, QualityConfig
from honing.validation.expectations import check_expectations, load_suite, save_suite
from honing.validation.fast import check_fast
from honing.validation.report import ExpectationFailure, ValidationReport, gate
from honing.validation.rules import RULES, check_rules

__all__ = [
    "RULES",
    "ExpectationFailure",
    "QualityRules",
    "ValidationReport",
    "check_expectations",
    "check_rules",
    "gate",
    "load_suite",
    "save_suite",
    "validate",
]


#: Above this many expectations, or this many rows, Great Expectations' pace (about 25 ms an
#: expectation: 2,000 columns took 160 s; 300,000 rows 15 s) would spend a run's budget on
#: validation; honing's evaluator of the same suite takes 2.4 s and 0.2 s there.
GX_MAX_EXPECTATIONS = 300
GX_MAX_ROWS = 100_000


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
    df: pd.DataFrame, suite: dict[str, Any], *, source: str, rules: QualityRules | None
) -> ValidationReport:
    """The one entry point: every expectation of ``suite`` on ``df``, plus the quality rules
    when ``rules`` is given (a training table; a scoring batch has no label to check), as
    one report. Never raises on bad data: :func:`gate` decides. Great Expectations
    evaluates the suite, unless the table is large (:data:`GX_MAX_EXPECTATIONS`,
    :data:`GX_MAX_ROWS`): honing's own evaluator of the same expectations then does, with
    GX's semantics (:mod:`~honing.validation.fast`, parity-tested), in seconds, not minutes."""
    large = len(suite.get("expectations", [])) > GX_MAX_EXPECTATIONS or len(df) > GX_MAX_ROWS
    report = (check_fast if large else check_expectations)(df, suite, source=source)
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
