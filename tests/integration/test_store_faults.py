"""A tracking store honing cannot write: read-only for the user who runs it, or on a full disk.
Each is one line on the screen naming the file and the rule, and leaves nothing half-written:
no version that looks usable, no store file changed by the refused run."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import yaml

from honing.data import file_md5
from tests.conftest import cli_env, run_cmd

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(project: dict[str, Path], env_path: Path, *prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, *run_cmd(project, project["config"], "out.json", env=env_path)],
        cwd=project["root"],
        env=cli_env(project),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _without_file_override() -> list[str]:
    """A command prefix that runs as this user without the capabilities that let root write
    any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): file modes then apply to it as to any
    other user. (An unprivileged user cannot run this checkout's interpreter, which lives
    under /root.)"""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    if os.geteuid() != 0:
        return []  # already an ordinary user: file modes apply
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_a_read_only_store_is_one_line_and_is_left_as_it_was(project):
    from honing import tracking
    from honing.config import MlflowSettings

    store = project["root"] / "mlflow.db"
    uri = f"sqlite:///{store}"
    tracking.configure(MlflowSettings(tracking_uri=uri, artifact_root=None))  # a real store
    mlflow.set_tracking_uri(None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    store.chmod(0o444)
    before = file_md5(store)
    try:
        out = _run(project, project["env"], *_without_file_override())
    finally:
        store.chmod(0o644)
    screen = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 1, screen[-3000:]
    assert "Traceback" not in screen
    assert f"error: {store}: rule: the MLflow store must be writable" in screen
    assert file_md5(store) == before
    assert not (project["root"] / "out.json").exists()
    assert not (project["root"] / "mlartifacts").exists()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB file system (tmpfs) of its own, mounted for this test and unmounted after."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:  # not root, or a container without CAP_SYS_ADMIN
        pytest.skip(f"cannot mount a small file system here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def test_a_store_on_a_full_disk_is_one_line_and_registers_nothing(project, small_disk):
    store = small_disk / "mlflow.db"
    env = yaml.safe_load(project["env"].read_text())
    env["mlflow"] = {
        "tracking_uri": f"sqlite:///{store}",
        "artifact_root": str(small_disk / "mlartifacts"),
    }
    env_path = project["root"] / "configs" / "small-disk.yaml"
    env_path.write_text(yaml.safe_dump(env))

    out = _run(project, env_path)
    screen = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 1, screen[-3000:]
    assert "Traceback" not in screen
    assert screen.count("error:") == 1, screen[-3000:]
    error = screen.split("error:", 1)[1]
    assert "rule: a write needs free space, and the disk holding this file is full" in error
    assert error.replace(" ", "").startswith(str(small_disk)), error
    assert not (project["root"] / "out.json").exists()

    # nothing looks usable: no version, or only versions marked or refused as incomplete
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    for version in client.search_model_versions("name='honing-churn'"):
        assert "honing.gate.promoted" not in version.tags
    try:
        aliases = client.get_registered_model("honing-churn").aliases
    except mlflow.exceptions.MlflowException as exc:  # the disk filled before it existed
        assert exc.error_code == "RESOURCE_DOES_NOT_EXIST", exc
        aliases = {}
    assert aliases == {}
    # and no empty file was left in the store by a write the disk cut short
    empty = [p for p in small_disk.rglob("*") if p.is_file() and p.stat().st_size == 0]
    assert [p for p in empty if not p.name.endswith(".lock")] == []


def test_a_store_that_is_not_a_database_is_one_line_naming_it(project):
    """A corrupted mlflow.db: `aliases` and `predict` say so in one line naming the store,
    the traceback in the log."""
    store = project["root"] / "mlflow.db"
    store.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4000)  # a header, then garbage
    honing = str(Path(sys.executable).parent / "honing")
    env_args = ["--env", str(project["env"])]
    for args in (
        ["aliases", "honing-churn", *env_args],
        ["predict", str(project["data"]), "--out", "p.csv", "--config", str(project["config"]),
         *env_args],
    ):  # fmt: skip
        out = subprocess.run(
            [honing, *args], cwd=project["root"], env=cli_env(project),
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        screen = " ".join((out.stdout + out.stderr).split())
        assert out.returncode == 1, screen[-2000:]
        assert "Traceback" not in screen and "error:" in screen, screen[-2000:]
        assert str(store) in "".join(screen.split()), screen[-2000:]  # rich wraps lines
        assert "the traceback is in" in screen, screen[-2000:]
    assert "Traceback" in (project["root"] / ".honing" / "logs" / "honing.log").read_text()
