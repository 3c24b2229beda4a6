"""Where the test suite's time goes: ``make test``, as CI runs it (``HONING_REQUIRE_STACK=1``),
timed, with its CPU attributed to the test files and to the kinds of processes they start.

The goal is a wall time (15 minutes on 2 cores), and the suite is CPU-bound there (its two
workers leave the cores idle some 7% of the time), so what a change can gain is CPU. Three
records are kept while the suite runs:

- each test's wall and the CPU of its own process (``bench/suite_plugin.py``, a pytest
  plugin loaded through ``PYTEST_ADDOPTS``);
- every process on the machine, read from ``/proc`` every half second: its command line, its
  parent and its CPU (a process's CPU after the last sample it was seen in is lost; most of the
  processes a test starts live for seconds);
- the machine's pace: the CPU of one fixed pure-Python loop every 10 s (:class:`Pacer`). On
  this VM the same loop takes 0.12 to 0.23 CPU-s from one second to the next with nothing
  else running, and the same suite's CPU has varied by up to 30% between consecutive runs.

A process started during the run belongs to the test its pytest worker was running when it
started (found through its parents); the rest of a worker's CPU is its collection and the
session fixtures. Reading ``/proc`` costs the sampler some CPU of its own, recorded as well:
a run here is a little slower than a plain ``make test``.

    .venv/bin/python bench/suite.py [--runs 3]

Writes bench/results/suite.{json,md} (``--only PATHS``, a check of this script on a few
tests, writes next to its logs instead). Run it alone: the goal is a wall time.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from common import (
    RESULTS,
    ROOT,
    code_commit,
    command_cpu_s,
    machine,
    write_json,
    write_markdown,
)
from suite_plugin import cpu_seconds

GOAL_S = 15 * 60
HZ = os.sysconf("SC_CLK_TCK")
BENCH = Path(__file__).resolve().parent

#: The kinds of processes the suite starts, the first match of a command line's words (the
#: pytest workers themselves are known by their process ids).
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("honing command", ("/bin/honing ",)),
    # the commands' private APIs, and the servers the served-deployment and UI tests start
    ("Prefect server (prefect server start)", ("prefect server start",)),
    ("Prefect API of the test harness or a served test", ("uvicorn",)),
    ("Prefect flow run of a served deployment", ("prefect.engine",)),
    ("Prefect CLI, worker or runner", ("/bin/prefect ", "prefect.runner")),
    ("load-and-query probe", ("honing.registry.probe",)),
    ("pytest controller", (" -m pytest",)),
    ("Ray", ("raylet", "gcs_server", "ray::", "default_worker.py", "/ray/", "ray_node", "ray ")),
    ("MLflow server or UI", ("mlflow",)),
    ("Chromium and Playwright", ("chrom", "playwright")),
    ("PostgreSQL", ("postgres",)),
    ("DVC", ("dvc",)),
    ("git", ("git ",)),
    ("a test's Python helper (python -c)", (" -c ",)),
)


@dataclass
class Process:
    """One process seen by the sampler: what it ran, its parent, when it started (epoch
    seconds) and its CPU when last seen."""

    cmd: str
    ppid: int
    started: float
    cpu_last: float


class Every(threading.Thread):
    """Calls :meth:`tick` now and every ``every`` seconds after, until :meth:`stop`."""

    def __init__(self, every: float) -> None:
        super().__init__(daemon=True)
        self.every = every
        self._halt = threading.Event()

    def tick(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while True:
            self.tick()
            if self._halt.wait(self.every):
                return

    def stop(self) -> None:
        self._halt.set()
        self.join()


class Sampler(Every):
    """Reads ``/proc`` every ``every`` seconds until :meth:`stop`, and once more then."""

    def __init__(self, every: float = 0.5) -> None:
        super().__init__(every)
        self.procs: dict[tuple[int, int], Process] = {}

    def tick(self) -> None:
        self.sample()

    def stop(self) -> None:
        super().stop()
        self.sample()

    def sample(self) -> None:
        me = os.getpid()
        # a start is counted in ticks since boot: it is put on the wall clock through the
        # boot clock read now, as honing.runtime.process_started does (/proc/stat's btime is
        # whole seconds and drifts from the wall clock)
        boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                cpu = (int(fields[11]) + int(fields[12])) / HZ
                key = (int(entry.name), int(fields[19]))
                known = self.procs.get(key)
                if known is not None:
                    known.cpu_last = cpu
                    continue
                raw = Path(entry.path, "cmdline").read_bytes()
                cmd = raw.replace(b"\0", b" ").decode(errors="replace").strip()
                cmd = cmd or f"[{stat[stat.index('(') + 1 : stat.rindex(')')]}]"
                started = boot + key[1] / HZ
                self.procs[key] = Process(cmd[:400], int(fields[1]), started, cpu)
            except (OSError, ValueError, IndexError):
                continue  # it ended between the listing and the read


def busy_and_idle() -> tuple[float, float]:
    """The machine's busy and idle CPU seconds since boot (``/proc/stat``)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / HZ, idle / HZ


