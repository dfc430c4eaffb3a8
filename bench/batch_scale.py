"""Issue 14's batch scale: a 1,000-photo batch through ``dinar run --until keypoints`` (ingest, segment,
keypoints), throughput and peak memory at 100, 500 and 1,000 photos.

The photos are the three full-body samples with one pixel changed per copy (new bytes: no two persons share a cache
key). The batch is the real command in one fresh process (as a user runs it, the temporary Prefect server included),
watched from outside: every second, the resident memory of its whole process tree (the pipeline and its children:
the Prefect server, the isolated decoder) and how many persons have their keypoints. Figures at each checkpoint:
photos so far, seconds since the command started, photos per second over the last stretch and overall, the peak
resident memory up to then. Bounded memory means the peak does not grow with the batch.

Also here (``bench.batch_full``): a 100-photo batch through the whole pipeline (fit, avatar, 6 s video, GLB) and
the same 10 photos with ``--workers 1`` and ``--workers 2`` (Dask worker processes, the thread rule of
`tasks.threads`: each worker takes its share of the cores).

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
from typing import Callable

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


def _with_keypoints(runs: Path) -> int:
    return sum(1 for _ in runs.glob("*/openpose/*_keypoints.json"))


def _finished(runs: Path) -> int:
    """Persons whose last stage (export: the GLB) is done."""
    import json

    count = 0
    for manifest in runs.glob("*/manifest.json"):
        try:
            stages = json.loads(manifest.read_text("utf-8")).get("stages", {})
        except (OSError, ValueError):  # being replaced right now: counted at the next look
            continue
        count += stages.get("export", {}).get("status") == "done"
    return count


def _batch(n: int, checkpoints: list[int], *, until: str | None, workers: int = 1,
           done: Callable[[Path], int] = _with_keypoints) -> dict:
    """`n` new photos through ``dinar run`` in one fresh process, watched every second from outside."""
    tmp = Path(tempfile.mkdtemp(prefix="dinar-batch-"))
    try:
        photos, runs = tmp / "photos", tmp / "runs"
        _make_photos(photos, n)
        env = dict(os.environ, PREFECT_HOME=str(tmp / "prefect"), DINAR_NO_LOCAL_SERVER="1")
        dinar = Path(sys.executable).with_name("dinar")
        command = [str(dinar), "run", str(photos), "--out", str(runs), "--workers", str(workers)]
        command += ["--until", until] if until else []
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak_tree = peak_proc = 0
        marks: list[dict] = []
        samples: list[tuple[float, int, int]] = []  # (seconds, done, tree rss)
        last = (0.0, 0)
        while proc.poll() is None:
            time.sleep(1.0)
            tree, largest = _tree_rss(proc.pid)
            peak_tree, peak_proc = max(peak_tree, tree), max(peak_proc, largest)
            finished, now = done(runs), time.perf_counter() - t0
            samples.append((round(now, 1), finished, tree))
            while len(marks) < len(checkpoints) and finished >= checkpoints[len(marks)]:
                rate = (finished - last[1]) / max(now - last[0], 1e-9)
                marks.append({"photos": finished, "seconds": round(now, 1), "photos_per_s_stretch": round(rate, 3),
                              "photos_per_s_overall": round(finished / now, 3),
                              "peak_tree_rss_mb": round(peak_tree / 2**20, 1),
                              "peak_process_rss_mb": round(peak_proc / 2**20, 1),
                              "tree_rss_now_mb": round(tree / 2**20, 1)})
                last = (now, finished)
        wall = time.perf_counter() - t0
        err = proc.stderr.read()[-2000:] if proc.stderr else ""
        finished = done(runs)
        # memory over the run, every ~5 % of the batch: does it grow with the persons processed?
        step = max(1, len(samples) // 20)
        trace = [{"s": s, "photos": d, "tree_rss_mb": round(r / 2**20, 1)} for s, d, r in samples[::step]]
        return {"photos": n, "until": until or "export", "workers": workers, "completed": finished,
                "returncode": proc.returncode, "wall_s": round(wall, 1), "photos_per_s": round(finished / wall, 3),
                "s_per_photo": round(wall / max(finished, 1), 2), "checkpoints": marks,
                "peak_tree_rss_mb": round(peak_tree / 2**20, 1), "peak_process_rss_mb": round(peak_proc / 2**20, 1),
                "memory_trace": trace, "stderr_tail": err if proc.returncode else ""}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(n: int | None = None) -> dict:
    """The preprocessing batch: `n` photos (default 1,000) through ``--until keypoints``."""
    n = n or int(os.environ.get("DINAR_BATCH_PHOTOS", CHECKPOINTS[-1]))
    return _batch(n, [c for c in CHECKPOINTS if c <= n] or [n], until="keypoints")


def run_full(n: int = 100, compare: int = 10) -> dict:
    """`n` photos through the whole pipeline with one worker; then `compare` photos with one and with two workers
    (each a fresh process and fresh photos, so nothing is cached)."""
    full = _batch(n, sorted({c for c in (10, 50, n) if c <= n}), until=None, done=_finished)
    one, two = (_batch(compare, [compare], until=None, workers=w, done=_finished) for w in (1, 2))
    return {"full_batch": full, "workers": {"1": one, "2": two},
            "two_workers_speedup": round(one["wall_s"] / max(two["wall_s"], 1e-9), 2)}


if __name__ == "__main__":
    import json

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else None), indent=1))
