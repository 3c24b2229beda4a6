"""Compression ratios against the fp32/native model, in one run, with honing's own code.

Three experiments, each on a fixed split:

1. **int8** — a PyTorch MLP (2 x 256) trained on Telco churn; its candidates from
   ``honing.compression.build_candidates``: int8 (torch.ao dynamic) against the fp32 export
   served by PyTorch, and ONNX int8 (onnxruntime dynamic, and static with calibration rows)
   against the fp32 ONNX graph. Sizes and latencies are given for the whole served pipeline
   (features + network) and for the network alone, since the feature transform is a fixed cost
   that int8 does not touch. The library replacements are measured against what they replaced
   (hand-written network graph vs ``torch.onnx.export``; numpy structured pruning vs
   torch-pruning), on the same trained network.
2. **distillation** — on digits (8x8 images, 10 classes) and on churn: a teacher MLP, a student
   with under 10% of its parameters trained from scratch, and the same student distilled from the
   teacher's soft labels. Gap closed = (distilled - scratch) / (teacher - scratch).
3. **ONNX for trees** — a random forest pipeline on churn, scikit-learn against onnxruntime.

Single-row latency is measured at one thread on 300 rows of the test split (p50/p99).
Writes bench/results/compression.{json,md}.

    .venv/bin/python bench/compression.py
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import (  # bench/common.py (scripts run from bench/)
    code_commit,
    machine,
    write_json,
    write_markdown,
)

ROOT = Path(__file__).resolve().parents[1]
ROWS = 300
STUDENT_EPOCHS = 200  # the same budget for the distilled and the from-scratch student
STUDENT_LR = 3e-3


def _network_latency(module: Any, Z: np.ndarray) -> tuple[float, float]:
    import torch

    torch.set_num_threads(1)
    times = []
    with torch.inference_mode():
        for i in range(ROWS + 20):
            x = torch.from_numpy(Z[i % len(Z) : i % len(Z) + 1])
            start = time.perf_counter()
            module(x)
            if i >= 20:
                times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _npz_size(arrays: dict[str, np.ndarray]) -> int:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return len(buf.getvalue())


def _churn() -> tuple[Any, list, Any]:
    from honing.config import FeaturesConfig
    from honing.data import clean, split_data
    from honing.data.demo_data import fetch_demo_dataset
    from honing.modeling.features import infer_columns

    df, _ = clean(fetch_demo_dataset(), "churn")
    split, classes = split_data(
        df,
        "churn",
        positive_label="Yes",
        drop_columns=[],
        test_size=0.2,
        seed=42,
        task="classification",
    )
    return split, classes, infer_columns(split.X_train, FeaturesConfig())


def _fit(split: Any, cols: Any, family: str, params: dict[str, Any]) -> Any:
    from honing.config import FeaturesConfig
    from honing.modeling.training import ModelSpec, TrainingSetup, train_model

    return train_model(
        split.X_train,
        split.y_train,
        ModelSpec(family, params),
        TrainingSetup("classification", cols, FeaturesConfig(), seed=0, metric="roc_auc", folds=5),
    ).model


def int8_experiment() -> dict[str, Any]:
    from honing import compression as C

    split, classes, cols = _churn()
    model = _fit(
        split, cols, "mlp", {"hidden_layers": 2, "width": 256, "max_epochs": 40, "dropout": 0.1}
    )
    candidates, _ = C.build_candidates(
        model,
        split.X_train,
        split.y_train,
        numeric=cols.numeric,
        categorical=cols.categorical,
        options=C.CompressionOptions(student_epochs=30),
    )
    replacements = replacement_experiment(model, split, classes)
    report = C.measure(
        candidates, split.X_test, split.y_test, classes, metric="accuracy", latency_rows=ROWS
    )
    mlp = model.steps[-1][1]
    pre = model.steps[0][1]
    layers = C.export_dense(mlp.model_, mlp.activation)
    Z = np.asarray(pre.transform(split.X_test), dtype=np.float32)
    fp32_net = C.build_module(layers)
    int8_arrays = C.quantize_int8(layers)
    int8_net = C.quantized_module(int8_arrays, layers.activation)
    network = {
        "fp32_bytes": _npz_size(C.dense_arrays(layers)),
        "int8_bytes": _npz_size(int8_arrays),
        "fp32_p50_ms": _network_latency(fp32_net, Z)[0],
        "int8_p50_ms": _network_latency(int8_net, Z)[0],
    }
    row = {r.name: r for r in report.rows}

    def ratio(a: str, b: str) -> dict[str, float]:
        return {
            "size": row[a].size_bytes / row[b].size_bytes,
            "p50": row[a].p50_ms / row[b].p50_ms,
            "drop_points": 100 * (row[b].metrics["accuracy"] - row[a].metrics["accuracy"]),
        }

    return {
        "table": report.table(),
        "int8_vs_fp32_torch": ratio("int8", "fp32"),
        "onnx_int8_vs_onnx": ratio("onnx_int8", "onnx"),
        "onnx_int8_static_vs_onnx": ratio("onnx_int8_static", "onnx"),
        "network_only": {
            **network,
            "size": network["int8_bytes"] / network["fp32_bytes"],
            "p50": network["int8_p50_ms"] / network["fp32_p50_ms"],
        },
        "replacements": replacements,
        "structured_vs_fp32_onnx_p50": row["pruned_structured"].p50_ms / row["onnx"].p50_ms,
        "unstructured_vs_fp32_onnx_p50": row["pruned_unstructured"].p50_ms / row["onnx"].p50_ms,
    }


def _hand_built_graph(layers: Any) -> bytes:
    """Before: the network as hand-written MatMul/Add/Relu nodes and a Softmax (what
    honing's exporter wrote until torch.onnx.export replaced it), kept as the reference."""
    return _network_graph(layers, softmax=True)


def _numpy_structured(layers: Any, amount: float) -> Any:
    """Before: structured pruning in numpy (each hidden layer keeps the neurons with the
    largest L2 norm of incoming weights), kept as the reference for torch-pruning."""
    from honing import compression as C

    weights = [w.copy() for w in layers.weights]
    biases = [b.copy() for b in layers.biases]
    for i in range(len(weights) - 1):
        keep_n = max(1, int(round(weights[i].shape[0] * (1.0 - amount))))
        keep = np.sort(np.argsort(-np.linalg.norm(weights[i], axis=1))[:keep_n])
        weights[i], biases[i] = weights[i][keep], biases[i][keep]
        weights[i + 1] = weights[i + 1][:, keep]
    return C.DenseLayers(weights, biases, layers.activation)


def replacement_experiment(model: Any, split: Any, classes: list[Any]) -> dict[str, Any]:
    """The library replacements against what they replaced, on the same trained MLP:
    the network graph (hand-built vs torch.onnx.export), structured pruning (numpy vs
    torch-pruning, both fine-tuned the same way)."""
    from honing import compression as C

    mlp, pre = model.steps[-1][1], model.steps[0][1]
    layers = C.export_dense(mlp.model_, mlp.activation)
    Z = np.asarray(pre.transform(split.X_test), dtype=np.float32)
    before, after = _hand_built_graph(layers), C.network_onnx(layers).SerializeToString()

    def probs(graph: bytes) -> np.ndarray:
        import onnxruntime as ort

        sess = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: Z})[0]

    graph = {
        "before_bytes": len(before),
        "after_bytes": len(after),
        "before_p50_ms": _ort_latency(before, Z[:1]),
        "after_p50_ms": _ort_latency(after, Z[:1]),
        "max_abs_diff": float(np.abs(probs(before) - probs(after)).max()),
    }
    y_idx = np.searchsorted(mlp.classes_, split.y_train)
    Ztr = np.asarray(pre.transform(split.X_train), dtype=np.float32)
    y_test = np.searchsorted(mlp.classes_, split.y_test)
    pruning = {}
    for name, pruned in (
        ("numpy", _numpy_structured(layers, 0.5)),
        ("torch_pruning", C.prune_structured(layers, 0.5)),
    ):
        module = C.build_module(pruned)
        C.train_dense(module, Ztr, y_idx, epochs=5, seed=0)
        tuned = C.export_dense(module, layers.activation)
        pred = C.TorchPredictor(pre, C.build_module(tuned)).predict(split.X_test)
        pruning[name] = {
            "accuracy": float((pred == y_test).mean()),
            "n_parameters": tuned.n_parameters,
            "widths": tuned.widths,
        }
    return {"graph": graph, "pruning": pruning}


