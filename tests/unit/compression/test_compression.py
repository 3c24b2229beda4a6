"""Compression building blocks on small synthetic data: exports, pruning, int8, ONNX, pick."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from honing import compression as C
from honing.config import CompressionConfig, FeaturesConfig
from honing.exceptions import ConfigError
from honing.modeling.features import build_preprocessor, infer_columns


def _frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, size=n),
            "c": rng.choice(["x", "y", "z"], size=n).astype(object),
        }
    )
    X.loc[::17, "a"] = np.nan
    X.loc[::23, "c"] = np.nan
    y = ((X["a"].fillna(0) + (X["c"] == "x")) > 0.5).astype(int).to_numpy()
    return X, y


def _dense(widths=(8, 6), n_in=5, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [n_in, *widths, n_out]
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    return C.DenseLayers(
        [rng.normal(size=(o, i)).astype(np.float32) for i, o in pairs],
        [rng.normal(size=o).astype(np.float32) for _, o in pairs],
        "relu",
    )


def test_export_folds_batch_norm_and_drops_dropout():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 7),
        torch.nn.BatchNorm1d(7),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.3),
        torch.nn.Linear(7, 2),
    )
    net.train()
    for _ in range(5):  # move the running statistics away from their defaults
        net(torch.randn(32, 5) * 3 + 1)
    net.eval()
    layers = C.export_dense(net, "relu")
    assert layers.widths == [7] and len(layers.weights) == 2
    x = torch.randn(16, 5)
    with torch.no_grad():
        np.testing.assert_allclose(
            C.build_module(layers)(x).numpy(), net(x).numpy(), rtol=1e-4, atol=1e-5
        )


def test_structured_pruning_removes_neurons_and_keeps_shapes_consistent():
    layers = _dense()
    smaller = C.prune_structured(layers, 0.5)
    assert smaller.widths == [4, 3]
    assert smaller.n_parameters < layers.n_parameters
    out = C.build_module(smaller)(torch.randn(3, 5))
    assert out.shape == (3, 2)


def test_unstructured_pruning_zeroes_the_smallest_weights_globally():
    layers = _dense()
    module, linears = C.prune_unstructured(layers, 0.5)
    C.remove_masks(linears)
    pruned = C.export_dense(module, "relu")
    zeros = sum(int((w == 0).sum()) for w in pruned.weights)
    total = sum(w.size for w in pruned.weights)
    assert zeros == round(0.5 * total)
    kept = np.concatenate([np.abs(w[w != 0]) for w in pruned.weights])
    dropped = np.concatenate(
        [np.abs(w0[w == 0]) for w0, w in zip(layers.weights, pruned.weights, strict=True)]
    )
    assert dropped.max() <= kept.min()


def test_int8_weights_round_trip_into_torch_dynamic_quantization():
    layers = _dense()
    arrays = C.quantize_int8(layers)
    assert all(arrays[f"w{i}"].dtype == np.int8 for i in range(3))
    q = C.quantized_module(arrays, "relu")
    assert "quantized" in type(q[0]).__module__
    x = torch.randn(64, 5)
    with torch.no_grad():
        ref = C.build_module(layers)(x).numpy()
        np.testing.assert_allclose(q(x).numpy(), ref, atol=0.05 * np.abs(ref).max())


@pytest.fixture(scope="module")
def fitted_preprocessor():
    X, y = _frame()
    cols = infer_columns(X, FeaturesConfig())
    pre = build_preprocessor(cols, FeaturesConfig(), task="classification").fit(X)
    return X, y, cols, pre


def test_mlp_onnx_graph_matches_pytorch_including_missing_values(fitted_preprocessor):
    X, y, cols, pre = fitted_preprocessor
    n_in = pre.transform(X.head(2)).shape[1]
    for activation in ("relu", "tanh", "gelu"):
        layers = C.export_dense(C.new_dense(n_in, [8], 2, activation, seed=1), activation)
        torch_pred = C.TorchPredictor(pre, C.build_module(layers))
        data = C.mlp_onnx_bytes(pre, layers, cols.numeric, cols.categorical)
        onnx_pred = C.OnnxPredictor(data, cols.numeric, cols.categorical)
        np.testing.assert_allclose(
            onnx_pred.predict_proba(X), torch_pred.predict_proba(X), atol=1e-5
        )


def test_mlp_graph_is_the_torch_export_merged_onto_the_feature_graph(fitted_preprocessor):
    import onnx

    X, y, cols, pre = fitted_preprocessor
    n_in = pre.transform(X.head(2)).shape[1]
    layers = C.export_dense(C.new_dense(n_in, [8, 4], 3, "relu", seed=2), "relu")
    network = C.network_onnx(layers)
    assert [n.op_type for n in network.graph.node] == [
        "Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"
    ]  # fmt: skip
    merged = onnx.load_from_string(C.mlp_onnx_bytes(pre, layers, cols.numeric, cols.categorical))
    names = [n.name for n in merged.graph.node]
    assert sum(n.startswith("net_") for n in names) == 6  # the network, prefixed, once
    assert [o.name for o in merged.graph.output] == ["net_probabilities"]
    assert len(merged.graph.input) == len(cols.numeric) + len(cols.categorical)


def test_static_int8_quantizes_the_network_with_calibration_rows(fitted_preprocessor):
    import onnx

    X, y, cols, pre = fitted_preprocessor
    n_in = pre.transform(X.head(2)).shape[1]
    layers = C.export_dense(C.new_dense(n_in, [16], 2, "relu", seed=3), "relu")
    data = C.mlp_onnx_bytes(pre, layers, cols.numeric, cols.categorical)
    fp32 = C.OnnxPredictor(data, cols.numeric, cols.categorical)
    quantized = C.ort_quantize_static(data, [fp32.feed(X.iloc[i : i + 100]) for i in (0, 100, 200)])
    assert quantized is not None
    ops = [n.op_type for n in onnx.load_from_string(quantized).graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    int8 = C.OnnxPredictor(quantized, cols.numeric, cols.categorical)
    diff = np.abs(int8.predict_proba(X) - fp32.predict_proba(X))
    assert diff.max() < 0.05 and np.median(diff) < 0.01


def test_distilled_student_learns_from_soft_labels(fitted_preprocessor):
    X, y, cols, pre = fitted_preprocessor

    class Teacher:
        def predict_proba(self, frame):
            p = (frame["a"].fillna(0) + (frame["c"] == "x") > 0.5).astype(float).to_numpy()
            p = np.clip(p, 0.05, 0.95)
            return np.column_stack([1 - p, p])

    student = C.distill(
        Teacher(), pre, X, y, widths=[8], epochs=60, temperature=2.0, alpha=0.7, seed=0
    )
    pred = C.TorchPredictor(pre, C.build_module(student)).predict(X)
    assert (pred == y).mean() > 0.9
    # a deadline stops the training: with one already past, a single step, at once
    import time

    began = time.time()
    rushed = C.distill(
        Teacher(), pre, X, y, widths=[8], epochs=10_000, temperature=2.0, alpha=0.7, seed=0,
        deadline=began,
    )  # fmt: skip
    assert time.time() - began < 5.0  # 10,000 epochs would take minutes
    assert rushed.weights[0].shape == student.weights[0].shape


def test_load_served_refuses_unknown_or_missing_manifests():
    with pytest.raises(C.CompressionError, match="manifest"):
        C.load_served({"model.onnx": b""})
    with pytest.raises(C.CompressionError, match="format"):
        C.load_served({C.MANIFEST: json.dumps({"format": "pickle"}).encode()})


def _row(name, metric, size, p50, servable=True):
    return C.CandidateMeasure(
        name, {"accuracy": metric}, size, p50, p50 * 2, 1.0, None, servable, ""
    )


def _report(*rows):
    return C.CompressionReport(metric="accuracy", reference="native", rows=list(rows))


def test_pick_takes_the_fastest_within_tolerance_and_breaks_near_ties_by_size():
    report = _report(
        _row("native", 0.80, 1000, 4.0),
        _row("onnx", 0.80, 900, 0.40),
        _row("onnx_int8", 0.799, 300, 0.42),  # within 10% of the fastest, 3x smaller
        _row("distilled", 0.78, 10, 0.1),  # fastest and smallest but 2 points worse
    )
    choice = C.pick(report, tolerance=0.005)
    assert choice.name == "onnx_int8"
    assert "distilled" not in choice.eligible
    assert C.pick(report, tolerance=0.05).name == "distilled"
    assert C.pick(report, tolerance=0.005, prefer="size").name == "onnx_int8"


def test_pick_never_serves_a_candidate_marked_not_servable_and_fails_clearly():
    report = _report(_row("native", 0.80, 1000, 4.0, servable=False), _row("x", 0.70, 10, 1))
    with pytest.raises(C.CompressionError, match="no servable candidate"):
        C.pick(report, tolerance=0.005)


def test_report_table_has_ratios_against_the_reference():
    table = _report(_row("native", 0.8, 1000, 4.0), _row("onnx", 0.8, 250, 1.0)).table()
    assert table["candidate"] == ["native", "onnx"]
    assert table["size_ratio"] == [1.0, 0.25] and table["p50_ratio"] == [1.0, 0.25]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"techniques": ["gzip"]}, "techniques"),
        ({"tolerance": 2}, "tolerance"),
        ({"prune_amount": 1.0}, "prune_amount"),
        ({"distill": {"width": 0}}, "distill.width"),
        ({"bogus": 1}, "unknown key"),
    ],
)
def test_compression_config_rejects_bad_values(raw, needle):
    from honing.config import parse_config
    from tests.conftest import demo_config_dict

    cfg = demo_config_dict()
    cfg["compression"] = raw
    with pytest.raises(ConfigError, match=needle):
        parse_config(cfg, source=Path("c.yaml"), root=Path("."))
    assert CompressionConfig().tolerance == 0.005


def test_a_booster_student_is_sized_by_its_teacher():
    """A student gets at most half its teacher's tree nodes, or MIN_ROUNDS rounds (fewer
    rounds at a higher rate, bounded); an unknown teacher size leaves the full student."""
    from honing.compression.student import (
        MAX_RATE,
        MIN_ROUNDS,
        STUDENT_RATE,
        STUDENT_ROUNDS,
        student_rounds,
    )

    assert student_rounds(None, 2) == (STUDENT_ROUNDS, STUDENT_RATE)
    assert student_rounds(10**9, 2) == (STUDENT_ROUNDS, STUDENT_RATE)
    rounds, rate = student_rounds(24_400, 2)  # 200 rounds of 61 nodes is half the teacher
    assert rounds == 200 and STUDENT_RATE < rate <= MAX_RATE
    assert student_rounds(24_400 * 3, 3)[0] == 200  # three trees a round for three classes
    small = student_rounds(10, 2)  # a small teacher still allows MIN_ROUNDS, at a higher rate
    assert small[0] == MIN_ROUNDS and STUDENT_RATE < small[1] <= MAX_RATE


def test_soft_labels_are_row_copies_weighted_by_their_probabilities():
    """Log loss summed over the weighted copies is the cross-entropy against the soft target,
    so a plain classifier learns soft labels; negligible copies are dropped."""
    from honing.compression.student import _soft_copies

    Z = np.array([[1.0], [2.0]])
    target = np.array([[0.75, 0.25, 0.0], [0.0, 0.5, 0.5]])
    X, y, w = _soft_copies(Z, target, np.array(["a", "b", "c"]))
    assert X[:, 0].tolist() == [1.0, 1.0, 2.0, 2.0] and y.tolist() == ["a", "b", "b", "c"]
    assert w.tolist() == [0.75, 0.25, 0.5, 0.5]
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])  # any model's probabilities
    copies = -np.sum(w * np.log(p[[0, 0, 1, 1], [0, 1, 1, 2]]))
    np.testing.assert_allclose(copies, -np.sum(target * np.log(p)))


def test_a_students_teacher_answers_only_the_rows_its_pace_affords_before_the_deadline():
    """A slow teacher (20,000 rows a second here) answers a first chunk, and then only as
    many more training rows as fit in a share of the time left: the student is built near
    its deadline from fewer rows, not from all 100,000."""
    import time

    import pandas as pd
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from honing.compression.student import FIRST_ROWS, booster_student

    class Slow(ClassifierMixin, BaseEstimator):
        classes_ = np.array([0, 1])

        def predict_proba(self, X):
            time.sleep(len(X) / 20_000)
            p = 1 / (1 + np.exp(-X["a"].to_numpy()))
            return np.c_[1 - p, p]

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=100_000), "b": rng.normal(size=100_000)})
    y = (X["a"] + rng.normal(size=100_000) > 0).astype(int).to_numpy()
    student = booster_student(
        Slow(), Pipeline([("same", FunctionTransformer())]), X, y, alpha=0.7, seed=0,
        deadline=time.time() + 3,
    )  # fmt: skip
    rows = int(student.note.split(" on ")[1].split(" training")[0].replace(",", ""))
    # at most 20,000 rows a second x 30% x 3 s (all 100,000 would take 5 s to answer)
    assert FIRST_ROWS <= rows <= 18_000, rows


def test_latency_of_a_model_without_pytorch_leaves_pytorch_unloaded():
    """The latency measure pins PyTorch to one thread only where a candidate loaded it:
    measuring a scikit-learn model imports no PyTorch (seconds of CPU in every run that
    compresses trees), and a loaded PyTorch gets its thread count back afterwards."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import numpy as np, pandas as pd\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from honing.compression import single_row_latency\n"
        "X = pd.DataFrame(np.random.default_rng(0).random((40, 3)))\n"
        "model = LogisticRegression().fit(X, X[0] > 0.5)\n"
        "p50, p99 = single_row_latency(model.predict_proba, X, rows=5)\n"
        "print(0 < p50 <= p99, 'torch' in sys.modules)\n"
        "import torch\n"
        "torch.set_num_threads(2)\n"
        "single_row_latency(model.predict_proba, X, rows=5)\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["True", "False", "2"], out.stderr[-2000:]
