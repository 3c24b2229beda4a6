"""Data validation with a Great Expectations suite: first a report, then a separate gate."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from honing.exceptions import ConfigError, DataValidationError


@dataclass(frozen=True)
class ExpectationFailure:
    column: str | None
    rule: str
    severity: str
    details: str


@dataclass(frozen=True)
class ValidationReport:
    source: str
    suite: str
    rows: int
    evaluated: int
    failures: list[ExpectationFailure] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "success": self.success}

    def table(self) -> str:
        """The failed expectations as a fixed-width text table (file, column, rule, details)."""
        rows = [(f.column or "<table>", f.rule, f.severity, f.details) for f in self.failures]
        head = ("column", "rule", "severity", "details")
        widths = [
            max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i])
            for i in range(3)
        ]
        lines = [
            "  ".join(h.ljust(w) for h, w in zip(head[:3], widths, strict=True)) + "  " + head[3]
        ]
        for r in rows:
            lines.append(
                "  ".join(v.ljust(w) for v, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
            )
        return "\n".join(lines)


def load_suite(path: Path) -> dict[str, Any]:
    """Read an expectation suite saved as JSON (``ExpectationSuite.to_json_dict()``)."""
    path = Path(path)
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: expectation suite not found") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: expectation suite is not valid JSON: {exc}") from exc
    if not isinstance(suite, dict) or "expectations" not in suite:
        raise ConfigError(f"{path}: not an expectation suite (no 'expectations' key)")
    return suite


def save_suite(suite: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def _context():  # type: ignore[no-untyped-def]
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _describe(result: Any) -> str:
    info = result.exception_info or {}
    if info.get("raised_exception"):
        msg = str(info.get("exception_message") or "").splitlines()
        return f"could not be evaluated: {msg[0] if msg else 'error'}"
    res = result.result or {}
    parts = []
    if "observed_value" in res:
        observed = res["observed_value"]
        details = res.get("details") or {}
        mismatched = details.get("mismatched") if isinstance(details, dict) else None
        if mismatched:
            parts.append(f"mismatched columns: {mismatched}")
        else:
            parts.append(f"observed {observed!r}")
    if res.get("unexpected_count"):
        sample = list(dict.fromkeys(map(repr, res.get("partial_unexpected_list") or [])))[:5]
        parts.append(
            f"{res['unexpected_count']} unexpected ({res.get('unexpected_percent', 0):.2f}%), "
            f"e.g. {', '.join(sample)}"
        )
    kwargs = {
        k: v
        for k, v in result.expectation_config.kwargs.items()
        if k not in ("column", "batch_id", "result_format")
    }
    if kwargs:
        shown = {k: (v if len(repr(v)) < 80 else f"{repr(v)[:77]}...") for k, v in kwargs.items()}
        parts.append(f"expected {shown}")
    return "; ".join(parts) or "failed"


def validate_frame(df: pd.DataFrame, suite: dict[str, Any], *, source: str) -> ValidationReport:
    """Run every expectation of ``suite`` on ``df`` and collect the failures. Never raises on bad
    data: deciding is :func:`gate`'s job."""
    import great_expectations as gx

    ctx = _context()
    batch = (
        ctx.data_sources.add_pandas("honing")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": df})
    )
    payload = {k: v for k, v in suite.items() if k in ("name", "expectations", "meta")}
    payload["expectations"] = [
        {k: v for k, v in e.items() if k != "id"} for e in payload.get("expectations", [])
    ]
    gx_suite = ctx.suites.add(gx.ExpectationSuite(**payload))
    result = batch.validate(gx_suite, result_format="SUMMARY")
    failures = []
    for res in result.results:
        if res.success:
            continue
        cfg = res.expectation_config
        failures.append(
            ExpectationFailure(
                column=cfg.kwargs.get("column"),
                rule=cfg.type,
                severity=str(getattr(cfg, "severity", "critical")).split(".")[-1].lower(),
                details=_describe(res),
            )
        )
    return ValidationReport(
        source=source,
        suite=str(suite.get("name", "suite")),
        rows=len(df),
        evaluated=len(result.results),
        failures=failures,
    )


def gate(report: ValidationReport, fail_on: tuple[str, ...] = ("critical",)) -> None:
    """Raise :class:`DataValidationError` if any failure has a severity in ``fail_on``."""
    blocking = [f for f in report.failures if f.severity in fail_on]
    if blocking:
        blocked = ValidationReport(
            report.source, report.suite, report.rows, report.evaluated, blocking
        )
        raise DataValidationError(
            f"{report.source}: {len(blocking)} of {report.evaluated} expectations of suite "
            f"'{report.suite}' failed:\n{blocked.table()}",
            report=report,
        )
