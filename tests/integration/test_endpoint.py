"""The online endpoint for real: `honing serve-model` serves the champion on 127.0.0.1,
answers the output contract, refuses bad requests with the column and the rule, and keeps
serving; the load-and-query check runs a version in a fresh process before an alias moves."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from honing import registry, tracking
from honing.config import load_config
from honing.data import clean, split_data
from honing.lineage import Lineage
from honing.modeling.decision import DecisionRule
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, train_model
from honing.registry import champion, infra
from honing.registry.infra import InfraCheck, load_and_query
from honing.tracking import model_logging
from tests.conftest import free_port, untracked_env

pytestmark = [pytest.mark.integration]
BIN = Path(sys.executable).parent


def _register_champion(project, infra=None):
    """A small logistic model of the demo config, registered as honing-churn's champion."""
    cfg = load_config(project["config"], root=project["root"])
    df, _ = clean(__import__("pandas").read_csv(project["data"]), "churn")
    split, classes = split_data(
        df, "churn", positive_label="Yes", drop_columns=[], test_size=0.2, seed=0,
        task="classification",
    )  # fmt: skip
    setup = TrainingSetup(
        "classification", infer_columns(split.X_train, cfg.features), cfg.features, 0,
        "roc_auc", 3,
    )  # fmt: skip
    model = train_model(split.X_train, split.y_train, ModelSpec("logistic_regression"), setup)
    rule = DecisionRule(list(classes), 0.35, "f1")
    exp = tracking.ensure_experiment("endpoint", str(project["root"] / "mlartifacts"))
    run_id = tracking.start_run(exp, "train")
    uri = model_logging.log_native_model(run_id, model.model, split.X_test.head(3), rule)
    from honing.evaluation import evaluate

    report = evaluate(model.model, split.X_test, split.y_test, classes, rule)
    result = registry.register_version(
        model_uri=uri,
        name=cfg.registry.model_name,
        run_id=run_id,
        decision=champion.champion_gate(
            report,
            registry.score_champion(
                cfg.registry.model_name, "champion", split.X_test, split.y_test, classes
            ),
            metric="roc_auc",
            margin=0.0,
        ),
        report=report,
        lineage=Lineage("d.csv", "md5", "c0ffee", False, "h", "c.yaml", "fr"),
        alias="champion",
        infra=infra(split.X_test) if infra else None,
    )
    tracking.end_run(run_id)
    return result, split


