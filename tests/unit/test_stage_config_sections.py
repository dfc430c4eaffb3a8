"""Each stage's cache key holds every config section it reads: the `Stage(sections=...)` of each stage module
covers every ``cfg.<section>`` its `inputs` and `run` functions read, directly or through the tasks functions they
hand the config to.

A static scan (every branch counts, neural mode included, without running a network): a function's config names
are its parameters annotated ``PipelineConfig``; it reads the attributes taken of them, and whatever the tasks
function it passes one of them to reads (followed through imports, to any depth). A config handed to something
the scan cannot follow (``getattr(cfg, name)``, a function outside ``tasks``, a function whose parameter is not
annotated ``PipelineConfig``) fails the test instead of being skipped, so the scan never silently under-counts."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class _Module:
    def __init__(self, folder: Path, name: str):
        self.name = name
        self.tree = ast.parse((folder / f"{name}.py").read_text(), filename=f"{name}.py")
        self.functions = {n.name: n for n in ast.walk(self.tree) if isinstance(n, ast.FunctionDef)}
        self.imported = {}  # local name -> (module, name) for ``from tasks.X import name``
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tasks.") and \
                    node.level == 0:
                for a in node.names:
                    self.imported[a.asname or a.name] = (node.module.split(".", 1)[1], a.name)


class ConfigReads:
    """The config sections each function of the tasks modules in `folder` reads."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.modules: dict[str, _Module] = {}
        self.unfollowed: list[str] = []
        self._memo: dict[tuple[str, str], set[str]] = {}

    def module(self, name: str) -> _Module:
        if name not in self.modules:
            self.modules[name] = _Module(self.folder, name)
        return self.modules[name]

    def _resolve(self, mod: _Module, call: ast.Call) -> tuple[str, str] | None:
        f = call.func
        if isinstance(f, ast.Name):
            if f.id in mod.functions:
                return mod.name, f.id
            return mod.imported.get(f.id)
        return None

    def reads(self, module: str, function: str) -> set[str]:
        key = (module, function)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = set()  # recursion guard
        mod = self.module(module)
        fn = mod.functions[function]
        args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        names = {a.arg for a in args if a.annotation is not None and "PipelineConfig" in ast.unparse(a.annotation)}
        if not names:  # it is handed the config (or is a stage's entry) but does not say where: cannot follow it
            self.unfollowed.append(f"{module}.{function}: no parameter annotated PipelineConfig")
        found: set[str] = set()
        for node in ast.walk(fn):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
                found.add(node.attr)
            elif isinstance(node, ast.Call):
                passed = [a for a in [*node.args, *(k.value for k in node.keywords)]
                          if isinstance(a, ast.Name) and a.id in names]
                if not passed:
                    continue
                target = self._resolve(mod, node)
                where = f"{module}.{function}: {ast.unparse(node)}"
                if target is None or not (self.folder / f"{target[0]}.py").is_file():
                    self.unfollowed.append(where)
                elif target[1] not in self.module(target[0]).functions:
                    self.unfollowed.append(where)
                else:
                    found |= self.reads(*target)
        self._memo[key] = found
        return found


def stage_sections(folder: Path, module: str) -> tuple[set[str], set[str], list[str]]:
    """(sections in the module's `STAGE`, sections its inputs and run functions read, unfollowed config uses)."""
    scan = ConfigReads(folder)
    mod = scan.module(module)
    stage = next(n.value for n in mod.tree.body if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "STAGE" for t in n.targets))
    kw = {k.arg: k.value for k in stage.keywords}
    declared = set(ast.literal_eval(kw["sections"]))
    read = set()
    for role in ("inputs", "run"):
        read |= scan.reads(module, kw[role].id)
    return declared, read, scan.unfollowed


def _stage_modules() -> list[str]:
    registry = ast.parse((ROOT / "tasks" / "stages.py").read_text())
    modules = next(ast.literal_eval(n.value) for n in registry.body if isinstance(n, ast.Assign)
                   and any(isinstance(t, ast.Name) and t.id == "_MODULES" for t in n.targets))
    return [m.split(".", 1)[1] for m in modules]


def test_every_stage_key_holds_the_sections_it_reads():
    from tasks.config import PipelineConfig

    fields = {f.name for f in dataclasses.fields(PipelineConfig)}
    problems = {}
    for module in _stage_modules():
        declared, read, unfollowed = stage_sections(ROOT / "tasks", module)
        assert read, f"the scan found no config read in tasks/{module}.py"  # the scan sees something
        assert declared <= fields, (module, declared - fields)
        if read - declared or unfollowed:
            problems[module] = {"missing": sorted(read - declared), "unfollowed": unfollowed}
    assert not problems


def test_the_scan_follows_helpers_and_sees_the_fit_check():
    _, read, _ = stage_sections(ROOT / "tasks", "fit")
    assert {"body", "fit", "fit_check"} <= read
    _, read, _ = stage_sections(ROOT / "tasks", "render")
    assert "avatar" in read  # through load_avatar -> load_layout -> uv_assets_dir (tasks.artifacts, tasks.bodies)


def test_the_scan_flags_a_missing_section_and_what_it_cannot_follow(tmp_path):
    (tmp_path / "helper.py").write_text(
        "from tasks.config import PipelineConfig\n"
        "def threshold(cfg: PipelineConfig):\n    return cfg.fit_check.min_mask_iou\n")
    (tmp_path / "stage.py").write_text(
        "from tasks.config import PipelineConfig\nfrom tasks.helper import threshold\n"
        "def inputs(ws, cfg: PipelineConfig):\n    return cfg.body\n"
        "def run(ws, cfg: PipelineConfig):\n    def inner():\n        return cfg.render.fps\n"
        "    return threshold(cfg), getattr(cfg, 'export')\n"
        "STAGE = Stage(name='s', sections=('body', 'render'), inputs=inputs, run=run)\n")
    declared, read, unfollowed = stage_sections(tmp_path, "stage")
    assert read - declared == {"fit_check"}
    assert unfollowed == ["stage.run: getattr(cfg, 'export')"]
    (tmp_path / "helper.py").write_text("def threshold(cfg):\n    return cfg.fit_check.min_mask_iou\n")
    declared, read, unfollowed = stage_sections(tmp_path, "stage")
    assert "helper.threshold: no parameter annotated PipelineConfig" in unfollowed
