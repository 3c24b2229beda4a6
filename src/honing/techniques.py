"""The one table of compression techniques: what each builds, what it applies to, and its
builder. The config validates technique names against it, and compression reads it to decide
what applies to a model, to say why the rest were skipped, and to build each candidate.

A builder is a callable, or the ``"module:function"`` path of one (the built-in ones live in
:mod:`honing.compression.builders`, which is imported only when a model is compressed, so
that loading a config does not import PyTorch and the ONNX tools)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Technique:
    """A compression technique. ``scope``: ``any`` model, ``classifier`` only, or the PyTorch
    ``mlp`` only. ``candidates``: the candidate names it yields. ``graph``: it is built from
    the pipeline's ONNX graph (converted once for all such techniques). ``build``: its
    builder, which takes a ``honing.compression.builders.Build`` and returns its candidates;
    a ``judged`` technique's takes a ``Judged`` (the test rows and the native model's
    metrics, once every other candidate is measured) and returns one candidate or None with
    the reason."""

    name: str
    scope: str
    candidates: tuple[str, ...]
    what: str
    build: Callable[[Any], Any] | str
    graph: bool = False
    judged: bool = False


_BUILDERS = "honing.compression.builders"

TECHNIQUES: dict[str, Technique] = {
    t.name: t
    for t in (
        Technique(
            "onnx", "any", ("onnx",), "the whole pipeline as one ONNX graph",
            f"{_BUILDERS}:build_onnx", graph=True,
        ),
        Technique(
            "onnx_int8", "classifier", ("onnx_int8",), "ORT dynamic int8 of that graph",
            f"{_BUILDERS}:build_onnx_int8", graph=True,
        ),
        Technique(
            "onnx_int8_static", "classifier", ("onnx_int8_static",),
            "ORT static int8 (QDQ) of that graph, calibrated on training rows",
            f"{_BUILDERS}:build_onnx_int8_static", graph=True,
        ),
        Technique(
            "prune_unstructured", "mlp", ("pruned_unstructured",), "global magnitude pruning",
            f"{_BUILDERS}:build_prune_unstructured",
        ),
        Technique(
            "prune_structured", "mlp", ("pruned_structured",), "removes hidden neurons",
            f"{_BUILDERS}:build_prune_structured",
        ),
        Technique(
            "int8", "mlp", ("int8",), "torch.ao dynamic int8 of the Linear layers",
            f"{_BUILDERS}:build_int8",
        ),
        Technique(
            "distill", "classifier", ("distilled",), "a small student MLP",
            f"{_BUILDERS}:build_distill",
        ),
        Technique(
            "distill_booster", "any", ("distilled_booster",),
            "one LightGBM trained on the model's answers (an ensemble in one booster)",
            f"{_BUILDERS}:build_distill_booster",
        ),
        Technique(
            "trim", "any", ("trimmed",),
            "the fewest boosting rounds, forest trees and vote members within the tolerance, "
            "as one ONNX graph",
            f"{_BUILDERS}:build_trim", judged=True,
        ),
    )
}  # fmt: skip


def builder(technique: Technique) -> Callable[[Any], Any]:
    """The technique's builder (its ``"module:function"`` path imported)."""
    if callable(technique.build):
        return technique.build
    module, _, name = technique.build.partition(":")
    return getattr(importlib.import_module(module), name)


def known(name: str) -> str:
    """``name`` when it is a technique of the table (the config's validator)."""
    if name not in TECHNIQUES:
        raise ValueError(f"unknown compression technique {name!r}; choose from {list(TECHNIQUES)}")
    return name


def applicable(
    techniques: tuple[str, ...] | list[str], *, classifier: bool, mlp: bool
) -> tuple[list[str], dict[str, str]]:
    """The requested techniques that apply to a model, and a reason for each one that does
    not."""
    keep, skipped = [], {}
    for name in techniques:
        scope = TECHNIQUES[name].scope
        if scope != "any" and not classifier:
            skipped[name] = "classification only"
        elif scope == "mlp" and not mlp:
            skipped[name] = "applies to the PyTorch MLP only"
        else:
            keep.append(name)
    return keep, skipped
