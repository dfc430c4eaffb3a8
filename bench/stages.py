"""Seconds per stage, before and after: the same sample photos through the pipeline of two source trees.

``before`` is a git ref (``BENCH_BEFORE_REF``, default ``77cc94a^1``: the tree before issue 11's avatar work) checked
out as a detached worktree under the system's temp folder; ``after`` is this tree. Each tree runs in its own child
process (its own Prefect harness and state folder) with **its own default configuration**, as a user's `dinar run`
would: the comparison is of what each version does by default (the after tree's defaults draw a 1024^2 texture and
a 6 s turntable at 30 fps, the before tree's 256^2 and 2 s at 15 fps). A warm-up person is run first in each child
(Prefect's temporary server, model loads), then every sample photo; the rounds alternate before/after so that other
load on the machine hits both alike. Per stage: the median seconds over photos and rounds, and after / before.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE_REF = os.environ.get("BENCH_BEFORE_REF", "77cc94a^1")
ROUNDS = int(os.environ.get("BENCH_STAGE_ROUNDS", "1"))

_CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
tree, photos = sys.argv[1], sys.argv[2:]
sys.path.insert(0, tree)
from flows.pipeline import process_person
from flows.settings import configure_prefect, flow_run_settings
configure_prefect()
out = []
with flow_run_settings():
    for i, photo in enumerate([photos[0]] + photos):
        runs = Path(tempfile.mkdtemp(prefix="dinar-stages-"))
        t0 = time.perf_counter()
        process_person(photos=photo, out=str(runs), config={})
        wall = time.perf_counter() - t0
        manifest = json.loads(next(runs.glob("*/manifest.json")).read_text())
        stages = {k: v.get("seconds") for k, v in manifest["stages"].items()}
        status = {k: v.get("status") for k, v in manifest["stages"].items()}
        if i:  # the first is the warm-up
            out.append({"photo": Path(photo).name, "wall_s": round(wall, 2), "stages_s": stages, "status": status})
print("STAGES_JSON " + json.dumps(out))
"""


def _worktree(ref: str) -> Path:
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], check=True, capture_output=True,
                         text=True).stdout.strip()
    path = Path(tempfile.gettempdir()) / f"dinar-bench-{sha}"
    if not (path / "tasks").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path), sha], check=True,
                       capture_output=True)
    return path


def _child(tree: Path, photos: list[Path]) -> list[dict]:
    state = Path(tempfile.mkdtemp(prefix="dinar-stages-state-"))
    env = dict(os.environ, PYTHONPATH=str(tree), DINAR_STATE_DIR=str(state), PREFECT_HOME=str(state / "prefect"))
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(tree), *map(str, photos)], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=3600)
    for line in proc.stdout.splitlines():
        if line.startswith("STAGES_JSON "):
            return json.loads(line[len("STAGES_JSON "):])
    raise RuntimeError(f"{tree}: the child ended with {proc.returncode}: {proc.stderr[-2000:]}")


def run() -> dict:
    photos = sorted((ROOT / "data" / "samples").glob("sports2d_*.png"))
    trees = {"before": _worktree(BEFORE_REF), "after": ROOT}
    load = round(os.getloadavg()[0], 2)
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(ROUNDS):
        for name, tree in trees.items():
            runs[name] += _child(tree, photos)
    stages = sorted({s for rs in runs.values() for r in rs for s in r["stages_s"]})
    table = {}
    for s in stages:
        med = {}
        for name, rs in runs.items():
            xs = [r["stages_s"][s] for r in rs if r["stages_s"].get(s) is not None and r["status"].get(s) == "done"]
            med[name] = round(statistics.median(xs), 2) if xs else None
        ratio = round(med["after"] / med["before"], 2) if med["before"] and med["after"] else None
        table[s] = {**med, "after_over_before": ratio}
    return {"before_ref": BEFORE_REF, "rounds": ROUNDS, "photos": [p.name for p in photos],
            "load_average_1min_at_start": load, "load_average_1min_at_end": round(os.getloadavg()[0], 2),
            "median_seconds_per_stage": table, "runs": runs,
            "goals": {"avatar<=5s_per_person": (table.get("avatar", {}).get("after") or 1e9) <= 5.0,
                      "fit_after/before<=1.2": (table.get("fit", {}).get("after_over_before") or 1e9) <= 1.2}}
