"""The Prefect UI as a reviewer sees a failed run, in a real browser: `prefect server start`
with its UI, a `honing run` that its quality gate stops, and the flow run's page in Debian's
Chromium showing the failure artifact (the reason, as the MLflow run's description says it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from honing.runtime import QUIET_DEFAULTS
from tests.conftest import free_port, prefect_home

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser]
BIN = Path(sys.executable).parent
WAIT_MS = 60_000


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "MLFLOW_TRACKING", "RAY_ADDRESS"))
    }
    return {**env, **QUIET_DEFAULTS, **extra}


@pytest.fixture
def prefect_ui(tmp_path: Path) -> Iterator[str]:
    """A Prefect server with its UI on a free port of 127.0.0.1; yields its address."""
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    env = _clean_env(
        PREFECT_HOME=str(prefect_home(tmp_path / "prefect-server")),
        PREFECT_UI_API_URL=f"{address}/api",  # the UI's own calls go to this server
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    log = (tmp_path / "prefect-server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, (tmp_path / "prefect-server.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{address}/api/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the Prefect server did not start in 240 s"
            time.sleep(1)
        yield address
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def _failure_artifacts(address: str) -> list[dict]:
    request = urllib.request.Request(
        f"{address}/api/artifacts/filter",
        data=json.dumps({"artifacts": {"key": {"any_": ["honing-run-failure"]}}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def test_a_failed_run_shows_its_reason_on_its_prefect_page(prefect_ui, browser, project):
    cfg = yaml.safe_load(project["config"].read_text())
    cfg["evaluation"]["thresholds"] = {"roc_auc": 0.99}  # the quality gate refuses the model
    strict = project["root"] / "configs" / "strict.yaml"
    strict.write_text(yaml.safe_dump(cfg))
    run = subprocess.run(
        [str(BIN / "honing"), "run", "--config", str(strict), "--env", str(project["env"])],
        cwd=project["root"], capture_output=True, text=True, timeout=1200,
        env=_clean_env(PREFECT_API_URL=f"{prefect_ui}/api",
                       PREFECT_HOME=str(project["root"] / ".prefect")),
    )  # fmt: skip
    assert run.returncode != 0 and "roc_auc" in run.stdout + run.stderr, run.stderr[-2000:]

    (artifact,) = _failure_artifacts(prefect_ui)
    assert artifact["data"].startswith("# FAILED at the step after explain"), artifact["data"]
    page = browser.new_page()
    page.goto(f"{prefect_ui}/runs/flow-run/{artifact['flow_run_id']}", timeout=WAIT_MS)
    page.get_by_text("training_pipeline").first.wait_for(timeout=WAIT_MS)  # the page is drawn
    # the flow run's Artifacts tab lists it (the tab is retried while the page settles)
    listed = page.get_by_text("honing-run-failure").first
    for _ in range(3):
        page.get_by_text("Artifacts", exact=True).first.click(timeout=WAIT_MS)
        try:
            listed.wait_for(timeout=WAIT_MS // 3)
            break
        except Exception:  # noqa: BLE001 - clicked before the tabs were ready: again
            continue
    assert listed.is_visible(), page.inner_text("body")[-2000:]
    # the artifact's own page renders its Markdown: the stage and the rule that failed
    page.goto(f"{prefect_ui}/artifacts/artifact/{artifact['id']}", timeout=WAIT_MS)
    heading = page.get_by_role("heading", name="FAILED at the step after explain")
    heading.first.wait_for(timeout=WAIT_MS)
    assert "roc_auc" in page.inner_text("body")
