"""Faults: retries, a flow killed mid-search, two flows at once, an unreachable MLflow."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
import yaml
from prefect import flow

from honing.data import file_md5, write_table
from honing.exceptions import TrackingUnavailableError
from honing_flows.tasks import data as data_tasks
from tests.conftest import cli_env, prefect_home, run_cmd

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HONING = str(Path(sys.executable).parent / "honing")


def _ray_daemons(project: dict[str, Path]) -> set[int]:
    """Ray's daemons that this project's commands started: their environment names the
    project's Prefect home. Another user's Ray, or another project's, is never counted (nor
    killed)."""
    import psutil

    home, found = str(project["root"] / ".prefect"), set()
    for proc in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            line = " ".join(proc.info["cmdline"] or [])
            if ("raylet" in line or "gcs_server" in line) and (
                proc.environ().get("PREFECT_HOME") == home
            ):
                found.add(proc.pid)
    return found


#: Trials of the fault tests' slow search.
SLOW_TRIALS = 8


def _slow_search(project: dict[str, Path], trials: int = SLOW_TRIALS) -> Path:
    cfg = yaml.safe_load(project["config"].read_text())
    cfg["search"] = {
        # trials of a second or more each, one at a time: a kill or an interrupt after the
        # first ones still finds most of the search ahead
        "families": {"random_forest": {"n_estimators": {"randint": [60, 80]}, "max_depth": 10}},
        "trials_per_family": trials,
        "cv_folds": 3,
        "seed": 3,
        "max_concurrent_trials": 1,
    }
    # what comes after the search is not under test here: one compression of the forest
    cfg["compression"] = {"techniques": ["onnx"], "latency_rows": 20}
    path = project["root"] / "configs" / "slow.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _write_after_a_failed_attempt(path: Path, table: Any, since: float) -> None:
    """Write ``table`` to ``path`` once a task run started after ``since`` waits for its
    retry (Prefect's AwaitingRetry state): the file appears after a failed attempt, never
    before the first one, however slow the machine."""
    import datetime

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        TaskRunFilter,
        TaskRunFilterStartTime,
        TaskRunFilterState,
        TaskRunFilterStateName,
    )

    after = datetime.datetime.fromtimestamp(since, tz=datetime.UTC)
    waiting = TaskRunFilter(
        state=TaskRunFilterState(name=TaskRunFilterStateName(any_=["AwaitingRetry"])),
        start_time=TaskRunFilterStartTime(after_=after),
    )
    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            if client.read_task_runs(task_run_filter=waiting):
                write_table(table, path)
                return
            time.sleep(0.1)


def test_transient_io_failure_is_retried(prefect_harness, tmp_path, churn_df):
    """load_table fails while the file is not there yet, then succeeds on a retry."""
    path = tmp_path / "late.csv"
    writer = threading.Thread(
        target=_write_after_a_failed_attempt, args=(path, churn_df.head(50), time.time() - 1)
    )

    @flow
    def load(p: Path):
        state = data_tasks.load_table(p, return_state=True)
        return state.result(), state.state_details.task_run_id

    writer.start()
    df, task_run_id = load(path)
    writer.join(5)
    assert len(df) == 50
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # the retries, from the task run's state
        task_run = client.read_task_run(task_run_id)
    assert task_run.state.is_completed() and task_run.run_count >= 2


def _rows(db: Path, sql: str) -> list[tuple]:
    """``sql`` on a SQLite file another process is writing, read-only; nothing while the file
    or its tables do not exist yet, or while a writer holds it."""
    import sqlite3

    if not db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as c:
            return c.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


def _sql(db: str, sql: str) -> Callable[[Path], bool]:
    """Whether ``sql`` finds a row in the project's SQLite file ``db``."""
    return lambda root: bool(_rows(root / db, sql))


def _trials_finished(at_least: int) -> Callable[[Path], bool]:
    """Whether ``at_least`` trials of the project's Tune experiments have reported: each
    report stores its checkpoint (the out-of-fold predictions) at once, while Tune's own
    ``result.json`` files reach the storage path only when the search ends."""

    def finished(root: Path) -> bool:
        return sum(1 for _ in (root / "ray_results").glob("*/*/checkpoint_*/oof.npz")) >= at_least

    return finished


def _trials_saved(at_least: int) -> Callable[[Path], bool]:
    """Whether the saved state of the project's Tune experiment lists ``at_least`` finished
    trials, and its searcher's state is saved too: what a rerun restores (Tune saves them
    every few seconds, one after the other; a kill between the two is the rerun's to refuse,
    `test_experiment_folders`)."""
    from honing.search import experiments

    def saved(root: Path) -> bool:
        for state in (root / "ray_results").glob("*/experiment_state-*.json"):
            try:
                trials = json.loads(state.read_text())["trial_data"]
                done = sum(json.loads(t)["status"] == "TERMINATED" for t, _ in trials)
                whole = experiments.cut_short(str(state.parent)) is None
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being replaced
            if done >= at_least and whole:
                return True
        return False

    return saved


#: Where each kill lands: the stage, and what shows it has begun, read from what the run
#: writes while it runs (polled every 0.1 s).
#: How long a kill point may take to come: a loaded CI machine with the suite's other worker
#: beside it reached registration after more than 240 s (compression's candidates first).
KILL_WAIT_S = 480
KILL_POINTS: dict[str, Callable[[Path], bool]] = {
    # the experiment's saved state lists two finished trials; the search goes on
    "search": _trials_saved(2),
    # the training run exists in MLflow: `start` is done, validation is next
    "validation": _sql(
        "mlflow.db", "select 1 from runs where status = 'RUNNING' and name like '%train%'"
    ),
    # the compression task has started (after the search, refit, evaluation, explanations):
    # its run's first state reaches the Prefect API a moment after it starts, and the test's
    # config gives the distilled student enough epochs to still be training then
    "compression": _sql(
        ".prefect/prefect.db", "select 1 from task_run where name like 'compress-%'"
    ),
    # MLflow has created the version; its tags, description and alias are not written yet
    "registration": _sql("mlflow.db", "select 1 from model_versions"),
}


def _killed_at(project: dict[str, Path], cmd: list[str], stage: str) -> None:
    """Start ``cmd`` and SIGKILL its whole process group as soon as ``stage`` has begun."""
    begun = KILL_POINTS[stage]
    proc = subprocess.Popen(
        cmd,
        cwd=project["root"],
        env=cli_env(project),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + KILL_WAIT_S
    reached = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            reached = begun(project["root"])
            if reached:
                break
            time.sleep(0.1)
        assert proc.poll() is None, f"the run ended before its {stage} could be killed"
        assert reached, f"its {stage} had not begun after {KILL_WAIT_S} s"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        for pid in _ray_daemons(project):  # the killed run's own Ray, nobody else's
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_killed_flow_resumes_the_search_without_redoing_trials(project):
    config = _slow_search(project)
    cmd = run_cmd(project, config, "out.json")
    env = cli_env(project)
    _killed_at(project, cmd, "search")
    home = project["root"] / ".prefect"
    # the run's Prefect API died with it (its Ray workers notice their raylet is gone a
    # little later)
    assert _left_after(home, 15, only="prefect") == []

    rerun = subprocess.run(
        cmd, cwd=project["root"], env=env, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    summary = json.loads((project["root"] / "out.json").read_text())
    assert summary["trials"] == SLOW_TRIALS and summary["trials_failed"] == 0
    # the kill came mid-search: some trials were restored, the rest ran now
    assert 2 <= summary["trials_restored"] < SLOW_TRIALS, summary
    # the killed run's flow run, RUNNING when it died, was settled by the rerun
    states = sorted(r[0] for r in _rows(home / "prefect.db", "select state_type from flow_run"))
    assert states == ["COMPLETED", "CRASHED"], states
    assert _left_after(home, 30) == []


def _interrupted_run(project, whole_group: bool) -> tuple[int, str, float]:
    """``honing run`` with a slow search, sent SIGINT once a trial has finished: to the run
    alone (``kill -INT``) or to its whole process group (a terminal's Ctrl-C). Returns its
    exit code, its output and the seconds from the signal to its exit."""
    config = _slow_search(project)
    proc = subprocess.Popen(
        run_cmd(project, config, "out.json"),
        cwd=project["root"],
        env=cli_env(project),
        start_new_session=True,  # its own group, as a terminal's foreground job
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # as from a terminal: a suite started in the background inherits SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    a_trial_finished = _trials_finished(1)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if a_trial_finished(project["root"]):
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        signalled = time.monotonic()
        if whole_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=120)[0]
        took = time.monotonic() - signalled
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in _ray_daemons(project):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return proc.returncode, output, took


def test_an_interrupt_stops_the_whole_run_and_registers_nothing(project):
    # SIGINT to the run (`kill -INT`): the search must not end "early and fine" and let the
    # flow refit, register and promote on the trials that finished. (A terminal's Ctrl-C,
    # to the whole process group: the next test.)
    returncode, output, _ = _interrupted_run(project, whole_group=False)
    assert returncode == 130, output[-3000:]
    assert "interrupted" in output and "no alias moved" in " ".join(output.split())
    assert not (project["root"] / "out.json").exists()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project['root'] / 'mlflow.db'}")
    assert client.search_model_versions("name='honing-churn'") == []
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`honing.kind` = 'training'"
    )
    assert [r.info.status for r in runs] == ["FAILED"]
    assert runs[0].data.tags["honing.failed_stage"] == "search"  # it came mid-search


def _processes_of(prefect_home: Path) -> list[str]:
    """Command lines of the live processes started with this PREFECT_HOME."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("PREFECT_HOME") == str(prefect_home) and proc.is_running():
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(" ".join(proc.info["cmdline"] or []))
    return found


def _left_after(prefect_home: Path, seconds: float, only: str = "") -> list[str]:
    """The processes of this PREFECT_HOME (whose command line holds ``only``) still alive
    after waiting up to ``seconds`` for them to go."""
    deadline = time.monotonic() + seconds
    while True:
        left = [c for c in _processes_of(prefect_home) if only in c]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def test_a_terminal_ctrl_c_stops_the_run_and_its_api_within_seconds(project):
    """Ctrl-C in a terminal signals the whole foreground process group. The run's Prefect API
    lives in a session of its own: the run marks itself failed, reports to a live API, stops
    it, and exits within seconds, leaving no process and no flow run RUNNING."""
    import sqlite3

    home = project["root"] / ".prefect"
    returncode, output, took = _interrupted_run(project, whole_group=True)
    assert returncode == 130, output[-3000:]
    assert took < 30, f"{took:.0f} s from Ctrl-C to exit"
    assert "no alias moved" in " ".join(output.split())
    assert _left_after(home, 10) == []  # the API and everything else are gone
    with contextlib.closing(sqlite3.connect(home / "prefect.db")) as db:
        states = [r[0] for r in db.execute("select state_type from flow_run")]
    assert states and "RUNNING" not in states, states
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project['root'] / 'mlflow.db'}")
    assert client.search_model_versions("name='honing-churn'") == []


def test_two_flows_at_once_keep_the_registry_consistent(project):
    config = project["config"]
    env = cli_env(project)
    procs = [
        subprocess.Popen(
            run_cmd(project, config, f"out{i}.json", "--fresh-search"),
            cwd=project["root"],
            env={**env, "PREFECT_HOME": str(prefect_home(project["root"] / f".prefect{i}"))},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outs)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project['root'] / 'mlflow.db'}")
    versions = client.search_model_versions("name='honing-churn'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    summaries = [json.loads((project["root"] / f"out{i}.json").read_text()) for i in range(2)]
    assert sorted(s["version"] for s in summaries) == ["1", "2"]
    aliases = client.get_registered_model("honing-churn").aliases
    assert "champion" in aliases and int(aliases["champion"]) in (1, 2)
    champion = client.get_model_version("honing-churn", str(aliases["champion"]))
    assert champion.tags["honing.gate.promoted"] == "true"


def test_unreachable_mlflow_is_a_clear_error_after_retries(prefect_harness, project, monkeypatch):
    from honing_flows.flows.training import training_pipeline

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = yaml.safe_load(project["env"].read_text())
    env["mlflow"] = {"tracking_uri": "http://127.0.0.1:9", "artifact_root": None}
    down = project["root"] / "configs" / "down.yaml"
    down.write_text(yaml.safe_dump(env))
    before = file_md5(project["data"])
    start = time.monotonic()
    with pytest.raises(TrackingUnavailableError) as exc:
        training_pipeline(
            config_path=str(project["config"]), env_path=str(down), repo=str(project["root"])
        )
    assert "http://127.0.0.1:9" in str(exc.value) and "unreachable" in str(exc.value)
    assert time.monotonic() - start >= 1 + 2 + 4  # three retries with backoff
    assert file_md5(project["data"]) == before


def test_a_failed_run_prints_one_clear_message_and_logs_the_traceback(project, churn_df):
    """Bad data: the screen shows the story and one error naming the file, the column and
    the rule; Prefect's tracebacks and exception dumps go to .honing/logs/honing.log."""
    bad = project["root"] / "data" / "input.csv"
    churn_df.drop(columns=["contract"]).to_csv(bad, index=False)
    cfg = yaml.safe_load(project["config"].read_text())
    cfg["data"]["path"] = str(bad)
    config = project["root"] / "configs" / "run.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = subprocess.run(
        run_cmd(project, config, "out.json"),
        cwd=project["root"],
        env=cli_env(project),
        capture_output=True,
        text=True,
        timeout=300,
    )
    screen = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 1, screen[-3000:]
    assert "Traceback" not in screen and "Failed(" not in screen
    assert f"error: {bad}" in screen and "contract" in screen
    assert "expect_table_columns_to_match_set" in screen
    assert "Task run 'validate-" in screen  # the story is still told
    log = (project["root"] / ".honing" / "logs" / "honing.log").read_text()
    assert "Traceback" in log and "DataValidationError" in log
    assert not (project["root"] / "out.json").exists()


