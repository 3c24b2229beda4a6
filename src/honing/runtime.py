"""Process settings every entry point applies before it starts any service client.

The library never reads or writes the environment itself; the CLI, the flows and the test suite
call :func:`quiet_environment` with their own ``os.environ``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from types import ModuleType

#: Telemetry and phone-home switches of the stack, all off, plus quieter logs and progress bars.
QUIET_DEFAULTS: dict[str, str] = {
    "DO_NOT_TRACK": "true",  # evidently, mlflow and others that honour it
    "RAY_USAGE_STATS_ENABLED": "0",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TQDM_DISABLE": "1",
    "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
    # OpenMP threads (LightGBM's, XGBoost's, scikit-learn's) sleep at a barrier instead of
    # spinning. Spinning threads on a machine with other work wait for each other's time
    # slices: a LightGBM refit on 3,561 rows took 11-12 s on two threads beside a benchmark,
    # 0.2 s on one, and 0.4 s on two with this set. Read when the OpenMP runtime loads, so it
    # is set before the libraries are imported.
    "OMP_WAIT_POLICY": "PASSIVE",
}


def quiet_environment(environ: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Switch telemetry off in ``environ``, and have OpenMP threads sleep rather than spin
    when they wait (values the user already set are kept)."""
    for key, value in QUIET_DEFAULTS.items():
        environ.setdefault(key, value)
    return environ


#: What a command's files grant other local users: nothing. mlflow.db, the artifacts (input
#: examples are rows of the data), the logs and Ray's token would otherwise follow the umask.
PRIVATE = 0o077


def private_files() -> int:
    """From here on, what this process and the processes it starts create is the user's
    alone (0600 files, 0700 folders), whatever the umask; returns the umask before."""
    before = os.umask(0o077)
    os.umask(before | PRIVATE)
    return before


#: Seconds between saves of a Tune experiment's state (what a rerun after a kill restores).
EXPERIMENT_STATE_EVERY_S = 3


def ray_environment(address: str | None) -> dict[str, str]:
    """Variables for this process's Ray driver, for the profile's Ray ``address``.

    With no address Ray starts on this machine. Ray normally advertises and binds the machine's
    routable address even then; its ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` switch keeps that
    single-node instance on 127.0.0.1. Joining a cluster needs nothing more here: ``RAY_ADDRESS``
    and the cluster's token settings come from the environment the user set.
    """
    tune = {
        # Ctrl-C must stop the run, not just the search: without this, Tune catches SIGINT,
        # ends the search early and returns, and the flow would refit, register and promote.
        "TUNE_DISABLE_SIGINT_HANDLER": "1",
        # a killed run's rerun restores the trials the experiment's saved state lists as
        # finished: Tune saves it every 10 s or more by default, this every few seconds (a
        # small JSON file; the user's own setting wins)
        "TUNE_GLOBAL_CHECKPOINT_S": os.environ.get(
            "TUNE_GLOBAL_CHECKPOINT_S", str(EXPERIMENT_STATE_EVERY_S)
        ),
    }
    if address:
        return tune
    return {**tune, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


#: Libraries every training run needs (validation, the model families, model logging);
#: importing them cold costs seconds (Great Expectations and skops about 3 s each), done
#: while Prefect's API starts on the other core instead of one after the other. The ONNX
#: exporters are left to the compression stage, which many short runs skip.
PRELOAD = (
    "great_expectations",
    "skops.io",
    "mlflow.pyfunc",
    "lightgbm",
    "xgboost",
    "catboost",
)


#: Where the package walk of :func:`sklearn.utils.discovery.all_estimators` need not go:
#: scikit-learn's vendored array-API shims, one of which imports PyTorch.
UNLISTED_PACKAGES = ("sklearn.externals.",)
_WALK_LOCK = threading.Lock()


@contextlib.contextmanager
def _walk_skipping(prefixes: tuple[str, ...]) -> Iterator[None]:
    import pkgutil

    walk = pkgutil.walk_packages

    def skipping(
        path: Iterable[str] | None = None,
        prefix: str = "",
        onerror: Callable[[str], object] | None = None,
    ) -> Iterator[pkgutil.ModuleInfo]:
        # the walk recurses through this name: a skipped package is never imported
        return iter(()) if prefix.startswith(prefixes) else walk(path, prefix, onerror)

    pkgutil.walk_packages = skipping  # type: ignore[assignment]
    try:
        yield
    finally:
        pkgutil.walk_packages = walk


def load_module(name: str) -> ModuleType:
    """``importlib.import_module(name)``, without importing PyTorch behind skops' back.

    skops lists scikit-learn's estimators when it is imported, through a walk that imports
    every package of scikit-learn, :data:`UNLISTED_PACKAGES` included: that imported PyTorch
    (about 1 s of CPU and 300 MB) into every process that reads or writes a model, whether
    its model uses PyTorch or not. The walk's own filter drops every module under those
    packages, so the estimators it lists are the same without them. A module already
    imported is returned as it is (every model read and written goes through here), and
    the walk is replaced by one import at a time: two threads replacing it at once could
    leave it replaced."""
    import importlib
    import sys

    if name in sys.modules:
        return sys.modules[name]
    with _WALK_LOCK, _walk_skipping(UNLISTED_PACKAGES):
        return importlib.import_module(name)


def preload(modules: tuple[str, ...] = PRELOAD) -> None:
    """Import the heavy libraries a run needs, as part of the process's start-up, while
    Prefect's server and Ray start (all of it counts against the run's time budget)."""
    for name in modules:
        load_module(name)


def process_started() -> float:
    """When this process started, in ``time.time()`` seconds (Linux's ``/proc``); now where
    that cannot be read. A command's time budget counts from there: its imports, and the
    services it starts, are part of what the user waits for."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22: start time
        # the start is counted in ticks since boot: its age is read on the same clock. The
        # boot's wall time (/proc/stat's btime) is whole seconds, and drifts from the wall
        # clock as it is adjusted; it put the start 0.86 s early after 14 h of uptime.
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - max(0.0, age)
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


#: Iterations of the pure-Python loop :func:`contention` times: about 10 ms of CPU each on
#: this 2-core machine, long against the scheduler's slices of a few milliseconds.
CONTENTION_LOOP = 300_000
CONTENTION_SAMPLES = 5


def contention(samples: int = CONTENTION_SAMPLES, loop: int = CONTENTION_LOOP) -> float:
    """How much slower than on an idle core this thread's CPU work runs now: the wall
    seconds per CPU second of a fixed CPU-bound loop, the median of ``samples`` (1.0 on an
    idle core; about 2 where two runnable threads share each core; other threads of this
    process holding the interpreter count too). Some 50 ms of CPU."""
    ratios = []
    for _ in range(samples):
        wall, cpu = time.perf_counter(), time.thread_time()
        total = 0
        for i in range(loop):
            total += i
        spent = time.thread_time() - cpu
        ratios.append((time.perf_counter() - wall) / spent if spent > 0 else 1.0)
    ratios.sort()
    return round(ratios[len(ratios) // 2], 2)


def cores() -> int:
    """The cores this process may run on: its CPU affinity (a ``taskset`` or a container's
    cpuset), which ``os.cpu_count`` ignores; at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform
        return os.cpu_count() or 1
