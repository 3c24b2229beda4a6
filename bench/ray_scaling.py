"""Trials per minute of honing's Ray Tune search with 1 and with 2 Ray nodes on this machine.

Starts its own Ray head (1 CPU, token auth, no dashboard, on 127.0.0.1) with ``ray start``,
runs the same search through ``honing.search.run_search`` (the code the flow uses), adds a
second node on 127.0.0.1 with ``infra/local/ray_node.py`` (as the local stack does) and runs it
again. Writes bench/results/ray_scaling.{json,md}.

    .venv/bin/python bench/ray_scaling.py [--trials-per-family 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (  # bench/common.py (scripts run from bench/)
    code_commit,
    machine,
    write_json,
    write_markdown,
)

ROOT = Path(__file__).resolve().parents[1]
PORT = 26390


def _ray(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(
        [str(Path(sys.executable).parent / "ray"), *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials-per-family", type=int, default=4)
    args = parser.parse_args()
    commit = code_commit()

    from honing import runtime

    runtime.quiet_environment(os.environ)
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every node on 127.0.0.1
    state = Path(tempfile.mkdtemp(prefix="honing-bench-ray-"))
    token = state / "token"
    token.write_text(secrets.token_hex(32))
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)})
    env = dict(os.environ)

    import ray

    from honing.config import FeaturesConfig, RaySettings, SearchConfig
    from honing.data import clean, split_data
    from honing.data.demo_data import fetch_demo_dataset
    from honing.modeling.features import infer_columns
    from honing.modeling.training import TrainingSetup
    from honing.search import run_search

    df, _ = clean(fetch_demo_dataset(), "churn")
    split, _ = split_data(
        df,
        "churn",
        positive_label="Yes",
        drop_columns=[],
        test_size=0.2,
        seed=42,
        task="classification",
    )
    cols = infer_columns(split.X_train, FeaturesConfig())
    search = SearchConfig.model_validate(
        {
            "families": {
                "logistic_regression": {"C": {"loguniform": [0.01, 10.0]}},
                "random_forest": {"n_estimators": 100, "max_depth": {"choice": [6, 10]}},
                "hist_gradient_boosting": {
                    "learning_rate": {"loguniform": [0.03, 0.3]},
                    "max_iter": 100,
                },
            },
            "trials_per_family": args.trials_per_family,
            "cv_folds": 3,
        }
    )
    rows = []
    try:
        _ray(
            [
                "start",
                "--head",
                "--port",
                str(PORT),
                "--num-cpus",
                "1",
                "--include-dashboard=false",
                "--disable-usage-stats",
                "--temp-dir",
                str(state / "ray"),
            ],
            env,
        )
        ray.init(
            address="auto", include_dashboard=False, log_to_driver=False, logging_level="ERROR"
        )
        address = ray.get_runtime_context().gcs_address
        settings = RaySettings(address=address, storage_path=str(state / "results"))
        for nodes in (1, 2):
            if nodes == 2:
                subprocess.run(
                    [
                        sys.executable,
                        str(ROOT / "infra" / "local" / "ray_node.py"),
                        address,
                        "--num-cpus",
                        "1",
                        "--temp-dir",
                        str(state / "ray"),
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                    timeout=180,
                )
                deadline = time.time() + 60
                while sum(n["Alive"] for n in ray.nodes()) < 2 and time.time() < deadline:
                    time.sleep(0.5)
            start = time.perf_counter()
            result = run_search(
                split.X_train,
                split.y_train,
                cfg=search,
                setup=TrainingSetup(
                    "classification",
                    cols,
                    FeaturesConfig(),
                    seed=search.seed,
                    metric=search.metric,
                    folds=search.cv_folds,
                ),
                ray_settings=settings,
                experiment_name=f"bench-{nodes}",
            )
            wall = time.perf_counter() - start
            rows.append(
                {
                    "ray_nodes": nodes,
                    "cpus_per_node": 1,
                    "trials": len(result.trials),
                    "failed": len(result.trials) - len(result.completed),
                    "nodes_used": len(result.nodes),
                    "wall_s": round(wall, 1),
                    "trials_per_min": round(len(result.completed) / wall * 60, 1),
                    "best_cv_roc_auc": round(result.best.score, 4),
                }
            )
            print(rows[-1], flush=True)
    finally:
        ray.shutdown()
        subprocess.run(
            [str(Path(sys.executable).parent / "ray"), "stop", "--force"],
            env=env,
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(state, ignore_errors=True)

    meta = {
        "commit": commit,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
    }
    write_json("ray_scaling", {"meta": meta, "rows": rows})
    speedup = rows[1]["trials_per_min"] / rows[0]["trials_per_min"]
    lines = [
        f"Ray Tune search on Telco churn, {rows[0]['trials']} trials (3 families, 3-fold CV), "
        f"{meta['machine']}, {meta['date']}, commit `{meta['commit']}`.",
        "",
        "| Ray nodes | CPUs/node | trials | nodes used | wall (s) | trials/min |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r['ray_nodes']} | {r['cpus_per_node']} | {r['trials']} | {r['nodes_used']} | "
            f"{r['wall_s']} | {r['trials_per_min']} |"
            for r in rows
        ],
        "",
        f"Speed-up from the second node: {speedup:.2f}x.",
    ]
    write_markdown("ray_scaling", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