#: A fixed piece of the suite's own kind of work: a fresh interpreter importing the libraries
#: most of its processes import.
CALIBRATION = "import pandas, sklearn.ensemble, sklearn.linear_model"


def machine_pace(repeats: int = 3) -> float:
    """The median CPU seconds of :data:`CALIBRATION` in a child process, taken before a run
    while the machine is otherwise quiet. The same suite took 1,634 to 1,896 CPU-s in six
    runs of one day with no change to its code: each run records how fast the machine ran
    this fixed work just before it, to tell a slow machine from a heavier suite (in its runs so
    far it did not follow the suite's CPU, docs/benchmarks.md)."""
    times = [command_cpu_s([sys.executable, "-c", CALIBRATION]) for _ in range(repeats)]
    return round(median(times), 3)


#: Iterations of :func:`pace_loop`: some 0.12-0.23 CPU-s on this machine.
PACE_ITERATIONS = 3_000_000
#: Seconds between two of the pacer's loops.
PACE_EVERY_S = 10.0


def pace_loop(iterations: int = PACE_ITERATIONS) -> float:
    """The CPU seconds of this thread for a fixed pure-Python loop: the same instructions
    every time, so a change in its CPU is a change in the machine, not in the work."""
    start = time.thread_time()
    total = 0
    for i in range(iterations):
        total += i * i
    return time.thread_time() - start


class Pacer(Every):
    """:func:`pace_loop` every ``every`` seconds while the suite runs, until :meth:`stop`: the
    machine's pace during the run, which :func:`machine_pace`, taken before it, does not give.
    It costs some 17 CPU-s a run (2% of one core), counted in the sampler's CPU."""

    def __init__(self, every: float = PACE_EVERY_S) -> None:
        super().__init__(every)
        self.samples: list[float] = []

    def tick(self) -> None:
        self.samples.append(pace_loop())


def pace_summary(samples: list[float]) -> dict[str, float | int]:
    """The loop's CPU milliseconds during a run: its median, its 10th and 90th percentiles
    (nearest rank) and the number of samples."""
    if not samples:
        return {"samples": 0}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "median_ms": round(1000 * median(ordered), 1),
        "p10_ms": rank(0.1),
        "p90_ms": rank(0.9),
        "samples": len(ordered),
    }


def kind(cmd: str, pid: int, workers: set[int]) -> str:
    if pid in workers:
        return "pytest worker (the tests' own process)"
    for label, words in KINDS:
        if any(word in cmd for word in words):
            if label == "honing command":
                after = cmd.split("/bin/honing ", 1)[1].split()
                return f"honing {after[0]}" if after else label
            return label
    return "other"


