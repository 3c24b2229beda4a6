"""Traffic capture: what the endpoint was asked and what it answered, kept as the loop's raw
material (as SageMaker's Data Capture does for its endpoints).

``honing serve-model --capture DIR`` appends one JSON line per answered row to
``DIR/capture.jsonl``: the request id, the row's index in its request, the time (UTC), the
model version that answered, the row's inputs and the answer. Headers and anything else a
client sends are never kept. A sampling rate keeps a share of the requests (each request is
kept or left whole). When the file passes its size bound it is closed as
``capture-<time>.jsonl`` and a new one starts, so that no file grows without bound and each
closed file is a batch that can be versioned as it is.

Reading back: :func:`read_window` flattens the captured rows of a time window into a table
(the inputs' columns, then ``request_id``, ``row``, ``captured_at``, ``version`` and the
answer's columns prefixed ``answer.``), which ``honing monitor --capture`` checks like any
batch; :func:`join_labels` adds late labels by request id (and row), which
``honing ingest --capture`` turns into the newest labelled data version. When a shadow model
scored the same requests (``serve-model --shadow``), a labelled batch is written with the
answers both models gave on its rows beside it (:func:`answers_file`), which the promotion
gate judges (:mod:`honing.monitoring.shadow`). Files are private (0600 in a 0700 folder), whatever
the
umask."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from honing.exceptions import DataLoadError

CURRENT = "capture.jsonl"
#: The lock the folder's writers take in turn (a server's worker processes).
LOCK = ".capture.lock"
#: One captured request: its id, the version that answered, its rows and its answers.
Request = tuple[str, str, list[dict[str, Any]], list[Any]]
#: One JSON object per line (orjson: numpy values as numbers, a missing float as null).
OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
ANSWER = "answer."
#: The folder under a capture that a shadow model's answers go to, and their prefix.
SHADOW, SHADOWED = "shadow", "shadow."
#: Beside a labelled capture batch: the answers both models gave on its rows.
ANSWERS_SUFFIX = ".answers.csv"
#: The columns a captured row adds to the inputs.
META = ("request_id", "row", "captured_at", "version")


@dataclass(frozen=True)
class CaptureConfig:
    """Where and how much to capture: ``sample`` of the requests (0-1], files closed past
    ``max_bytes``."""

    folder: Path
    sample: float = 1.0
    max_bytes: int = 64 * 2**20
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.sample <= 1.0:
            raise ValueError(f"capture sample must be in (0, 1], got {self.sample}")
        if self.max_bytes < 1024:
            raise ValueError(f"capture max_bytes must be at least 1024, got {self.max_bytes}")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stamp() -> str:
    """Now (UTC) as it names a file: sortable, no separators a shell quotes."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


