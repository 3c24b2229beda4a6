"""Architecture rules: the library never imports Prefect or the orchestration package, and
importing it does nothing."""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import ROOT, untracked_env

LIBRARY = ROOT / "src" / "honing"
#: The orchestration package, honing_flows: its own modules and the tasks/ and flows/ folders
#: installed under it (honing_flows.tasks, honing_flows.flows).
ORCHESTRATION = (ROOT / "src" / "honing_flows", ROOT / "tasks", ROOT / "flows")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_library_has_no_prefect_or_orchestration_imports():
    forbidden = {"prefect", "honing_flows", "tasks", "flows"}
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & forbidden)
        for p in LIBRARY.rglob("*.py")
        if _imports(p) & forbidden
    }
    assert offenders == {}


def test_the_commands_that_launch_no_flow_import_no_prefect():
    """The command line is one package on the orchestration side (``honing_flows.cli``); of
    it, only ``flows`` (run, reproduce, monitor, serve) may reach Prefect: the library's
    commands, ``honing data`` and the shared options do not, lazily or not."""
    package = ROOT / "src" / "honing_flows" / "cli"
    allowed = {"flows.py", "__init__.py"}
    checked = [p for p in package.glob("*.py") if p.name not in allowed]
    forbidden = {"prefect", "tasks", "flows"}
    offenders = {p.name: sorted(found) for p in checked if (found := _imports(p) & forbidden)}
    assert offenders == {}
    # the orchestration modules they import are among the checked ones, so nothing they
    # reach through honing_flows imports Prefect either
    reached = {n for p in checked for n in _from(p)}
    assert reached <= {
        "honing_flows.cli.common",
        "honing_flows.cli.data",
        "honing_flows.cli.library",
    }


def _from(path: Path) -> set[str]:
    return {
        node.module
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("honing_flows")
    }


def test_orchestration_is_imported_through_its_namespace():
    """Nothing imports the generic top-level names ``tasks`` or ``flows``: the orchestration
    modules are ``honing_flows.tasks.*`` and ``honing_flows.flows.*`` once installed."""
    folders = (*ORCHESTRATION, ROOT / "tests", ROOT / "bench", LIBRARY)
    offenders = {
        str(p.relative_to(ROOT))
        for folder in folders
        for p in folder.rglob("*.py")
        if ".work" not in p.parts and _imports(p) & {"tasks", "flows"}
    }
    assert offenders == set()
    import honing_flows.flows.training
    import honing_flows.tasks.stages

    assert Path(honing_flows.tasks.stages.__file__) == ROOT / "tasks" / "stages.py"
    assert Path(honing_flows.flows.training.__file__) == ROOT / "flows" / "training.py"


#: The decorators that make a task of a function (``honing_flows.tasks``).
TASK_MAKERS = {"io_task", "compute_task"}


def test_tasks_are_one_library_call_each():
    """Every @task body in tasks/ is a single statement that calls into honing, and every
    task made by assignment wraps one library function."""
    for path in (ROOT / "tasks").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.decorator_list:
                body = [
                    n
                    for n in node.body
                    if not isinstance(n, ast.Expr) or not isinstance(n.value, ast.Constant)
                ]
                assert len(body) == 1, f"{path.name}:{node.name} has {len(body)} statements"
                calls = [n for n in ast.walk(body[0]) if isinstance(n, ast.Call)]
                assert calls, f"{path.name}:{node.name} calls nothing"
            # a task made from a library function: io_task(steps.x) or compute_task(told(...))
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                made = node.value
                if isinstance(made.func, ast.Name) and made.func.id in TASK_MAKERS:
                    inner = made.args[0]
                    if isinstance(inner, ast.Call):  # told(steps.x)
                        inner = inner.args[0]
                    assert isinstance(inner, ast.Attribute), f"{path.name}: {ast.unparse(made)}"


