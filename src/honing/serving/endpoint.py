"""The online endpoint: a registered model behind HTTP on 127.0.0.1 (``honing serve-model``).

Requests carry rows as JSON (``{"dataframe_records": [...]}``, MLflow's
``{"dataframe_split": {"columns": [...], "data": [...]}}``, or a bare list of records). Each
request is checked with the inference suite (the training suite without the label), the same
rules as ``honing predict``, evaluated by :func:`honing.validation.fast.check_fast`; a bad
request gets a 4xx naming the column and the rule. The answer is the model's output contract
(:meth:`honing.modeling.decision.DecisionRule.outputs`). Nothing a client sends crashes the server:
a
failure inside the model is a 500 with one line, and the next request is served.

Requests that arrive together are scored together (:mod:`honing.serving.batching`,
:mod:`honing.serving.scoring`), each with the answer it would get alone; JSON is read and written
with orjson.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response

from honing.compression.predictors import columns_read
from honing.modeling.decision import Decided
from honing.serving.batching import Batcher
from honing.serving.capture import CaptureLog
from honing.serving.inference import inference_suite
from honing.serving.scoring import Answer, Parsed, RequestError, parse, score_many

log = logging.getLogger("honing.serving.endpoint")

#: Most rows scored in one batch of requests (a larger request is a batch alone).
BATCH_ROWS = 512


@dataclass(frozen=True)
class Served:
    """What the endpoint serves: the loaded model, the suite requests are checked with, and
    where the model came from."""

    model: Decided
    suite: dict[str, Any]
    uri: str
    version: str


def served(model: Decided, suite: dict[str, Any], *, target: str, drop_columns: list[str],
           uri: str, version: str) -> Served:  # fmt: skip
    """The bundle :func:`build_app` serves, its suite reduced to what a request must meet:
    the inference suite (no label, no row count), less the not-null rules that allow a share
    of nulls (``mostly`` < 1). Those are statistics of a batch, which a request of one row
    cannot meet, and the model imputes the missing values they allow. A served graph whose
    unused inputs were cut asks only for the columns it reads."""
    rules = inference_suite(suite, target, drop_columns, columns_read(model))
    rules["expectations"] = [
        e
        for e in rules["expectations"]
        if not (
            e["type"] == "expect_column_values_to_not_be_null"
            and float(e.get("kwargs", {}).get("mostly", 1.0)) < 1.0
        )
    ]
    return Served(model, rules, uri, version)


def required_columns(suite: dict[str, Any]) -> list[str]:
    """The columns a request must carry: the column set of the served suite."""
    for exp in suite.get("expectations", []):
        if exp["type"] == "expect_table_columns_to_match_set":
            return list(exp["kwargs"]["column_set"])
    return []


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


@dataclass(frozen=True)
class Asked:
    """One request waiting for its batch: the version that answers it (read once), its rows
    and its id."""

    bundle: Served
    parsed: Parsed
    request_id: str


@dataclass(frozen=True)
class Done:
    """One scored request: its answer and whether the capture kept it."""

    answer: Answer
    kept: bool


def _by_bundle(
    asked: Sequence[Asked], capture: bool, bundle_of: Callable[[Asked], Served]
) -> list[Answer | Exception]:
    """Each request scored by its bundle, the requests of one bundle in one call."""
    results: list[Answer | Exception | None] = [None] * len(asked)
    groups: dict[int, list[int]] = {}
    for i, a in enumerate(asked):
        groups.setdefault(id(bundle_of(a)), []).append(i)
    for members in groups.values():
        bundle = bundle_of(asked[members[0]])
        scored = score_many(
            bundle.model, bundle.suite, [asked[i].parsed for i in members], inputs=capture
        )
        for i, result in zip(members, scored, strict=True):
            results[i] = result
    return results  # type: ignore[return-value]


def scorer(capture: CaptureLog | None) -> Callable[[Sequence[Asked]], list[Done | Exception]]:
    """What a batch of requests runs: score each by the version it was given, then keep the
    answered ones in the capture (when there is one), in one write."""

    def score(asked: Sequence[Asked]) -> list[Done | Exception]:
        scored = _by_bundle(asked, capture is not None, lambda a: a.bundle)
        kept = [False] * len(asked)
        if capture is not None:
            answered = [i for i, r in enumerate(scored) if isinstance(r, Answer)]
            items = []
            for i in answered:
                result = scored[i]
                assert isinstance(result, Answer) and result.inputs is not None
                items.append(
                    (asked[i].request_id, asked[i].bundle.version, result.inputs,
                     result.predictions)
                )  # fmt: skip
            for i, was_kept in zip(answered, capture.record_many(items), strict=True):
                kept[i] = was_kept
        return [
            Done(r, k) if isinstance(r, Answer) else r for r, k in zip(scored, kept, strict=True)
        ]

    return score


def shadowing(shadow: Shadow) -> Callable[[Sequence[Asked], Sequence[Any]], None]:
    """What follows a batch when a shadow model runs: the captured requests of the batch,
    scored by the shadow's version of the moment, its answers kept in the shadow's log."""

    def after(asked: Sequence[Asked], results: Sequence[Any]) -> None:
        captured = [
            a for a, r in zip(asked, results, strict=True) if isinstance(r, Done) and r.kept
        ]
        if not captured:
            return
        bundle = shadow.current.bundle  # one version scores the whole batch
        scored = score_many(bundle.model, bundle.suite, [a.parsed for a in captured], inputs=True)
        items = []
        for a, result in zip(captured, scored, strict=True):
            if isinstance(result, Answer):
                assert result.inputs is not None
                items.append((a.request_id, bundle.version, result.inputs, result.predictions))
            else:
                log.warning("shadow v%s could not score request %s: %s",
                            bundle.version, a.request_id, result)  # fmt: skip
        shadow.log.record_many(items, sample=False)

    return after


def loads(body: bytes) -> Any:
    """A request body as JSON (orjson; Python's reader for what only it accepts, such as
    NaN). Raises ``ValueError`` or ``RecursionError``."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
    return Response(content, status, headers, media_type="application/json")


