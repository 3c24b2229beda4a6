"""The one table of compression techniques: what each builds and what it applies to. The
config validates technique names against it, and the candidate builders read it to decide
what applies to a model and to say why the rest were skipped."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Technique:
    """A compression technique. ``scope``: ``any`` model, ``classifier`` only, or the PyTorch
    ``mlp`` only. ``candidates``: the candidate names it yields. ``graph``: it is built from
    the pipeline's ONNX graph (converted once for all such techniques)."""

    name: str
    scope: str
    candidates: tuple[str, ...]
    what: str
    graph: bool = False


TECHNIQUES: dict[str, Technique] = {
    t.name: t
    for t in (
        Technique("onnx", "any", ("onnx",), "the whole pipeline as one ONNX graph", True),
        Technique(
            "onnx_int8", "classifier", ("onnx_int8",), "ORT dynamic int8 of that graph", True
        ),
        Technique(
            "onnx_int8_static",
            "classifier",
            ("onnx_int8_static",),
            "ORT static int8 (QDQ) of that graph, calibrated on training rows",
            True,
        ),
        Technique(
            "prune_unstructured", "mlp", ("pruned_unstructured",), "global magnitude pruning"
        ),
        Technique("prune_structured", "mlp", ("pruned_structured",), "removes hidden neurons"),
        Technique("int8", "mlp", ("int8",), "torch.ao dynamic int8 of the Linear layers"),
        Technique("distill", "classifier", ("distilled",), "a small student MLP"),
        Technique(
            "trim",
            "any",
            ("trimmed",),
            "the fewest boosting rounds, forest trees and vote members within the tolerance, "
            "as one ONNX graph",
        ),
    )
}


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
