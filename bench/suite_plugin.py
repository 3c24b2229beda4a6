"""A pytest plugin for ``bench/suite.py`` (loaded with ``-p suite_plugin``, ``bench/`` on the
path): each test's wall and the CPU of the test process itself, one JSON line per test in
``$SUITE_TESTS_DIR/<worker>.jsonl``. The CPU of the processes a test starts is the sampler's,
in ``bench/suite.py``."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import IO

import pytest

_OPEN: dict[str, tuple[float, float]] = {}
_OUT: list[IO[str]] = []
#: Whether this process is pytest-xdist's controller, which only relays its workers' reports
#: (its hooks see every test too, with none of their CPU): it writes nothing.
_RELAY: list[bool] = [False]


def pytest_configure(config: pytest.Config) -> None:
    workers = getattr(config.option, "numprocesses", None)
    _RELAY[0] = bool(workers) and "PYTEST_XDIST_WORKER" not in os.environ


def cpu_seconds() -> float:
    """This process's CPU seconds (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _out() -> IO[str]:
    if not _OUT:
        folder = Path(os.environ["SUITE_TESTS_DIR"])
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        _OUT.append((folder / f"{worker}.jsonl").open("a"))
    return _OUT[0]


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    if _RELAY[0]:
        return
    _OPEN[nodeid] = (time.time(), cpu_seconds())


def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    if _RELAY[0]:
        return
    start, cpu = _OPEN.pop(nodeid, (time.time(), cpu_seconds()))
    line = {"id": nodeid, "start": start, "end": time.time(), "cpu_s": cpu_seconds() - cpu}
    out = _out()
    out.write(json.dumps({**line, "pid": os.getpid()}) + "\n")
    out.flush()
