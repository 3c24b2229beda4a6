"""Compiled tree runtimes against onnxruntime, for the boosted models honing serves.

A served boosted model is its ONNX graph run by onnxruntime (``honing.compression``). Would a
compiled predictor answer a single row faster? Measured here, not assumed, on LightGBM
boosters as honing's searches and students grow them: the same booster through

- LightGBM's own predictor (``Booster.predict``), the native flavor's model;
- onnxruntime on its ONNX graph (onnxmltools' converter, as honing exports it), one thread;
- TL2cgen 1.0 (treelite 4.8's model, turned into C and compiled by gcc into a shared library);
- lleaves 1.3 (the LightGBM model compiled by LLVM).

The input is the booster's own numeric matrix: the feature steps before it cost the same
whatever runs the trees, so they are left out. Single rows: p50 and p99 of one call per row,
one thread, over 2,000 rows; batches: rows per second on 10,000 rows. Every runtime's answers
are checked against LightGBM's own.

Runs in a venv of its own (``make bench-venv-compiled``): the compilers' packages are not the
product's dependencies. Writes bench/results/tree_runtimes.{json,md}.

    .venv-compiled/bin/python bench/tree_runtimes.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # honing.runtime
from common import code_commit, machine, write_json, write_markdown  # noqa: E402

NAME = "tree_runtimes"
SINGLE_ROWS, BATCH_ROWS, FEATURES = 2_000, 10_000, 20
#: (rounds, classes) of the boosters measured: a student's, a search's, a long one's.
CASES = [(100, 2), (300, 2), (1000, 2), (300, 3)]


def table(n: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, FEATURES)).astype(np.float32)
    z = X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + np.sin(X[:, 3]) + rng.normal(scale=0.5, size=n)
    return X, np.digitize(z, np.quantile(z, np.linspace(0, 1, classes + 1)[1:-1]))


def single_row(predict: Any, X: np.ndarray) -> tuple[float, float]:
    """p50 and p99 of one call per row, in microseconds."""
    for row in X[:50]:  # warm up
        predict(row[None, :])
    times = []
    for row in X:
        started = time.perf_counter_ns()
        predict(row[None, :])
        times.append((time.perf_counter_ns() - started) / 1e3)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def throughput(predict: Any, X: np.ndarray) -> float:
    predict(X[:100])
    started = time.perf_counter()
    predict(X)
    return len(X) / (time.perf_counter() - started)


def runtimes(booster: Any, classes: int, folder: Path) -> dict[str, Any]:
    """Each runtime's predict (class probabilities, or the positive class's for binary)."""
    import lleaves
    import onnxruntime as ort
    import tl2cgen
    import treelite
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    out: dict[str, Any] = {"lightgbm": lambda X: booster.predict(X, num_threads=1)}
    graph = convert_lightgbm(
        booster, initial_types=[("input", FloatTensorType([None, FEATURES]))], zipmap=False,
        target_opset=15,  # onnxmltools' own front door stops at 15 (honing: skl2onnx, 17)
    )  # fmt: skip
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(
        graph.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    prob = session.get_outputs()[1].name

    def onnx(X: np.ndarray) -> np.ndarray:
        p = session.run([prob], {"input": X})[0]
        return p[:, 1] if classes == 2 else p

    out["onnxruntime"] = onnx
    model = treelite.frontend.from_lightgbm(booster)
    lib = folder / "model.so"
    tl2cgen.export_lib(model, toolchain="gcc", libpath=str(lib), params={"parallel_comp": 4})
    predictor = tl2cgen.Predictor(str(lib), nthread=1)
    out["tl2cgen"] = lambda X: np.squeeze(predictor.predict(tl2cgen.DMatrix(X, dtype="float32")))
    text = folder / "model.txt"
    booster.save_model(str(text))
    compiled = lleaves.Model(model_file=str(text))
    compiled.compile(cache=str(folder / "lleaves.o"))
    out["lleaves"] = lambda X: compiled.predict(X.astype(np.float64), n_jobs=1)
    return out


def one_case(rounds: int, classes: int) -> dict[str, Any]:
    import lightgbm as lgb

    X, y = table(20_000, classes)
    params = {"objective": "binary" if classes == 2 else "multiclass", "num_leaves": 31,
              "learning_rate": 0.05, "verbose": -1, "num_threads": 1}  # fmt: skip
    if classes > 2:
        params["num_class"] = classes
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=rounds)
    X_test, _ = table(BATCH_ROWS, classes, seed=1)
    reference = booster.predict(X_test, num_threads=1)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, predict in runtimes(booster, classes, Path(tmp)).items():
            answer = np.asarray(predict(X_test), dtype=np.float64).reshape(reference.shape)
            p50, p99 = single_row(predict, X_test[:SINGLE_ROWS])
            rows[name] = {
                "p50_us": round(p50, 2), "p99_us": round(p99, 2),
                "rows_per_s": round(throughput(predict, X_test)),
                "max_abs_diff": float(np.abs(answer - reference).max()),
            }  # fmt: skip
            print(f"  {rounds} rounds, {classes} classes, {name}: {rows[name]}", flush=True)
    return {"rounds": rounds, "classes": classes, "runtimes": rows}


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Compiled tree runtimes against onnxruntime",
        "",
        f"Commit `{results['commit']}`, {results['machine']}. LightGBM boosters of 31 leaves "
        f"on a {FEATURES}-column numeric table; one thread; single-row p50/p99 in "
        f"microseconds over {SINGLE_ROWS:,} rows, one call per row; batch rows/s on "
        f"{BATCH_ROWS:,} rows; the largest difference from LightGBM's own probabilities.",
        "",
        "| rounds | classes | runtime | p50 us | p99 us | p50 vs onnxruntime | batch rows/s "
        "| max diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in results["cases"]:
        ort = case["runtimes"]["onnxruntime"]["p50_us"]
        for name, r in case["runtimes"].items():
            lines.append(
                f"| {case['rounds']} | {case['classes']} | {name} | {r['p50_us']:.1f} | "
                f"{r['p99_us']:.1f} | {r['p50_us'] / ort:.2f}x | {r['rows_per_s']:,} | "
                f"{r['max_abs_diff']:.1e} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = {"commit": code_commit(), "machine": machine(), "cases": []}
    for rounds, classes in CASES:
        results["cases"].append(one_case(rounds, classes))
    write_json(NAME, results)
    text = render(results)
    write_markdown(NAME, text)
    print(text)


if __name__ == "__main__":
    main()
