"""Preprocessing throughput (ingest, segment, keypoints): seconds per stage per photo, and a 10-person batch four
ways.

1. first run through Prefect (1 worker); 2. the cached rerun (goal <= 5% of the first run); 3. the same batch with
the stage functions called directly, no Prefect (goal: Prefect <= 1.15x of it); 4. `--workers 2` (Dask) vs 1
(goal >= 1.6x). The Prefect server is started (and a flow run warmed up) before any clock starts: its start-up
(15-30 s) is a per-process constant, reported separately.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _make_batch(folder: Path, n: int) -> None:
    samples = sorted((ROOT / "data" / "samples").glob("sports2d_*.png"))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rgb = np.array(Image.open(samples[i % len(samples)]).convert("RGB"))
        rgb[0, 0] = (37 * i) % 256  # different bytes, so no two persons share a cache key
        Image.fromarray(rgb).save(folder / f"person{i:02d}.png")


def _stage_seconds(runs: Path) -> dict:
    per = {}
    for manifest in runs.glob("*/manifest.json"):
        for stage, rec in json.loads(manifest.read_text())["stages"].items():
            per.setdefault(stage, []).append(rec["seconds"])
    return {s: {"median": round(statistics.median(v), 3), "max": round(max(v), 3), "n": len(v)}
            for s, v in per.items()}


def _batch(tmp: Path, photos: Path, n: int, until: str | None) -> dict:
    from flows.cli import _task_runner
    from flows.pipeline import direct_process_folder, process_folder
    from tasks.config import PipelineConfig

    tag = until or "all"
    figures: dict = {"persons": n, "stages": f"ingest..{tag}"}
    serial = process_folder.with_options(task_runner=_task_runner(1, None))
    t0 = time.perf_counter()
    first = serial(photos=str(photos), out=str(tmp / f"runs1-{tag}"), config={}, until=until)
    figures["first_run_s"] = round(time.perf_counter() - t0, 2)
    figures["per_stage_seconds_per_photo"] = _stage_seconds(tmp / f"runs1-{tag}")
    assert first["complete"] == n, first

    t0 = time.perf_counter()
    cached = serial(photos=str(photos), out=str(tmp / f"runs1-{tag}"), config={}, until=until)
    figures["cached_rerun_s"] = round(time.perf_counter() - t0, 2)
    figures["cached_rerun_executed"] = cached["executed"]
    figures["cached_over_first"] = round(figures["cached_rerun_s"] / figures["first_run_s"], 4)

    t0 = time.perf_counter()
    direct_process_folder(str(photos), str(tmp / f"runs_direct-{tag}"), PipelineConfig(), until=until)
    figures["direct_no_prefect_s"] = round(time.perf_counter() - t0, 2)
    figures["prefect_over_direct"] = round(figures["first_run_s"] / figures["direct_no_prefect_s"], 3)

    two = process_folder.with_options(task_runner=_task_runner(2, None))
    t0 = time.perf_counter()
    out2 = two(photos=str(photos), out=str(tmp / f"runs2-{tag}"), config={}, until=until)
    figures["workers2_s"] = round(time.perf_counter() - t0, 2)
    figures["workers2_speedup_over_1"] = round(figures["first_run_s"] / figures["workers2_s"], 3)
    assert out2["complete"] == n, out2
    figures["goals"] = {"cached_over_first<=0.05": figures["cached_over_first"] <= 0.05,
                        "prefect_over_direct<=1.15": figures["prefect_over_direct"] <= 1.15,
                        "workers2_speedup>=1.6": figures["workers2_speedup_over_1"] >= 1.6}
    return figures


def run(n: int = 10) -> dict:
    """The batch twice: the preprocessing DAG (ingest..keypoints, ~0.3 s of work per photo, so orchestration
    overheads show) and the whole pipeline (ingest..export with the Anny body, ~15 s per photo)."""
    from flows.settings import configure_prefect, flow_run_settings

    configure_prefect()
    with flow_run_settings():  # as `dinar run` runs its flows
        return _run(n)


def _run(n: int) -> dict:
    from flows.pipeline import process_folder

    tmp = Path(tempfile.mkdtemp(prefix="dinar-bench-"))
    photos = tmp / "photos"
    _make_batch(photos, n)
    t0 = time.perf_counter()
    warm = tmp / "warm"
    _make_batch(warm / "in", 1)
    process_folder(photos=str(warm / "in"), out=str(warm / "out"), config={})  # server start + model loads
    figures = {"prefect_startup_and_warmup_s": round(time.perf_counter() - t0, 2),
               "preprocessing": _batch(tmp, photos, n, "keypoints"),
               "full_pipeline": _batch(tmp, photos, n, None)}
    shutil.rmtree(tmp, ignore_errors=True)
    return figures
