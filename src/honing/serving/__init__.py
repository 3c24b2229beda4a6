"""What ``honing serve-model`` serves, built from its options: the version (or the alias it
follows), the capture and the shadow, as the app of :mod:`honing.serving.endpoint`.

With ``--workers N`` uvicorn runs N processes, each building its own app from the same
options (:func:`worker_app`, handed them in the environment): each loads the model, follows
the alias and batches its own requests, and the workers share the capture folder (its
writes are locked across processes, :class:`honing.serving.capture.CaptureLog`).

The package also holds the endpoint (:mod:`~honing.serving.endpoint`), its scoring and
micro-batching (:mod:`~honing.serving.scoring`, :mod:`~honing.serving.batching`), the traffic
capture (:mod:`~honing.serving.capture`) and batch inference (:mod:`~honing.serving.inference`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from honing import config as config_mod
from honing import validation
from honing.exceptions import ConfigError, RegistryError

#: The environment variable that hands a worker process the server's options.
SPEC_ENV = "HONING_SERVE_SPEC"


@dataclass(frozen=True)
class ServeSpec:
    """``honing serve-model``'s options (see its help)."""

    config: str
    env: str
    alias: str = "champion"
    version: str | None = None
    served: bool = False
    follow_every: float = 5.0
    capture: str | None = None
    capture_sample: float = 1.0
    capture_max_mb: float = 64.0
    shadow: str | None = None


@dataclass(frozen=True)
class Built:
    """The app to serve, and what it serves in words (the line the command prints)."""

    app: Any
    says: str


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """Refuse, before any model is loaded, a port the server could not bind (one in use, or
    one this user may not bind), as uvicorn would only after saying it serves there."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"--port {port}: {host}:{port} cannot be bound ({exc.strerror}); rule: the "
                "server needs a free port (choose another with --port)"
            ) from exc


def build(spec: ServeSpec) -> Built:
    """The endpoint's app for ``spec``: the version loaded (its files checked), following its
    alias unless a version was named, with its capture and shadow. Raises
    :class:`honing.exceptions.HoningError` with one line for what the user must fix."""
    from honing import registry, tracking
    from honing.modeling.decision import Decided, DecisionRule
    from honing.registry import aliases
    from honing.serving import endpoint, inference
    from honing.serving.capture import SHADOW, CaptureConfig, CaptureLog

    cfg = config_mod.load_config(Path(spec.config), extra_roots=config_mod.data_roots(os.environ))
    settings = config_mod.load_env_settings(Path(spec.env), environ=os.environ)
    tracking.configure(settings.mlflow)
    name, alias = cfg.registry.model_name, spec.alias
    suite = validation.load_suite(cfg.validation.suite)
    classes = (
        []
        if cfg.task == "regression"
        else inference.label_classes(suite, cfg.data.target, cfg.data.positive_label)
    )

    def load(number: str) -> endpoint.Served:
        # the served flavor of that version, through its own link (never the flavor's alias)
        uri = aliases.served_uri(name, alias, number) if spec.served else f"models:/{name}/{number}"
        model = registry.load_model(uri)
        if not isinstance(model, Decided):  # registered before decision rules existed
            model = Decided(model, DecisionRule.argmax(classes))
        return endpoint.served(
            model, suite, target=cfg.data.target, drop_columns=cfg.identifiers,
            uri=uri, version=number,
        )  # fmt: skip

    if spec.shadow is not None and spec.capture is None:
        raise ConfigError("--shadow logs its answers beside the capture: add --capture DIR")
    kept = None if spec.capture is None else _capture_log(spec)  # before any model loads
    number = spec.version or registry.champion_version(name, alias)
    if number is None:
        raise RegistryError(f"model {name!r} has no @{alias} to serve; train first")
    bundle = load(number)
    follow = None
    if spec.version is None:
        follow = endpoint.Follow(
            alias, lambda: registry.champion_version(name, alias), load, spec.follow_every
        )
    shadowed = None
    if kept is not None:
        folder, size = Path(str(spec.capture)), kept.cfg.max_bytes
        if spec.shadow is not None:
            shadow = spec.shadow
            other = registry.champion_version(name, shadow)
            if other is None:
                raise RegistryError(f"model {name!r} has no @{shadow} to shadow")
            watch = endpoint.Follow(
                shadow, lambda: registry.champion_version(name, shadow), load, spec.follow_every
            )
            shadowed = endpoint.Shadow(
                endpoint.Current(load(other), watch),
                CaptureLog(CaptureConfig(folder / SHADOW, 1.0, size)),
            )
    says = (
        f"serving {bundle.uri} (v{number}"
        + (f", following @{alias} every {spec.follow_every:g}s" if follow else "")
        + ")"
        + (f"; capturing {spec.capture_sample:.0%} of requests in {spec.capture}" if kept else "")
        + (f"; shadowed by @{spec.shadow} (v{shadowed.current.bundle.version})" if shadowed else "")
    )
    return Built(endpoint.build_app(bundle, follow, kept, shadowed), says)


def _capture_log(spec: ServeSpec) -> Any:
    """The capture's log in ``spec.capture`` (:class:`ConfigError` when that is a file, or a
    folder this user may not create or write)."""
    from honing.serving.capture import CaptureConfig, CaptureLog

    folder = Path(str(spec.capture))
    size = max(1024, int(spec.capture_max_mb * 2**20))
    try:
        return CaptureLog(CaptureConfig(folder, spec.capture_sample, size))
    except OSError as exc:
        why = "not a folder" if folder.exists() and not folder.is_dir() else exc.strerror
        raise ConfigError(f"--capture {folder}: {why}") from exc


def spec_environment(spec: ServeSpec) -> dict[str, str]:
    """The environment entry that hands ``spec`` to :func:`worker_app` in each worker."""
    return {SPEC_ENV: json.dumps(asdict(spec))}


def worker_app() -> Any:
    """One worker's app (uvicorn's factory with ``--workers``), from the options the server
    was started with."""
    return build(ServeSpec(**json.loads(os.environ[SPEC_ENV]))).app
