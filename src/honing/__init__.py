"""honing: a tabular dataset plus a YAML config in, a validated, tuned, registered and monitored
model out. This package holds the library: pure, typed functions with no orchestration imports."""

__version__ = "0.1.0"
