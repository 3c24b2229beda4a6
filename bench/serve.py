"""The online endpoint under a bounded loopback load: p50, p99 and throughput of
``honing serve-model`` for the native and the served (compressed) flavor.

A LightGBM model of Telco churn (the demo's data and suite) is trained, logged with its
decision rule, compressed to the ONNX candidate and registered, native and served, in a
throwaway MLflow store. Each flavor is then served by ``honing serve-model`` on 127.0.0.1
and hit by ``CLIENTS`` concurrent clients for ``SECONDS`` seconds, each sending one-row
requests (rows of the test split, in turn) and waiting for the answer. Latency is the
client's wall time per request (HTTP, request validation, prediction, JSON). The request
check is also timed in-process: the pandas evaluation of the suite against Great
Expectations on the same row.

Writes bench/results/serve.{json,md}.

    .venv/bin/python bench/serve.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from common import (  # bench/common.py (scripts run from bench/)
    code_commit,
    machine,
    write_json,
    write_markdown,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLIENTS = 4
SECONDS = 20.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _project(tmp: Path) -> tuple[Path, Path, Any]:
    """A config and env profile in ``tmp`` over the demo data, with a registered champion
    (native) and its ONNX served flavor; returns them and the test rows."""
    from honing import champion, compression, model_logging, registry, tracking
    from honing.config import load_config, load_env_settings
    from honing.data import clean, load_table, split_data
    from honing.decision import fit_decision
    from honing.evaluation import evaluate
    from honing.features import infer_columns
    from honing.lineage import Lineage
    from honing.training import ModelSpec, TrainingSetup, train_model

    raw = yaml.safe_load((ROOT / "configs" / "churn.yaml").read_text())
    raw["data"]["path"] = str(ROOT / "data" / "churn.csv")
    raw["validation"]["suite"] = str(ROOT / "expectations" / "churn.json")
    raw["registry"]["model_name"] = "bench-serve"
    config = tmp / "serve.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = tmp / "env.yaml"
    env.write_text(
        yaml.safe_dump(
            {
                "profile": "bench",
                "mlflow": {
                    "tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}",
                    "artifact_root": str(tmp / "mlartifacts"),
                },
            }
        )
    )
    cfg = load_config(config, root=ROOT)
    tracking.configure(load_env_settings(env, root=tmp, environ={}).mlflow)
    df, _ = clean(load_table(cfg.data.path), "churn")
    split, classes = split_data(
        df, "churn", positive_label="Yes", drop_columns=[], test_size=0.2, seed=42,
        task="classification",
    )  # fmt: skip
    columns = infer_columns(split.X_train, cfg.features)
    setup = TrainingSetup("classification", columns, cfg.features, 42, "roc_auc", 5)
    spec = ModelSpec("lightgbm", {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 16})
    trained = train_model(split.X_train, split.y_train, spec, setup, cross_validate=True)
    rule = fit_decision(
        split.y_train, trained.cv.oof, classes, cfg.decision, metric="roc_auc", seed=42,
        rows=trained.cv.oof_rows,
    ).rule  # fmt: skip
    exp = tracking.ensure_experiment("bench-serve", str(tmp / "mlartifacts"))
    run_id = tracking.start_run(exp, "serve bench")
    uri = model_logging.log_native_model(run_id, trained.model, split.X_test.head(3), rule)
    report = evaluate(trained.model, split.X_test, split.y_test, classes, rule)
    result = registry.register_version(
        model_uri=uri, name="bench-serve", run_id=run_id,
        decision=champion.champion_gate(report, None, metric="roc_auc", margin=0.0),
        report=report, lineage=Lineage("churn.csv", "-", "-", False, "-", "-", "-"),
        alias="champion",
    )  # fmt: skip
    compressed = compression.compress(
        trained.model, split.X_train, split.y_train, split.X_test, split.y_test, classes,
        numeric=columns.numeric, categorical=columns.text,
        options=compression.CompressionOptions(techniques=("onnx",)), metric="accuracy",
        tolerance=0.005, rule=rule, latency_rows=20,
    )  # fmt: skip
    served_uri = model_logging.log_served_model(run_id, compressed.files, split.X_test.head(3))
    registry.register_served(
        model_uri=served_uri, source=result, candidate=compressed.choice.name,
        reason=compressed.choice.reason, alias="champion",
    )  # fmt: skip
    tracking.end_run(run_id)
    return config, env, split.X_test


def _load(url: str, rows: list[dict[str, Any]]) -> dict[str, float]:
    """``CLIENTS`` threads of one-row requests for ``SECONDS``: latency percentiles (ms),
    requests per second, and the count of non-200 answers."""
    import httpx

    times: list[float] = []
    errors = [0]  # anything but 200 (the endpoint refuses rows the suite refuses with 422)
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def client(offset: int) -> None:
        with httpx.Client(timeout=30) as http:
            i = offset
            while time.monotonic() < stop:
                body = {"dataframe_records": [rows[i % len(rows)]]}
                start = time.perf_counter()
                res = http.post(f"{url}/invocations", json=body)
                took = (time.perf_counter() - start) * 1000
                with lock:
                    times.append(took)
                    errors[0] += res.status_code != 200
                i += CLIENTS

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    ms = np.asarray(times)
    return {
        "requests": int(len(ms)),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "throughput_rps": float(len(ms) / wall),
        "errors": int(errors[0]),
    }


def _serve(config: Path, env: Path, served: bool, rows: list[dict[str, Any]]) -> dict[str, Any]:
    import httpx

    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    cmd = [str(BIN / "honing"), "serve-model", "--config", str(config), "--env", str(env),
           "--port", str(port), *(["--served"] if served else [])]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the endpoint did not come up")
        _load(url, rows[:50])  # warm-up, not counted (short)
        return _load(url, rows)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _check_times(X: Any) -> dict[str, float]:
    from honing.inference import inference_suite
    from honing.validation import check_expectations, load_suite
    from honing.validation.fast import check_fast

    suite = inference_suite(load_suite(ROOT / "expectations" / "churn.json"), "churn", [])
    row = X.head(1)
    out = {}
    for name, check, n in (
        ("pandas", check_fast, 200),
        ("great_expectations", check_expectations, 5),
    ):
        check(row, suite, source="bench")
        start = time.perf_counter()
        for _ in range(n):
            check(row, suite, source="bench")
        out[f"check_{name}_ms"] = (time.perf_counter() - start) / n * 1000
    return out


def main() -> None:
    commit = code_commit()
    with tempfile.TemporaryDirectory(prefix="honing-bench-serve-") as tmp:
        config, env, X_test = _project(Path(tmp))
        rows = json.loads(X_test.to_json(orient="records"))
        results = {
            "native": _serve(config, env, False, rows),
            "served (onnx)": _serve(config, env, True, rows),
        }
    checks = _check_times(X_test)
    out = {
        "commit": commit,
        "machine": machine(),
        "clients": CLIENTS,
        "seconds": SECONDS,
        "flavors": results,
        **checks,
    }
    write_json("serve", out)
    lines = [
        "# Online endpoint under load",
        "",
        f"`honing serve-model` on 127.0.0.1, {CLIENTS} concurrent clients for {SECONDS:g} s, "
        f"one-row requests of the churn test split, on {out['machine']} at commit "
        f"`{out['commit']}` (clients and server "
        "share the machine). LightGBM, 200 trees; the served flavor is its ONNX graph.",
        "",
        "| flavor | requests | p50 ms | p99 ms | requests/s | errors |",
        "|---|---|---|---|---|---|",
        *[
            f"| {name} | {r['requests']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['throughput_rps']:.1f} | {r['errors']} |"
            for name, r in results.items()
        ],
        "",
        f"Request check of one row: pandas {checks['check_pandas_ms']:.2f} ms, Great "
        f"Expectations {checks['check_great_expectations_ms']:.0f} ms (same failures: "
        "`tests/data/test_fast_validation.py`).",
        "",
    ]
    write_markdown("serve", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
