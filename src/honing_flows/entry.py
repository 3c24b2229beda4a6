"""The ``honing`` command's entry point, kept light on purpose.

A command that runs a flow (``run``, ``monitor``, ``reproduce``) starts its private Prefect
API (:mod:`honing_flows.api_server`) before importing anything heavy: the server boots on one
core while the command imports the libraries it needs on the other, instead of one after
the other. Every second of it is the user's wait, and counts against the run's budget.
``init`` creates the embedded server's database meanwhile, when there is none yet, so that
the project's first run does not migrate it inside its budget.
"""

from __future__ import annotations

import os
import sys

#: The commands that run a flow, and so talk to a Prefect API.
FLOW_COMMANDS = ("run", "monitor", "reproduce")


def main() -> None:
    from honing import runtime
    from honing_flows import api_server

    runtime.quiet_environment(os.environ)
    runtime.private_files()  # the server's database too
    args = sys.argv[1:]
    asked_help = {"--help", "-h"} & set(args)
    if args and args[0] in FLOW_COMMANDS and not asked_help:
        api_server.launch_early(os.environ, api_server.API_LOG)
    elif args and args[0] == "init" and not asked_help:  # the project's first run is next
        api_server.migrate_early(os.environ, api_server.API_LOG)
    try:
        from honing_flows.cli import main as cli_main

        cli_main()
    finally:
        api_server.wait_migrated()
        api_server.stop_early()
