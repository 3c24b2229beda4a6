import contextlib
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from honing_flows.cli.flows import app
from tests.conftest import mlflow_store_file, untracked_env

runner = CliRunner()


def _write(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "customer": [f"c{i}" for i in range(80)],
            "usage": rng.normal(10, 2, size=80),
            "tier": rng.choice(["a", "b"], size=80),
            "left": rng.choice([0, 1], size=80),
        }
    )
    path = tmp_path / "new.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def in_a_project(tmp_path: Path, monkeypatch) -> Path:
    """``tmp_path`` as the working folder of a project whose MLflow store exists already (as
    after its first table's ``init``): ``init`` opens that store instead of creating one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # it would name another store
    mlflow_store_file(tmp_path)
    return tmp_path


def test_init_then_validate(tmp_path: Path, in_a_project):
    data = _write(tmp_path)
    res = runner.invoke(
        app, ["init", str(data), "--target", "left", "--positive-label", "1", "--drop", "customer"]
    )
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((tmp_path / "configs" / "new.yaml").read_text())
    assert cfg["data"]["positive_label"] == 1 and cfg["data"]["drop_columns"] == ["customer"]
    assert (tmp_path / "expectations" / "new.json").exists()

    res = runner.invoke(
        app, ["validate", "--config", "configs/new.yaml", "--report-out", "reports/v.json"]
    )
    assert res.exit_code == 0, res.output
    assert "passed" in res.output and (tmp_path / "reports" / "v.json").exists()

    # a second init refuses to overwrite the reviewed config
    res = runner.invoke(app, ["init", str(data), "--target", "left"])
    assert res.exit_code == 1 and "already exists" in res.output

    # reports never replace a file: not the earlier report, not the input table itself
    before = data.read_bytes()
    for out in ("reports/v.json", str(data)):
        res = runner.invoke(app, ["validate", "--config", "configs/new.yaml", "--report-out", out])
        assert res.exit_code == 1 and "refusing to overwrite" in " ".join(res.output.split())
    assert data.read_bytes() == before
    res = runner.invoke(app, ["run", "--config", "configs/new.yaml", "--metrics-out", str(data)])
    assert res.exit_code == 1 and "refusing to overwrite" in " ".join(res.output.split())
    assert data.read_bytes() == before
    # --force replaces an earlier report, never the command's own input
    res = runner.invoke(
        app, ["validate", "-c", "configs/new.yaml", "--report-out", "reports/v.json", "--force"]
    )
    assert res.exit_code == 0, res.output
    for cmd in (["validate", "--report-out"], ["run", "--metrics-out"]):
        res = runner.invoke(app, [cmd[0], "-c", "configs/new.yaml", cmd[1], str(data), "--force"])
        out = " ".join(res.output.split())
        assert res.exit_code == 1 and "own input" in out and "even with --force" in out
    assert data.read_bytes() == before
    # nor the config's suite, nor the table given to init, whatever the output flag
    suite = tmp_path / "expectations" / "new.json"
    kept = suite.read_bytes()
    for args in (
        ["validate", "-c", "configs/new.yaml", "--report-out", str(suite)],
        ["run", "-c", "configs/new.yaml", "--metrics-out", str(suite)],
        ["predict", str(data), "-c", "configs/new.yaml", "--out", str(suite)],
        ["init", str(data), "--target", "left", "--config-out", str(data)],
        ["init", str(data), "--target", "left", "--suite-out", str(data)],
    ):
        res = runner.invoke(app, [*args, "--force"])
        out = " ".join(res.output.split())
        assert res.exit_code == 1 and "own input" in out and "even with --force" in out, args
    assert data.read_bytes() == before and suite.read_bytes() == kept


def test_init_reads_markers_of_missing_values_and_separators_and_so_does_validate(
    tmp_path: Path, in_a_project
):
    """A column of numbers with "." and " ?" for its missing ones, and one written
    "1,234.50" with "." too: init writes the markers and the separator into the config
    (``data.missing_values``, ``data.thousands``), types both columns as numbers in the
    suite, and says so; a column whose marker is also a category of a text column stays text,
    and init says why. ``validate`` then reads the table, and a new batch, through the same
    config."""
    data = _write(tmp_path)
    df = pd.read_csv(data)
    marks = {0: ".", 4: " ?"}
    df["usage"] = [marks.get(i % 9, f"{v:.2f}") for i, v in enumerate(df["usage"])]
    rng = np.random.default_rng(3)
    df["spend"] = [f"{v:,.2f}" if i % 7 else "." for i, v in enumerate(rng.gamma(2, 900, 80))]
    df["visits"] = [str(i % 6) if i % 8 else "none" for i in range(80)]
    df["plan"] = rng.choice(["basic", "none", "plus"], 80)  # "none": a plan, not a gap
    df.to_csv(data, index=False)
    res = runner.invoke(app, ["init", str(data), "--target", "left"])
    out = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "read as missing (data.missing_values): '.', in 2 column(s)" in out
    assert "'?', in 1 column(s) of numbers: usage" in out and "spend" in out
    assert "read as numbers (data.thousands: ',')" in out
    assert "kept as text: visits" in out and "also a value of plan" in out
    cfg = yaml.safe_load((tmp_path / "configs" / "new.yaml").read_text())
    assert cfg["data"]["missing_values"] == [".", "?"] and cfg["data"]["thousands"] == ","
    suite = json.loads((tmp_path / "expectations" / "new.json").read_text())
    for column in ("usage", "spend"):
        types = [
            e["kwargs"]["type_list"]
            for e in suite["expectations"]
            if e["type"] == "expect_column_values_to_be_in_type_list"
            and e["kwargs"]["column"] == column
        ]
        assert types and all("object" not in t and "float64" in t for t in types), types
        rules = [e["type"] for e in suite["expectations"] if e["kwargs"].get("column") == column]
        assert "expect_column_values_to_be_in_set" not in rules, rules

    batch = tmp_path / "batch.csv"
    df.tail(30).to_csv(batch, index=False)  # a later batch, markers and all
    for args in ([], ["--data", str(batch)]):
        res = runner.invoke(app, ["validate", "--config", "configs/new.yaml", *args])
        assert res.exit_code == 0 and "passed" in res.output, res.output


def test_validate_reports_failures_and_exits_1(tmp_path: Path, in_a_project):
    data = _write(tmp_path)
    assert runner.invoke(app, ["init", str(data), "--target", "left"]).exit_code == 0
    bad = pd.read_csv(data).drop(columns=["tier"])
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    res = runner.invoke(app, ["validate", "--config", "configs/new.yaml", "--data", str(bad_path)])
    assert res.exit_code == 1
    out = " ".join(res.output.split())
    assert "bad.csv" in out and "expect_table_columns_to_match_set" in out and "tier" in out


def test_bad_config_exits_with_message(tmp_path: Path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\nbogus: 1\n")
    res = runner.invoke(app, ["validate", "--config", str(cfg)])
    assert res.exit_code == 1
    assert "bogus" in res.output and "unknown key" in res.output


def test_fetch_demo_never_overwrites(tmp_path: Path):
    out = tmp_path / "d.csv"
    out.write_text("keep me")
    res = runner.invoke(app, ["data", "fetch-demo", "--out", str(out)])
    assert res.exit_code == 1 and "refusing to overwrite" in res.output
    assert out.read_text() == "keep me"


def test_models_load_only_from_the_registry_or_a_named_folder(tmp_path: Path):
    import pytest

    from honing.exceptions import HoningError
    from honing.registry import load_model

    for uri in ("s3://bucket/model.pkl", "runs:/abc/model", str(tmp_path / "model.pkl")):
        with pytest.raises(HoningError, match="rule: load only"):
            load_model(uri)


def test_commands_against_an_unreachable_tracking_server_say_so_at_once(tmp_path, monkeypatch):
    """aliases and rollback (as predict and serve-model) ping the server first: its health
    check's one line, not the MLflow client's minutes of retries."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # it would replace the profile's
    env = tmp_path / "env.yaml"
    env.write_text('profile: dead\nmlflow: {tracking_uri: "http://127.0.0.1:9/"}\n')
    for args in (["aliases", "m"], ["rollback", "m", "--to", "1", "-r", "x"]):
        res = runner.invoke(app, [*args, "--env", str(env)])
        out = " ".join(res.output.split())
        assert res.exit_code == 1 and "http://127.0.0.1:9/ is unreachable" in out, (args, out)