def test_runs_killed_in_validation_compression_and_registration_are_settled(project):
    """SIGKILL (no handler runs) in three stages in turn, each kill followed by the next run.
    Each run settles what the one before left, and the last one leaves a store where every
    run, flow run and version says what happened to it; the cut registration never loads."""
    home = project["root"] / ".prefect"
    mlflow_db = project["root"] / "mlflow.db"
    out = project["root"] / "out.json"
    cfg = yaml.safe_load(project["config"].read_text())
    # the PyTorch student, long enough to be still training when the kill comes
    cfg["compression"]["techniques"].append("distill")
    cfg["compression"]["distill"] = {"epochs": 150}
    config = project["root"] / "configs" / "killed.yaml"
    config.write_text(yaml.safe_dump(cfg))
    slow = run_cmd(project, config, "out.json")
    # the runs after the kill in compression: the project's own config, without that student
    # (its 150 epochs would be most of each run, and nothing kills them there)
    cmd = run_cmd(project, project["config"], "out.json")
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")

    def training_runs() -> list[str]:
        sql = "select status from runs where name like '%train%' order by start_time"
        return [r[0] for r in _rows(mlflow_db, sql)]

    _killed_at(project, slow, "validation")
    assert _left_after(home, 15, only="prefect") == []  # its API went with it
    assert training_runs() == ["RUNNING"] and _rows(mlflow_db, "select 1 from model_versions") == []

    _killed_at(project, slow, "compression")
    assert _left_after(home, 15, only="prefect") == []
    # the next run found the first one dead and marked it; it was killed itself before it
    # registered anything
    assert training_runs() == ["FAILED", "RUNNING"]
    assert _rows(mlflow_db, "select 1 from model_versions") == []

    _killed_at(project, cmd, "registration")
    assert _left_after(home, 15, only="prefect") == []
    assert training_runs() == ["FAILED", "FAILED", "RUNNING"]
    cut = client.get_model_version("honing-churn", "1")
    assert "honing.gate.promoted" not in cut.tags  # the registration was cut short
    assert client.get_registered_model("honing-churn").aliases == {}
    assert not out.exists()

    last = subprocess.run(
        cmd, cwd=project["root"], env=cli_env(project), capture_output=True, text=True, timeout=600
    )
    assert last.returncode == 0, last.stdout[-3000:] + last.stderr[-3000:]
    assert training_runs() == ["FAILED", "FAILED", "FAILED", "FINISHED"]
    assert "incomplete" in last.stdout + last.stderr  # the settling is told in the story
    cut = client.get_model_version("honing-churn", "1")
    assert cut.tags["honing.status"] == "incomplete"
    assert {k: int(v) for k, v in client.get_registered_model("honing-churn").aliases.items()} == {
        "champion": 2
    }
    assert json.loads(out.read_text())["version"] == "2"
    states = sorted(r[0] for r in _rows(home / "prefect.db", "select state_type from flow_run"))
    assert states == ["COMPLETED", "CRASHED", "CRASHED", "CRASHED"], states

    # the cut version is refused by name, with the rule; the champion serves
    batch = project["root"] / "batch.csv"
    pd.read_csv(project["data"]).drop(columns=["churn"]).head(20).to_csv(batch, index=False)

    def predict(model: str, name: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                HONING,
                "predict",
                str(batch),
                "--out",
                str(project["root"] / name),
                "--config",
                str(project["config"]),
                "--env",
                str(project["env"]),
                "--model",
                model,
            ],
            cwd=project["root"],
            env=cli_env(project),
            capture_output=True,
            text=True,
            timeout=300,
        )

    refused = predict("models:/honing-churn/1", "p1.csv")
    screen = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode == 1 and "Traceback" not in screen, screen[-2000:]
    assert "models:/honing-churn/1" in screen and "complete registrations" in screen
    assert not (project["root"] / "p1.csv").exists()
    served = predict("models:/honing-churn@champion", "p2.csv")
    assert served.returncode == 0, served.stdout[-2000:] + served.stderr[-2000:]
    assert len(pd.read_csv(project["root"] / "p2.csv")) == 20
    assert _left_after(home, 30) == []
