"""Issue 14's batch scale: a 1,000-photo batch through ``dinar run --until keypoints`` (ingest, segment,
keypoints), throughput and peak memory at 100, 500 and 1,000 photos.

The photos are the three full-body samples with one pixel changed per copy (new bytes: no two persons share a cache
key). The batch is the real command in one fresh process (as a user runs it, the temporary Prefect server included),
watched from outside: every second, the resident memory of its whole process tree (the pipeline and its children:
the Prefect server, the isolated decoder) and how many persons have their keypoints. Figures at each checkpoint:
photos so far, seconds since the command started, photos per second over the last stretch and overall, the peak
resident memory up to then. Bounded memory means the peak does not grow with the batch.

Run: ``python -m bench.run batch_scale`` (~10 min here); ``DINAR_BATCH_PHOTOS=200`` for a shorter run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = (100, 500, 1000)


def _make_photos(folder: Path, n: int) -> None:
    from PIL import Image

    samples = [np.array(Image.open(p).convert("RGB")) for p in sorted((ROOT / "data" / "samples").glob("sports2d_*.png"))]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rgb = samples[i % len(samples)].copy()
        rgb[0, i % rgb.shape[1]] = (rgb[0, i % rgb.shape[1]].astype(int) + 1 + i // rgb.shape[1]) % 256
        Image.fromarray(rgb).save(folder / f"person{i:04d}.png", compress_level=1)


def _tree_rss(pid: int) -> tuple[int, int]:
    """(total, largest) resident bytes of process `pid` and all its descendants."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    sizes = []
    for p in procs:
        try:
            sizes.append(p.memory_info().rss)
        except psutil.NoSuchProcess:
            pass
    return sum(sizes), max(sizes, default=0)


def _done(runs: Path) -> int:
    return sum(1 for _ in runs.glob("*/openpose/*_keypoints.json"))


def run(n: int | None = None) -> dict:
    n = n or int(os.environ.get("DINAR_BATCH_PHOTOS", CHECKPOINTS[-1]))
    checkpoints = [c for c in CHECKPOINTS if c <= n] or [n]
    tmp = Path(tempfile.mkdtemp(prefix="dinar-batch-"))
    try:
        photos, runs = tmp / "photos", tmp / "runs"
        _make_photos(photos, n)
        env = dict(os.environ, PREFECT_HOME=str(tmp / "prefect"), DINAR_NO_LOCAL_SERVER="1")
        dinar = Path(sys.executable).with_name("dinar")
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(dinar), "run", str(photos), "--out", str(runs), "--until", "keypoints"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak_tree = peak_proc = 0
        marks: list[dict] = []
        samples: list[tuple[float, int, int]] = []  # (seconds, done, tree rss)
        last = (0.0, 0)
        while proc.poll() is None:
            time.sleep(1.0)
            tree, largest = _tree_rss(proc.pid)
            peak_tree, peak_proc = max(peak_tree, tree), max(peak_proc, largest)
            done, now = _done(runs), time.perf_counter() - t0
            samples.append((round(now, 1), done, tree))
            while len(marks) < len(checkpoints) and done >= checkpoints[len(marks)]:
                rate = (done - last[1]) / max(now - last[0], 1e-9)
                marks.append({"photos": done, "seconds": round(now, 1), "photos_per_s_stretch": round(rate, 3),
                              "photos_per_s_overall": round(done / now, 3),
                              "peak_tree_rss_mb": round(peak_tree / 2**20, 1),
                              "peak_process_rss_mb": round(peak_proc / 2**20, 1),
                              "tree_rss_now_mb": round(tree / 2**20, 1)})
                last = (now, done)
        wall = time.perf_counter() - t0
        err = proc.stderr.read()[-2000:] if proc.stderr else ""
        done = _done(runs)
        # memory over the run, every ~5 % of the batch: does it grow with the persons processed?
        step = max(1, len(samples) // 20)
        trace = [{"s": s, "photos": d, "tree_rss_mb": round(r / 2**20, 1)} for s, d, r in samples[::step]]
        return {"photos": n, "completed": done, "returncode": proc.returncode, "wall_s": round(wall, 1),
                "photos_per_s": round(done / wall, 3), "checkpoints": marks,
                "peak_tree_rss_mb": round(peak_tree / 2**20, 1), "peak_process_rss_mb": round(peak_proc / 2**20, 1),
                "memory_trace": trace, "stderr_tail": err if proc.returncode else ""}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import json

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else None), indent=1))