def _ort_latency(model_bytes: bytes, x: np.ndarray) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for _ in range(50):
        sess.run(None, {name: x})
    start = time.perf_counter()
    for _ in range(2000):
        sess.run(None, {name: x})
    return (time.perf_counter() - start) / 2000 * 1000


def _network_graph(layers: Any, softmax: bool = False) -> bytes:
    """The dense network alone as a hand-written ONNX graph (MatMul/Add/Relu)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, x = [], [], "x"
    for i, (w, b) in enumerate(zip(layers.weights, layers.biases, strict=True)):
        inits += [
            numpy_helper.from_array(np.ascontiguousarray(w.T), f"W{i}"),
            numpy_helper.from_array(b, f"B{i}"),
        ]
        nodes += [
            helper.make_node("MatMul", [x, f"W{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"B{i}"], [f"z{i}"]),
        ]
        x = f"z{i}"
        if i < len(layers.weights) - 1:
            nodes.append(helper.make_node("Relu", [x], [f"a{i}"]))
            x = f"a{i}"
    if softmax:
        nodes.append(helper.make_node("Softmax", [x], ["p"], axis=1))
        x = "p"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, layers.weights[0].shape[1]])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [None, 2])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def width_sweep() -> list[dict[str, Any]]:
    """Single-row latency of the network alone (45 inputs, two hidden layers) by width:
    where dynamic int8 starts to pay for quantizing its activations."""
    from honing import compression as C

    rows = []
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 45)).astype(np.float32)
    Z = np.repeat(x, 400, axis=0)
    for width in (256, 1024, 2048):
        layers = C.export_dense(C.new_dense(45, [width, width], 2, "relu", seed=0), "relu")
        graph = C.network_onnx(layers).SerializeToString()
        calibration = [{"features": Z[:128] + rng.normal(size=(128, 45)).astype(np.float32)}]
        rows.append(
            {
                "width": width,
                "ort_fp32_ms": _ort_latency(graph, x),
                "ort_int8_ms": _ort_latency(C.ort_quantize(graph), x),
                "ort_static_ms": _ort_latency(C.ort_quantize_static(graph, calibration), x),
                "torch_fp32_ms": _network_latency(C.build_module(layers), Z)[0],
                "torch_int8_ms": _network_latency(
                    C.quantized_module(C.quantize_int8(layers), "relu"), Z
                )[0],
            }
        )
    return rows


def _digits() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y.to_numpy(), test_size=0.25, random_state=0, stratify=y
    )
    return X_train, y_train, X_test, y_test


def _student_pair(
    teacher: Any, pre: Any, X_train: Any, y_train: Any, widths: list[int], epochs: int
) -> tuple[Any, Any]:
    from honing import compression as C

    distilled = C.distill(
        teacher,
        pre,
        X_train,
        y_train,
        widths=widths,
        epochs=epochs,
        learning_rate=STUDENT_LR,
        temperature=4.0,
        alpha=0.9,
        seed=0,
    )
    Z = np.asarray(pre.transform(X_train), dtype=np.float32)
    scratch = C.new_dense(Z.shape[1], widths, int(y_train.max()) + 1, "relu", seed=0)
    C.train_dense(scratch, Z, y_train, epochs=epochs, learning_rate=STUDENT_LR, seed=0)
    return distilled, C.export_dense(scratch, "relu")


def distillation_experiment() -> list[dict[str, Any]]:
    from honing import compression as C
    from honing.config import FeaturesConfig
    from honing.modeling.features import infer_columns
    from honing.modeling.training import ModelSpec, TrainingSetup, train_model

    out = []
    X_train, y_train, X_test, y_test = _digits()
    cols = infer_columns(X_train, FeaturesConfig())
    churn_split, _, churn_cols = _churn()
    cases = [
        ("digits", X_train, y_train, X_test, y_test, cols, [8]),
        (
            "churn",
            churn_split.X_train,
            churn_split.y_train,
            churn_split.X_test,
            churn_split.y_test,
            churn_cols,
            [4],
        ),
    ]
    for name, Xtr, ytr, Xte, yte, c, widths in cases:
        teacher = train_model(
            Xtr,
            ytr,
            ModelSpec("mlp", {"hidden_layers": 2, "width": 256, "max_epochs": 60}),
            TrainingSetup("classification", c, FeaturesConfig(), seed=0, metric="roc_auc", folds=5),
        ).model
        pre = teacher.steps[0][1]
        mlp = teacher.steps[-1][1]
        distilled, scratch = _student_pair(teacher, pre, Xtr, ytr, widths, epochs=STUDENT_EPOCHS)

        def acc(layers: Any, _pre: Any = pre, _X: Any = Xte, _y: Any = yte) -> float:
            pred = C.TorchPredictor(_pre, C.build_module(layers)).predict(_X)
            return float((pred == _y).mean())

        t = float((teacher.predict(Xte) == yte).mean())
        s, d = acc(scratch), acc(distilled)
        gap = t - s
        out.append(
            {
                "dataset": name,
                "teacher_params": mlp.n_parameters(),
                "student_params": distilled.n_parameters,
                "param_ratio": distilled.n_parameters / mlp.n_parameters(),
                "teacher_accuracy": t,
                "scratch_accuracy": s,
                "distilled_accuracy": d,
                "gap_closed": (d - s) / gap if gap > 0 else None,
            }
        )
    return out


def onnx_tree_experiment() -> dict[str, Any]:
    from honing import compression as C

    split, classes, cols = _churn()
    model = _fit(split, cols, "random_forest", {"n_estimators": 200, "max_depth": 10})
    candidates, skipped = C.build_candidates(
        model,
        split.X_train,
        split.y_train,
        numeric=cols.numeric,
        categorical=cols.categorical,
        options=C.CompressionOptions(techniques=("onnx", "onnx_int8")),
    )
    report = C.measure(
        candidates, split.X_test, split.y_test, classes, metric="accuracy", latency_rows=ROWS
    )
    row = {r.name: r for r in report.rows}
    hgb = _fit(split, cols, "hist_gradient_boosting", {"max_iter": 100})
    _, hgb_skipped = C.build_candidates(
        hgb,
        split.X_train,
        split.y_train,
        numeric=cols.numeric,
        categorical=cols.categorical,
        options=C.CompressionOptions(techniques=("onnx",)),
    )
    return {
        "table": report.table(),
        "skipped": skipped,
        "p50": row["onnx"].p50_ms / row["native"].p50_ms,
        "size": row["onnx"].size_bytes / row["native"].size_bytes,
        "hist_gradient_boosting": hgb_skipped.get("onnx", "converted"),
    }


def _md_table(table: dict[str, list[Any]], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for i in range(len(table["candidate"])):
        lines.append("| " + " | ".join(str(table[c][i]) for c in columns) + " |")
    return lines


def _ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def render(results: dict[str, Any]) -> str:
    i8 = results["int8"]
    cols = [
        "candidate",
        "accuracy",
        "size_bytes",
        "size_ratio",
        "p50_ms",
        "p99_ms",
        "p50_ratio",
        "throughput_rows_s",
        "n_parameters",
    ]
    t, o, n = i8["int8_vs_fp32_torch"], i8["onnx_int8_vs_onnx"], i8["network_only"]
    st = i8["onnx_int8_static_vs_onnx"]
    rg, rp = i8["replacements"]["graph"], i8["replacements"]["pruning"]
    lines = [
        "# Compression benchmark",
        "",
        f"`bench/compression.py` at commit `{results.get('commit', '?')}` on {results['machine']}; "
        "single-row latency at 1 thread over "
        f"{ROWS} test rows. Ratios are against the fp32/native model of the same run.",
        "",
        "## 1. int8 and pruning: PyTorch MLP (2 x 256) on Telco churn",
        "",
        *_md_table(i8["table"], cols),
        "",
        "Ratios of `size_ratio`/`p50_ratio` are against `native` (the scikit-learn pipeline with "
        "the PyTorch network, as MLflow stores it).",
        "",
        "| int8 target: size <= 0.30x, p50 <= 0.70x, drop <= 0.5 point | size | p50 | drop "
        "(points) | verdict |",
        "|---|---|---|---|---|",
        f"| torch.ao int8 vs fp32, whole pipeline | {t['size']:.3f} | {t['p50']:.3f} | "
        f"{t['drop_points']:+.2f} | size {_ok(t['size'] <= 0.3)}, latency "
        f"{_ok(t['p50'] <= 0.7)}, accuracy {_ok(t['drop_points'] <= 0.5)} |",
        f"| ORT int8 vs ONNX fp32, whole pipeline | {o['size']:.3f} | {o['p50']:.3f} | "
        f"{o['drop_points']:+.2f} | size {_ok(o['size'] <= 0.3)}, latency "
        f"{_ok(o['p50'] <= 0.7)}, accuracy {_ok(o['drop_points'] <= 0.5)} |",
        f"| ORT static int8 (QDQ, calibrated) vs ONNX fp32, whole pipeline | {st['size']:.3f} | "
        f"{st['p50']:.3f} | {st['drop_points']:+.2f} | size {_ok(st['size'] <= 0.3)}, latency "
        f"{_ok(st['p50'] <= 0.7)}, accuracy {_ok(st['drop_points'] <= 0.5)} |",
        f"| torch.ao int8 vs fp32, network only | {n['size']:.3f} | {n['p50']:.3f} | - | "
        f"size {_ok(n['size'] <= 0.3)}, latency {_ok(n['p50'] <= 0.7)} |",
        "",
        "### Library replacements against what they replaced (same trained network)",
        "",
        "| what | before | after | verdict |",
        "|---|---|---|---|",
        f"| network graph: hand-written MatMul/Add/Softmax vs `torch.onnx.export` | "
        f"{rg['before_bytes']} B, p50 {rg['before_p50_ms']:.4f} ms | {rg['after_bytes']} B, "
        f"p50 {rg['after_p50_ms']:.4f} ms | max prob. difference {rg['max_abs_diff']:.1e}; "
        f"size {_ok(rg['after_bytes'] <= rg['before_bytes'] * 1.01)}, latency "
        f"{_ok(rg['after_p50_ms'] <= rg['before_p50_ms'] * 1.1)} (same or better, 10% noise) |",
        f"| structured pruning (half the neurons, 5 epochs fine-tuning): numpy vs torch-pruning"
        f" | acc {rp['numpy']['accuracy']:.4f}, {rp['numpy']['n_parameters']} params, widths "
        f"{rp['numpy']['widths']} | acc {rp['torch_pruning']['accuracy']:.4f}, "
        f"{rp['torch_pruning']['n_parameters']} params, widths {rp['torch_pruning']['widths']} | "
        f"accuracy {_ok(rp['torch_pruning']['accuracy'] >= rp['numpy']['accuracy'] - 0.005)} "
        "(within 0.5 point), size "
        f"{_ok(rp['torch_pruning']['n_parameters'] <= rp['numpy']['n_parameters'])} |",
        "",
        f"Structured pruning (half the neurons removed, fine-tuned) runs at "
        f"{i8['structured_vs_fp32_onnx_p50']:.3f}x the fp32 ONNX graph's p50; unstructured "
        f"pruning (half the weights zeroed) at {i8['unstructured_vs_fp32_onnx_p50']:.3f}x: its "
        "masks leave dense kernels doing the same work, so it buys no speed and, stored dense, "
        "no size.",
        "",
        "Where int8 pays: single-row p50 (ms) of the network alone, 45 inputs, two hidden "
        "layers, one thread:",
        "",
        "| width | ORT fp32 | ORT int8 | ratio | ORT static int8 | ratio | torch fp32 | "
        "torch.ao int8 | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {w['width']} | {w['ort_fp32_ms']:.4f} | {w['ort_int8_ms']:.4f} | "
            f"{w['ort_int8_ms'] / w['ort_fp32_ms']:.2f} | {w['ort_static_ms']:.4f} | "
            f"{w['ort_static_ms'] / w['ort_fp32_ms']:.2f} | {w['torch_fp32_ms']:.4f} | "
            f"{w['torch_int8_ms']:.4f} | {w['torch_int8_ms'] / w['torch_fp32_ms']:.2f} |"
            for w in results["width_sweep"]
        ],
        "",
        "## 2. Distillation: a student with < 10% of the teacher's parameters",
        "",
        f"Teacher: MLP 2 x 256. Both students get the same {STUDENT_EPOCHS} epochs at learning "
        f"rate {STUDENT_LR}; the distilled one learns from the teacher's soft labels "
        "(temperature 4, soft weight 0.9).",
        "",
        "| dataset | teacher params | student params | ratio | teacher acc | scratch acc | "
        "distilled acc | gap closed | target (>= 0.5) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for d in results["distillation"]:
        gap = d["gap_closed"]
        lines.append(
            f"| {d['dataset']} | {d['teacher_params']} | {d['student_params']} | "
            f"{d['param_ratio']:.4f} | {d['teacher_accuracy']:.4f} | {d['scratch_accuracy']:.4f}"
            f" | {d['distilled_accuracy']:.4f} | "
            + ("n/a (no gap)" if gap is None else f"{gap:.2f}")
            + f" | {'n/a' if gap is None else _ok(gap >= 0.5)} |"
        )
    tr = results["onnx_trees"]
    lines += [
        "",
        "## 3. ONNX for the tree model: random forest (200 trees, depth 10) on churn",
        "",
        *_md_table(tr["table"], cols),
        "",
        f"onnxruntime single-row p50 is {tr['p50']:.3f}x the scikit-learn pipeline's (target "
        f"<= 0.5x: {_ok(tr['p50'] <= 0.5)}); the graph is {tr['size']:.3f}x the skops size. "
        f"ORT int8: {tr['skipped'].get('onnx_int8', 'applied')}.",
        "HistGradientBoosting (100 iterations): "
        + (
            "its pipeline exports to ONNX (honing writes the boosted trees' graph itself, "
            "from the model's arrays)."
            if tr["hist_gradient_boosting"] == "converted"
            else f"no ONNX export: {tr['hist_gradient_boosting']}; its pipelines are served "
            "natively or distilled."
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    from honing import runtime

    runtime.quiet_environment(os.environ)
    started = time.perf_counter()
    results = {
        "commit": code_commit(),
        "machine": machine(),
        "int8": int8_experiment(),
        "width_sweep": width_sweep(),
        "distillation": distillation_experiment(),
        "onnx_trees": onnx_tree_experiment(),
    }
    results["seconds"] = time.perf_counter() - started
    write_json("compression", results)
    text = render(results)
    write_markdown("compression", text)
    print(text)


if __name__ == "__main__":
    main()