def attribute(
    procs: dict[tuple[int, int], Process], tests: list[dict[str, Any]], since: float
) -> dict[str, Any]:
    """The run's CPU by kind of process, by test and by test file."""
    workers = {int(t["pid"]) for t in tests}
    by_pid: dict[int, list[Process]] = {}
    for (pid, _), proc in procs.items():
        by_pid.setdefault(pid, []).append(proc)

    def owner(proc: Process) -> int | None:
        """The pytest worker that started ``proc``, through its parents."""
        pid, when = proc.ppid, proc.started
        for _ in range(40):
            if pid in workers:
                return pid
            alive = [p for p in by_pid.get(pid, []) if p.started <= when]
            if not alive:
                return None
            parent = max(alive, key=lambda p: p.started)
            pid, when = parent.ppid, parent.started
        return None

    timeline: dict[int, list[tuple[float, str]]] = {}
    for t in tests:
        timeline.setdefault(int(t["pid"]), []).append((float(t["start"]), str(t["id"])))
    for entries in timeline.values():
        entries.sort()
    per_test = Counter({str(t["id"]): float(t["cpu_s"]) for t in tests})
    kinds: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for (pid, _), proc in procs.items():
        if proc.started < since:
            continue  # older than the run
        used = proc.cpu_last  # all of it: the process started during the run
        label = kind(proc.cmd, pid, workers)
        kinds[label] += used
        counts[label] += 1
        if label == "other":
            others[proc.cmd[:120]] += used
        if pid in workers:
            continue
        worker = owner(proc)
        entries = timeline.get(worker, []) if worker is not None else []
        at = bisect.bisect_right(entries, (proc.started, "\uffff")) - 1
        if at < 0:
            outside[label] += used
            continue
        per_test[entries[at][1]] += used
    in_tests = sum(float(t["cpu_s"]) for t in tests)
    worker_total = sum(kinds[k] for k in kinds if k.startswith("pytest worker"))
    files: Counter[str] = Counter()
    for test, cpu in per_test.items():
        files[test.split("::")[0]] += cpu
    return {
        "kinds": {
            k: {"cpu_s": round(v, 1), "processes": counts[k]} for k, v in kinds.most_common()
        },
        "files": {k: round(v, 1) for k, v in files.most_common()},
        "tests": {k: round(v, 1) for k, v in per_test.most_common(25)},
        "workers_outside_tests_s": round(worker_total - in_tests, 1),
        "not_attributed_s": round(sum(outside.values()), 1),
        "not_attributed_by_kind": {k: round(v, 1) for k, v in outside.most_common()},
        "other_commands": {k: round(v, 1) for k, v in others.most_common(5)},
    }


def one_run(index: int, log_dir: Path, only: list[str]) -> dict[str, Any]:
    """``make test`` once (``only`` these test paths, when given), sampled; its wall, outcome
    and CPU."""
    tests_dir = log_dir / f"tests-{index}"  # the plugin's records, one file per worker
    tests_dir.mkdir()
    env = {
        **os.environ,
        "HONING_REQUIRE_STACK": "1",  # as CI runs it: no component may skip
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")])),
        "PYTEST_ADDOPTS": " ".join(["-p suite_plugin", *only]),
        "SUITE_TESTS_DIR": str(tests_dir),
    }
    log = log_dir / f"make-test-{index}.log"
    calibration = machine_pace()
    sampler, pacer = Sampler(), Pacer()
    own0 = cpu_seconds()  # this process's: the sampler's and the pacer's, while the suite runs
    busy0, idle0 = busy_and_idle()
    since = time.time()
    sampler.start()
    pacer.start()
    with log.open("w") as out:
        done = subprocess.run(["make", "test"], cwd=ROOT, env=env, stdout=out, stderr=out)
    wall = time.time() - since
    pacer.stop()
    sampler.stop()
    busy1, idle1 = busy_and_idle()
    tests = [json.loads(line) for f in tests_dir.glob("*.jsonl") for line in f.open()]
    text = log.read_text(errors="replace")
    outcome = re.findall(r"=+ (.*? in [\d.]+s.*?) =+", text)
    return {
        "exit_status": done.returncode,
        "outcome": outcome[-1] if outcome else "no summary line",
        "make_test_wall_s": round(wall, 1),
        "calibration_cpu_s": calibration,
        "pace_during_run": pace_summary(pacer.samples),
        "cpu_busy_s": round(busy1 - busy0, 1),
        "cpu_idle_share": round((idle1 - idle0) / ((busy1 - busy0) + (idle1 - idle0)), 3),
        "tests_timed": len(tests),
        "sampler_cpu_s": round(cpu_seconds() - own0, 1),
        **attribute(sampler.procs, tests, since),
    }


