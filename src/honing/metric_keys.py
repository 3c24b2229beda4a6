"""The names of the numbers honing logs to MLflow, in one place. Each name has a prefix
ending in ``/``, so MLflow's chart view groups them into one section per prefix and its
tables sort them side by side: ``test/roc_auc``, ``cv/roc_auc``, ``seconds/search``.

- ``test/``: the model on the test split (``test/<metric>``, and ``test/<metric>_at_default``
  at the default decision rule);
- ``cv/``: cross-validation: the chosen model's, each candidate the choice weighed
  (``cv/<metric>_best_single``...), each fold's and each rung's, nested CV's;
- ``seconds/``: the stages' wall-clock seconds, and a trial's fit;
- ``rows/``: the rows at each step of cleaning and splitting;
- ``decision/``: the decision rule (its threshold, its out-of-fold objective, calibration);
- ``search/``: the search's own curve (the best CV score so far) and a trial's rungs;
- ``served/``: the served flavor against the native model;
- ``fairness/``: the gaps between groups of a sensitive column;
- ``drift/``, ``batch/``, ``estimated/``: a monitoring run's drift, the champion measured on
  the batch, and estimated on it without labels.
"""

from __future__ import annotations

import re

TEST = "test/"
CV = "cv/"
SECONDS = "seconds/"
ROWS = "rows/"
DECISION = "decision/"
SEARCH = "search/"
SERVED = "served/"
FAIRNESS = "fairness/"
DRIFT = "drift/"
BATCH = "batch/"
ESTIMATED = "estimated/"


def test(metric: str) -> str:
    """``test/<metric>``: the model's score on the test split."""
    return f"{TEST}{metric}"


def cv(metric: str) -> str:
    """``cv/<metric>``: a cross-validated score."""
    return f"{CV}{metric}"


def seconds(stage: str) -> str:
    """``seconds/<stage>``: wall-clock seconds."""
    return f"{SECONDS}{stage}"


def drifted_column(column: str) -> str:
    """``drift/column/<column>``: a feature column's drift score, the column's name as an
    MLflow metric name allows it (other characters become ``_``)."""
    return f"{DRIFT}column/" + re.sub(r"[^A-Za-z0-9_\-. /]", "_", column)


def prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    """``values`` with every name under ``prefix``."""
    return {f"{prefix}{k}": v for k, v in values.items()}