def build_app(
    bundle: Served,
    follow: Follow | None = None,
    capture: CaptureLog | None = None,
    shadow: Shadow | None = None,
) -> FastAPI:
    """The FastAPI app: ``POST /invocations`` (and ``/predict``), ``GET /health``, ``GET
    /metadata``. With ``follow``, the server follows its alias (:class:`Current`); with
    ``capture``, each answered request's rows and answers are kept
    (:class:`honing.serving.capture.CaptureLog`), and with ``shadow`` each captured request is also
    scored by the shadow model after the response is sent. Every answer carries its
    ``request_id``."""
    current = Current(bundle, follow)
    if shadow is not None and capture is None:
        raise ValueError("a shadow model needs a capture: its answers are compared there")
    batcher: Batcher[Asked, Done] = Batcher(
        scorer(capture), max_rows=BATCH_ROWS, after=shadowing(shadow) if shadow else None
    )

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
        batcher.close()

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
            "columns": required_columns(current.bundle.suite),
            "classes": rule.classes,
            "threshold": rule.threshold,
            "decision": rule.describe() if rule.classes else "regression",
            "batching": {**batcher.stats.describe(), "max_rows": batcher.max_rows,
                         **({"shadow_skipped": batcher.skipped} if shadow else {})},
        }  # fmt: skip

    async def invocations(request: Request) -> Response:
        start = time.perf_counter()
        try:
            payload = loads(await request.body())
        except ValueError:
            return _json({"error": "the body is not JSON"}, 400)
        except RecursionError:  # a body nested deeper than any table's rows
            return _json({"error": "the body nests too deep to be rows of a table"}, 400)
        served = current.bundle  # one version answers the whole request
        rid = request_id(request.headers.get("x-request-id"))
        try:
            parsed = parse(payload)
            done = await batcher.submit(Asked(served, parsed, rid), parsed.rows)
        except RequestError as exc:
            return _json({"error": str(exc), "failures": exc.failures}, exc.status)
        except Exception as exc:  # noqa: BLE001 - one bad request never stops the server
            log.error("scoring failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
            return _json({"error": f"scoring failed: {type(exc).__name__}: {exc}"[:500]}, 500)
        body = {
            "predictions": done.answer.predictions,
            "ms": round((time.perf_counter() - start) * 1000, 3),
            "version": served.version,
            "request_id": rid,
        }
        return _json(body, headers={"X-Request-Id": rid})

    app.add_route("/invocations", invocations, methods=["POST"])
    app.add_route("/predict", invocations, methods=["POST"])
    return app


async def _following(current: Current) -> None:
    """Read the alias every ``every_s`` seconds; load a moved version off the event loop."""
    assert current.follow is not None
    while True:
        await asyncio.sleep(current.follow.every_s)
        await asyncio.to_thread(current.refresh)
