"""The online endpoint under load: honing against ``mlflow models serve`` of the same model.

A LightGBM model of Telco churn (the demo's data and suite) is trained, logged with its
decision rule, compressed to the ONNX candidate and registered, native and served, in a
throwaway MLflow store. Each server runs on 127.0.0.1 and is hit by a load generator in this
process (asyncio over raw HTTP/1.1 keep-alive connections, so that the client costs as
little CPU as it can on a machine it shares with the server): 1 and 16 concurrent clients,
each sending a request and waiting for its answer, with one-row and 100-row requests of the
churn test split, for ``SECONDS`` each. Latency is the client's wall time per request (HTTP,
request check, prediction, JSON). The servers: honing's served flavor (one worker, then
``--workers 2``), honing's native model, and ``mlflow models serve`` of the served flavor's
files (its defaults: one worker).

Then, for honing's served flavor at 16 clients of one row: the capture's cost
(``--capture``), the shadow's (``--shadow challenger``), and the alias swap: the server
follows ``@champion`` while it moves to a second version and back, and every answer is
counted (a failed request is any answer but 200). The request check is also timed
in-process, pandas against Great Expectations.

Writes bench/results/serve.{json,md}.

    .venv/bin/python bench/serve.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from common import (  # bench/common.py (scripts run from bench/)
    code_commit,
    machine,
    write_env,
    write_json,
    write_markdown,
    write_yaml,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECONDS = 10.0
CLIENTS = (1, 16)
ROWS = (1, 100)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _project(tmp: Path) -> tuple[Path, Path, Any]:
    """A config and env profile in ``tmp`` over the demo data, with a registered champion
    (native) and its ONNX served flavor; returns them and the test rows."""
    import mlflow

    from honing import compression, registry, tracking
    from honing.config import load_config, load_env_settings
    from honing.data import clean, load_table, split_data
    from honing.evaluation import evaluate
    from honing.lineage import Lineage
    from honing.modeling.decision import fit_decision
    from honing.modeling.features import infer_columns
    from honing.modeling.training import ModelSpec, TrainingSetup, train_model
    from honing.registry import champion
    from honing.tracking import model_logging

    raw = yaml.safe_load((ROOT / "configs" / "churn.yaml").read_text())
    raw["data"]["path"] = str(ROOT / "data" / "churn.csv")
    raw["validation"]["suite"] = str(ROOT / "expectations" / "churn.json")
    raw["registry"]["model_name"] = "bench-serve"
    config = write_yaml(tmp / "serve.yaml", raw)
    env = write_env(tmp / "env.yaml", tmp, ray=False)
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
    report = evaluate(trained.model, split.X_test, split.y_test, classes, rule)
    compressed = compression.compress(
        trained.model, split.X_train, split.y_train, split.X_test, split.y_test, classes,
        numeric=columns.numeric, categorical=columns.text,
        options=compression.CompressionOptions(techniques=("onnx",)), metric="accuracy",
        tolerance=0.005, rule=rule, latency_rows=20,
    )  # fmt: skip
    # two versions of the same model, each with its served flavor: the swap moves between
    # them, and the shadow scores with the second
    for _ in range(2):  # one version per run
        run_id = tracking.start_run(exp, "serve bench")
        uri = model_logging.log_native_model(run_id, trained.model, split.X_test.head(3), rule)
        result = registry.register_version(
            model_uri=uri, name="bench-serve", run_id=run_id,
            decision=champion.champion_gate(report, None, metric="roc_auc", margin=0.0),
            report=report, lineage=Lineage("churn.csv", "-", "-", False, "-", "-", "-"),
            alias="champion",
        )  # fmt: skip
        served_uri = model_logging.log_served_model(run_id, compressed.files, split.X_test.head(3))
        registry.register_served(
            model_uri=served_uri, source=result, candidate=compressed.choice.name,
            reason=compressed.choice.reason, alias="champion",
        )  # fmt: skip
        tracking.end_run(run_id)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("bench-serve", "champion", "1")
    client.set_registered_model_alias("bench-serve", "challenger", "2")
    return config, env, split.X_test


def _request(body: bytes) -> bytes:
    return (
        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body


async def _client(
    port: int, requests: list[bytes], offset: int, stop: float, log: list[tuple[float, int]]
) -> None:
    """One client: a keep-alive connection, a request at a time, until ``stop``; each
    answer's (seconds, status) goes to ``log``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.monotonic() < stop:
            began = time.perf_counter()
            writer.write(requests[i % len(requests)])
            status = int((await reader.readline()).split()[1])
            length, chunked = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while size := int((await reader.readline()).strip(), 16):
                    await reader.readexactly(size + 2)
                await reader.readline()
            else:
                await reader.readexactly(length)
            log.append((time.perf_counter() - began, status))
            i += 1
    finally:
        writer.close()


