"""The Great Expectations half of validation: suites saved as JSON, run on a frame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from honing.exceptions import ConfigError
from honing.validation.report import ExpectationFailure, ValidationReport

#: The types a suite lists for a column of text (``expect_column_values_to_be_in_type_list``).
TEXT_TYPES = ["object", "str", "string", "category"]


def text_columns(suite: dict[str, Any]) -> list[str]:
    """The columns ``suite`` types as text: every type it lists for them is a text type.
    A CSV reader guesses from the values, and a batch in which such a column holds digits
    only (zip codes, codes, identifiers) would be read as numbers and refused by the very
    rule that said it is text: the loaders read these columns as text
    (:func:`honing.data.load_table`'s ``text``), leading zeros kept."""
    found = []
    for exp in suite.get("expectations", []):
        kw = exp.get("kwargs", {})
        types = kw.get("type_list") or []
        if exp.get("type") == "expect_column_values_to_be_in_type_list" and types:
            if all(t in TEXT_TYPES for t in types) and kw.get("column") not in found:
                found.append(kw["column"])
    return found


def value_set(suite: dict[str, Any], column: str) -> list[Any] | None:
    """The values ``suite`` allows in ``column`` as a contract (a ``critical``
    ``expect_column_values_to_be_in_set``: a classification label's classes), None where it
    states none."""
    for exp in suite.get("expectations", []):
        kw = exp.get("kwargs", {})
        if (
            exp.get("type") == "expect_column_values_to_be_in_set"
            and kw.get("column") == column
            and exp.get("severity", "critical") == "critical"
        ):
            return list(kw.get("value_set") or [])
    return None


def with_values(suite: dict[str, Any], column: str, values: list[Any]) -> dict[str, Any]:
    """A copy of ``suite`` whose value set for ``column`` (:func:`value_set`) also holds
    ``values``."""
    out = {**suite, "expectations": []}
    for exp in suite.get("expectations", []):
        kw = exp.get("kwargs", {})
        if exp.get("type") == "expect_column_values_to_be_in_set" and kw.get("column") == column:
            exp = {**exp, "kwargs": {**kw, "value_set": [*kw.get("value_set", []), *values]}}
        out["expectations"].append(exp)
    return out


def load_suite(path: Path) -> dict[str, Any]:
    """Read an expectation suite saved as JSON (``ExpectationSuite.to_json_dict()``)."""
    path = Path(path)
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: expectation suite not found") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: expectation suite is not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: expectation suite is not UTF-8 text (binary?): {exc}") from exc
    except IsADirectoryError as exc:
        raise ConfigError(
            f"{path}: rule: an expectation suite is a JSON file; this is a folder"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the expectation suite: {exc}") from exc
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


def check_expectations(df: pd.DataFrame, suite: dict[str, Any], *, source: str) -> ValidationReport:
    """Run every expectation of ``suite`` on ``df`` and collect the failures. Never raises on bad
    data: deciding is :func:`honing.validation.gate`'s job."""
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
        column = cfg.kwargs.get("column")
        absent = column is not None and column not in df.columns
        failures.append(
            ExpectationFailure(
                column=column,
                rule=cfg.type,
                severity=str(getattr(cfg, "severity", "critical")).split(".")[-1].lower(),
                # GX words a rule on a missing column by its own error ("list index out of
                # range"); honing's evaluator and this say the same thing
                details=f"could not be evaluated: column {column!r} is missing"
                if absent
                else _describe(res),
            )
        )
    return ValidationReport(
        source=source,
        suite=str(suite.get("name", "suite")),
        rows=len(df),
        evaluated=len(result.results),
        failures=failures,
    )
