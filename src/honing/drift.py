"""The one table of drift methods (``monitoring.drift_method``): how a column's drift is
measured, as the keywords of Evidently's ``DataDriftPreset``. Adding a method is one entry
of :data:`DRIFT_METHODS`; the config, the drift report and the docs read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator


@dataclass(frozen=True)
class DriftMethod:
    """A drift method: its name in the config, the ``DataDriftPreset`` keywords it sets
    (per-column stattests and thresholds; none: Evidently chooses by column type and size),
    and what it is, for the config's description and the docs."""

    name: str
    description: str
    preset: dict[str, Any] = field(default_factory=dict)


DRIFT_METHODS: dict[str, DriftMethod] = {
    m.name: m
    for m in (
        DriftMethod(
            "auto",
            "Evidently's defaults: K-S and chi-square p-values on samples up to 1,000 rows, "
            "normed Wasserstein and Jensen-Shannon distances on larger ones",
        ),
        DriftMethod(
            "effect_size",
            "normed Wasserstein distance for numbers (drifted from 0.1) and the population "
            "stability index for categories (from 0.2), whatever the batch size: unlike "
            "p-values, they do not flag a trivial shift because a batch is large",
            {
                "num_method": "wasserstein",
                "num_threshold": 0.1,
                "cat_method": "psi",
                "cat_threshold": 0.2,
            },  # fmt: skip
        ),
    )
}


def known_method(name: str) -> str:
    """``name`` when it is a method of :data:`DRIFT_METHODS` (the config's validator)."""
    if name not in DRIFT_METHODS:
        raise ValueError(f"unknown drift method {name!r}; choose from {list(DRIFT_METHODS)}")
    return name


#: A drift method's name, as the config declares it.
DriftMethodName = Annotated[str, AfterValidator(known_method)]


#: Evidently's stattests whose score is a p-value, by the name a preset sets and the name its
#: report shows (Evidently 0.7's legacy stattests): a p-value drifts below its threshold. The
#: others (Wasserstein, Jensen-Shannon, PSI, Hellinger, energy distance, K-L divergence) are
#: distances or indices, which drift at or above it.
P_VALUE_TESTS = frozenset(
    {
        "ks", "K-S p_value", "chisquare", "chi-square p_value", "z", "Z-test p_value",
        "anderson", "Anderson-Darling", "cramer_von_mises", "Cramer-von Mises",
        "es", "Epps-Singleton", "fisher_exact", "Fisher's Exact test", "g_test",
        "mannw", "Mann-Whitney U-rank test", "t_test", "empirical_mmd",
        "TVD", "Total-Variation-Distance",
    }
)  # fmt: skip


def drifted(stattest: str, score: float, threshold: float) -> bool:
    """Whether a column drifted, by its stattest's score and threshold."""
    return score < threshold if is_p_value(stattest) else score >= threshold


def is_p_value(stattest: str) -> bool:
    """Whether ``stattest`` (as a preset names it or a report shows it) scores a p-value: one
    of :data:`P_VALUE_TESTS`, or a custom test whose name says so."""
    return stattest in P_VALUE_TESTS or "p_value" in stattest.lower()