def markdown(result: dict[str, Any]) -> list[str]:
    runs = result["runs"]
    lines = [
        "# The test suite's wall and CPU",
        "",
        f"`make test` (with `HONING_REQUIRE_STACK=1`, as CI runs it) {len(runs)} time(s) in a "
        f"row at commit {result['commit']} on {result['machine']} (`bench/suite.py`). Goal: "
        f"each run under {GOAL_S / 60:.0f} minutes."
        + ("" if isinstance(result["only"], str) else f" Only {', '.join(result['only'])}."),
        "",
        "| run | outcome | wall (min) | goal | CPU busy (s) | idle | sampler CPU (s) | "
        "calibration (CPU s) | pace during the run (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, run in enumerate(runs, 1):
        met = "met" if run["exit_status"] == 0 and run["make_test_wall_s"] < GOAL_S else "missed"
        pace = run.get("pace_during_run") or {}
        during = (
            f"{pace['median_ms']} ({pace['p10_ms']}-{pace['p90_ms']}, n={pace['samples']})"
            if pace.get("samples")
            else "-"
        )
        lines.append(
            f"| {i} | {run['outcome']} | {run['make_test_wall_s'] / 60:.1f} | {met} | "
            f"{run['cpu_busy_s']:.0f} | {100 * run['cpu_idle_share']:.1f}% | "
            f"{run['sampler_cpu_s']:.1f} | {run.get('calibration_cpu_s', '-')} | {during} |"
        )
    last = runs[-1]
    total = sum(v["cpu_s"] for v in last["kinds"].values()) or 1.0
    lines += [
        "",
        f"Calibration: the median CPU seconds of a fresh interpreter's `{CALIBRATION}` (three "
        "times, before the run), meant to tell a slow machine from a heavier suite; so far it "
        "has not followed the suite's CPU (docs/benchmarks.md), so it is a record, not a "
        "correction.",
        "",
        f"Pace during the run: the CPU milliseconds of one fixed pure-Python loop "
        f"({PACE_ITERATIONS:,} iterations, `pace_loop`), run every {PACE_EVERY_S:g} s in this "
        "script's own thread while the suite runs: the median, the 10th to 90th percentiles and "
        "the number of samples. The same instructions every time, so a higher number is a "
        "slower machine, not more work.",
        "",
        f"## Run {len(runs)}: CPU by kind of process",
        "",
        "Processes started during the run; a process's CPU after the sample it was last seen "
        "in is not counted.",
        "",
        "| kind | CPU (s) | share | processes |",
        "|---|---|---|---|",
    ]
    for label, v in last["kinds"].items():
        lines.append(f"| {label} | {v['cpu_s']:.0f} | {100 * v['cpu_s'] / total:.1f}% | "
                     f"{v['processes']} |")  # fmt: skip
    lines += [
        "",
        f"## Run {len(runs)}: CPU by test file (the test's process and what it started)",
        "",
        f"The workers' CPU outside any test (collection, session fixtures): "
        f"{last['workers_outside_tests_s']:.0f} s; not attributed to a test: "
        f"{last['not_attributed_s']:.0f} s ("
        + (", ".join(f"{k} {v:.0f} s" for k, v in last["not_attributed_by_kind"].items()) or "none")
        + ").",
        "",
        "| file | CPU (s) |",
        "|---|---|",
        *(f"| `{f}` | {cpu:.0f} |" for f, cpu in list(last["files"].items())[:20]),
        "",
        f"## Run {len(runs)}: the tests that use the most CPU",
        "",
        "| test | CPU (s) |",
        "|---|---|",
        *(f"| `{t}` | {cpu:.0f} |" for t, cpu in list(last["tests"].items())[:15]),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="consecutive runs (the goal: 3)")
    parser.add_argument(
        "--only", nargs="*", default=[], help="only these paths (a check of this script)"
    )
    args = parser.parse_args()
    commit = code_commit()  # the code that runs: read before anything else can change
    log_dir = Path(tempfile.mkdtemp(prefix="honing-suite-"))
    folder = log_dir if args.only else RESULTS  # a check of the script is not a result
    runs: list[dict[str, Any]] = []
    for i in range(1, args.runs + 1):
        runs.append(one_run(i, log_dir, args.only))
        run = runs[-1]
        print(f"run {i}: {run['outcome']}, {run['make_test_wall_s'] / 60:.1f} min "
              f"(log {log_dir}/make-test-{i}.log)", flush=True)  # fmt: skip
        result = {
            "commit": commit,
            "machine": machine(),
            "goal_s": GOAL_S,
            "only": args.only or "the whole suite",
            "runs": runs,
        }
        # after each run: the runs done so far are a result even if a later one is stopped
        write_json("suite", result, folder)
        write_markdown("suite", markdown(result), folder)
    print(f"written to {folder}/suite.{{json,md}}")


if __name__ == "__main__":
    main()