def test_init_fits_parquet_only_types(tmp_path: Path, in_a_project):
    """Parquet holds types a CSV cannot: each is read as its CSV would be, so the config and
    suite `init` writes pass their own table (they crashed `init` or refused the table)."""
    import decimal

    rng = np.random.default_rng(0)
    n = 120
    columns = {
        "naive_time": pd.date_range("2024-01-01", periods=n, freq="h"),
        "utc_time": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
        "raw": [bytes([65 + i % 7]) * 3 for i in range(n)],
        "small": (np.arange(n) % 200).astype("uint8"),
        "price": [decimal.Decimal(str(round(v, 2))) for v in rng.normal(size=n)],
        "waited": pd.to_timedelta(np.arange(n), unit="s"),
    }
    for name, values in columns.items():
        df = pd.DataFrame({"y": rng.choice(["a", "b"], n), "x": rng.normal(size=n), name: values})
        df.to_parquet(tmp_path / f"{name}.parquet")
        res = runner.invoke(app, ["init", f"{name}.parquet", "--target", "y"])
        assert res.exit_code == 0, (name, res.output)
        res = runner.invoke(app, ["validate", "--config", f"configs/{name}.yaml"])
        assert res.exit_code == 0, (name, res.output)


def test_no_dead_link_to_the_private_api_is_printed(caplog):
    """Prefect announces each flow run's page ("View at ..."); on the run's private API that
    page is gone when the command ends, so the line is dropped there, and only there."""
    import logging

    from honing_flows.cli.flows import no_dead_links

    logger = logging.getLogger("prefect.flow_runs")
    with caplog.at_level(logging.INFO, logger="prefect.flow_runs"):
        with no_dead_links():
            logger.info("View at http://127.0.0.1:41927/runs/flow-run/16cb")
            logger.info("Beginning flow run 'churn train'")
        logger.info("View at http://prefect.example:4200/runs/flow-run/16cb")  # a real server
    shown = [r.getMessage() for r in caplog.records]
    assert shown == [
        "Beginning flow run 'churn train'",
        "View at http://prefect.example:4200/runs/flow-run/16cb",
    ]


