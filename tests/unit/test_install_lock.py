"""constraints.lock (``make lock``) pins every package of the venv: it must agree with the
hand-written pins of constraints.txt and with pyproject.toml's dependencies, and the venv the
tests run in must hold what it pins (else the suite's outcome moves with the registry)."""

from __future__ import annotations

import importlib.metadata
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT


def _requirement_lines(name: str) -> list[str]:
    """The requirements in the root's file ``name``, without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / name).read_text().splitlines())
    return [line for line in lines if line]


def _locked() -> dict[str, Version]:
    pins = {}
    for line in _requirement_lines("constraints.lock"):
        name, _, version = line.partition("==")
        assert version, f"constraints.lock: {line!r} is not an exact pin (make lock)"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def test_the_lock_keeps_the_hand_written_pins_and_the_declared_dependencies():
    locked = _locked()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    for req in map(Requirement, _requirement_lines("constraints.txt") + declared):
        if req.marker is not None and not req.marker.evaluate():
            continue  # not for this Python or platform
        name = canonicalize_name(req.name)
        assert name in locked, f"constraints.lock has no {req.name}: run make lock"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"constraints.lock pins {req.name}=={locked[name]}, outside {req} (make lock)"
        )


def test_the_venv_holds_the_locked_versions():
    moved = {}
    for name, version in _locked().items():
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            continue  # a package of another Python's markers (constraints only)
        if installed != version:
            moved[name] = f"{installed} installed, {version} locked"
    assert not moved, f"the venv is not the locked one (make install): {moved}"
