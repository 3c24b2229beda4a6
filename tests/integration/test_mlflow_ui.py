"""The MLflow UI as a reviewer sees it, in a real browser: Playwright drives Debian's
Chromium (``/usr/bin/chromium``; no browser is downloaded) over ``honing ui`` on a store that
two training runs wrote."""

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from honing.tracking.links import ui_links

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser]

WAIT_MS = 60_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(pid: int) -> list[str]:
    """The command lines of the processes ``pid`` started, and theirs."""
    import psutil

    found = []
    for proc in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            found.append(" ".join(proc.cmdline()))
    return found


@pytest.fixture
def demo_store(prefect_harness, project, monkeypatch):
    """Two training runs (v1, then v2 gated against v1; the forest's trees sampled as an
    integer), a third whose table breaks the suite, and ``honing ui`` over their store;
    yields the UI's address, the second run's summary, a client of the store and the
    project folder."""
    from honing.exceptions import DataValidationError
    from honing_flows.flows.training import training_pipeline

    cfg = yaml.safe_load(project["config"].read_text())
    cfg["search"]["families"]["random_forest"]["n_estimators"] = {"randint": [30, 60]}
    cfg["search"]["ensemble"] = {"enabled": True}  # ensemble selection on the trials' OOF
    project["config"].write_text(yaml.safe_dump(cfg))
    broken = project["root"] / "data" / "broken.csv"
    pd.read_csv(project["data"]).drop(columns=["contract"]).to_csv(broken, index=False)
    bad = project["root"] / "configs" / "broken.yaml"
    bad.write_text(yaml.safe_dump({**cfg, "data": {**cfg["data"], "path": str(broken)}}))

    before = mlflow.get_tracking_uri()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def train(config: Path):  # noqa: ANN202
        return training_pipeline(
            config_path=str(config), env_path=str(project["env"]), repo=str(project["root"])
        )

    summaries = [train(project["config"]) for _ in range(2)]
    with pytest.raises(DataValidationError):
        train(bad)
    mlflow.set_tracking_uri(before)
    port = _free_port()
    honing = Path(sys.executable).parent / "honing"
    ui = subprocess.Popen(
        [str(honing), "ui", "--env", str(project["env"]), "--port", str(port)],
        cwd=project["root"],
        # the profile names the store (mlflow.set_tracking_uri exported another one here)
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or ui.poll() is not None:
                    pytest.fail("honing ui did not answer within 90 s")
                time.sleep(0.5)
        # the UI's server runs without MLflow's job consumers (honing queues no GenAI job)
        assert not any("huey" in c for c in _descendants(ui.pid)), _descendants(ui.pid)
        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project['root'] / 'mlflow.db'}")
        yield url, summaries[1], client, project["root"]
    finally:
        os.killpg(ui.pid, 15)
        ui.wait(timeout=30)


def test_a_reviewer_finds_the_summary_leaderboard_winner_and_links(browser, demo_store, tmp_path):
    url, summary, client, root = demo_store
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _review(page, url, summary, client, root)
    except Exception:
        page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)
        print(f"screenshot of the page: {tmp_path / 'failed.png'} ({page.url})")
        raise


