"""Compressing the refit model: candidates measured on the test split, and the deployable
one picked. A pure computation; :func:`honing.stages.register.register` logs the result."""

from __future__ import annotations

import time

from honing import compression
from honing.config import PipelineConfig
from honing.search import planner
from honing.stages.fit import Refit
from honing.stages.prepare import Prepared


def compress(
    cfg: PipelineConfig, prepared: Prepared, refit: Refit, trims: planner.Trims
) -> compression.CompressionResult | None:
    """The compression candidates of the configured techniques that the time left allows
    (``trims``), and the pick; None when compression is off or nothing fits."""
    options = trims.compression_config(cfg.compression)
    if not options.enabled:
        return None
    split, columns = prepared.split, prepared.setup.columns
    return compression.compress(
        refit.trained.model,
        split.X_train,
        split.y_train,
        split.X_test,
        split.y_test,
        prepared.classes,
        numeric=columns.numeric,
        categorical=columns.text,
        options=compression.options_from_config(
            options,
            seed=cfg.search.seed,
            deadline=None if trims.compression_s is None else time.time() + trims.compression_s,
        ),
        metric=options.metric,
        tolerance=options.tolerance,
        rule=refit.decision.rule,
        prefer=options.prefer,
        latency_rows=options.latency_rows,
    )
