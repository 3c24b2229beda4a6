"""The online endpoint: a registered model behind HTTP on 127.0.0.1 (``honing serve-model``).

Requests carry rows as JSON (``{"dataframe_records": [...]}``, MLflow's
``{"dataframe_split": {"columns": [...], "data": [...]}}``, or a bare list of records). Each
batch is checked with the inference suite (the training suite without the label), the same
rules as ``honing predict``, evaluated by :func:`honing.validation.fast.check_fast`; a bad
request gets a 4xx naming the column and the rule. The answer is the model's output contract
(:meth:`honing.decision.DecisionRule.outputs`). Nothing a client sends crashes the server: a
failure inside the model is a 500 with one line, and the next request is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from honing.capture import CaptureLog
from honing.decision import Decided
from honing.inference import inference_suite
from honing.validation.fast import check_fast

log = logging.getLogger("honing.endpoint")

#: Largest batch one request may carry.
MAX_ROWS = 10_000
#: What a capture keeps of an answered request: its rows as sent, and the answers.
Kept = Callable[[list[dict[str, Any]], list[dict[str, Any]]], object]


@dataclass(frozen=True)
class Served:
    """What the endpoint serves: the loaded model, the suite requests are checked with, and
    where the model came from."""

    model: Decided
    suite: dict[str, Any]
    uri: str
    version: str


class RequestError(ValueError):
    """A request the endpoint refuses, with its HTTP status and the failures in words."""

    def __init__(self, status: int, message: str, failures: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.failures = failures or []


def served(model: Decided, suite: dict[str, Any], *, target: str, drop_columns: list[str],
           uri: str, version: str) -> Served:  # fmt: skip
    """The bundle :func:`build_app` serves, its suite reduced to what a request must meet:
    the inference suite (no label, no row count), less the not-null rules that allow a share
    of nulls (``mostly`` < 1). Those are statistics of a batch, which a request of one row
    cannot meet, and the model imputes the missing values they allow."""
    rules = inference_suite(suite, target, drop_columns)
    rules["expectations"] = [
        e
        for e in rules["expectations"]
        if not (
            e["type"] == "expect_column_values_to_not_be_null"
            and float(e.get("kwargs", {}).get("mostly", 1.0)) < 1.0
        )
    ]
    return Served(model, rules, uri, version)


def parse_rows(payload: Any) -> pd.DataFrame:
    """The request's rows as a frame (:class:`RequestError` 400 when the shape is wrong)."""
    if isinstance(payload, dict) and "dataframe_records" in payload:
        records = payload["dataframe_records"]
    elif isinstance(payload, dict) and "dataframe_split" in payload:
        split = payload["dataframe_split"]
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
    elif isinstance(payload, list):
        records = payload
    else:
        raise RequestError(
            400, "send {'dataframe_records': [{column: value, ...}, ...]} or dataframe_split"
        )
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise RequestError(400, "dataframe_records must be a list of objects (one per row)")
    _sized(len(records))
    return pd.DataFrame.from_records(records)


def _sized(rows: int) -> None:
    if not rows:
        raise RequestError(400, "no rows to score")
    if rows > MAX_ROWS:
        raise RequestError(413, f"{rows} rows; at most {MAX_ROWS} per request")


def blanks_typed(df: pd.DataFrame, suite: dict[str, Any]) -> pd.DataFrame:
    """A column that is blank in every row of the request (JSON null) has no type of its
    own; it takes float when the suite lets the column be numeric, as a blank does in a
    batch of numbers."""
    numeric = {
        e["kwargs"]["column"]
        for e in suite.get("expectations", [])
        if e["type"] == "expect_column_values_to_be_in_type_list"
        and any(t.lower().startswith(("float", "int")) for t in e["kwargs"].get("type_list") or [])
    }
    blank = [c for c in df.columns if c in numeric and df[c].isna().all()]
    return df.astype({c: "float64" for c in blank}) if blank else df


def answer(bundle: Served, payload: Any, keep: Kept | None = None) -> dict[str, Any]:
    """Score one request: parse, check like ``honing predict``, predict; the output
    contract as records, also handed to ``keep`` with the rows (the capture). Raises
    :class:`RequestError` for what the client must fix."""
    rows = parse_rows(payload)
    df = blanks_typed(rows, bundle.suite)
    report = check_fast(df, bundle.suite, source="request")
    if not report.success:
        failures = [
            {"column": f.column, "rule": f.rule, "details": f.details} for f in report.failures
        ]
        first = failures[0]
        raise RequestError(
            422,
            f"column {first['column'] or '<table>'!r}: rule {first['rule']}: {first['details']}"
            + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""),
            failures,
        )
    out = bundle.model.outputs(df)
    out = out.replace({np.nan: None})
    predictions = out.to_dict(orient="records")
    if keep is not None:
        keep(rows.astype(object).where(rows.notna(), None).to_dict(orient="records"), predictions)
    return {"predictions": predictions}


@dataclass(frozen=True)
class Follow:
    """How a server started on an alias follows it: ``holder()`` names the version the
    alias holds now (None: none), ``load(version)`` loads it (its files checked like every
    load), and the alias is read every ``every_s`` seconds."""

    alias: str
    holder: Callable[[], str | None]
    load: Callable[[str], Served]
    every_s: float = 5.0


