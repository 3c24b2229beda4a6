"""The load-and-query check before an alias moves (in the spirit of TFX's InfraValidator):
the registered version is loaded in a fresh Python process, exactly as a server would load
it (files checked against their recorded SHA-256, then honing's loader), and must answer a
sample of test rows within a latency budget. A version that fails it is not promoted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from honing.config import InfraCheckConfig

#: The module the fresh process runs (:mod:`honing.probe`).
PROBE = "honing.probe"


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


def load_and_query(
    uri: str,
    sample: pd.DataFrame,
    *,
    tracking_uri: str,
    budget_ms: float,
    timeout_s: float = 120.0,
) -> InfraReport:
    """Load ``uri`` in a new process and time its answers to ``sample`` (p50 of repeated
    calls); ok when it loads, answers every row and its p50 is within ``budget_ms``."""
    with tempfile.TemporaryDirectory(prefix="honing-probe-") as tmp:
        sample_path = Path(tmp) / "sample.parquet"
        sample.to_parquet(sample_path)
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
        try:
            done = subprocess.run(
                [sys.executable, "-m", PROBE, uri, str(sample_path)],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=env,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired:
            return InfraReport(False, f"{uri} did not load and answer within {timeout_s:g}s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
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
