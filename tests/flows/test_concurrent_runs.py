"""Two `dinar run` on one folder at the same time, as two real CLI processes (both talking to the test harness's
Prefect server, as two commands on a machine with ``PREFECT_API_URL`` set would): the runs folder's lock makes the
second wait for the first, and it then finds every stage fresh, so each stage runs once in total."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DINAR = [sys.executable, "-c", "from flows.cli import main; main()"]


@pytest.mark.usefixtures("prefect_harness")
def test_two_concurrent_runs_execute_each_stage_once(tmp_path, samples_dir):
    from prefect.settings import PREFECT_API_URL

    photos, runs = tmp_path / "photos", tmp_path / "runs"
    photos.mkdir()
    for name in ("sports2d_1.png", "sports2d_2.png"):
        shutil.copy(samples_dir / name, photos / name)
    cmd = DINAR + ["run", str(photos), "--out", str(runs), "--until", "segment", "--set", "runtime.lock_timeout=600"]
    procs = []
    for _ in range(2):
        env = dict(os.environ, PYTHONPATH=str(ROOT), PREFECT_API_URL=PREFECT_API_URL.value())
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    executions = {}
    for manifest in runs.glob("*/manifest.json"):
        for stage, rec in json.loads(manifest.read_text())["stages"].items():
            executions[(manifest.parent.name, stage)] = rec["executions"]
    assert executions == {(p, s): 1 for p in ("sports2d_1", "sports2d_2") for s in ("ingest", "segment")}
    assert sum("4 stage runs executed" in out for out in outputs) == 1, outputs
