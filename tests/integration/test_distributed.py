"""The distributed profile for real: PostgreSQL, an MLflow server, a Prefect server and worker,
and a two-node Ray cluster, started by infra/local/up.sh on this machine.

The training flow runs as a Prefect deployment picked up by the worker, with the same code as
the embedded default: only configs/env/distributed.yaml and the stack's environment differ.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import yaml

from honing import registry
from tests.conftest import ROOT, SMALL_SEARCH, demo_config_dict, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.distributed]


PORT_KEYS = ("HONING_PG_PORT", "HONING_MLFLOW_PORT", "HONING_PREFECT_PORT", "HONING_RAY_PORT")
BIN = ROOT / ".venv" / "bin"


def _read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
    return env


def _off_loopback() -> set[tuple[str, str, str, str]]:
    """Every TCP socket of this machine that is not on loopback at both ends, listening ones
    included (a listener on 0.0.0.0 or * takes the routable address too): (state, local,
    peer, process)."""
    out = subprocess.run(["ss", "-tanpH"], capture_output=True, text=True, check=True).stdout
    rows = set()
    for line in out.splitlines():
        state, _, _, local, peer, *rest = line.split()
        name = re.search(r'\(\("([^"]+)"', " ".join(rest))
        hosts = [local.rsplit(":", 1)[0]] + ([] if state == "LISTEN" else [peer.rsplit(":", 1)[0]])
        if not all(re.match(r"(\[::ffff:)?127\.|\[::1\]$", host) for host in hosts):
            rows.add((state, local, peer if state != "LISTEN" else "", name[1] if name else ""))
    return rows


@pytest.fixture(scope="module")
def sockets_before() -> set[tuple[str, str, str, str]]:
    """What was off loopback before the stack started (this machine's own services)."""
    return _off_loopback()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, sockets_before: set[tuple[str, str, str, str]]
) -> Iterator[dict[str, str]]:
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        if os.environ.get("HONING_REQUIRE_STACK") == "1":
            pytest.fail("PostgreSQL is not installed but HONING_REQUIRE_STACK=1")
        pytest.skip("PostgreSQL (Debian package) is not installed; .ci/run installs it")
    state = Path("/tmp") / f"honing-stack-test-{os.getpid()}"
    env = {
        **os.environ,
        **{key: str(free_port()) for key in PORT_KEYS},
        "HONING_STACK_DIR": str(state),
        "HONING_VENV_BIN": str(BIN),
        "HONING_WORK_POOL": "honing-process",
    }
    for key in (
        "MLFLOW_TRACKING_URI",
        "PREFECT_API_URL",
        "RAY_ADDRESS",
        "PREFECT_HOME",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
    ):
        env.pop(key, None)
    up = subprocess.run(
        ["bash", str(ROOT / "infra/local/up.sh")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield {**env, **_read_env(state / "stack.env")}
    finally:
        subprocess.run(
            ["bash", str(ROOT / "infra/local/down.sh"), "--purge"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def _run(
    cmd: list[str], env: dict[str, str], cwd: Path = ROOT, timeout: int = 600
) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


def test_servers_bind_loopback(stack):
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    for key in ("HONING_PG_PORT", "HONING_MLFLOW_PORT", "HONING_PREFECT_PORT"):
        lines = [ln for ln in out.splitlines() if f":{stack[key]} " in ln]
        assert lines and all("127.0.0.1:" in ln for ln in lines), lines
    # nothing the stack does not use: the MLflow server runs without its job consumers
    import psutil

    pid = int((Path(stack["HONING_STACK_DIR"]) / "pids" / "mlflow.pid").read_text())
    spawned = [" ".join(p.cmdline()) for p in psutil.Process(pid).children(recursive=True)]
    assert spawned and not any("huey" in c for c in spawned), spawned


def status(url: str, body: bytes | None, auth: str | None, method: str = "") -> int:
    """The HTTP status of a request to the stack, with basic auth ``user:password`` or none."""
    import base64
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method=method or ("POST" if body else "GET"))
    req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_stack_refuses_anonymous_users_and_keeps_secrets_off_command_lines(stack):
    state = Path(stack["HONING_STACK_DIR"])
    secrets = dict(
        line.split("=", 1) for line in (state / "secrets.env").read_text().splitlines() if line
    )
    assert set(secrets) >= {"HONING_PG_PASSWORD", "HONING_MLFLOW_PASSWORD"}

    mlflow_api = f"{stack['MLFLOW_TRACKING_URI']}/api/2.0/mlflow"
    admin = f"honing:{secrets['HONING_MLFLOW_PASSWORD']}"
    create = b'{"name": "anonymous-writes"}'
    assert status(f"{mlflow_api}/experiments/search?max_results=1", None, None) == 401
    assert status(f"{mlflow_api}/experiments/create", create, None) == 401
    assert status(f"{mlflow_api}/experiments/search?max_results=1", None, admin) == 200
    prefect_api = stack["PREFECT_API_URL"]
    assert status(f"{prefect_api}/flows/filter", b"{}", None) == 401
    assert status(f"{prefect_api}/flows/filter", b"{}", stack["PREFECT_API_AUTH_STRING"]) == 200

    # what `ps` shows every local user: no process's command line holds a secret
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        for key, value in secrets.items():
            assert value not in cmdline, f"{key} on the command line of pid {proc.name}"
    for name in ("secrets.env", "pgpass", "mlflow-auth.ini", "stack.env", "ray_token"):
        assert (state / name).stat().st_mode & 0o077 == 0, f"{name} is readable by others"


def test_training_flow_on_the_stack(stack, tmp_path, monkeypatch):
    # A smaller search than the demo, but enough concurrent trials to use both Ray nodes.
    cfg = demo_config_dict()
    cfg["data"]["path"] = str(ROOT / "data" / "churn.csv")
    cfg["validation"]["suite"] = str(ROOT / "expectations" / "churn.json")
    # The test counts trials, so no time budget: the demo's 120 s, on a loaded CI machine
    # whose stack (Prefect worker, PostgreSQL, two Ray nodes) is slow to start, left the
    # search time for one trial of six.
    cfg.pop("time_budget_s", None)
    cfg["search"] = {
        **SMALL_SEARCH,
        # three trials, two at once: each starts a fresh worker (below), seconds on a
        # loaded machine
        "trials_per_family": 1,
        "families": {
            **SMALL_SEARCH["families"],
            # trials long enough (seconds) that Tune runs two at once, one per 1-CPU node
            "random_forest": {"n_estimators": {"randint": [300, 400]}, "max_depth": 8},
        },
        "max_concurrent_trials": 2,
        # all three configurations known up front, so that two trials start at once (the
        # cost-aware TPE may wait for a result before it suggests the next one)
        "algorithm": "random",
        # a fresh worker per trial, kept on its node: with workers reused, Tune hands a
        # pending trial to the head node's idle worker while the second node's worker is
        # still starting, which on a loaded machine can be every trial
        "reuse_workers": False,
    }
    cfg["compression"] = {"techniques": ["onnx"], "latency_rows": 20}  # not under test here
    config_path = tmp_path / "churn-small.yaml"
    config_path.write_text(yaml.safe_dump(cfg))

    _run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "churn-train-distributed"],
        stack,
        timeout=120,
    )
    run = _run(
        [
            str(BIN / "prefect"),
            "deployment",
            "run",
            "training_pipeline/churn-train-distributed",
            "--param",
            f"config_path={config_path}",
            # a fresh search: the repo's .honing/ray_results may hold an earlier run's search
            # of the same config, data and commit, whose trials carry that cluster's nodes
            "--param",
            "resume_search=false",
            "--watch",
            "--watch-timeout",  # beside a second test suite the run took 9 minutes
            "1080",
        ],
        stack,
        timeout=1200,
    )
    assert "Completed" in run.stdout

    # Read what the worker's flow run wrote, straight from PostgreSQL through the MLflow client
    # (libpq finds the password in the stack's PGPASSFILE; the URI holds none).
    for key in ("PGPASSFILE", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, stack[key])
    assert stack["HONING_PG_URI"].split("//", 1)[1].split("@")[0] == "honing"  # no password
    pg = mlflow.MlflowClient(tracking_uri=f"{stack['HONING_PG_URI']}/mlflow")
    exp = pg.get_experiment_by_name("honing-churn")
    assert exp is not None
    runs = pg.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("honing.kind") == "training"]
    trials = [r for r in runs if r.data.tags.get("honing.kind") == "trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.tags["honing.profile"] == "distributed"
    assert len(trials) == 3
    assert all(t.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for t in trials)
    # the trials that reported ran on both nodes; one that failed before reporting (a
    # worker lost on a loaded machine) carries no node, but says why
    nodes = {t.data.tags["honing.ray_node"] for t in trials if "honing.ray_node" in t.data.tags}
    assert len(nodes) == 2, (
        f"trials ran on {nodes}; trials: "
        + "; ".join(f"{t.info.status} {t.data.tags.get('honing.ray_node')}" for t in trials)
        + "\n"
        + _run([str(BIN / "ray"), "status", "--address", stack["RAY_ADDRESS"]], stack).stdout
    )
    assert all("honing.ray_node" in t.data.tags or t.data.tags.get("honing.error") for t in trials)

    model = pg.get_registered_model("honing-churn")
    assert {k: int(v) for k, v in model.aliases.items()} == {"champion": 1}
    version = pg.get_model_version("honing-churn", "1")
    assert version.tags["honing.gate.promoted"] == "true"
    assert version.tags["honing.data_md5"] == parents[0].data.tags["honing.data_md5"]

    # The same model, through the tracking server (as its admin user), with artifacts served
    # by it, loaded the way honing loads models: its files checked against their digests.
    server = mlflow.MlflowClient(tracking_uri=stack["MLFLOW_TRACKING_URI"])
    aliases = server.get_registered_model("honing-churn").aliases
    assert {k: int(v) for k, v in aliases.items()} == {"champion": 1}
    # another local user, without the stack's credentials, cannot set or remove an alias
    alias_api = f"{stack['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/registered-models/alias"
    rogue = b'{"name": "honing-churn", "alias": "rogue", "version": "1"}'
    assert status(alias_api, rogue, None) == 401
    gone = b'{"name": "honing-churn", "alias": "champion"}'
    assert status(alias_api, gone, None, method="DELETE") == 401
    aliases = server.get_registered_model("honing-churn").aliases
    assert {k: int(v) for k, v in aliases.items()} == {"champion": 1}
    before = mlflow.get_tracking_uri()
    try:
        mlflow.set_tracking_uri(stack["MLFLOW_TRACKING_URI"])
        model_obj = registry.load_model("models:/honing-churn@champion")
    finally:
        mlflow.set_tracking_uri(before)
    assert hasattr(model_obj, "predict_proba")


def test_the_stack_keeps_every_socket_on_loopback(stack, sockets_before):
    """After the flow ran on both Ray nodes: no process of the stack listened on, or talked to,
    an address other than loopback. (TIME-WAIT sockets of the flow's connections would still
    be listed here for a minute.)"""
    nodes = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            "import ray; ray.init(logging_level='ERROR', log_to_driver=False);"
            "print(sorted(n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']))",
        ],
        # this probe is the test's own driver: telemetry off, as every honing process has it
        # (run outside make, sockets to 169.254.169.254 appeared: a cloud-metadata probe)
        env={**stack, "RAY_USAGE_STATS_ENABLED": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert nodes.stdout.strip() == "['127.0.0.1', '127.0.0.1']", nodes.stdout + nodes.stderr
    assert stack["RAY_ADDRESS"].startswith("127.0.0.1:")
    new = {
        row
        for row in _off_loopback() - sockets_before
        # a closed connection to the cloud-metadata address (Ray's and cloud SDKs' probe of
        # where they run): TIME-WAIT keeps no owner, and on a machine running other work it
        # came from outside the stack (seen beside a benchmark); any open one still counts
        if not (row[0] == "TIME-WAIT" and row[2].startswith("169.254.169.254:"))
    }
    assert not new, f"sockets off loopback: {sorted(new)}"


@pytest.mark.parametrize("token", [None, "0" * 64], ids=["no token", "a wrong token"])
def test_ray_refuses_a_driver_without_the_clusters_token(stack, tmp_path, token):
    env = {k: v for k, v in stack.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token to fall back on
    # the driver gives up after two tries, not twenty a second apart: each is the same refusal
    env["RAY_gcs_server_port_wait_time_s"] = "2"
    if token:
        env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    probe = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            "import ray; ray.init(logging_level='ERROR', log_to_driver=False);"
            "print('connected', len(ray.nodes()))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode != 0 and "connected" not in probe.stdout
    assert "InvalidAuthToken" in probe.stderr, probe.stderr[-2000:]


def test_dvc_remote_round_trip(stack, tmp_path):
    """Push the demo data to the stack's DVC remote from one clone, pull it into another."""
    remote = stack["HONING_DVC_REMOTE_URL"]
    dvc = str(BIN / "dvc")
    env = {**stack, "PATH": f"{BIN}:{stack['PATH']}"}
    a, b = tmp_path / "a", tmp_path / "b"
    for clone in (a, b):
        _run(["git", "clone", "-q", str(ROOT), str(clone)], env)
        _run([dvc, "remote", "add", "--local", "-d", "honing-stack", remote], env, cwd=clone)
    (a / "data").mkdir(exist_ok=True)
    shutil.copy(ROOT / "data" / "churn.csv", a / "data" / "churn.csv")
    _run([dvc, "commit", "-f", "prepare_data"], env, cwd=a)
    _run([dvc, "push"], env, cwd=a)
    _run([dvc, "pull", "prepare_data"], env, cwd=b)
    assert (b / "data" / "churn.csv").read_bytes() == (ROOT / "data" / "churn.csv").read_bytes()
