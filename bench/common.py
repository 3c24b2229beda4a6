"""What every benchmark shares: the commit of the code (read at the start, before anything
can change the tree) and the machine it ran on; the one place results are written
(``bench/results/NAME.{json,md}``); how a project's config and env profile are written and
varied; the environment of a quiet run (honing's own telemetry defaults,
:data:`honing.runtime.QUIET_DEFAULTS`); and how the benchmarks that act as a user run honing:
`honing init` then `honing run`, each a new process in a project folder of its own."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from honing.runtime import quiet_environment

ROOT = Path(__file__).resolve().parents[1]
#: Where every benchmark writes its results (NAME.json and NAME.md, at the commit it ran).
RESULTS = ROOT / "bench" / "results"


def write_json(name: str, result: Any, folder: Path = RESULTS) -> Path:
    """``bench/results/NAME.json`` (or in ``folder``): ``result`` indented (values JSON lacks,
    as text)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def write_markdown(name: str, text: str | list[str], folder: Path = RESULTS) -> Path:
    """``bench/results/NAME.md`` (or in ``folder``): ``text``, or its lines, ending with a
    newline."""
    folder.mkdir(parents=True, exist_ok=True)
    body = text if isinstance(text, str) else "\n".join(text)
    path = folder / f"{name}.md"
    path.write_text(body.rstrip("\n") + "\n")
    return path


def code_commit() -> str:
    """The short commit of the code that runs, marked when tracked files differ from it
    (benchmark results aside: one benchmark's output does not change another's code)."""
    quiet = {"capture_output": True, "text": True, "check": False}
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], **quiet)
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "-uno", "--", ".", ":!bench/results"],
        **quiet,
    )
    return head.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def command_cpu_s(cmd: list[str], cwd: Path | None = None) -> float:
    """The user plus system CPU seconds of ``cmd`` run to its end in a new process (``os.wait4``:
    its own, and its children's that it waited for); its output is kept only to say why when it
    fails, which stops the benchmark."""
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=output, stderr=output)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            output.seek(0)
            said = output.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {said}")
    return usage.ru_utime + usage.ru_stime


def write_yaml(path: Path, data: dict[str, Any], *, sort_keys: bool = True) -> Path:
    """``data`` as YAML at ``path`` (a config or an env profile)."""
    path.write_text(yaml.safe_dump(data, sort_keys=sort_keys))
    return path


def edit_config(path: Path, changes: dict[str, Any]) -> Path:
    """The YAML config at ``path`` with ``changes`` set, each under a dotted key
    (``{"search.seed": 3}``; mappings on the way are created), its order kept: how a
    benchmark varies the config `honing init` wrote."""
    raw = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = raw
        for name in parents:
            node = node.setdefault(name, {})
        node[key] = value
    return write_yaml(path, raw, sort_keys=False)


def write_env(path: Path, folder: Path, *, profile: str = "bench", ray: bool = True) -> Path:
    """An env profile at ``path`` whose SQLite store, artifacts and (``ray``) Ray results
    are in ``folder``, by absolute paths (MLflow keeps one store per URI string in a
    process, so a benchmark running several projects in one process names each fully)."""
    env: dict[str, Any] = {
        "profile": profile,
        "mlflow": {
            "tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
            "artifact_root": str(folder / "mlartifacts"),
        },
    }
    if ray:
        env["ray"] = {"num_cpus": 2, "storage_path": str(folder / "ray_results")}
    return write_yaml(path, env)


HONING = str(ROOT / ".venv" / "bin" / "honing")
#: The env profile of a benchmark project: an SQLite store and local Ray, inside the folder.
ENV_YAML = """profile: bench
mlflow: {tracking_uri: "sqlite:///mlflow.db", artifact_root: mlartifacts}
ray: {address: null, num_cpus: 2, storage_path: .honing/ray_results}
"""


def environ(folder: Path) -> dict[str, str]:
    """This process's environment for a command run in ``folder``: no tracking server, Prefect
    API or Ray cluster of the caller's, Prefect's state inside the folder, telemetry off."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_TRACKING", "PREFECT_API", "PREFECT__", "RAY_ADDRESS"))
    }
    env["PREFECT_HOME"] = str(folder / ".prefect")
    quiet_environment(env)  # telemetry off, as honing's own commands set it
    return env


@dataclass(frozen=True)
class CliRun:
    """One `honing run` from a cold start: its exit status, wall time, the summary it wrote
    (``--metrics-out``; None when it failed) and the tail of its output."""

    returncode: int
    wall_s: float
    summary: dict[str, Any] | None
    tail: str


def cli_init(
    folder: Path, df: Any, *, target: str, task: str, budget: float, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """A fresh project in ``folder``: the table as ``data.csv``, the env profile, and
    ``honing init data.csv --budget B`` (config ``configs/case.yaml``)."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "configs").mkdir(parents=True)
    df.to_csv(folder / "data.csv", index=False)
    (folder / "configs" / "env.yaml").write_text(ENV_YAML)
    dropped = [arg for column in drop for arg in ("--drop", column)]
    return subprocess.run(
        [HONING, "init", "data.csv", "--target", target, "--task", task, "--budget",
         f"{budget:.0f}", "--name", "case", *dropped],
        cwd=folder, env=environ(folder), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def cli_run(folder: Path, config: str = "configs/case.yaml") -> CliRun:
    """`honing run` in ``folder``, timed from outside the command (a cold start)."""
    (folder / "summary.json").unlink(missing_ok=True)
    began = time.monotonic()
    run = subprocess.run(
        [HONING, "run", "--config", config, "--env", "configs/env.yaml",
         "--metrics-out", "summary.json"],
        cwd=folder, env=environ(folder), capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    wall = time.monotonic() - began
    out = folder / "summary.json"
    summary = json.loads(out.read_text()) if run.returncode == 0 and out.exists() else None
    return CliRun(run.returncode, wall, summary, (run.stderr or run.stdout)[-800:])
