"""CPU cost of the body fit (``dinar_core.fitting.fit_body``) with SMPL-X-sized and Anny bodies.

Each case runs in a fresh subprocess (so its peak resident memory is its own): a synthetic photo (512 x 384, the
body ~410 px tall) made from known parameters, keypoints with 2 px noise and 3 dropped joints, the rasterized
mask; the default ``FitConfig``. SMPL-X is the synthetic model file of the test suite (the real array sizes:
10,475 vertices, 20,908 faces), Anny the model shipped in its wheel (13,718 vertices). Figures: seconds per photo
(fit only; model loading reported apart), loss evaluations and optimiser steps per stage, peak RSS, and the fit's
quality (Procrustes joint error, reprojection error, mask IoU), with 1 and 2 torch threads.

Run: ``.venv/bin/python -m bench.run fitting`` (writes bench/results/fitting.json) or call ``run()``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = [("smplx", 1, 1), ("smplx", 2, 1), ("smplx", 2, 3), ("anny", 1, 1), ("anny", 2, 1)]
"""(backend, torch threads, frames fitted in one batch)."""


def _case(backend: str, threads: int | str, frames: int) -> dict:
    """One fit; `threads` a number, or ``auto`` for the pipeline's thread rule (`tasks.threads`). With
    ``DINAR_BENCH_QUICK`` set, a few optimiser steps per stage only (to check that a benchmark runs)."""
    import os
    import resource
    import time
    from dataclasses import replace

    import torch

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    if threads == "auto":
        from tasks.threads import apply_threads

        rule = apply_threads("auto").as_dict()
        threads = rule["threads"]
    else:
        rule = None
        torch.set_num_threads(int(threads))
    from dinar_core.fitting import FitConfig, fit_body
    from tests.helpers.fitting_scenes import joint_errors, make_scene, natural_pose, place

    t0 = time.perf_counter()
    if backend == "smplx":
        from dinar_core.body import SMPLXBody
        from dinar_core.fitting.adapters import SMPLXFitBody
        from tests.helpers.synthetic_smplx import write_synthetic_smplx

        folder = Path(tempfile.mkdtemp())
        write_synthetic_smplx(folder)
        body = SMPLXFitBody(SMPLXBody(folder))
    else:
        from dinar_core.body.anny_model import AnnyBody
        from dinar_core.fitting.adapters import AnnyFitBody

        body = AnnyFitBody(AnnyBody())
    load = time.perf_counter() - t0
    size = (512, 384)
    v = natural_pose(body, frames, seed=0, scale=0.06, yaw_deg=8.0)
    if backend == "anny":
        v.betas = (0.5 + 0.15 * torch.randn(v.betas.shape, generator=torch.Generator().manual_seed(1))).clamp(
            0.05, 0.95)
    scenes = make_scene(body, place(body, v, size), size, seed=1)
    t0 = time.perf_counter()
    cfg = FitConfig(share_shape=False)  # different bodies batched
    if os.environ.get("DINAR_BENCH_QUICK"):
        cfg = replace(cfg, camera_iterations=2, body_iterations=1, detail_iterations=1)
    fit = fit_body(body, [s.keypoints for s in scenes], [s.mask for s in scenes], [size] * frames, cfg)
    seconds = time.perf_counter() - t0
    pa = joint_errors(fit, scenes)
    return {
        "backend": backend, "threads": threads, "thread_rule": rule, "frames": frames, "vertices": int(fit.vertices.shape[1]),
        "model_load_s": round(load, 2), "fit_s": round(seconds, 2), "s_per_photo": round(seconds / frames, 2),
        "stages": [{"name": s.name, "steps": s.iterations, "evaluations": s.evaluations,
                    "seconds": round(s.seconds, 2), "final_loss": round(s.losses[-1], 3)} for s in fit.stages],
        "evaluations": sum(s.evaluations for s in fit.stages),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pa_mpjpe_cm": [round(100 * e, 2) for e in pa],
        "reprojection_error_rel": [round(m.reprojection_error_rel, 4) for m in fit.metrics],
        "mask_iou": [round(m.mask_iou, 3) for m in fit.metrics],
    }


def run() -> dict:
    results = []
    for backend, threads, frames in CASES:
        proc = subprocess.run([sys.executable, "-m", "bench.fitting", backend, str(threads), str(frames)],
                              cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        results.append(json.loads(line[-1]) if proc.returncode == 0 and line else
                       {"backend": backend, "threads": threads, "frames": frames, "error": proc.stderr[-2000:]})
    return {"goal": "<= 20 s per photo with the SMPL-X backend on 2 CPU cores", "cases": results}


if __name__ == "__main__":
    print(json.dumps(_case(sys.argv[1], sys.argv[2] if sys.argv[2] == "auto" else int(sys.argv[2]),
                           int(sys.argv[3]))))