def test_flows_only_compose_tasks():
    """Flow modules import only Prefect, typing helpers, tasks and honing types."""
    for path in (ROOT / "flows").glob("*.py"):
        # pandas: only for annotating the frames that pass between tasks
        allowed = {"__future__", "typing", "pathlib", "prefect", "honing", "honing_flows"}
        allowed |= {"pandas"}
        assert _imports(path) <= allowed, f"{path.name}: {_imports(path) - allowed}"


def test_importing_the_library_has_no_side_effects(tmp_path: Path):
    code = (
        "import sys, os, pkgutil, importlib, honing\n"
        "for m in pkgutil.walk_packages(honing.__path__, 'honing.'):\n"
        "    importlib.import_module(m.name)\n"
        "assert 'prefect' not in sys.modules, 'prefect imported'\n"
        "import mlflow\n"
        "assert not mlflow.tracking._tracking_service.utils.is_tracking_uri_set()\n"
        "assert os.listdir('.') == [], os.listdir('.')\n"
        "print('clean')\n"
    )
    env = untracked_env()
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "clean" in out.stdout


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LIBRARY.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _library_graph() -> dict[str, set[str]]:
    """Every honing module and the honing modules it imports, at any depth of the file
    (imports inside functions count: a cycle through them still couples the modules)."""
    modules = {_module_name(p): p for p in LIBRARY.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("honing") and target not in (name, "honing"):
                    edges.add(target)
        graph[name] = edges
    return graph


def test_the_library_has_no_import_cycles():
    graph = _library_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # a package importing its own submodules is not a cycle; a submodule importing the
    # package's __init__ back would be, and is reported like any other
    assert cycles == [], [" -> ".join(c) for c in cycles]


#: The library's domain packages, each above the ones before it: a package imports only
#: the foundation modules and the packages listed before it (docs/development.md).
PACKAGES = (
    "models", "config", "data", "modeling", "search", "validation", "evaluation",
    "compression", "tracking", "registry", "serving", "monitoring", "stages",
)  # fmt: skip
#: The foundation: the flat modules every package may import, the knowledge tables among
#: them (``metrics.METRICS``, ``techniques.TECHNIQUES``, ``drift.DRIFT_METHODS``), and
#: ``store_artifacts``, which MLflow loads by name as a plugin in every process (so it stays
#: light: no package's ``__init__`` runs when it is imported).
FOUNDATION = (
    "drift", "exceptions", "lineage", "metric_keys", "metrics", "runtime", "techniques",
    "store_artifacts",
)  # fmt: skip
#: Above everything: ``served``, the pyfunc whose name every registered model's code imports.
TOP = ("served",)


def test_the_library_is_its_foundation_and_its_packages():
    found = {p.stem for p in LIBRARY.glob("*.py") if p.stem != "__init__"}
    assert found == {*FOUNDATION, *TOP}
    assert {p.name for p in LIBRARY.iterdir() if (p / "__init__.py").is_file()} == set(PACKAGES)
    # a wheel (not only an editable install) holds every package
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {f"honing.{p}" for p in PACKAGES} <= set(setuptools["packages"])


def test_each_package_imports_only_the_foundation_and_the_packages_below_it():
    graph = _library_graph()
    rank = {name: i for i, name in enumerate(PACKAGES)}
    upward = []
    for module, targets in graph.items():
        top = module.split(".")[1] if module != "honing" else ""
        if top in TOP:
            continue
        if top not in rank:  # a foundation module: it imports the foundation only
            upward += [f"{module} -> {t}" for t in targets if t.split(".")[1] in {*rank, *TOP}]
            continue
        for target in targets:
            other = target.split(".")[1]
            if other in TOP or (other in rank and rank[other] > rank[top]):
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_private_names_are_imported_across_modules():
    offenders = []
    for folder in (LIBRARY, *ORCHESTRATION):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    if node.module.split(".")[0] not in {"honing", "honing_flows"}:
                        continue
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    if private:
                        offenders.append(f"{path.relative_to(ROOT)}: {node.module} {private}")
    assert offenders == []


def test_no_library_module_is_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in LIBRARY.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert long == {}
