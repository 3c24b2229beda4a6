"""The ``honing`` command's entry point, kept light on purpose.

A command that runs a flow (``run``, ``monitor``, ``reproduce``) starts its private Prefect
API (:mod:`honing_flows.api_server`) before importing anything heavy: the server boots on one
core while the command imports the libraries it needs on the other, instead of one after
the other. Every second of it is the user's wait, and counts against the run's budget.
``init`` creates the embedded server's database meanwhile, when there is none yet, so that
the project's first run does not migrate it inside its budget.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NoReturn

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
        from honing_flows.cli.flows import main as cli_main

        cli_main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        api_server.wait_migrated()
        api_server.stop_early()
    exit_now(code)


def exit_now(code: object) -> NoReturn:
    """End the command with ``code``, as ``SystemExit(code)`` would, once its own exit work
    is done, as Python's exit does it: the threads that are not daemons are waited for (after
    the hooks that tell them to stop, such as a thread pool's), the ``atexit`` handlers run
    (Ray's shutdown of the daemons it started, logging's flush, temporary folders), and the
    standard streams are flushed. What Python does after that, tearing down every module and
    native library a run has loaded (Ray's core worker, the boosting libraries, ONNX
    Runtime), took 3 s after a short run on a quiet 2-core machine, all of it the user's
    wait; the process skips it."""
    import atexit
    import threading

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr, exit status 1
        print(code, file=sys.stderr)
        status = 1
    # the two steps of Python's own finalization, in its order, through the functions it
    # calls itself (the standard library offers no public ones)
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
