"""MkDocs hook: the configuration reference, generated from the pydantic models.

A page holding ``<!-- config-reference -->`` gets, in its place, one table per section of
the pipeline config and of the environment profile: each key's YAML path, type, default and
description (the field's own ``description``, else the first line of its model's docstring
for a nested section), read from :class:`honing.config.PipelineConfig` and
:class:`honing.config.settings.EnvSettings`. The reference cannot drift from the code: it is the
code, read at build time.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from pydantic import BaseModel

MARKER = "<!-- config-reference -->"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (``X``, ``X | None``), if any."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _type(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if inspect.isclass(annotation) else None
    text = text or str(annotation).replace("typing.", "")
    for noise in ("honing.config.", "honing.config.search_config.", "honing.config.gates_config.",
                  "honing.config.settings.", "pathlib.", "<class '", "'>"):  # fmt: skip
        text = text.replace(noise, "")
    return text.replace("|", "\\|")


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    text = repr(value)
    return f"`{text}`" if len(text) <= 40 else f"`{text[:37]}...`"


def _first_line(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def _section(model: type[BaseModel], path: str, out: list[str], seen: set[str]) -> None:
    rows, nested = [], []
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        key = f"{path}.{name}" if path else name
        described = field.description or (_first_line(sub.__doc__) if sub is not None else "")
        described = described.replace("|", "\\|")
        rows.append(f"| `{key}` | {_type(field.annotation)} | {_default(field)} | {described} |")
        if sub is not None and key not in seen:
            seen.add(key)
            nested.append((sub, key))
    title = f"`{path}`" if path else "top level"
    out += [f"### {title}", ""]
    if path and _first_line(model.__doc__):
        out += [_first_line(model.__doc__), ""]
    out += ["| key | type | default | description |", "|---|---|---|---|", *rows, ""]
    for sub, key in nested:
        _section(sub, key, out, seen)


def reference() -> str:
    from honing.config import PipelineConfig
    from honing.config.settings import EnvSettings

    out = ["## Pipeline config (`configs/<name>.yaml`)", ""]
    _section(PipelineConfig, "", out, set())
    out += ["## Environment profile (`configs/env/<profile>.yaml`)", ""]
    _section(EnvSettings, "", out, set())
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return markdown.replace(MARKER, reference()) if MARKER in markdown else markdown
