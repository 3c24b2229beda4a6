"""The ``honing`` command line, one package:

- :mod:`~honing_flows.cli.flows`: the command line itself (``app``, ``main``), with the
  commands that launch flows (run, reproduce, monitor, serve);
- :mod:`~honing_flows.cli.library`: the commands that launch none (validate, init, predict,
  serve-model, rollback, aliases, ui), which never import Prefect;
- :mod:`~honing_flows.cli.data`: ``honing data`` (the bundled tables, ingest);
- :mod:`~honing_flows.cli.common`: what they share (the consoles, the one-message exit, the
  config and profile options).

The entry point, :mod:`honing_flows.entry`, starts the command's private Prefect API before
it imports this package.
"""