class CaptureLog:
    """Appends the rows of answered requests to the capture file; safe across threads and
    processes (a server's workers share the folder: each write, and the file's closing past
    its bound, hold a lock on ``.capture.lock`` there)."""

    def __init__(self, cfg: CaptureConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._random = random.Random(cfg.seed)
        cfg.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(cfg.folder, 0o700)
        self.path = cfg.folder / CURRENT
        self._shared = cfg.folder / LOCK

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """This process's threads one at a time, then the folder's writers one at a time."""
        with self._lock:
            fd = os.open(self._shared, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the lock

    def record(
        self, request_id: str, version: str, inputs: list[dict[str, Any]], answers: list[Any]
    ) -> bool:
        """Keep one request's rows with their answers (when the sample draws it); returns
        whether it was kept."""
        return self.record_many([(request_id, version, inputs, answers)])[0]

    def record_many(self, requests: list[Request], *, sample: bool = True) -> list[bool]:
        """Keep several requests (``(request_id, version, inputs, answers)`` each), each when
        the sample draws it (every one with ``sample=False``), in one write; returns which
        were kept."""
        with self._lock:
            kept = [not sample or self._random.random() < self.cfg.sample for _ in requests]
        if not any(kept):
            return kept
        at = _now()
        lines = b"".join(
            orjson.dumps(
                {"request_id": rid, "row": i, "captured_at": at, "version": version,
                 "inputs": row, "answer": answer},
                default=str, option=OPTIONS,
            )
            for (rid, version, inputs, answers), keep in zip(requests, kept, strict=True)
            if keep
            for i, (row, answer) in enumerate(zip(inputs, answers, strict=True))
        )  # fmt: skip
        with self._writing():
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "ab") as out:
                out.write(lines)
                size = out.tell()
            if size >= self.cfg.max_bytes:
                self._close()
            return kept

    def _close(self) -> Path:
        """Close the current file as ``capture-<time>.jsonl`` (the caller holds the locks)."""
        stamp = _stamp()
        closed = self.path.with_name(f"capture-{stamp}.jsonl")
        n = 0
        while closed.exists():  # closed within the same microsecond: never overwrite one
            n += 1
            closed = self.path.with_name(f"capture-{stamp}_{n}.jsonl")  # sorts after
        os.replace(self.path, closed)
        return closed


def capture_files(folder: Path) -> list[Path]:
    """The capture's files, oldest first: the closed ones by their time, then the current."""
    closed = sorted(folder.glob("capture-*.jsonl"))
    current = folder / CURRENT
    return [*closed, *([current] if current.is_file() else [])]


def _parse_time(value: str | None, what: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise DataLoadError(f"capture window: {what} {value!r} is not a date or time") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def read_window(folder: Path, since: str | None = None, until: str | None = None) -> pd.DataFrame:
    """The rows captured in ``folder`` from ``since`` up to ``until`` (ISO times, UTC when no
    zone is given; open ends when None), one row per answered row: its inputs' columns, then
    :data:`META`, then the answer's columns prefixed ``answer.``. A line cut short (a server
    killed mid-write) is skipped."""
    start, end = _parse_time(since, "since"), _parse_time(until, "until")
    records: list[dict[str, Any]] = []
    files = capture_files(folder)
    if not files:
        raise DataLoadError(f"{folder}: no captured traffic (capture.jsonl or capture-*.jsonl)")
    for path in files:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    continue
                at = pd.Timestamp(item["captured_at"])
                if (start is not None and at < start) or (end is not None and at >= end):
                    continue
                answer = item["answer"] if isinstance(item["answer"], dict) else {
                    "prediction": item["answer"]
                }  # fmt: skip
                records.append(
                    {**item["inputs"], **{k: item[k] for k in META},
                     **{f"{ANSWER}{k}": v for k, v in answer.items()}}
                )  # fmt: skip
    return pd.DataFrame.from_records(records)


def inputs_of(window: pd.DataFrame) -> pd.DataFrame:
    """The captured inputs alone, as the model was asked (what monitoring checks)."""
    dropped = [c for c in window.columns if c in META or c.startswith(ANSWER)]
    return window.drop(columns=dropped)


def labelled_window(window: pd.DataFrame, labels: pd.DataFrame, target: str) -> pd.DataFrame:
    """The captured rows that ``labels`` labels, as :func:`read_window` gives them, with the
    label under ``target``: joined on ``request_id`` (and ``row`` when ``labels`` has it;
    else the request's every row gets the label); rows with no label are left out."""
    if "request_id" not in labels.columns or target not in labels.columns:
        raise DataLoadError(
            f"labels: needs the columns request_id and {target!r}; found {list(labels.columns)}"
        )
    keys = ["request_id", "row"] if "row" in labels.columns else ["request_id"]
    known = labels[[*keys, target]].dropna(subset=[target])
    known = known.astype({"request_id": str, **({"row": int} if "row" in keys else {})})
    rows = window.astype({"request_id": str, "row": int})
    return rows.merge(known, on=keys, how="inner")


def join_labels(window: pd.DataFrame, labels: pd.DataFrame, target: str) -> pd.DataFrame:
    """The inputs of :func:`labelled_window`, then the label."""
    return inputs_of(labelled_window(window, labels, target))


def with_shadow(joined: pd.DataFrame, folder: Path) -> pd.DataFrame | None:
    """Beside each row of a (labelled) window, the version that answered and its answer,
    and the shadow's (``serve-model --shadow``, kept under ``folder/shadow``): its version as
    ``shadow_version``, its answer's columns prefixed ``shadow.``, blank where the shadow did
    not answer; the window's rows in order. None when the capture has no shadow."""
    if not capture_files(folder / SHADOW):
        return None
    shadow = read_window(folder / SHADOW).astype({"request_id": str, "row": int})
    answered = [c for c in shadow.columns if c.startswith(ANSWER)]
    shadow = shadow[["request_id", "row", "version", *answered]].drop_duplicates(
        ["request_id", "row"], keep="last"
    )
    shadow = shadow.rename(
        columns={"version": "shadow_version", **{c: SHADOWED + c[len(ANSWER) :] for c in answered}}
    )
    mine = [c for c in joined.columns if c in META or c.startswith(ANSWER)]
    return joined[mine].merge(shadow, on=["request_id", "row"], how="left")


def window_batch(
    folder: Path,
    out_dir: Path,
    *,
    since: str | None = None,
    until: str | None = None,
    labels: Path | None = None,
    target: str | None = None,
) -> Path:
    """A capture window written as a batch file that ``monitor`` and ``ingest`` read like any
    other: the captured inputs (with their late labels, joined from the table at ``labels``
    on ``request_id``, when given), under ``out_dir`` in a new file named after the window.
    Raises when the window holds no row (or no labelled row)."""
    from honing import data

    window = read_window(folder, since, until)
    if window.empty:
        raise DataLoadError(f"{folder}: no captured row between {since or '-'} and {until or '-'}")
    batch, shadowed = inputs_of(window), None
    if labels is not None:
        if target is None:
            raise ValueError("joining labels needs the target column's name")
        joined = labelled_window(window, data.load_table(labels), target)
        if joined.empty:
            raise DataLoadError(f"{labels}: none of its request ids is in the capture window")
        batch, shadowed = inputs_of(joined), with_shadow(joined, folder)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = out_dir / f"capture-{'labelled' if labels is not None else 'window'}-{_stamp()}.csv"
    data.write_table(batch, path)
    if shadowed is not None and shadowed["shadow_version"].notna().any():
        data.write_table(shadowed, answers_file(path))
    return path


def answers_file(batch: Path) -> Path:
    """Where the answers given live on a labelled capture batch's rows are kept, beside it."""
    return batch.with_name(f"{batch.stem}{ANSWERS_SUFFIX}")
