"""The validation report (failures named by column and rule) and the gate that decides on
it: reports are data, :func:`gate` decides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from honing.exceptions import DataValidationError


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
    #: What evaluated the suite: Great Expectations, or honing's evaluator of the same
    #: expectations (:mod:`honing.validation.fast`) on a table too large for GX's pace.
    engine: str = "great_expectations"

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


def gate(report: ValidationReport, fail_on: tuple[str, ...] = ("critical",)) -> None:
    """Raise :class:`DataValidationError` if any failure has a severity in ``fail_on``."""
    blocking = [f for f in report.failures if f.severity in fail_on]
    if blocking:
        blocked = replace(report, failures=blocking)
        raise DataValidationError(
            f"{report.source}: {len(blocking)} of {report.evaluated} expectations of suite "
            f"'{report.suite}' failed:\n{blocked.table()}",
            report=report,
        )
