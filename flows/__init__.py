"""Prefect flows: they only compose the tasks of :mod:`honing_flows.tasks`. Installed as
``honing_flows.flows``; prefect.yaml's entrypoints name these files."""
