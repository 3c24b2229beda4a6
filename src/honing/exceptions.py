"""Domain exceptions. Each carries a message a user can act on without reading a traceback."""

from __future__ import annotations


class HoningError(Exception):
    """Base class of every error honing raises on purpose."""


class ConfigError(HoningError):
    """A YAML config is missing, unreadable or breaks a rule of the config models."""


class DataLoadError(HoningError):
    """A data file cannot be read as a table (missing, empty, corrupt, wrong format)."""


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


class RegistryError(HoningError):
    """The model registry could not be read or updated."""
