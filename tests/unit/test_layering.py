"""Imports point one way: flows -> tasks -> dinar_core. dinar_core never imports prefect, tasks or flows."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_dinar_core_is_a_pure_library():
    bad = {f: n & {"prefect", "prefect_dask", "tasks", "flows"} for f, n in _imports("dinar_core").items()}
    assert not {f: n for f, n in bad.items() if n}


def test_tasks_do_not_import_flows():
    bad = {f: n & {"flows"} for f, n in _imports("tasks").items()}
    assert not {f: n for f, n in bad.items() if n}


def test_the_check_itself_sees_imports(tmp_path):
    # guard against a checker that finds nothing: it must see this file's own imports
    names = _imports("tests")["tests/unit/test_layering.py"]
    assert {"ast", "pathlib"} <= names


# ---------------------------------------------------------------------------------------------------------------
# No stage module imports another (DESIGN.md: shared artifact I/O lives in tasks/artifacts.py)
# ---------------------------------------------------------------------------------------------------------------
def _defines_stage(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "STAGE" for t in n.targets)
               for n in tree.body)


def _tasks_graph(folder: Path) -> tuple[dict[str, set[str]], set[str]]:
    """({module: the tasks modules it imports, anywhere in the file (function-level imports included)}, the
    modules that define a pipeline stage (a top-level ``STAGE = ...``)). A module that names ``tasks.X`` in a string
    constant (``importlib.import_module("tasks.X")``, as the stage registry does) counts as importing it."""
    graph, stages = {}, set()
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                if node.module == "tasks":
                    names |= {f"tasks.{a.name}" for a in node.names}
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("tasks."):
                names.add(node.value)
        graph[path.stem] = {n.split(".")[1] for n in names if n.startswith("tasks.") and n.count(".") >= 1}
        if _defines_stage(tree):
            stages.add(path.stem)
    return graph, stages


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), set()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def stage_import_violations(folder: Path) -> dict[str, set[str]]:
    """{stage module: the other stage modules it reaches through imports, directly or through shared modules}."""
    graph, stages = _tasks_graph(folder)
    bad = {s: (_reach(graph, s) & stages) - {s} for s in stages}
    return {s: v for s, v in bad.items() if v}


def test_no_stage_module_imports_another():
    assert not stage_import_violations(ROOT / "tasks")


def test_the_stage_check_sees_every_stage():
    registry = ast.parse((ROOT / "tasks" / "stages.py").read_text())
    _MODULES = next(ast.literal_eval(n.value) for n in registry.body if isinstance(n, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "_MODULES" for t in n.targets))
    _, stages = _tasks_graph(ROOT / "tasks")
    assert stages == {m.split(".")[1] for m in _MODULES}


def test_the_stage_check_flags_direct_and_indirect_imports(tmp_path):
    (tmp_path / "a.py").write_text("from tasks.runner import Stage\nSTAGE = Stage()\n")
    (tmp_path / "b.py").write_text("def f():\n    from tasks.a import STAGE\nSTAGE = 1\n")  # function-level
    (tmp_path / "shared.py").write_text("import tasks.a\n")
    (tmp_path / "c.py").write_text("from tasks import shared\nSTAGE = 2\n")  # through a shared module
    (tmp_path / "d.py").write_text("from tasks.shared2 import x\nSTAGE = 3\n")
    (tmp_path / "shared2.py").write_text("x = 1\n")
    assert stage_import_violations(tmp_path) == {"b": {"a"}, "c": {"a"}}
