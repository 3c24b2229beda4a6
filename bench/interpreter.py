"""Two Python 3.11 interpreters on the same work: how much CPU each venv's interpreter takes.

The suite and every ``honing`` command start many fresh Python processes (a run, its private
Prefect API, the load-and-query probe, Ray's workers, a served flow run), and each imports
much of the stack before it does anything. How fast the interpreter itself runs that Python
code depends on how it was built: a distribution's python3.11 (Debian's, Ubuntu's) is built
with profile-guided optimisation and linked statically, while pyenv's default build is
neither optimised that way nor static (``--enable-shared``). The Makefile makes the venv with
the system's interpreter where it can (``SYSTEM_PYTHON``); this script measures what that
choice is worth, on three kinds of work, each in a fresh process, in alternating order
(A B, B A, ...) so that a change of the machine's pace during the run falls on both:

- ``imports``: ``import pandas, sklearn.ensemble, mlflow, prefect, ray, great_expectations,
  evidently`` (what a ``honing`` command and its helpers spend their first seconds on);
- ``loop``: :func:`suite.pace_loop`, the fixed pure-Python loop the suite's pacer runs;
- ``tests``: ``pytest tests/data/test_fast_validation.py`` in one process (Great
  Expectations' checks on small tables: mostly Python, some pandas).

The CPU of each process is its user and system time (``common.command_cpu_s``), children
included where it waits for them. Both venvs need the same packages (``make install`` into each):

    make install VENV=.venv-pyenv PYTHON=$(command -v python3.11)   # e.g. pyenv's
    .venv/bin/python bench/interpreter.py --a .venv-pyenv/bin/python --b .venv/bin/python

Writes bench/results/interpreter.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from statistics import median
from typing import Any

from common import ROOT, code_commit, command_cpu_s, machine, write_json, write_markdown

IMPORTS = "import pandas, sklearn.ensemble, mlflow, prefect, ray, great_expectations, evidently"
LOOP = (
    "import sys; sys.path.insert(0, 'bench'); from suite import pace_loop; "
    "print(sum(pace_loop() for _ in range(10)))"
)
WORK: dict[str, list[str]] = {
    "imports": ["-c", IMPORTS],
    "loop": ["-c", LOOP],
    "tests": [
        "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
        "tests/data/test_fast_validation.py",
    ],
}  # fmt: skip


def build(python: str) -> dict[str, Any]:
    """What an interpreter is: its version, its installation, and whether its executable loads
    libpython as a shared library (``ldd``). Whether it was built with profile-guided
    optimisation is not recorded: ``sysconfig`` does not say it reliably (a distribution's
    variables describe its shared build, and pyenv's name the PGO flag whether or not it was
    used)."""
    code = (
        "import json, sys; "
        "print(json.dumps({'version': sys.version.split()[0], 'base': sys.base_prefix}))"
    )
    info = json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True).stdout)
    real = os.path.realpath(python)
    ldd = subprocess.run(["ldd", real], capture_output=True, text=True).stdout
    info["executable"] = real
    info["links_libpython"] = "libpython" in ldd
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", required=True, help="the first venv's python")
    parser.add_argument("--b", required=True, help="the second venv's python")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--work", nargs="+", default=list(WORK), choices=list(WORK))
    opts = parser.parse_args()

    cpu: dict[str, dict[str, list[float]]] = {w: {"a": [], "b": []} for w in opts.work}
    for r in range(opts.rounds):
        order = ("a", "b") if r % 2 == 0 else ("b", "a")
        for work in opts.work:
            for side in order:
                cpu[work][side].append(command_cpu_s([getattr(opts, side), *WORK[work]], ROOT))
            print(f"round {r + 1} {work}: a {cpu[work]['a'][-1]:.2f} b {cpu[work]['b'][-1]:.2f}")
            sys.stdout.flush()

    rows = {}
    for work, sides in cpu.items():
        ratios = sorted(b / a for a, b in zip(sides["a"], sides["b"], strict=True))
        rows[work] = {
            "a_cpu_s": sides["a"],
            "b_cpu_s": sides["b"],
            "a_median_s": median(sides["a"]),
            "b_median_s": median(sides["b"]),
            "b_over_a_median": median(ratios),
            "b_over_a_range": [ratios[0], ratios[-1]],
        }
    result = {
        "commit": code_commit(),
        "machine": machine(),
        "rounds": opts.rounds,
        "a": build(opts.a),
        "b": build(opts.b),
        "work": rows,
    }
    write_json("interpreter", result)

    def says(side: str) -> str:
        b = result[side]
        linked = "links libpython.so" if b["links_libpython"] else "libpython linked in"
        return f"Python {b['version']} at `{b['executable']}` ({linked})"

    lines = [
        "# Two interpreters on the same work",
        "",
        f"`bench/interpreter.py` at commit {result['commit']} on {result['machine']} (the "
        f"script's own interpreter; the two measured are A and B), {opts.rounds} rounds in "
        "alternating order, each piece of work in a fresh process (its user + system CPU).",
        "",
        f"- A: {says('a')}",
        f"- B: {says('b')}",
        "",
        "| work | A median (CPU s) | B median (CPU s) | B / A (median of rounds) | B / A range |",
        "|---|---|---|---|---|",
    ]
    for work, row in rows.items():
        low, high = row["b_over_a_range"]
        lines.append(
            f"| {work} | {row['a_median_s']:.2f} | {row['b_median_s']:.2f} "
            f"| {row['b_over_a_median']:.3f} | {low:.3f}-{high:.3f} |"
        )
    lines += [
        "",
        f"imports: `{IMPORTS}`. loop: ten of the suite's pace loops (3,000,000 iterations "
        "each) in one process. tests: `pytest tests/data/test_fast_validation.py` in one "
        "process.",
    ]
    print(write_markdown("interpreter", lines).read_text())


if __name__ == "__main__":
    main()
