"""`dinar --help`, `dinar status` and `dinar report` import neither torch, nor Prefect, nor OpenCV, nor MediaPipe
(issue 14: they answer in well under a second). Structural checks in a fresh interpreter, not timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "prefect", "cv2", "mediapipe", "dask")

# Runs the CLI in-process as `dinar ARGS`, then prints the heavy modules it imported as the last line (JSON).
_RUN_CLI = """
import json, sys
from flows.cli import main
sys.argv = ["dinar", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "heavy": [m for m in HEAVY if m in sys.modules]}))
"""


def _fresh(code: str, *args: str, tmp_path: Path) -> tuple[dict, str]:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{code}", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    *before, last = proc.stdout.rstrip("\n").split("\n")
    return json.loads(last), "\n".join(before)


def _runs(tmp_path: Path) -> Path:
    """A runs folder of two persons: alice with a failed stage, bob with one stage done."""
    runs = tmp_path / "runs"
    stages = {"alice": {"ingest": {"status": "done", "seconds": 1.0},
                        "segment": {"status": "failed", "error": {"type": "MaskError", "message": "no person"}}},
              "bob": {"ingest": {"status": "done"}}}
    for person, recs in stages.items():
        (runs / person).mkdir(parents=True)
        (runs / person / "manifest.json").write_text(json.dumps(
            {"person": person, "sources": [], "created": "2026-01-01T00:00:00Z", "stages": recs}))
    return runs


def test_importing_the_cli_and_the_config_imports_no_heavy_library(tmp_path):
    out, _ = _fresh("import flows.cli, tasks.config, tasks.status, tasks.report\n"
                    "import json, sys\nprint(json.dumps({'heavy': [m for m in HEAVY if m in sys.modules]}))",
                    tmp_path=tmp_path)
    assert out["heavy"] == []


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["status", "--help"], ["report", "--help"]])
def test_help_imports_no_heavy_library(tmp_path, args):
    out, text = _fresh(_RUN_CLI, *args, tmp_path=tmp_path)
    assert out == {"code": 0, "heavy": []}
    assert "Usage" in text  # the help was printed, not an error


def test_status_imports_no_heavy_library(tmp_path):
    runs = _runs(tmp_path)
    out, text = _fresh(_RUN_CLI, "status", "--json", str(runs), tmp_path=tmp_path)
    assert out == {"code": 0, "heavy": []}
    table = {st["person"]: st["stages"] for st in json.loads(text)}
    assert table["alice"]["segment"] == {"status": "failed", "error": "MaskError: no person", "warnings": [],
                                         "seconds": None, "executions": 0}
    assert table["bob"]["export"] == {"status": "pending"}
    out, text = _fresh(_RUN_CLI, "status", str(runs), tmp_path=tmp_path)  # the rich table too
    assert out == {"code": 0, "heavy": []}
    assert "alice" in text and "no person" in text


def test_report_imports_no_heavy_library(tmp_path):
    runs = _runs(tmp_path)
    out, _ = _fresh(_RUN_CLI, "report", str(runs), tmp_path=tmp_path)
    assert out == {"code": 0, "heavy": []}
    assert "no person" in (runs / "report.html").read_text("utf-8")


def test_stage_names_without_importing_the_stages_are_the_stages_names():
    from tasks.stages import all_stages, stage_names

    assert stage_names() == [s.name for s in all_stages()]


def test_a_lazy_package_keeps_its_public_names(tmp_path):
    # a submodule named like the function it exports (texture/unwrap.py, unwrap) imported first must not shadow it
    out, _ = _fresh("import dinar_core.texture.unwrap, json, sys\n"
                    "from dinar_core.texture import unwrap, ClassicAvatarConfig\n"
                    "import dinar_core.fitting as fitting\n"
                    "try:\n    fitting.no_such_name\n    missing = False\n"
                    "except AttributeError:\n    missing = True\n"
                    "print(json.dumps({'unwrap': callable(unwrap) and unwrap.__module__, 'missing': missing,\n"
                    "                  'losses': fitting.losses.__name__, 'dir': 'fit_body' in dir(fitting),\n"
                    "                  'cfg': ClassicAvatarConfig.__module__}))", tmp_path=tmp_path)
    assert out == {"unwrap": "dinar_core.texture.unwrap", "missing": True, "losses": "dinar_core.fitting.losses",
                   "dir": True, "cfg": "dinar_core.texture.config"}
