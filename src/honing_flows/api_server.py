"""A private Prefect API for one command, when no ``PREFECT_API_URL`` names a server.

Prefect would start a temporary server by itself, as a child in the command's process group.
A terminal's Ctrl-C then reaches that server too: it stops at once, and the run, still
trying to report its end, waits minutes on a server that is gone. This one runs in its own
session, so the interrupt reaches only the run, which marks itself failed, reports to a live
server, and then stops the server here, within seconds. A run killed outright takes its
server with it (the parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from honing.exceptions import ServiceUnavailableError

START_TIMEOUT_S = 90.0
#: Where a command's private API writes its output (next to the command's own log).
API_LOG = Path(".honing/logs/prefect-api.log")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the server's process, before it runs: Linux sends it SIGTERM when the process that
    started it dies, even by SIGKILL, so that a killed run leaves no server behind."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


#: Seconds the command waits, once its flow has ended, for the run's queued events to reach
#: its private API, and then for that API to stop before it is killed. The run's state and
#: summary are written by then; on a loaded 2-core machine a graceful stop with a 10 s grace
#: and a 5 s drain made commands end up to 18 s after their run had finished (its SQLite
#: database is transactional: a killed server loses at most the events still queued).
DRAIN_S = 2.0
STOP_GRACE_S = 3.0


def _drain() -> None:
    """Send the logs and events the run has queued while the API is still there."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogHandler

    with contextlib.suppress(Exception):
        APILogHandler().flush()
    with contextlib.suppress(Exception):
        EventsWorker.drain_all(timeout=DRAIN_S)


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # its session: the server and what it started
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


#: Prefect server services a private API has no use for: it serves one command's runs, with
#: no deployments, schedules, workers, pauses or automations of its own (Prefect's own
#: temporary server runs none of them but the triggers). The task run recorder and the event
#: persister stay on: they write the run's history. Off, the rest cost about a second of the
#: server's CPU in every command.
IDLE_SERVICES = (
    "scheduler",
    "late_runs",
    "foreman",
    "pause_expirations",
    "cancellation_cleanup",
    "repossessor",
    "cleanup_reconciler",
    "triggers",
)


def server_environment(environ: Mapping[str, str], auth: str) -> dict[str, str]:
    """The environment of a private API's server: ``environ``, no UI, no analytics, only
    this command's secret, and the :data:`IDLE_SERVICES` off."""
    return {
        **environ,
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        **{f"PREFECT_SERVER_SERVICES_{name.upper()}_ENABLED": "false" for name in IDLE_SERVICES},
    }


@dataclass(frozen=True)
class Launched:
    """A private API's server process, started (maybe not yet answering), with its URL and
    the secret only this command knows."""

    proc: subprocess.Popen[bytes]
    url: str
    auth: str


_EARLY: list[Launched] = []


def launch(environ: Mapping[str, str], log_path: Path) -> Launched:
    """Start a private API's server (see :func:`private_api`) without waiting for it."""
    port = _free_port()
    # only this command may talk to its API: another local user reaches the port, not the
    # run (the health check alone answers without it)
    auth = f"honing:{secrets.token_urlsafe(24)}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)],
            env=server_environment(environ, auth),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )  # fmt: skip
    return Launched(proc, f"http://127.0.0.1:{port}/api", auth)


def launch_early(environ: Mapping[str, str], log_path: Path) -> None:
    """Start the command's private API first thing, so that the server boots while the
    command imports what it needs; :func:`private_api` adopts it (no server is started
    when ``PREFECT_API_URL`` names one)."""
    if not environ.get("PREFECT_API_URL") and not _EARLY:
        _EARLY.append(launch(environ, log_path))


def _database(environ: Mapping[str, str]) -> Path | None:
    """The embedded server's SQLite database, None when a server or database is named."""
    if environ.get("PREFECT_API_URL") or environ.get("PREFECT_API_DATABASE_CONNECTION_URL"):
        return None
    home = environ.get("PREFECT_HOME") or str(Path.home() / ".prefect")
    return Path(home).expanduser() / "prefect.db"


_MIGRATING: list[subprocess.Popen[bytes]] = []


def migrate_early(environ: Mapping[str, str], log_path: Path) -> None:
    """Create and migrate the embedded server's database now, in the background, when it does
    not exist yet: ``honing init`` does it while it profiles the table, so that the first
    ``honing run`` does not spend its budget on it (some 6 s of a cold start).
    :func:`wait_migrated` waits for it."""
    db = _database(environ)
    if db is None or db.exists():
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        _MIGRATING.append(
            subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                env={**environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        )


def wait_migrated(timeout_s: float = 120.0) -> None:
    """Wait for :func:`migrate_early`'s migration (a run would migrate what it left undone)."""
    while _MIGRATING:
        proc = _MIGRATING.pop()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(proc)


def stop_early() -> None:
    """Stop a server :func:`launch_early` started that no :func:`private_api` adopted."""
    while _EARLY:
        _stop(_EARLY.pop().proc)


@contextlib.contextmanager
def private_api(
    environ: Mapping[str, str],
    log_path: Path,
    meanwhile: Callable[[], object] | None = None,
) -> Iterator[str | None]:
    """Within the block, Prefect talks to a server of its own session on 127.0.0.1 (its output
    in ``log_path``), the one :func:`launch_early` started if any; None, and nothing started,
    when ``PREFECT_API_URL`` is set. ``meanwhile`` runs while the server starts (the
    command's other start-up work)."""
    if environ.get("PREFECT_API_URL"):
        if meanwhile is not None:
            meanwhile()
        yield None
        return
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    server = _EARLY.pop() if _EARLY else launch(environ, log_path)
    try:
        if meanwhile is not None:
            meanwhile()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(server.url):
            if server.proc.poll() is not None or time.monotonic() > deadline:
                raise ServiceUnavailableError(
                    f"the Prefect API for this run did not start on {server.url} (see {log_path})"
                )
            time.sleep(0.2)
        updates = {PREFECT_API_URL: server.url, PREFECT_API_AUTH_STRING: server.auth}
        with temporary_settings(updates=updates):
            try:
                yield server.url
            finally:
                _drain()
    finally:
        _stop(server.proc, grace_s=STOP_GRACE_S)
