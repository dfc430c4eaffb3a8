"""SIGKILL in the middle of a batch, then `dinar run` again: it finishes, no half-written artifact is taken as
done, and no stage that had finished is redone. Runs the real CLI in subprocesses (each starts its own
temporary Prefect server), killed as a process group as a scheduler or a user's Ctrl-\\ would."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
DINAR = [sys.executable, "-c", "from flows.cli import main; main()"]


def _done_stages(runs: Path) -> dict:
    done = {}
    for manifest in runs.glob("*/manifest.json"):
        try:
            data = json.loads(manifest.read_text())
        except (json.JSONDecodeError, FileNotFoundError):
            continue
        for stage, rec in data.get("stages", {}).items():
            if rec.get("status") == "done":
                done[(manifest.parent.name, stage)] = rec["executions"]
    return done


def test_sigkill_mid_batch_then_resume(tmp_path, samples_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):  # six persons: copies of the samples with different bytes
        src = samples_dir / f"sports2d_{i % 3 + 1}.png"
        rgb = np.array(Image.open(src).convert("RGB"))
        rgb[0, 0] = (i * 40) % 256
        Image.fromarray(rgb).save(photos / f"p{i}.png")
    runs = tmp_path / "runs"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = DINAR + ["run", str(photos), "--out", str(runs), "--until", "keypoints"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            done = _done_stages(runs)
            if len(done) >= 4:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.1)
        else:
            raise AssertionError("no progress to kill in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = _done_stages(runs)
    assert 4 <= len(killed_at) < 18, killed_at

    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout + res.stderr
    final = _done_stages(runs)
    assert len(final) == 18  # 6 persons x (ingest, segment, keypoints)
    for key, executions in killed_at.items():
        assert final[key] == executions, f"{key} was redone"
    assert not list(runs.rglob("*.tmp-*")), "temporary files left behind"
    for png in runs.glob("*/segm/*.png"):
        assert Image.open(png).size == Image.open(png.parent.parent / "rgb" / png.name).size
