"""The endpoint's requests scored many at a time, each with the answer it would get alone.

A request is parsed once (:func:`parse`). Rows sent as ``dataframe_records`` whose objects
have the same keys in the same order, each key holding values of one kind (int, float, str,
bool, null, ...), carry a group key: requests with the same key give one frame with exactly
the dtypes each would give alone, so the suite is checked once on it and the model called
once. When that check fails, or the suite has rules with ``mostly`` below 1 (a share that a
batch would change), each request's rows are checked alone, so that a bad request is refused
with its own failures and the others are answered. When the model fails on a batch, each
request is scored alone, so that only the one that breaks it gets the error. Other requests
(``dataframe_split``, records with ragged keys or mixed kinds) are scored alone, in the same
call. :func:`score_many` does the work, :class:`honing.serving.batching.Batcher` decides what
arrives
together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from honing.modeling.decision import Decided
from honing.validation.fast import check_fast, is_missing

#: Largest batch one request may carry.
MAX_ROWS = 10_000
INT64 = (-(2**63), 2**63)


class RequestError(ValueError):
    """A request the endpoint refuses, with its HTTP status and the failures in words."""

    def __init__(self, status: int, message: str, failures: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.failures = failures or []


@dataclass(frozen=True)
class Parsed:
    """A request's rows: the ``records`` as sent, with the ``key`` that groups them with
    other requests, or a ``frame`` scored alone."""

    rows: int
    records: list[dict[str, Any]] | None = None
    key: tuple[Any, ...] | None = None
    frame: pd.DataFrame | None = None


@dataclass(frozen=True)
class Answer:
    """A scored request: its answers as records, and its rows as JSON values when asked
    for (what a capture keeps)."""

    predictions: list[dict[str, Any]]
    inputs: list[dict[str, Any]] | None = None


def _sized(rows: int) -> None:
    if not rows:
        raise RequestError(400, "no rows to score")
    if rows > MAX_ROWS:
        raise RequestError(413, f"{rows} rows; at most {MAX_ROWS} per request")


def _kind(value: Any) -> Any:
    """What decides the dtype a value gives its column: its type (an int past int64's range
    is a kind of its own)."""
    kind = type(value)
    if kind is int and not INT64[0] <= value < INT64[1]:
        return "bigint"
    return kind


def _key(records: list[dict[str, Any]]) -> tuple[Any, ...] | None:
    """The records' columns and their values' kinds, when every record has the same keys in
    the same order and each column one kind; else None."""
    first = records[0]
    columns, kinds = tuple(first), tuple(map(_kind, first.values()))
    for record in records[1:]:
        if tuple(record) != columns or tuple(map(_kind, record.values())) != kinds:
            return None
    return columns, kinds


def _split_frame(split: Any) -> pd.DataFrame:
    if not isinstance(split, dict) or "columns" not in split or "data" not in split:
        raise RequestError(400, "dataframe_split needs 'columns' and 'data'")
    rows, columns = split["data"], split["columns"]
    if not isinstance(rows, list) or not isinstance(columns, list):
        raise RequestError(400, "dataframe_split: 'columns' and 'data' are lists")
    _sized(len(rows))
    names = pd.Index(map(str, columns))
    if names.has_duplicates:  # one pass, whatever the request's width
        twice = names[names.duplicated()][0]
        raise RequestError(400, f"dataframe_split: column {twice!r} is named twice")
    try:
        return pd.DataFrame(rows, columns=columns)
    except (ValueError, TypeError) as exc:
        raise RequestError(400, f"dataframe_split: {exc}") from exc


def parse(payload: Any) -> Parsed:
    """A request's rows (:class:`RequestError` 400 when the shape is wrong, 413 when too
    many): ``{"dataframe_records": [...]}``, ``{"dataframe_split": {...}}`` or a bare list of
    records."""
    if isinstance(payload, dict) and "dataframe_records" in payload:
        records = payload["dataframe_records"]
    elif isinstance(payload, dict) and "dataframe_split" in payload:
        frame = _split_frame(payload["dataframe_split"])
        return Parsed(len(frame), frame=frame)
    elif isinstance(payload, list):
        records = payload
    else:
        raise RequestError(
            400, "send {'dataframe_records': [{column: value, ...}, ...]} or dataframe_split"
        )
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise RequestError(400, "dataframe_records must be a list of objects (one per row)")
    _sized(len(records))
    key = _key(records)
    if key is None:
        return Parsed(len(records), frame=pd.DataFrame.from_records(records))
    return Parsed(len(records), records=records, key=key)


def blanks_typed(df: pd.DataFrame, suite: dict[str, Any]) -> pd.DataFrame:
    """A column that is blank in every row of the request (JSON null) has no type of its
    own; it takes float when the suite lets the column be numeric, as a blank does in a
    batch of numbers."""
    untyped = [c for c, kind in df.dtypes.items() if kind.kind == "O"]  # a typed column is not
    if not untyped:  # blank all through (numbers, or NaN)
        return df
    numeric = {
        e["kwargs"]["column"]
        for e in suite.get("expectations", [])
        if e["type"] == "expect_column_values_to_be_in_type_list"
        and any(t.lower().startswith(("float", "int")) for t in e["kwargs"].get("type_list") or [])
    }
    blank = [c for c in untyped if c in numeric and pd.isna(df[c].to_numpy()).all()]
    return df.astype({c: "float64" for c in blank}) if blank else df


def shares(suite: dict[str, Any]) -> bool:
    """Whether a rule of ``suite`` allows a share of bad values (``mostly`` below 1): its
    verdict on a batch is not the verdict on each request."""
    return any(float(e.get("kwargs", {}).get("mostly", 1.0)) < 1.0 for e in suite["expectations"])


def refusal(df: pd.DataFrame, suite: dict[str, Any]) -> RequestError | None:
    """The 422 for rows the suite refuses, naming the first column and rule; None if none."""
    report = check_fast(df, suite, source="request")
    if report.success:
        return None
    failures = [{"column": f.column, "rule": f.rule, "details": f.details} for f in report.failures]
    first = failures[0]
    # a rule of the whole table (its set of columns) has no column of its own to name
    subject = f"column {first['column']!r}" if first["column"] else "the request's columns"
    return RequestError(
        422,
        f"{subject}: rule {first['rule']}: {first['details']}"
        + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""),
        failures,
    )


def _native(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if is_missing(value):
        return None
    return value


def records(out: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-ready records: Python values, None for a missing one."""
    columns = [str(c) for c in out.columns]
    lists = []
    for column in out.columns:
        values = out[column].to_numpy()
        if values.dtype.kind in "iub":
            lists.append(values.tolist())
        elif values.dtype.kind == "f":
            lists.append([None if v != v else v for v in values.tolist()])
        else:
            lists.append([_native(v) for v in values.tolist()])
    return [dict(zip(columns, row, strict=True)) for row in zip(*lists, strict=True)]


