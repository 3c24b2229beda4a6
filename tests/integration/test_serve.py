"""Schedules and triggers for real: a local Prefect server, `honing serve`, a data change that
retrains through an event trigger, a drifted batch whose drift event retrains through an
automation (and reaches a webhook), and a schedule that fires."""

from __future__ import annotations

import datetime
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from honing.data import write_table
from honing.data.demo_data import fetch_flights
from tests.conftest import ROOT, free_port, prefect_home

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BIN = Path(sys.executable).parent


PORT = free_port()  # the Prefect server of this module


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_TRACKING", "PREFECT_", "RAY_ADDRESS"))
    }
    env.update(
        {
            "PREFECT_HOME": str(prefect_home(home)),
            "PREFECT_API_URL": f"http://127.0.0.1:{PORT}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
            "PREFECT_RUNNER_POLL_FREQUENCY": "2",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _wait(predicate, timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for p in procs:
            assert p.poll() is None, f"{what}: a process died"
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("serve")
    for sub in ("data", "configs", "expectations"):
        (root / sub).mkdir()
    write_table(fetch_flights("reference", rows=2500), root / "data" / "flights.csv")
    write_table(fetch_flights("current", rows=2500), root / "data" / "batch.csv")
    suite = json.loads((ROOT / "expectations" / "flights.json").read_text())
    for exp in suite["expectations"]:  # this test uses 2,500 of the 6,000 rows
        if exp["type"] == "expect_table_row_count_to_be_between":
            exp["kwargs"]["min_value"] = 1000
    (root / "expectations" / "flights.json").write_text(json.dumps(suite))
    cfg = yaml.safe_load((ROOT / "configs" / "flights.yaml").read_text())
    cfg["data"]["path"] = "data/flights.csv"
    cfg["validation"]["suite"] = "expectations/flights.json"
    cfg["search"].update(trials_per_family=1, cv_folds=2)
    cfg["search"]["families"] = {
        "logistic_regression": {"C": 1.0},
        "hist_gradient_boosting": {"max_iter": 50},
    }
    cfg["compression"] = {
        "techniques": ["onnx"],
        "latency_rows": 20,
    }  # compression is not under test
    # the labelled batch's ROC-AUC holds (the model copes with the seasons): under the
    # default trigger it would keep the champion; this test is about the drift path
    cfg["monitoring"]["trigger"] = "drift"
    (root / "configs" / "flights.yaml").write_text(yaml.safe_dump(cfg))
    (root / "configs" / "env.yaml").write_text(
        yaml.safe_dump(
            {
                "profile": "serve-test",
                "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "artifact_root": "mlartifacts"},
                "ray": {"num_cpus": 2, "storage_path": "ray_results"},
            }
        )
    )
    env = _env(root / ".prefect")
    logs = root / "logs"
    logs.mkdir()
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(PORT)],
        cwd=root,
        env=env,
        stdout=(logs / "server.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs = [server]
    try:

        def healthy() -> bool:
            try:
                return (
                    urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/health", timeout=2).status
                    == 200
                )
            except OSError:
                return False

        _wait(healthy, 120, "the Prefect server", procs)
        serve = subprocess.Popen(
            [
                str(BIN / "honing"),
                "serve",
                "--config",
                "configs/flights.yaml",
                "--env",
                "configs/env.yaml",
                "--batch",
                "data/batch.csv",
                # each check is a flow run in a process of its own (some 2 s of CPU): often
                # enough for the tests' waits, not a check whenever the last one ends
                "--watch-interval",
                "20",
                "--retrain-cron",
                "0 3 1 1 *",
                "--monitor-cron",
                "0 3 1 1 *",
            ],
            cwd=root,
            env=env,
            stdout=(logs / "serve.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(serve)
        yield {"root": root, "env": env, "procs": procs, "logs": logs}
    finally:
        # `honing serve` first, and the server only once it is gone: its graceful stop tells
        # the server about the runs it cancels (stopped together, it retried a dead server
        # for 30 s and was killed)
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


#: What Prefect's own client retries (its SQLite database busy under load answers 503).
_RETRIED = {408, 429, 502, 503}


def _api(method: str, path: str, body: object = None) -> object:
    """One call to the module's Prefect server, as Prefect's own client makes it: its REST API
    over HTTP, the JSON answer decoded, an answer Prefect's client would retry retried the
    same way (up to five times, waiting longer each time). A poll costs a request, not a
    Python process."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/api{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )

    def answer() -> object:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    for wait in (1, 2, 4, 8, 16):
        try:
            return answer()
        except urllib.error.HTTPError as exc:
            if exc.code not in _RETRIED:
                raise
        except (urllib.error.URLError, ConnectionError, TimeoutError):  # a dropped connection
            pass
        time.sleep(wait)
    return answer()  # the sixth try: its error is the test's


def _runs(served, deployment: str) -> list[dict]:
    runs = _api("POST", "/flow_runs/filter", {"deployments": {"name": {"any_": [deployment]}}})
    return [{"state": r["state_type"]} for r in runs]


def _versions(served) -> list[int]:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{served['root'] / 'mlflow.db'}")
    try:
        return sorted(int(v.version) for v in client.search_model_versions("name='honing-flights'"))
    except Exception:  # noqa: BLE001 - the store may not exist yet
        return []


def test_schedule_fires(served):
    _wait(
        lambda: any(r["state"] == "COMPLETED" for r in _runs(served, "watch-data")),
        180,
        "a scheduled watch-data run",
        served["procs"],
    )


def _completed(served, deployment: str) -> int:
    return sum(r["state"] == "COMPLETED" for r in _runs(served, deployment))


def _retrain_on_a_data_change(served) -> None:
    """Change the watched table, then wait for the model version its event trigger registers
    and for that retraining run to complete. Counts are taken before the change, so the
    test holds whatever ran before it."""
    _wait(
        lambda: any(r["state"] == "COMPLETED" for r in _runs(served, "watch-data")),
        180,
        "the watcher's baseline",
        served["procs"],
    )
    before, done = _versions(served), _completed(served, "retrain-on-data-change")
    data = served["root"] / "data" / "flights.csv"
    df = pd.read_csv(data)
    df.iloc[:-150].to_csv(data, index=False)  # new data version
    _wait(
        lambda: len(_versions(served)) > len(before),
        300,
        "a model version from the data change",
        served["procs"],
    )
    # the version is registered before the flow run ends: wait on the run's state
    _wait(
        lambda: _completed(served, "retrain-on-data-change") > done,
        120,
        "the retraining run to complete",
        served["procs"],
    )
    assert _versions(served) == [*before, max(before, default=0) + 1]


def test_data_change_retrains_through_an_event_trigger(served):
    _retrain_on_a_data_change(served)


class _Hooks(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Hooks.received.append(json.loads(body or b"{}"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


def test_drifted_batch_triggers_retraining(served):
    """The monitor emits honing.drift.detected; an automation runs the retraining
    deployment, and the route in infra/ posts the same event to a webhook."""
    hook = http.server.HTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    routed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "infra" / "prefect" / "drift_webhook.py"),
            "--url",
            f"http://127.0.0.1:{hook.server_address[1]}/drift",
        ],
        env=served["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert routed.returncode == 0, routed.stderr[-2000:]
    if not _versions(served):  # run on its own: a champion first, as a data change makes one
        _retrain_on_a_data_change(served)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{served['root'] / 'mlflow.db'}")
    champion = str(client.get_model_version_by_alias("honing-flights", "champion").version)
    before, done = _versions(served), _completed(served, "retrain-on-drift")
    out = subprocess.run(
        [
            str(BIN / "prefect"),
            "deployment",
            "run",
            "monitoring_pipeline/monitor",
            "--watch",
            "--watch-timeout",
            "400",
        ],
        cwd=served["root"],
        env=served["env"],
        capture_output=True,
        text=True,
        timeout=450,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "Completed" in out.stdout
    # the monitor only decides and emits; the automation on its event retrains
    _wait(
        lambda: _completed(served, "retrain-on-drift") > done,
        400,
        "the retraining the drift event triggers",
        served["procs"],
    )
    assert _versions(served) == [*before, before[-1] + 1]
    _wait(lambda: bool(_Hooks.received), 60, "the drift webhook", served["procs"])
    hook.shutdown()
    posted = _Hooks.received[0]
    assert posted["event"] == "honing.drift.detected"
    assert posted["model"] == "honing.model.honing-flights" and posted["version"] == champion
    assert any("drifted" in r for r in posted["reasons"])
    monitors = client.search_runs(
        [client.get_experiment_by_name("honing-flights").experiment_id],
        filter_string="tags.`honing.kind` = 'monitoring'",
    )
    assert monitors and monitors[0].data.tags["honing.retrain"] == "true"
    assert "drifted" in monitors[0].data.tags["honing.retrain_reasons"]
    assert "temp" in monitors[0].data.tags["mlflow.note.content"]  # the seasons, in words
    artifacts = {a.path for a in client.list_artifacts(monitors[0].info.run_id, "monitoring")}
    assert {"monitoring/drift.html", "monitoring/drift.json"} <= artifacts


def _limits(served) -> dict[str, list]:
    out = {}
    for name in (
        "watch_data/watch-data",
        "monitoring_pipeline/monitor",
        "training_pipeline/retrain-on-data-change",
        "training_pipeline/retrain-on-drift",
        "training_pipeline/retrain-scheduled",
    ):
        d = _api("GET", f"/deployments/name/{name}")
        g, o = d["global_concurrency_limit"], d["concurrency_options"]
        out[name] = [g["limit"] if g else None, o["collision_strategy"] if o else None]
    return out


def test_served_deployments_run_one_at_a_time(served):
    """Scheduled work cannot pile up: the watcher and the monitor drop a run that would
    overlap the one in progress, and retraining queues behind the running one."""
    _wait(
        lambda: any(r["state"] == "COMPLETED" for r in _runs(served, "watch-data")),
        180,
        "the served deployments",
        served["procs"],
    )
    assert _limits(served) == {
        "watch_data/watch-data": [1, "CANCEL_NEW"],
        "monitoring_pipeline/monitor": [1, "CANCEL_NEW"],
        "training_pipeline/retrain-on-data-change": [1, "ENQUEUE"],
        "training_pipeline/retrain-on-drift": [1, "ENQUEUE"],
        "training_pipeline/retrain-scheduled": [1, "ENQUEUE"],
    }


_TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def test_a_retraining_asked_for_during_another_waits_for_it(served):
    """The queue itself, not its configuration: two scheduled retrainings asked for at once
    both complete, one after the other; the later one waited for the slot
    (AwaitingConcurrencySlot), and their running times never overlap."""
    _wait(
        lambda: any(r["state"] == "COMPLETED" for r in _runs(served, "watch-data")),
        180,
        "the served deployments",
        served["procs"],
    )
    deployment = _api("GET", "/deployments/name/training_pipeline/retrain-scheduled")
    ids = [
        _api(
            "POST",
            f"/deployments/{deployment['id']}/create_flow_run",
            {"state": {"type": "SCHEDULED", "name": "Scheduled"}},
        )["id"]
        for _ in range(2)
    ]
    runs: list = []

    def stamp(at: str | None) -> float | None:
        return at and datetime.datetime.fromisoformat(at).timestamp()

    def ended() -> bool:
        found = _api("POST", "/flow_runs/filter", {"flow_runs": {"id": {"any_": ids}}})
        runs[:] = [
            [
                r["state_type"],
                [s["name"] for s in _api("GET", f"/flow_run_states/?flow_run_id={r['id']}")],
                stamp(r["start_time"]),
                stamp(r["end_time"]),
            ]
            for r in found
        ]
        return len(runs) == 2 and all(r[0] in _TERMINAL for r in runs)

    _wait(ended, 600, "the two queued retrainings", served["procs"])
    assert [r[0] for r in runs] == ["COMPLETED", "COMPLETED"], runs
    first, second = sorted(runs, key=lambda r: r[2])
    assert first[3] <= second[2], f"the two retrainings overlapped: {runs}"
    assert "AwaitingConcurrencySlot" in second[1], second[1]
