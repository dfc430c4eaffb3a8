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
