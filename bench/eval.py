"""`make eval`: the evaluation protocol (docs/evaluation.md) on the shipped data, its tables into the README.

1. The shipped Pose2Sim frames (``data/multiview/pose2sim_demo``: one man, 2 instants x 4 calibrated cameras).
2. A synthetic corpus made here by ``dinar synth`` (``EVAL_SYNTH_PERSONS`` persons x ``EVAL_SYNTH_VIEWS`` views,
   seed 0; default 20 x 8) with full ground truth.

Each is evaluated through the Prefect flow (``flows.evaluate.evaluate_folder``) into ``runs/eval/<set>/``, with
every method that applies. Figures: the summary per method and bucket, the best method per metric, seconds per
person (first run and cached rerun), copied into bench/results/eval.json. ``EVAL_CONFIG=FILE`` evaluates the
pipeline with that YAML over the defaults (the runs keep their own caches: a config change is a new cache key).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "multiview" / "pose2sim_demo"


def _evaluate(data: Path, out: Path, config: dict) -> dict:
    from flows.evaluate import evaluate_folder
    from tasks.eval_report import summarize_rows

    t0 = time.perf_counter()
    summary = evaluate_folder(data=str(data), out=str(out), config=config)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = evaluate_folder(data=str(data), out=str(out), config=config)
    rerun = time.perf_counter() - t0
    data_json = json.loads((out / "eval.json").read_text())
    rows = data_json["rows"]
    persons = max(1, summary["evaluated"])
    scales = [float(p["placement"]["depth_scale"]) for p in data_json["persons"].values()
              if (p.get("placement") or {}).get("depth_scale") is not None]

    def table(placement: str) -> dict:
        return {m: {b: {k: (None if v is None else [round(v[0], 4), round(v[1], 4), v[2]]) for k, v in ms.items()}
                    for b, ms in by.items()} for m, by in summarize_rows(rows, placement).items()}

    return {"data": str(data), "out": str(out), "persons": summary["persons"], "evaluated": summary["evaluated"],
            "errors": summary["errors"], "seconds_first_run": round(first, 1),
            "seconds_per_person": round(first / persons, 1), "seconds_cached_rerun": round(rerun, 2),
            "cached_on_rerun": again["cached"], "best": summary["best"], "table": table("calibrated"),
            "table_scale_aligned": table("scale-aligned"),
            "depth_scale": {"mean": round(sum(scales) / len(scales), 4) if scales else None,
                            "mean_abs_error": round(sum(abs(1 - v) for v in scales) / len(scales), 4)
                            if scales else None, "persons": len(scales)},
            "summary_md": str(out / "summary.md")}


def run() -> dict:
    from flows.settings import configure_prefect, flow_run_settings

    configure_prefect(False)
    base = ROOT / "runs" / "eval"
    lpips = os.environ.get("DINAR_LPIPS_WEIGHTS")
    # One torch thread, always: the fit's float reductions (and so its result) depend on the thread count, and the
    # automatic count depends on the machine's load. Pinned, two runs of one commit agree and commits compare.
    config: dict = {"runtime": {"threads": 1}}
    variant = os.environ.get("EVAL_CONFIG")  # a YAML file over the defaults (e.g. configs/fast-fit.yaml)
    if variant:
        from tasks.config import resolve_config, to_dict

        config = to_dict(resolve_config(None, variant))
        config["runtime"]["threads"] = 1
    if lpips:
        config["eval"] = {"lpips_weights": lpips}
    figures: dict = {"config_file": variant} if variant else {}
    with flow_run_settings():
        figures["pose2sim"] = _evaluate(SHIPPED, base / "pose2sim", config)
        n = int(os.environ.get("EVAL_SYNTH_PERSONS", "20"))
        k = int(os.environ.get("EVAL_SYNTH_VIEWS", "8"))
        synth = base / f"synth_{n}x{k}"
        if not (synth / "dataset.json").is_file():
            from tasks.synth import synth_dataset

            figures["synth_seconds"] = synth_dataset(synth, persons=n, views=k, seed=0).seconds
        figures["synth"] = _evaluate(synth, base / f"synth_{n}x{k}_eval", config)
    return figures
