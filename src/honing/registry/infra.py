"""The load-and-query check before an alias moves (in the spirit of TFX's InfraValidator):
the registered version is loaded in a fresh Python process, exactly as a server would load
it (files checked against their recorded SHA-256, then honing's loader), and must answer a
sample of test rows within a latency budget. A version that fails it is not promoted."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from honing.config import InfraCheckConfig

#: The module the fresh process runs (:mod:`honing.registry.probe`).
PROBE = "honing.registry.probe"


@dataclass(frozen=True)
class InfraCheck:
    """What to check a version with: sample rows, a p50 budget and a time limit."""

    sample: pd.DataFrame
    budget_ms: float
    timeout_s: float = 120.0


def check_for(cfg: InfraCheckConfig, X_test: pd.DataFrame) -> InfraCheck | None:
    """The configured check, its sample the first test rows; None when it is off."""
    if not cfg.enabled:
        return None
    return InfraCheck(X_test.head(cfg.rows), cfg.latency_budget_ms, cfg.timeout_s)


@dataclass(frozen=True)
class InfraReport:
    ok: bool
    reason: str
    load_s: float | None = None
    p50_ms: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class WarmProbe:
    """A probe process started ahead (``python -m honing.registry.probe --wait``): it imports what a
    server imports while the run does other work, and loads the version only when asked, so
    the check still loads the files in a process that never held the model. Used once."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.folder = tempfile.mkdtemp(prefix="honing-probe-")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", PROBE, "--wait"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
            cwd=self.folder,
        )

    def ask(self, uri: str, sample_path: Path, timeout_s: float) -> tuple[int, str, str]:
        """The probe's exit status, output and errors for ``uri`` and its sample."""
        request = json.dumps({"uri": uri, "sample": str(sample_path)}) + "\n"
        try:
            out, err = self.proc.communicate(request, timeout=timeout_s)
        finally:
            self.close()
        return self.proc.returncode, out, err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        shutil.rmtree(self.folder, ignore_errors=True)


#: The probe started ahead for this process's next check (:func:`warm_up`), if any.
_WARM: list[WarmProbe] = []


def warm_up(tracking_uri: str) -> None:
    """Start the next check's probe process now, so that its imports overlap the run's own
    work (a second call while one waits keeps that one). Stopped when this process exits."""
    if any(w.proc.poll() is None for w in _WARM):
        return
    _stop_warm()
    atexit.unregister(_stop_warm)  # registered once
    atexit.register(_stop_warm)
    _WARM.append(WarmProbe(tracking_uri))


def waiting() -> WarmProbe | None:
    """The probe process :func:`warm_up` started that still waits to be asked, if any."""
    return next((w for w in _WARM if w.proc.poll() is None), None)


def _stop_warm() -> None:
    while _WARM:
        _WARM.pop().close()


def _run_probe(
    uri: str, sample_path: Path, tracking_uri: str, timeout_s: float
) -> tuple[int, str, str]:
    """The probe's exit status, output and errors: the process started ahead when there is
    one, else a new one."""
    warm = _WARM.pop() if _WARM else None  # it reads only the folder it is given
    if warm is not None and warm.proc.poll() is None:
        return warm.ask(uri, sample_path, timeout_s)
    if warm is not None:
        warm.close()
    done = subprocess.run(
        [sys.executable, "-m", PROBE, uri, str(sample_path)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
        cwd=sample_path.parent,
    )
    return done.returncode, done.stdout, done.stderr


def load_and_query(
    uri: str,
    sample: pd.DataFrame,
    *,
    tracking_uri: str,
    budget_ms: float,
    timeout_s: float = 120.0,
) -> InfraReport:
    """Load ``uri`` in a new process (the one :func:`warm_up` started, if any) and time its
    answers to ``sample`` (p50 of repeated calls); ok when it loads, answers every row and
    its p50 is within ``budget_ms``."""
    with tempfile.TemporaryDirectory(prefix="honing-probe-") as tmp:
        sample_path = Path(tmp) / "sample.parquet"
        sample.to_parquet(sample_path)
        try:
            code, stdout, stderr = _run_probe(uri, sample_path, tracking_uri, timeout_s)
        except subprocess.TimeoutExpired:
            return InfraReport(False, f"{uri} did not load and answer within {timeout_s:g}s")
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return InfraReport(False, f"{uri} failed to load or answer in a fresh process: {tail}")
    got = json.loads(lines[-1])
    if got["rows"] != len(sample):
        return InfraReport(False, f"{uri} answered {got['rows']} of {len(sample)} rows")
    words = (
        f"loaded in a fresh process in {got['load_s']:.1f}s; answers {len(sample)} rows "
        f"in {got['p50_ms']:.1f} ms (p50), budget {budget_ms:g} ms"
    )
    ok = got["p50_ms"] <= budget_ms
    return InfraReport(ok, words if ok else f"too slow: {words}", got["load_s"], got["p50_ms"])
