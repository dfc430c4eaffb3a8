"""`make bench`: run the benchmarks and write each one's figures to bench/results/<name>.json.

Usage: python -m bench.run [name ...]   (default: every benchmark whose module is present)
Benchmarks measure; they never fail a build. Timed goals are stated beside the figures, not asserted in tests.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = ["pipeline", "rasterizer", "nets_first_stage", "nets_second_stage", "export", "neural_avatar", "texture",
              "stages", "fitting", "end_to_end", "first_result", "batch_scale", "batch_full", "fit_load", "decode",
              "texture_back", "eval", "training"]


def machine() -> dict:
    import os

    import torch

    return {"python": platform.python_version(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "cuda": torch.cuda.is_available(), "processor": platform.processor() or platform.machine()}


def main(names: list[str]) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in names or BENCHMARKS:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            print(f"[bench] {name}: not available ({exc})")
            continue
        print(f"[bench] {name} ...", flush=True)
        t0 = time.time()
        try:
            figures = module.run()
            status = "ok"
        except Exception:  # record the failure beside the others, keep going
            figures, status = {"error": traceback.format_exc()}, "error"
        out = {"benchmark": name, "status": status, "seconds": round(time.time() - t0, 1),
               "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), "figures": figures}
        (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(figures, indent=2)[:4000])
        print(f"[bench] {name}: {status} in {out['seconds']} s -> {RESULTS / (name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
