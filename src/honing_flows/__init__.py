"""The orchestration side of honing: Prefect tasks (``honing_flows.tasks``, the top-level
``tasks/`` folder), flows (``honing_flows.flows``, the top-level ``flows/`` folder) and the
commands that launch them (:mod:`honing_flows.cli`). The library, ``honing``, never imports
this package."""