def _inputs(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.astype(object).where(df.notna(), None).to_dict(orient="records")


def _unit(
    model: Decided, suite: dict[str, Any], parts: list[Parsed], frame: pd.DataFrame,
    inputs: bool, alone: bool,
) -> list[Answer | Exception]:  # fmt: skip
    """Score requests whose rows make ``frame``, in order (see the module's words)."""
    frame = blanks_typed(frame, suite)
    bounds = np.cumsum([0, *(p.rows for p in parts)])
    slices = [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    refused: list[RequestError | None]
    if len(parts) == 1:
        refused = [refusal(frame, suite)]
    elif not shares(suite) and refusal(frame, suite) is None:
        refused = [None] * len(parts)
    else:
        refused = [refusal(s, suite) for s in slices]
    ok = [i for i, r in enumerate(refused) if r is None]
    results: list[Answer | Exception] = list(refused)  # type: ignore[arg-type]
    if not ok:
        return results
    asked = frame if len(ok) == len(parts) else pd.concat([slices[i] for i in ok])
    try:
        answers = records(model.outputs(asked))
    except Exception as exc:  # noqa: BLE001 - alone, only the request that breaks it fails
        if alone or len(ok) == 1:
            for i in ok:
                results[i] = exc
            return results
        for i in ok:
            results[i] = _unit(model, suite, [parts[i]], slices[i], inputs, True)[0]
        return results
    at = 0
    for i in ok:
        part = parts[i]
        kept = None
        if inputs:
            kept = part.records if part.records is not None else _inputs(slices[i])
        results[i] = Answer(answers[at : at + part.rows], kept)
        at += part.rows
    return results


def score_many(
    model: Decided, suite: dict[str, Any], requests: Sequence[Parsed], *, inputs: bool = False
) -> list[Answer | Exception]:
    """Each request's :class:`Answer`, or the :class:`RequestError` that refuses it, or the
    model's error, in order; with ``inputs``, each answer carries its rows as JSON values."""
    results: list[Answer | Exception | None] = [None] * len(requests)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, request in enumerate(requests):
        if request.key is not None:
            groups.setdefault(request.key, []).append(i)
        else:
            assert request.frame is not None
            (results[i],) = _unit(model, suite, [request], request.frame, inputs, True)
    for members in groups.values():
        parts = [requests[i] for i in members]
        rows = [r for p in parts for r in p.records or []]
        scored = _unit(model, suite, parts, pd.DataFrame.from_records(rows), inputs, False)
        for i, result in zip(members, scored, strict=True):
            results[i] = result
    return results  # type: ignore[return-value]
