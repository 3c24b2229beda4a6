"""Ray Tune experiment folders, kept safe to share a machine: one run at a time per folder,
and a folder is restored only when this user wrote all of it.

A search is restored from ``<storage>/<name>/``, and restoring unpickles the ``tuner.pkl``
and trial state found there. The name is predictable (config, data and commit), so another
local user could plant that folder, and two identical runs started together would share
it. :func:`claim` gives each run a folder of its own (a lock held for the whole search; a
second run with the same name gets a fresh one), :func:`untrusted` says why a folder
must not be restored (like OpenSSH's StrictModes: owned by someone else, or writable by
others), and :func:`cut_short` why its saved state cannot be (a kill while it was saved)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from honing.lineage import Lineage


def is_local(storage_path: str) -> bool:
    return "://" not in storage_path


@contextlib.contextmanager
def claim(storage_path: str, name: str) -> Iterator[str]:
    """The experiment name this run may use, locked until the block ends: ``name`` when no
    other run holds it, else a fresh ``<name>-<hex>`` (nothing is restored then). Remote
    storage (``s3://`` ...) is not locked here: each cluster run names its own search."""
    if not is_local(storage_path):
        yield name
        return
    root = Path(storage_path)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield f"{name}-{uuid.uuid4().hex[:8]}"  # another run is searching under ``name``
            return
        yield name
    finally:
        os.close(fd)  # closing releases the lock


def untrusted(path: str) -> str | None:
    """Why the experiment folder at ``path`` must not be restored, or None: every file and
    folder in it must belong to this user and be writable by no one else."""
    if not is_local(path):
        return None
    uid = os.getuid()
    for here, dirs, files in os.walk(path, followlinks=False):
        for entry in [here, *(os.path.join(here, n) for n in dirs + files)]:
            info = os.lstat(entry)
            if stat.S_ISLNK(info.st_mode):
                return f"{entry} is a symbolic link"
            if info.st_uid != uid:
                return f"{entry} belongs to another user (uid {info.st_uid})"
            if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return f"{entry} is writable by other users"
    return None


def cut_short(path: str) -> str | None:
    """Why the saved state in the experiment folder at ``path`` cannot be restored, or None.
    Tune saves the experiment's state (``experiment_state-<session>.json``) and then its
    searcher's (``basic-variant-state-<session>.json``, ``searcher-state-<session>.pkl``); a
    run killed between the two leaves the second empty or cut, and Tune would restore the
    trials with a searcher that starts over (seen: one trial run, the rest lost)."""
    if not is_local(path):
        return None
    states = sorted(Path(path).glob("experiment_state-*.json"))
    if not states:
        return None  # nothing saved yet: Tune starts the search anew itself
    newest = states[-1]
    session = newest.name.removeprefix("experiment_state-").removesuffix(".json")
    try:
        json.loads(newest.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return f"{newest.name} was cut while it was written"
    for part in sorted(Path(path).glob(f"*-state-{session}.*")):
        if part.stat().st_size == 0:
            return f"{part.name} was cut while it was written"
    return None


def search_name(name: str, config_hash: str, lineage: Lineage | None, *, resume: bool) -> str:
    """Name of the Ray Tune experiment for a training run. With ``resume`` it is keyed by
    config, data and commit, so an interrupted (or repeated) run restores the search and
    skips finished trials; without, it is unique."""
    if not resume or lineage is None:
        return f"{name}-{uuid.uuid4().hex[:12]}"
    return f"{name}-{config_hash[:10]}-{lineage.data_md5[:10]}-{lineage.git_commit[:10]}"
