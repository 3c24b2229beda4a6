"""The training pipeline's stages, as library functions over typed bundles.

Each stage takes the bundles the earlier stages returned and returns its own: ``start`` (config,
services, the MLflow run), ``validate`` (the table, its lineage and report), ``prepare`` (the
cleaned split and the budget), ``search``, ``choose``, ``refit``, ``evaluate``, ``explain``,
``compress``, ``register`` and ``finish``. A Prefect task wraps each one (``honing_flows``),
and ``bench/overhead.py`` calls them directly, with no orchestration at all.

The expensive stages (search, choice, refit, explanations, compression) are pure
computations, and :mod:`honing.stages.keys` says what each result depends on, so that an
orchestrator can reuse a result whose inputs did not change.
"""