def _review(page, url, summary, client, root: Path) -> None:
    exp, run_id = summary.experiment_id, summary.run_id
    links = ui_links(f"sqlite:///{root / 'mlflow.db'}", exp, run_id, url)

    # the runs-table link a run prints lands on the saved review view, in the ML mode: the
    # three training runs (no trial rows), the test metrics as columns, best first
    page.goto(links.runs_table)
    page.get_by_text("honing: training runs by test roc_auc").first.wait_for(timeout=WAIT_MS)
    page.get_by_text("3 matching runs").first.wait_for(timeout=WAIT_MS)  # and the failed one
    for column in ("test/roc_auc", "cv/roc_auc", "final_model"):  # the first, in view
        page.get_by_text(column, exact=True).first.wait_for(timeout=WAIT_MS)
    assert page.get_by_text("Model training").first.is_visible()

    # the run's page (the link a run prints): its name, and the summary as its description
    page.goto(links.run)
    run = client.get_run(run_id)
    page.get_by_text(run.info.run_name).first.wait_for(timeout=WAIT_MS)
    page.get_by_text(f"{summary.model_name} v2: promoted to champion").first.wait_for(
        timeout=WAIT_MS
    )
    page.get_by_text("test metric").first.wait_for(timeout=WAIT_MS)

    # its charts: one section per metric prefix (honing.metric_keys), named with its count
    page.goto(f"{url}/#/experiments/{exp}/runs/{run_id}/model-metrics")
    for prefix in ("test", "cv", "seconds", "rows"):
        header = page.get_by_text(prefix, exact=True).first
        header.wait_for(timeout=WAIT_MS)
        shown = header.evaluate("e => e.parentElement.innerText")
        assert re.fullmatch(rf"{prefix}\s*\(\d+\)", shown.strip()), shown

    # the leaderboard table artifact: one row per trial, the best one marked
    page.goto(f"{url}/#/experiments/{exp}/runs/{run_id}/artifacts/search/leaderboard.json")
    page.get_by_text("fit_seconds").first.wait_for(timeout=WAIT_MS)
    # the chosen ensemble's members: each row's weight beside the link to its trial's run
    page.get_by_text("weight", exact=True).first.wait_for(timeout=WAIT_MS)
    assert summary.best_model.startswith("ensemble_selection"), summary.best_model
    members = client.search_runs(
        [exp], f"tags.mlflow.parentRunId = '{run_id}' and tags.`honing.ensemble_weight` != ''"
    )
    assert len(members) >= 2
    for member in members:
        weight = float(member.data.tags["honing.ensemble_weight"])
        page.get_by_text(f"{weight:g}", exact=True).first.wait_for(timeout=WAIT_MS)
    trials = client.search_runs([exp], f"tags.mlflow.parentRunId = '{run_id}'")
    best = [t for t in trials if t.data.tags.get("honing.best_trial") == "true"]
    assert len(best) == 1
    page.get_by_text(best[0].info.run_name).first.wait_for(timeout=WAIT_MS)
    # its path is relative to the store's folder (the project can move), never a file URI
    name = client.get_experiment(exp).name
    where = f"honing-store:mlartifacts/{name}/{run_id}/artifacts/search/"
    page.get_by_text(f"Path: {where}leaderboard.json").first.wait_for(timeout=WAIT_MS)
    assert "file://" not in page.inner_text("body")

    # the search's optimization history: a node of the run's artifact tree, where the page
    # lands on it, and an image logged with the run (its step 0, for the image grid)
    history = "search/optimization_history.png"
    page.goto(f"{url}/#/experiments/{exp}/runs/{run_id}/artifacts/{history}")
    page.get_by_text("optimization_history.png").first.wait_for(timeout=WAIT_MS)
    images = {f.path for f in client.list_artifacts(run_id, "images")}
    assert any("optimization_history" in path for path in images), images

    # a trial's page shows the hyperparameters its model was fitted with: the forest's
    # sampled number of trees as the integer it fitted, never the sampler's float
    forest = next(t for t in trials if t.data.tags.get("mlflow.runName", "").endswith("forest"))
    trees = forest.data.params["n_estimators"]
    assert re.fullmatch(r"\d+", trees) and 30 <= int(trees) <= 60, trees
    page.goto(f"{url}/#/experiments/{exp}/runs/{forest.info.run_id}")
    page.get_by_text("n_estimators", exact=True).first.wait_for(timeout=WAIT_MS)
    page.get_by_text(trees, exact=True).first.wait_for(timeout=WAIT_MS)

    # a failed run says why on its own page: the stage and the rule, with the column
    failed = client.search_runs([exp], "attributes.status = 'FAILED'")
    assert len(failed) == 1
    page.goto(f"{url}/#/experiments/{exp}/runs/{failed[0].info.run_id}")
    page.get_by_text("FAILED at validation").first.wait_for(timeout=WAIT_MS)
    assert "contract" in page.inner_text("body")

    # the winning trial's own page carries its tag
    page.goto(f"{url}/#/experiments/{exp}/runs/{best[0].info.run_id}")
    page.get_by_text("honing.best_trial").first.wait_for(timeout=WAIT_MS)

    # the served flavor and the version it was built from link to each other
    flavors = client.search_model_versions(f"name='{summary.model_name}-served'")
    assert flavors, "no served flavor was registered"
    flavor = max(flavors, key=lambda v: int(v.version))
    source = flavor.tags["honing.source_version"]
    page.goto(f"{url}/#/models/{summary.model_name}-served/versions/{flavor.version}")
    back = f"a[href*='/models/{summary.model_name}/versions/{source}']"
    page.locator(back).first.wait_for(timeout=WAIT_MS)
    page.goto(f"{url}/#/models/{summary.model_name}/versions/{source}")
    ahead = f"a[href*='/models/{summary.model_name}-served/versions/{flavor.version}']"
    page.locator(ahead).first.wait_for(timeout=WAIT_MS)

    # the registered model's page tells its story: the champion now, and the alias history
    # as a table, newest move first (v2 took @champion from v1, then v1 took it first)
    page.goto(f"{url}/#/models/{summary.model_name}")
    page.get_by_text("Alias history (newest first)").first.wait_for(timeout=WAIT_MS)
    rows = page.locator("table tr").filter(has_text="@champion")
    rows.first.wait_for(timeout=WAIT_MS)
    moves = [" ".join(r.split()) for r in rows.all_inner_texts()]
    assert len(moves) == 2 and "v1 v2" in moves[0] and "none v1" in moves[1], moves

    # the champion's version page: its gate verdict, and links to its run and to the
    # version it was gated against, which the browser follows
    page.goto(f"{url}/#/models/{summary.model_name}/versions/2")
    page.get_by_text("PROMOTED").first.wait_for(timeout=WAIT_MS)
    page.get_by_text("champion").first.wait_for(timeout=WAIT_MS)
    to_run = page.locator(f"a[href*='{run_id}']").first
    to_run.wait_for(timeout=WAIT_MS)
    to_champion = page.locator(f"a[href*='/models/{summary.model_name}/versions/1']").first
    to_champion.wait_for(timeout=WAIT_MS)
    if to_champion.get_attribute("target") == "_blank":  # MLflow opens description links
        with page.context.expect_page(timeout=WAIT_MS) as opened:  # in a new tab
            to_champion.click()
        page = opened.value
    else:
        to_champion.click()
    page.wait_for_url(f"**/models/{summary.model_name}/versions/1", timeout=WAIT_MS)
    page.get_by_text("no champion yet").first.wait_for(timeout=WAIT_MS)
    # paths in the description are the project's own, not this machine's
    assert "configs/churn.yaml" in page.inner_text("body")
    assert str(root) not in page.inner_text("body")
