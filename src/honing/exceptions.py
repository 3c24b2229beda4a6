"""Domain exceptions. Each carries a message a user can act on without reading a traceback."""

from __future__ import annotations

import errno


class HoningError(Exception):
    """Base class of every error honing raises on purpose. Most are deterministic (the same
    input fails the same way); ``transient`` marks the ones a retry may cure."""

    transient: bool = False


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the failed step could help: unexpected errors (I/O, servers) and
    transient honing errors yes; bad configs and bad data no."""
    if isinstance(exc, HoningError):
        return exc.transient
    if disk_full(exc) is not None:  # stays full until someone frees space
        return False
    return isinstance(exc, Exception)


def disk_full(exc: BaseException) -> str | None:
    """When ``exc``, or an exception it came from, is a write refused for lack of space (a full
    disk, a quota, SQLite's "database or disk is full"): the file it names, "" if it names
    none. None for any other failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return str(current.filename or "")
        if "database or disk is full" in str(current):
            return ""
        current = current.__cause__ or current.__context__
    return None


class ConfigError(HoningError):
    """A YAML config is missing, unreadable or breaks a rule of the config models."""


class DataLoadError(HoningError):
    """A data file cannot be read as a table (missing, empty, corrupt, wrong format)."""


class OutputExistsError(HoningError):
    """An output path (report, summary) already holds a file; it is never replaced."""


class DataNotFoundError(DataLoadError):
    """A data file is not there (yet): it may still be syncing, so a retry may help."""

    transient = True


class DataValidationError(HoningError):
    """The data broke one or more expectations of its suite. ``report`` holds every failure."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class ModelQualityError(HoningError):
    """A trained model fell below the configured minimum metrics."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class SearchError(HoningError):
    """The hyperparameter search produced no usable trial."""


class TrackingUnavailableError(HoningError):
    """The MLflow tracking server cannot be reached."""

    transient = True


class ServiceUnavailableError(HoningError):
    """A service the run needs (such as the orchestrator's API) did not start or answer."""

    transient = True


class TrackingStoreError(HoningError):
    """The MLflow store is there but cannot be used: read-only, or not writable by this user."""


class StoreFullError(HoningError):
    """A store (MLflow's database or artifacts, an output folder) is on a full disk."""


class RegistryError(HoningError):
    """The model registry could not be read or updated."""


class ReproducibilityError(HoningError):
    """A rebuilt model's metrics differ from the registered ones beyond the tolerance."""


class UnsafeModelError(HoningError):
    """A model honing will not load: stored in a format whose loading can run code, holding
    a type outside honing's reviewed list, with files that differ from those recorded at
    registration, or from a registration that did not finish."""


class CompressionError(HoningError):
    """No candidate is deployable, or a served artifact is malformed."""


def failure_reason(exc: BaseException) -> str:
    """What a failed run says about ``exc`` in one line: a honing error's own message, an
    interrupt as such, anything else as its type and message."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C or SIGINT); no alias moved"
    if isinstance(exc, HoningError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