class Current:
    """The bundle being served, swapped whole when the alias moves: a request reads it once,
    so it is answered by one version from start to end, and none fails during a swap."""

    def __init__(self, bundle: Served, follow: Follow | None = None) -> None:
        self.bundle = bundle
        self.follow = follow
        self.error: str | None = None

    def refresh(self) -> None:
        """Load and swap in the version the alias holds, if it moved; a version that fails
        to load leaves the one serving in place, and :attr:`error` says why."""
        if self.follow is None:
            return
        try:
            version = self.follow.holder()
            if version is None or version == self.bundle.version:
                return
            self.bundle, self.error = self.follow.load(version), None
            log.info("@%s moved: now serving v%s", self.follow.alias, version)
        except Exception as exc:  # noqa: BLE001 - the old version keeps serving
            self.error = f"kept v{self.bundle.version}: {type(exc).__name__}: {exc}"[:500]
            log.warning("@%s moved, but %s", self.follow.alias, self.error)

    def describe(self) -> dict[str, Any]:
        follow = self.follow
        return {
            "model": self.bundle.uri,
            "version": self.bundle.version,
            **({"follows": f"@{follow.alias}", "every_s": follow.every_s} if follow else {}),
            **({"error": self.error} if self.error else {}),
        }


def request_id(header: str | None) -> str:
    """The client's ``X-Request-Id`` when it is a plain token (letters, digits, ``-_.:``, at
    most 128), else a new one: what joins late labels to a captured answer."""
    if header and len(header) <= 128 and all(c.isalnum() or c in "-_.:" for c in header):
        return header
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Shadow:
    """A second model that scores the captured requests off the response path (a
    challenger judged on live traffic): ``current`` (following its own alias) and the log
    its answers go to."""

    current: Current
    log: CaptureLog


def _shadowed(shadow: Shadow, rid: str, payload: Any) -> None:
    """Score a request with the shadow model and log its answers; a failure is logged and
    never reaches the client, who was answered already."""
    bundle = shadow.current.bundle
    try:
        answer(bundle, payload, functools.partial(shadow.log.record, rid, bundle.version))
    except Exception as exc:  # noqa: BLE001 - the shadow never affects serving
        log.warning("shadow v%s could not score request %s: %s", bundle.version, rid, exc)


def build_app(
    bundle: Served,
    follow: Follow | None = None,
    capture: CaptureLog | None = None,
    shadow: Shadow | None = None,
) -> FastAPI:
    """The FastAPI app: ``POST /invocations`` (and ``/predict``), ``GET /health``, ``GET
    /metadata``. With ``follow``, the server follows its alias (:class:`Current`); with
    ``capture``, each answered request's rows and answers are kept
    (:class:`honing.capture.CaptureLog`), and with ``shadow`` each captured request is also
    scored by the shadow model after the response is sent. Every answer carries its
    ``request_id``."""
    current = Current(bundle, follow)
    if shadow is not None and capture is None:
        raise ValueError("a shadow model needs a capture: its answers are compared there")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(_following(c))
            for c in (current, shadow.current if shadow else None)
            if c is not None and c.follow is not None
        ]
        yield
        for task in tasks:
            task.cancel()

    app = FastAPI(title="honing model", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", **current.describe()}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        rule = current.bundle.model.rule
        return {
            **current.describe(),
            **({"shadow": shadow.current.describe()} if shadow else {}),
            "classes": rule.classes,
            "threshold": rule.threshold,
            "decision": rule.describe() if rule.classes else "regression",
        }

    async def invocations(request: Request) -> JSONResponse:
        start = time.perf_counter()
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        except RecursionError:  # a body nested deeper than any table's rows
            return JSONResponse(
                {"error": "the body nests too deep to be rows of a table"}, status_code=400
            )
        served = current.bundle  # one version answers the whole request
        rid = request_id(request.headers.get("x-request-id"))
        kept: list[bool] = []

        def keep(rows: list[dict[str, Any]], answers: list[dict[str, Any]]) -> None:
            if capture is not None:
                kept.append(capture.record(rid, served.version, rows, answers))

        try:  # rows are turned into records only when a capture keeps them
            body = answer(served, payload, keep if capture is not None else None)
        except RequestError as exc:
            return JSONResponse(
                {"error": str(exc), "failures": exc.failures}, status_code=exc.status
            )
        except Exception as exc:  # noqa: BLE001 - one bad request never stops the server
            log.exception("scoring failed")
            return JSONResponse(
                {"error": f"scoring failed: {type(exc).__name__}: {exc}"[:500]}, status_code=500
            )
        body["ms"] = round((time.perf_counter() - start) * 1000, 3)
        body["version"] = served.version
        body["request_id"] = rid
        after = BackgroundTask(_shadowed, shadow, rid, payload) if shadow and any(kept) else None
        return JSONResponse(body, headers={"X-Request-Id": rid}, background=after)

    app.add_api_route("/invocations", invocations, methods=["POST"])
    app.add_api_route("/predict", invocations, methods=["POST"])
    return app


async def _following(current: Current) -> None:
    """Read the alias every ``every_s`` seconds; load a moved version off the event loop."""
    assert current.follow is not None
    while True:
        await asyncio.sleep(current.follow.every_s)
        await asyncio.to_thread(current.refresh)