@contextlib.contextmanager
def _serving(project, *extra: str):
    """``honing serve-model`` on the project's champion, as a subprocess; yields its URL."""
    port = free_port()
    env = untracked_env()
    proc = subprocess.Popen(
        [str(BIN / "honing"), "serve-model", "--config", str(project["config"]), "--env",
         str(project["env"]), "--port", str(port), *extra],
        cwd=project["root"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
            assert proc.poll() is None, proc.stdout.read()
        else:
            pytest.fail("the endpoint did not come up")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def server(mlflow_store, project):
    result, split = _register_champion(project)
    with _serving(project) as url:
        yield url, split


def test_the_endpoint_answers_and_refuses_clearly(server, churn_df):
    url, split = server
    rows = split.X_test.head(5)
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ok" and health["version"] == "1"
    assert httpx.get(f"{url}/metadata").json()["threshold"] == 0.35

    ok = httpx.post(f"{url}/invocations", json={"dataframe_records": rows.to_dict("records")})
    assert ok.status_code == 200, ok.text
    answers = ok.json()["predictions"]
    assert len(answers) == 5
    assert set(answers[0]) == {
        "prediction", "probability", "probability_No", "probability_Yes", "threshold"
    }  # fmt: skip
    assert {a["prediction"] for a in answers} <= {"No", "Yes"}
    assert all(a["threshold"] == 0.35 for a in answers)
    # the same answers as the registered model loaded by honing predict's loader
    local = registry.load_model("models:/honing-churn@champion").outputs(rows)
    np.testing.assert_allclose([a["probability"] for a in answers], local["probability"], rtol=1e-9)
    split_body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
    assert httpx.post(f"{url}/invocations", json=split_body).status_code == 200

    # bad requests: 4xx naming the column and the rule, and the server keeps serving
    missing = httpx.post(
        f"{url}/invocations",
        json={"dataframe_records": rows.drop(columns=["tenure"]).to_dict("records")},
    )
    assert missing.status_code == 422
    body = missing.json()
    assert "expect_table_columns_to_match_set" in body["error"]
    assert body["error"].startswith("the request's columns") and "tenure" in body["error"]
    assert any(f["column"] == "tenure" for f in body["failures"])
    unseen = rows.assign(contract="Weekly").to_dict("records")
    bad = httpx.post(f"{url}/invocations", json={"dataframe_records": unseen})
    assert bad.status_code == 422 and "'contract'" in bad.json()["error"]
    assert "expect_column_values_to_be_in_set" in bad.json()["error"]
    text = rows.assign(tenure="twelve").to_dict("records")
    wrong = httpx.post(f"{url}/invocations", json={"dataframe_records": text})
    assert wrong.status_code == 422 and "tenure" in wrong.json()["error"]
    # a blank where the suite allows a share of blanks (a new customer's total charges) is
    # imputed; a blank where it allows none is refused
    blank = rows.head(1).astype(object).assign(total_charges=None).to_dict("records")
    assert httpx.post(f"{url}/invocations", json={"dataframe_records": blank}).status_code == 200
    no_contract = rows.head(1).astype(object).assign(contract=None).to_dict("records")
    refused = httpx.post(f"{url}/invocations", json={"dataframe_records": no_contract})
    assert refused.status_code == 422 and "expect_column_values_to_not_be_null" in refused.text
    not_json = httpx.post(
        f"{url}/invocations", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    assert httpx.post(f"{url}/invocations", json={"rows": []}).status_code == 400
    assert httpx.post(f"{url}/invocations", json={"dataframe_records": []}).status_code == 400
    # dataframe_split meets the same limits, and a column named twice is refused
    columns = list(rows.columns)
    empty = {"dataframe_split": {"columns": columns, "data": []}}
    assert httpx.post(f"{url}/invocations", json=empty).status_code == 400
    many = {"dataframe_split": {"columns": columns, "data": rows.values.tolist() * 2001}}
    assert httpx.post(f"{url}/invocations", json=many).status_code == 413
    twice = {"dataframe_split": {"columns": [*columns, columns[0]],
                                 "data": [[*r, r[0]] for r in rows.values.tolist()]}}  # fmt: skip
    dup = httpx.post(f"{url}/invocations", json=twice)
    assert dup.status_code == 400 and "named twice" in dup.json()["error"], dup.text
    # a body nested 200,000 deep: a clear 400, not a bare 500
    deep = b"[" * 200_000 + b"]" * 200_000
    nested = httpx.post(
        f"{url}/invocations", content=deep, headers={"content-type": "application/json"}
    )
    assert nested.status_code == 400 and "nests too deep" in nested.json()["error"]
    again = httpx.post(f"{url}/invocations", json={"dataframe_records": rows.to_dict("records")})
    assert again.status_code == 200 and again.json()["predictions"] == answers

    # requests sent at once are scored together, each with the answer it gets alone: its
    # own predictions, or its own refusal
    bodies = [{"dataframe_records": [r]} for r in split.X_test.head(20).to_dict("records")]
    bodies += [{"dataframe_records": rows.to_dict("records")}, {"dataframe_records": unseen},
               {"dataframe_records": text}, split_body]  # fmt: skip
    alone = [httpx.post(f"{url}/invocations", json=b) for b in bodies]
    for _ in range(3):
        together = _at_once(f"{url}/invocations", bodies)
        assert [r.status_code for r in together] == [r.status_code for r in alone]
        for a, b in zip(together, alone, strict=True):
            assert a.json().get("error") == b.json().get("error")
            mine, own = a.json().get("predictions") or [], b.json().get("predictions") or []
            assert [p["prediction"] for p in mine] == [p["prediction"] for p in own]
            # the same numbers, up to the last bits a matrix product of more rows may differ by
            np.testing.assert_allclose(
                [p["probability"] for p in mine], [p["probability"] for p in own], rtol=1e-12
            )
    batching = httpx.get(f"{url}/metadata").json()["batching"]
    assert batching["largest_batch"] > 1, batching


def _at_once(url: str, bodies: list) -> list:
    """Each body posted by a thread of its own, all released together; the answers in order."""
    import threading

    gate = threading.Barrier(len(bodies))
    answers: list = [None] * len(bodies)

    def send(i: int) -> None:
        with httpx.Client(timeout=60) as client:
            gate.wait()
            answers[i] = client.post(url, json=bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_the_load_and_query_check_gates_the_alias(mlflow_store, project, tmp_path):
    import mlflow

    # a version that loads and answers within budget takes the alias
    result, split = _register_champion(project, infra=lambda X: InfraCheck(X.head(5), 5000.0))
    client = mlflow.MlflowClient()
    assert result.promoted
    tag = client.get_model_version("honing-churn", result.version).tags["honing.infra_check"]
    assert "loaded in a fresh process" in tag

    # the same check on a local copy, with an impossible budget, and on a broken folder
    folder = Path(
        mlflow.artifacts.download_artifacts("models:/honing-churn/1", dst_path=str(tmp_path))
    )
    slow = load_and_query(
        str(folder), split.X_test.head(5), tracking_uri=mlflow.get_tracking_uri(),
        budget_ms=1e-6,
    )  # fmt: skip
    assert not slow.ok and slow.reason.startswith("too slow") and slow.p50_ms > 0
    # the process started ahead (honing run starts it with the run) answers the same check,
    # once: it never held the model before it was asked
    infra.warm_up(mlflow.get_tracking_uri())
    ahead = infra.waiting()
    assert ahead is not None
    warm = load_and_query(
        str(folder), split.X_test.head(5), tracking_uri=mlflow.get_tracking_uri(), budget_ms=1e4
    )
    assert warm.ok and "loaded in a fresh process" in warm.reason
    assert ahead.proc.returncode == 0 and infra.waiting() is None  # used, and gone
    assert not Path(ahead.folder).exists()
    infra.warm_up(mlflow.get_tracking_uri())
    ahead = infra.waiting()
    ahead.proc.kill()  # a probe that died before it was asked: a new process checks instead
    ahead.proc.wait()
    again = load_and_query(
        str(folder), split.X_test.head(5), tracking_uri=mlflow.get_tracking_uri(), budget_ms=1e4
    )
    assert again.ok and infra.waiting() is None

    (folder / "artifacts" / "served" / "pipeline.skops").write_bytes(b"not a model")
    broken = load_and_query(
        str(folder), split.X_test.head(5), tracking_uri=mlflow.get_tracking_uri(), budget_ms=1e4
    )
    assert not broken.ok and "fresh process" in broken.reason

    # a version failing the check is registered, but the alias stays where it was
    second, _ = _register_champion(project, infra=lambda X: InfraCheck(X.head(5), 1e-6))
    assert not second.promoted and "load-and-query check failed" in second.decision.reason
    assert client.get_registered_model("honing-churn").aliases["champion"] == 1


def _serving_version(url: str, version: str, timeout_s: float = 60.0) -> dict:
    """/health once it names ``version`` (or its last answer, after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        health = httpx.get(f"{url}/health", timeout=5).json()
        if health["version"] == version or time.monotonic() > deadline:
            return health
        time.sleep(0.3)


def test_a_server_follows_its_alias_through_promotion_and_rollback(mlflow_store, project):
    """Started on @champion, the server swaps in a promoted version and a rolled-back one,
    with no failed request while it does; a version that fails to load keeps the old one
    serving, and /health says why."""
    import threading

    import mlflow

    from honing.registry import aliases

    first, split = _register_champion(project)
    rows = {"dataframe_records": split.X_test.head(3).to_dict("records")}
    with _serving(project, "--follow-every", "0.5") as url:
        assert httpx.get(f"{url}/health").json()["follows"] == "@champion"
        answered: list[tuple[int, str | None]] = []
        stop = threading.Event()

        def traffic() -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    r = client.post(f"{url}/invocations", json=rows)
                    answered.append((r.status_code, r.json().get("version")))

        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            second, _ = _register_champion(project)  # promoted: the alias moves to v2
            assert second.promoted and second.version == "2"
            assert _serving_version(url, "2")["version"] == "2"
            aliases.rollback("honing-churn", reason="back to v1", to="1")
            assert _serving_version(url, "1")["version"] == "1"
        finally:
            stop.set()
            sender.join(timeout=30)
        assert answered and {code for code, _ in answered} == {200}, answered[-5:]
        assert {"1", "2"} <= {version for _, version in answered}
        assert httpx.get(f"{url}/metadata").json()["version"] == "1"

        # a version whose registration never finished (no file digests): not loadable
        client = mlflow.MlflowClient()
        source = client.get_model_version("honing-churn", "1").source
        broken = mlflow.register_model(source, "honing-churn").version
        client.set_registered_model_alias("honing-churn", "champion", broken)
        deadline = time.monotonic() + 60
        while "error" not in (health := httpx.get(f"{url}/health").json()):
            assert time.monotonic() < deadline, health
            time.sleep(0.3)
        assert health["version"] == "1" and health["error"].startswith("kept v1")
        assert "digests" in health["error"]
        assert httpx.post(f"{url}/invocations", json=rows).status_code == 200


def test_a_shadow_scores_the_captured_traffic_after_the_answer(mlflow_store, project, tmp_path):
    """`--capture DIR --shadow challenger`: the client gets the champion's answer; the
    challenger scores the same request off the response path, and both answers are kept,
    the shadow's under DIR/shadow, joined by request id."""
    import json

    import mlflow

    _register_champion(project)
    _, split = _register_champion(project)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("honing-churn", "champion", "1")
    client.set_registered_model_alias("honing-churn", "challenger", "2")
    folder = tmp_path / "capture"
    rows = split.X_test.head(6)
    with _serving(project, "--capture", str(folder), "--shadow", "challenger") as url:
        meta = httpx.get(f"{url}/metadata").json()
        assert meta["version"] == "1" and meta["shadow"]["version"] == "2"
        for i in range(3):
            part = rows.iloc[2 * i : 2 * i + 2]
            ok = httpx.post(
                f"{url}/invocations", json={"dataframe_records": part.to_dict("records")},
                headers={"X-Request-Id": f"r{i}"},
            )  # fmt: skip
            assert ok.status_code == 200 and ok.json()["version"] == "1"
        deadline = time.monotonic() + 30  # the shadow answers after the response
        while time.monotonic() < deadline:
            done = folder / "shadow" / "capture.jsonl"
            if done.is_file() and len(done.read_text().splitlines()) == 6:
                break
            time.sleep(0.2)
    served = [json.loads(x) for x in (folder / "capture.jsonl").read_text().splitlines()]
    shadowed = [
        json.loads(x) for x in (folder / "shadow" / "capture.jsonl").read_text().splitlines()
    ]
    assert {x["version"] for x in served} == {"1"} and {x["version"] for x in shadowed} == {"2"}
    key = lambda x: (x["request_id"], x["row"])  # noqa: E731
    assert sorted(map(key, served)) == sorted(map(key, shadowed))
    v2 = registry.load_model("models:/honing-churn/2").outputs(rows)
    by_key = {key(x): x["answer"]["probability"] for x in shadowed}
    got = [by_key[(f"r{i // 2}", i % 2)] for i in range(6)]
    np.testing.assert_allclose(got, v2["probability"], rtol=1e-9)


def test_several_workers_answer_and_share_one_capture(mlflow_store, project, tmp_path):
    """`--workers 2`: two server processes, each with the model, answer requests sent at
    once like one server does, and both append to the same capture without a torn line."""
    import json

    import psutil

    _, split = _register_champion(project)
    folder = tmp_path / "capture"
    rows = split.X_test.head(40)
    bodies = [{"dataframe_records": [r]} for r in rows.to_dict("records")]
    local = registry.load_model("models:/honing-churn@champion").outputs(rows)
    with _serving(project, "--workers", "2", "--capture", str(folder)) as url:
        port = url.rsplit(":", 1)[1]
        (parent,) = [
            p for p in psutil.process_iter(["cmdline"])
            if "serve-model" in " ".join(p.info["cmdline"] or []) and port in p.info["cmdline"]
        ]  # fmt: skip
        assert len(parent.children()) >= 2  # uvicorn's two workers (and its own helper)
        for _ in range(3):
            answers = _at_once(f"{url}/invocations", bodies)
            assert {a.status_code for a in answers} == {200}
            got = [a.json()["predictions"][0]["probability"] for a in answers]
            np.testing.assert_allclose(got, local["probability"], rtol=1e-9)
    lines = [json.loads(x) for x in (folder / "capture.jsonl").read_text().splitlines()]
    assert len(lines) == 3 * len(bodies)