def test_a_command_has_openmp_threads_sleep_before_any_library_loads_its_runtime():
    """The `honing` entry point sets OMP_WAIT_POLICY=PASSIVE before it imports LightGBM,
    XGBoost or scikit-learn, whose OpenMP runtimes read it once, when they load (spinning
    threads on a busy machine made a 0.2 s LightGBM refit take 11 s); a value the user set
    is kept."""
    import os
    import subprocess
    import sys

    probe = (  # what entry.main imports before its first line sets the environment
        "import os, sys; from honing_flows import entry, api_server; import honing.runtime as r; "
        "loaded = [m for m in ('lightgbm', 'xgboost', 'sklearn') if m in sys.modules]; "
        "r.quiet_environment(os.environ); print(os.environ['OMP_WAIT_POLICY'], loaded)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["PASSIVE", "[]"], out.stderr[-2000:]
    kept = subprocess.run(
        [sys.executable, "-c", probe], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert kept.stdout.split()[0] == "ACTIVE"


def test_a_command_ends_after_its_threads_and_exit_handlers_with_its_status(tmp_path):
    """`exit_now`, the command's last step, skips Python's teardown only: a thread that is
    not a daemon still finishes, a thread pool's idle worker is told to stop (waiting for it
    first would hang), the atexit handlers still run (after the threads, as at a normal
    exit), buffered output still reaches the stream, and the status is SystemExit's own
    (a message: printed, status 1)."""
    import subprocess
    import sys

    marks = tmp_path / "marks.txt"
    script = (
        "import atexit, sys, threading, time\n"
        "from honing_flows.entry import exit_now\n"
        f"marks = open({str(marks)!r}, 'a')\n"
        "def late():\n"
        "    time.sleep(0.5); marks.write('thread\\n'); marks.flush()\n"
        "threading.Thread(target=late).start()\n"
        # a pool's idle worker: not a daemon, it stops when the pool's exit hook tells it to
        "from concurrent.futures import ThreadPoolExecutor\n"
        "pool = ThreadPoolExecutor(1)\n"
        "pool.submit(print, end='').result()\n"
        "atexit.register(lambda: (marks.write('atexit\\n'), marks.close()))\n"
        "sys.stdout.write('buffered, no newline')\n"
        "exit_now(CODE)\n"
    )
    for code, status in ((3, 3), (None, 0), ("a message", 1)):
        out = subprocess.run(
            [sys.executable, "-c", script.replace("CODE", repr(code))],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == status, out.stderr[-2000:]
        assert out.stdout == "buffered, no newline"
        assert ("a message" in out.stderr) == (code == "a message")
        assert marks.read_text().splitlines()[-2:] == ["thread", "atexit"]


def test_reading_or_writing_a_model_does_not_import_pytorch():
    """skops' list of scikit-learn's estimators, made when it is imported, walks every
    package of scikit-learn and so imported PyTorch through scikit-learn's vendored array
    API shims. Imported through `runtime.load_module`, it lists the same estimators, and
    PyTorch stays out of a process whose model does not use it."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from honing.models.artifacts import load_skops, skops_bytes\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "load_skops(skops_bytes(LogisticRegression()))\n"
        "from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES as listed\n"
        "print('torch' in sys.modules)\n"
        "from sklearn.utils import all_estimators\n"
        "from skops.io._utils import get_type_name\n"
        "print(sorted(listed) == sorted(get_type_name(t) for _, t in all_estimators()))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    # PyTorch out while skops loaded; the same list as scikit-learn's own unguarded walk,
    # which does import PyTorch (so the check above could fail)
    assert out.stdout.split() == ["False", "True", "True"], out.stderr[-2000:]


def test_serve_model_refuses_a_capture_it_cannot_keep_before_it_loads_a_model(project):
    """`--capture` on a file, or where the folder cannot be made, is one line naming it; so
    is `--shadow` without a capture, and a name with no champion to serve."""
    from honing import serving
    from honing.exceptions import ConfigError, RegistryError

    (project["root"] / "a-file").write_text("x")
    spec = serving.ServeSpec(str(project["config"]), str(project["env"]))
    for capture, why in [("a-file", "not a folder"), ("/proc/no/such", "No such file")]:
        path = str(project["root"] / capture) if not capture.startswith("/") else capture
        with pytest.raises(ConfigError, match=f"--capture {path}: {why}"):
            serving.build(dataclasses.replace(spec, capture=path))
    with pytest.raises(ConfigError, match="add --capture DIR"):
        serving.build(dataclasses.replace(spec, shadow="challenger"))
    with pytest.raises(RegistryError, match="has no @champion to serve"):
        serving.build(spec)


def test_serve_model_refuses_a_port_in_use_before_it_says_it_serves_there(project):
    """A busy port was uvicorn's "[Errno 98] ... address already in use" after the command had
    printed that it served on that port; it is one line before any model loads."""
    import socket

    from tests.conftest import cli_env, free_port

    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        out = subprocess.run(
            [str(Path(sys.executable).parent / "honing"), "serve-model", "--config",
             str(project["config"]), "--env", str(project["env"]), "--port", str(port)],
            cwd=project["root"], env=cli_env(project), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"error: --port {port}: 127.0.0.1:{port} cannot be bound" in out.stderr
    assert "serving" not in out.stdout and "Traceback" not in out.stdout + out.stderr


def test_init_keeps_library_output_off_the_screen_and_makes_the_mlflow_store(tmp_path: Path):
    """A column of +-1e308 made numpy print two RuntimeWarnings (with its source line) above
    init's own words; they are kept in .honing/logs/honing.log. Init also makes the project's
    MLflow store (the embedded profile's), quietly, so that the first run does not."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"huge": rng.choice([1e308, -1e308, 0.0], 300), "x": rng.normal(size=300)})
    df["y"] = np.where(df["x"] > 0, "yes", "no")
    df.to_csv(tmp_path / "t.csv", index=False)
    out = subprocess.run(
        [str(Path(sys.executable).parent / "honing"), "init", "t.csv", "--target", "y"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=untracked_env(),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Warning" not in out.stdout + out.stderr and "wrote configs/t.yaml" in out.stdout
    assert "RuntimeWarning: overflow" in (tmp_path / ".honing/logs/honing.log").read_text()
    # the store, at MLflow's schema (its tracking, registry and MLflow 3 tables), said in one
    # line; MLflow's own "Creating initial MLflow database tables" lines are not shown
    with contextlib.closing(sqlite3.connect(tmp_path / "mlflow.db")) as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        (revisions,) = db.execute("select count(*) from alembic_version").fetchone()
    assert {"experiments", "registered_model_aliases", "logged_models"} <= tables
    assert revisions == 1
    said = " ".join(out.stdout.split())
    assert "MLflow store mlflow.db ready" in said and "INFO" not in out.stdout + out.stderr


def test_init_readies_the_store_of_the_profile_its_runs_will_use(tmp_path: Path, in_a_project):
    """``--env`` names the profile the project's runs use: init readies that profile's MLflow
    store, not the default one, and its last line carries the option on to the run."""
    import yaml as yaml_mod

    data = _write(tmp_path)
    (tmp_path / "stores").mkdir()
    mlflow_store_file(tmp_path / "stores")
    profile = tmp_path / "configs" / "team.yaml"
    profile.parent.mkdir(exist_ok=True)
    profile.write_text(
        yaml_mod.safe_dump(
            {
                "profile": "team",
                "mlflow": {
                    "tracking_uri": f"sqlite:///{tmp_path / 'stores' / 'mlflow.db'}",
                    "artifact_root": str(tmp_path / "stores" / "mlartifacts"),
                },
            }
        )
    )
    res = runner.invoke(app, ["init", str(data), "--target", "left", "--env", str(profile)])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "MLflow store stores/mlflow.db ready" in said
    assert f"honing run --config configs/new.yaml --env {profile}" in res.output
    default = runner.invoke(app, ["init", str(data), "--target", "left", "--force"])
    said = " ".join(default.output.split())
    assert "MLflow store mlflow.db ready" in said and "--env" not in said


def test_init_says_when_a_budget_is_shorter_than_a_run_can_keep(tmp_path: Path, in_a_project):
    """Under 40 s the command's fixed start and the stages after the search leave no search:
    init says so before the run overruns, and says nothing for a budget it can keep."""
    data = _write(tmp_path)
    res = runner.invoke(app, ["init", str(data), "--target", "left", "--budget", "20"])
    assert res.exit_code == 0, res.output
    assert "20s is under the 40s a run keeps" in " ".join(res.output.split())
    res = runner.invoke(app, ["init", str(data), "--target", "left", "--budget", "60", "--force"])
    assert res.exit_code == 0 and "a run keeps" not in res.output


def test_the_refit_threads_follow_the_cores_the_process_may_use():
    """`os.cpu_count` counts the machine; a process pinned to fewer cores (taskset, a
    container's cpuset) fits on those only."""
    code = "from honing import runtime; print(runtime.cores())"
    pinned = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True
    )
    assert pinned.returncode == 0, pinned.stderr
    assert pinned.stdout.strip() == "1"
    from honing import runtime

    assert runtime.cores() == len(os.sched_getaffinity(0))


def test_init_refuses_a_name_that_is_a_path_and_cleans_a_file_stem(tmp_path: Path, monkeypatch):
    """--name names the config, the suite and the registered model: a path or a space is
    refused with the rule, and nothing is written; a file's stem is made a name instead."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    data = _write(tmp_path)
    res = runner.invoke(app, ["init", str(data), "--target", "left", "--name", "../../evil"])
    assert res.exit_code == 1
    assert "--name '../../evil': rule: letters, digits" in " ".join(res.output.split())
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["new.csv"]
    spaced = data.with_name("my data (2).csv")
    data.rename(spaced)
    res = runner.invoke(app, ["init", str(spaced), "--target", "left"])
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((work / "configs" / "my-data-2.yaml").read_text())
    assert cfg["registry"]["model_name"] == "honing-my-data-2"