def load(port: int, bodies: list[bytes], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` concurrent clients for ``seconds``: latency percentiles (ms), requests per
    second and the count of answers other than 200."""
    requests = [_request(b) for b in bodies]
    log: list[tuple[float, int]] = []

    async def run() -> float:
        stop = time.monotonic() + seconds
        began = time.monotonic()
        step = max(1, len(requests) // clients)
        await asyncio.gather(
            *(_client(port, requests, k * step, stop, log) for k in range(clients))
        )
        return time.monotonic() - began

    wall = asyncio.run(run())
    ms = np.asarray([t for t, _ in log]) * 1000
    return {
        "requests": len(log),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "rps": len(log) / wall,
        "errors": sum(status != 200 for _, status in log),
    }


@contextmanager
def server(cmd: list[str]) -> Iterator[int]:
    """A server started with ``cmd`` (``{port}`` filled in) on 127.0.0.1, until it answers
    /health; its port."""
    import httpx

    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    environ["PATH"] = f"{BIN}{os.pathsep}{environ.get('PATH', '')}"  # MLflow runs uvicorn
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [c.replace("{port}", str(port)) for c in cmd], cwd=ROOT, env=environ,
        stdout=subprocess.DEVNULL, stderr=errors,
    )  # fmt: skip
    try:
        for _ in range(480):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
            if proc.poll() is not None:
                errors.seek(0)
                said = errors.read().decode(errors="replace")[-3000:]
                raise RuntimeError(f"{cmd[:3]} exited with {proc.returncode}:\n{said}")
        else:
            raise RuntimeError(f"{cmd[:3]} did not come up")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def grid(port: int, rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Every (clients, rows per request) pair of :data:`CLIENTS` x :data:`ROWS`."""
    out = {}
    for size in ROWS:
        bodies = [
            json.dumps({"dataframe_records": rows[i : i + size]}).encode()
            for i in range(0, len(rows) - size + 1, size)
        ]
        load(port, bodies[:20], 4, 1.0)  # warm-up, not counted
        for clients in CLIENTS:
            out[f"{clients}x{size}"] = load(port, bodies, clients, seconds)
    return out


def honing_cmd(config: Path, env: Path, *extra: str) -> list[str]:
    return [str(BIN / "honing"), "serve-model", "--config", str(config), "--env", str(env),
            "--port", "{port}", *extra]  # fmt: skip


def swap(config: Path, env: Path, rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """16 one-row clients on the served flavor while ``@champion`` moves to v2 and back to
    v1: answers, failed ones, and the versions that answered."""
    import threading

    import httpx
    import mlflow

    bodies = [json.dumps({"dataframe_records": [r]}).encode() for r in rows]
    cmd = honing_cmd(config, env, "--served", "--follow-every", "0.5")
    with server(cmd) as port:
        client = mlflow.MlflowClient()
        seen: list[str] = []

        def moves() -> None:
            for version in ("2", "1"):
                time.sleep(seconds / 3)
                client.set_registered_model_alias("bench-serve", "champion", version)
                deadline = time.monotonic() + seconds / 3
                while time.monotonic() < deadline:
                    now = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
                    if now["version"] == version:
                        seen.append(version)
                        break
                    time.sleep(0.1)

        mover = threading.Thread(target=moves)
        mover.start()
        result = load(port, bodies, 16, seconds)
        mover.join()
    return {**result, "swapped_to": seen}


def _check_times(X: Any) -> dict[str, float]:
    from honing.serving.inference import inference_suite
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
    import mlflow

    from honing import tracking
    from honing.config import load_env_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args()
    commit = code_commit()
    with tempfile.TemporaryDirectory(prefix="honing-bench-serve-") as tmp:
        config, env, X_test = _project(Path(tmp))
        tracking.configure(load_env_settings(env, root=Path(tmp), environ={}).mlflow)
        rows = json.loads(X_test.to_json(orient="records"))
        # the served flavor's files, as MLflow serves a model from a folder
        served = mlflow.artifacts.download_artifacts(
            "models:/bench-serve-served/1", dst_path=str(Path(tmp) / "served-v1")
        )
        mlflow_cmd = [str(BIN / "mlflow"), "models", "serve", "-m", served, "--env-manager",
                      "local", "--host", "127.0.0.1", "--port", "{port}"]  # fmt: skip
        results: dict[str, Any] = {}
        with server(honing_cmd(config, env, "--served")) as port:
            results["honing served"] = grid(port, rows, args.seconds)
        with server(honing_cmd(config, env, "--served", "--workers", "2")) as port:
            results["honing served, 2 workers"] = grid(port, rows, args.seconds)
        with server(honing_cmd(config, env)) as port:
            results["honing native"] = grid(port, rows, args.seconds)
        with server(mlflow_cmd) as port:
            results["mlflow models serve (served flavor)"] = grid(port, rows, args.seconds)
        one = [json.dumps({"dataframe_records": [r]}).encode() for r in rows]
        capture = Path(tmp) / "capture"
        with server(honing_cmd(config, env, "--served", "--capture", str(capture))) as port:
            load(port, one[:20], 4, 1.0)
            captured = load(port, one, 16, args.seconds)
        shadow_cmd = honing_cmd(config, env, "--served", "--capture", str(Path(tmp) / "shadowed"),
                                "--shadow", "challenger")  # fmt: skip
        with server(shadow_cmd) as port:
            load(port, one[:20], 4, 1.0)
            shadowed = load(port, one, 16, args.seconds)
            import httpx

            batching = httpx.get(f"http://127.0.0.1:{port}/metadata").json()["batching"]
        swapped = swap(config, env, rows, max(args.seconds, 6.0))
    checks = _check_times(X_test)
    report(commit, results, captured, shadowed, batching, swapped, checks, args.seconds)


def report(
    commit: str, results: dict[str, Any], captured: dict[str, float],
    shadowed: dict[str, float], batching: dict[str, Any], swapped: dict[str, Any],
    checks: dict[str, float], seconds: float,
) -> None:  # fmt: skip
    ours, theirs = results["honing served"], results["mlflow models serve (served flavor)"]
    base = ours["16x1"]["rps"]
    out = {
        "commit": commit,
        "machine": machine(),
        "seconds": seconds,
        "honing": {"rps_1": ours["1x1"]["rps"], "rps_16": base,
                   "p50_ms_16": ours["16x1"]["p50_ms"], "p99_ms_16": ours["16x1"]["p99_ms"]},
        "mlflow": {"rps_1": theirs["1x1"]["rps"], "rps_16": theirs["16x1"]["rps"],
                   "p50_ms_16": theirs["16x1"]["p50_ms"], "p99_ms_16": theirs["16x1"]["p99_ms"]},
        "swap_failed_requests": swapped["errors"],
        "capture_overhead": 1 - captured["rps"] / base,
        "shadow_overhead": 1 - shadowed["rps"] / base,
        "servers": results,
        "capture": captured,
        "shadow": {**shadowed, "batching": batching},
        "swap": swapped,
        **checks,
    }  # fmt: skip
    write_json("serve", out)
    lines = [
        "# Online endpoint under load",
        "",
        f"Servers on 127.0.0.1 at commit `{commit}`, on {out['machine']}; the load generator "
        f"shares the machine (one process, asyncio, keep-alive connections). {seconds:g} s per "
        "cell; a client sends a request and waits for its answer. LightGBM, 200 trees; the "
        "served flavor is its ONNX graph, and `mlflow models serve` serves that same version.",
        "",
        "| server | clients x rows | requests/s | rows/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, cells in results.items():
        for cell, r in cells.items():
            size = int(cell.split("x")[1])
            lines.append(
                f"| {name} | {cell} | {r['rps']:.0f} | {r['rps'] * size:.0f} | "
                f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} |"
            )
    lines += [
        "",
        "honing against `mlflow models serve`, one-row requests: "
        f"{base / out['mlflow']['rps_16']:.1f}x at 16 clients, "
        f"{out['honing']['rps_1'] / out['mlflow']['rps_1']:.1f}x at 1.",
        "",
        f"- Capture (`--capture`, every request kept): {captured['rps']:.0f} requests/s at 16 "
        f"clients, {100 * out['capture_overhead']:.1f}% below the same server without it.",
        f"- Shadow (`--capture --shadow challenger`): {shadowed['rps']:.0f} requests/s, "
        f"{100 * out['shadow_overhead']:.1f}% below; batches of {batching['mean_batch']} "
        f"requests on average; {batching.get('shadow_skipped', 0)} requests left unshadowed "
        "while the shadow lagged.",
        f"- Alias swap under 16 clients (v1 -> v2 -> v1, followed every 0.5 s): "
        f"{swapped['requests']} answers at {swapped['rps']:.0f} requests/s, "
        f"{swapped['errors']} failed; versions seen to take over: {swapped['swapped_to']}.",
        f"- Request check of one row: pandas {checks['check_pandas_ms']:.2f} ms, Great "
        f"Expectations {checks['check_great_expectations_ms']:.0f} ms (same failures: "
        "`tests/data/test_fast_validation.py`).",
        "",
    ]
    write_markdown("serve", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
