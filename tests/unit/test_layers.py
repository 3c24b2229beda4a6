"""Architecture rules: the library never imports Prefect, and importing it does nothing."""

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LIBRARY = ROOT / "src" / "honing"


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
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & {"prefect", "tasks"})
        for p in LIBRARY.rglob("*.py")
        if _imports(p) & {"prefect", "tasks"}
    }
    assert offenders == {}


def test_tasks_are_one_library_call_each():
    """Every @task body in tasks/ is a single statement that calls into honing."""
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


def test_flows_only_compose_tasks():
    """Flow modules import only Prefect, typing helpers, tasks and honing types."""
    for path in (ROOT / "flows").glob("*.py"):
        # pandas: only for annotating the frames that pass between tasks
        allowed = {"__future__", "typing", "pathlib", "prefect", "tasks", "honing", "flows"}
        allowed |= {"pandas"}
        assert _imports(path) <= allowed, f"{path.name}: {_imports(path) - allowed}"


def test_importing_the_library_has_no_side_effects(tmp_path: Path):
    code = (
        "import sys, os, pkgutil, importlib, honing\n"
        "for m in pkgutil.iter_modules(honing.__path__):\n"
        "    importlib.import_module('honing.' + m.name)\n"
        "assert 'prefect' not in sys.modules, 'prefect imported'\n"
        "import mlflow\n"
        "assert not mlflow.tracking._tracking_service.utils.is_tracking_uri_set()\n"
        "assert os.listdir('.') == [], os.listdir('.')\n"
        "print('clean')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
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
