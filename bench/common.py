"""What every benchmark records about where it ran: the commit of the code (read at the
start, before anything can change the tree) and the machine."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
