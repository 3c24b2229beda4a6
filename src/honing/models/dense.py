"""Dense networks as plain arrays: export from the PyTorch MLP (batch norm folded), rebuild,
train (with distillation), prune (magnitude, structured) and quantize to int8."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class DenseLayers:
    """A feed-forward network as plain arrays: ``weights[i]`` is (out, in), activation between
    layers. Dropout is gone (inference) and batch norm is folded into the preceding layer."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: str

    @property
    def n_parameters(self) -> int:
        return int(sum(w.size + b.size for w, b in zip(self.weights, self.biases, strict=True)))

    @property
    def widths(self) -> list[int]:
        return [int(w.shape[0]) for w in self.weights[:-1]]


def export_dense(net: Any, activation: str) -> DenseLayers:
    """``DenseLayers`` of a ``TorchMLPClassifier.model_`` (Linear [BatchNorm] act Dropout ...)."""
    import torch.nn as tnn

    weights: list[np.ndarray] = []
    biases: list[np.ndarray] = []
    for module in net:
        if isinstance(module, tnn.Linear):
            weights.append(module.weight.detach().numpy().astype(np.float32).copy())
            biases.append(module.bias.detach().numpy().astype(np.float32).copy())
        elif isinstance(module, tnn.BatchNorm1d):
            scale = (
                module.weight.detach().numpy() / np.sqrt(module.running_var.numpy() + module.eps)
            ).astype(np.float32)
            weights[-1] = weights[-1] * scale[:, None]
            biases[-1] = (
                biases[-1] - module.running_mean.numpy()
            ) * scale + module.bias.detach().numpy()
            biases[-1] = biases[-1].astype(np.float32)
    return DenseLayers(weights, biases, activation)


def build_module(layers: DenseLayers) -> Any:
    """A float ``torch.nn.Sequential`` holding ``layers``."""
    import torch
    import torch.nn as tnn

    act = {"relu": tnn.ReLU, "tanh": tnn.Tanh, "gelu": tnn.GELU}[layers.activation]
    modules: list[Any] = []
    for i, (w, b) in enumerate(zip(layers.weights, layers.biases, strict=True)):
        linear = tnn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
        modules.append(linear)
        if i < len(layers.weights) - 1:
            modules.append(act())
    return tnn.Sequential(*modules).eval()


def new_dense(n_in: int, widths: list[int], n_out: int, activation: str, seed: int) -> Any:
    """A freshly initialised float network (used for students)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sizes = [n_in, *widths, n_out]
    weights = [
        (rng.standard_normal((o, i)) * math.sqrt(2.0 / i)).astype(np.float32)
        for i, o in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    biases = [np.zeros(o, dtype=np.float32) for o in sizes[1:]]
    return build_module(DenseLayers(weights, biases, activation))


def train_dense(
    module: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    learning_rate: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    soft_targets: np.ndarray | None = None,
    temperature: float = 1.0,
    alpha: float = 1.0,
    deadline: float | None = None,
) -> Any:
    """Train ``module`` in place with Adam on cross-entropy; with ``soft_targets`` the loss is
    ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels)`` (distillation).
    Pruning masks registered with ``torch.nn.utils.prune`` stay applied while training.
    Training stops at ``deadline`` (``time.time()``), after at least one step."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    teacher = None
    if soft_targets is not None:
        logits = np.log(np.clip(soft_targets, 1e-7, 1.0)) / temperature
        teacher = torch.softmax(torch.from_numpy(logits.astype(np.float32)), dim=1)
    opt = torch.optim.Adam(module.parameters(), lr=learning_rate)
    module.train()
    stepped = False
    for _ in range(int(epochs)):
        order = torch.randperm(len(Xt), generator=gen)
        for start in range(0, len(Xt), batch_size):
            if stepped and deadline is not None and time.time() >= deadline:
                return module.eval()
            stepped = True
            idx = order[start : start + batch_size]
            out = module(Xt[idx])
            loss = F.cross_entropy(out, yt[idx])
            if teacher is not None:
                soft = F.kl_div(
                    F.log_softmax(out / temperature, dim=1), teacher[idx], reduction="batchmean"
                )
                loss = alpha * temperature**2 * soft + (1.0 - alpha) * loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    return module.eval()


def prune_unstructured(layers: DenseLayers, amount: float) -> tuple[Any, list[Any]]:
    """Global magnitude pruning of every layer's weights; returns the module (masks attached,
    so fine-tuning keeps pruned weights at zero) and the pruned Linear layers."""
    import torch.nn as tnn
    import torch.nn.utils.prune as prune

    module = build_module(layers)
    linears = [m for m in module if isinstance(m, tnn.Linear)]
    prune.global_unstructured(
        [(m, "weight") for m in linears], pruning_method=prune.L1Unstructured, amount=amount
    )
    return module, linears


def remove_masks(linears: list[Any]) -> None:
    import torch.nn.utils.prune as prune

    for m in linears:
        prune.remove(m, "weight")


def prune_structured(layers: DenseLayers, amount: float) -> DenseLayers:
    """Remove ``amount`` of each hidden layer's neurons with torch-pruning: its dependency
    graph finds every tensor coupled to a neuron (the row and bias that produce it, the next
    layer's input column) and removes the group whose weights have the smallest L2 norm. The
    output layer is kept whole. The result is a genuinely smaller dense network."""
    import torch
    import torch_pruning as tp

    module = build_module(layers)
    pruner = tp.pruner.MagnitudePruner(
        module,
        torch.zeros(2, int(layers.weights[0].shape[1])),
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=amount,
        ignored_layers=[module[len(module) - 1]],
    )
    pruner.step()
    return export_dense(module, layers.activation)


def quantize_int8(layers: DenseLayers) -> dict[str, np.ndarray]:
    """Per-tensor symmetric int8 weights (as ``torch.ao`` dynamic quantization uses), with
    their scales; biases stay float32."""
    out: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(zip(layers.weights, layers.biases, strict=True)):
        scale = float(np.abs(w).max()) / 127.0 or 1.0
        out[f"w{i}"] = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        out[f"s{i}"] = np.array([scale], dtype=np.float32)
        out[f"b{i}"] = b.astype(np.float32)
    return out


def quantized_module(arrays: dict[str, np.ndarray], activation: str) -> Any:
    """The int8 network for serving: ``torch.ao`` dynamic quantization of Linear layers whose
    weights are exactly the stored int8 values."""
    import torch

    n = len([k for k in arrays if k.startswith("w")])
    layers = DenseLayers(
        [arrays[f"w{i}"].astype(np.float32) * arrays[f"s{i}"][0] for i in range(n)],
        [arrays[f"b{i}"] for i in range(n)],
        activation,
    )
    return torch.ao.quantization.quantize_dynamic(
        build_module(layers), {torch.nn.Linear}, dtype=torch.qint8
    )


def dense_arrays(layers: DenseLayers) -> dict[str, np.ndarray]:
    """The float32 weights and biases as ``w0, b0, w1, ...`` arrays (the served ``.npz``)."""
    out: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(zip(layers.weights, layers.biases, strict=True)):
        out[f"w{i}"], out[f"b{i}"] = w, b
    return out


def dense_layers(arrays: dict[str, np.ndarray], activation: str) -> DenseLayers:
    """The float network stored by :func:`dense_arrays`."""
    n = len([k for k in arrays if k.startswith("w")])
    return DenseLayers(
        [arrays[f"w{i}"] for i in range(n)], [arrays[f"b{i}"] for i in range(n)], activation
    )
