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

CASES = [("smplx", 1, 1), ("smplx", 2, 1), ("smplx", 2, 3), ("anny", 1, 1), ("anny", 2, 1), ("anny", 1, 3)]
"""(backend, torch threads, frames fitted in one batch), with the default ``FitConfig``."""

BEFORE_ISSUE_14 = {"partial_forward": False, "aim_limbs": False, "body_iterations": 10, "detail_iterations": 10}
"""The fit as it was before issue 14 (the settings each change below turns back on)."""

CHANGES = [
    ("before issue 14", {}),
    ("+ partial forward", {"partial_forward": True}),
    ("+ limbs aimed at the keypoints", {"partial_forward": True, "aim_limbs": True}),
    ("+ 5 steps per body and detail run (today's default)", {"partial_forward": True, "aim_limbs": True,
                                                              "body_iterations": 5, "detail_iterations": 5}),
    ("option: two body runs (prior x20, x1) instead of three", {
        "partial_forward": True, "aim_limbs": True, "body_iterations": 5, "detail_iterations": 5,
        "body_prior_schedule": [20.0, 1.0], "body_silhouette_schedule": [0.1, 1.0]}),
]
"""Issue 14's changes to the fit, cumulative: each row is ``BEFORE_ISSUE_14`` updated by its settings, fitted on
the same scenes in the same run (1 torch thread, one frame), so the rows' ratios are the changes' gains."""

SCENES = 4
"""Scenes per change row (seeds 0..3): the row reports their mean seconds and errors."""


def _case(backend: str, threads: int | str, frames: int, overrides: dict | None = None, seed: int = 0) -> dict:
    """One fit; `threads` a number, or ``auto`` for the pipeline's thread rule (`tasks.threads`); ``overrides``
    of the default ``FitConfig`` (tuples as lists); ``seed`` picks the scene. With ``DINAR_BENCH_QUICK`` set, a few
    optimiser steps per stage only (to check that a benchmark runs)."""
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
    t0 = time.perf_counter()
    import torch._dynamo  # noqa: F401  (torch.optim imports it on the first optimiser: once per process)

    optimizer_import = time.perf_counter() - t0
    size = (512, 384)
    v = natural_pose(body, frames, seed=seed, scale=0.06, yaw_deg=8.0)
    if backend == "anny":
        v.betas = (0.5 + 0.15 * torch.randn(v.betas.shape, generator=torch.Generator().manual_seed(seed + 1))).clamp(
            0.05, 0.95)
    scenes = make_scene(body, place(body, v, size), size, seed=seed + 1)
    t0 = time.perf_counter()
    fields = {k: tuple(x) if isinstance(x, list) else x for k, x in (overrides or {}).items()}
    cfg = replace(FitConfig(share_shape=False), **fields)  # different bodies batched
    if os.environ.get("DINAR_BENCH_QUICK"):
        cfg = replace(cfg, camera_iterations=2, body_iterations=1, detail_iterations=1)
    fit = fit_body(body, [s.keypoints for s in scenes], [s.mask for s in scenes], [size] * frames, cfg)
    seconds = time.perf_counter() - t0
    pa = joint_errors(fit, scenes)
    return {
        "backend": backend, "threads": threads, "thread_rule": rule, "frames": frames, "vertices": int(fit.vertices.shape[1]),
        "overrides": overrides or {}, "seed": seed,
        "model_load_s": round(load, 2), "optimizer_import_s": round(optimizer_import, 2), "fit_s": round(seconds, 2), "s_per_photo": round(seconds / frames, 2),
        "stages": [{"name": s.name, "steps": s.iterations, "evaluations": s.evaluations,
                    "seconds": round(s.seconds, 2), "final_loss": round(s.losses[-1], 3)} for s in fit.stages],
        "evaluations": sum(s.evaluations for s in fit.stages),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pa_mpjpe_cm": [round(100 * e, 2) for e in pa],
        "reprojection_error_rel": [round(m.reprojection_error_rel, 4) for m in fit.metrics],
        "mask_iou": [round(m.mask_iou, 3) for m in fit.metrics],
    }


def _subprocess_case(backend: str, threads: int, frames: int, overrides: dict | None = None,
                     seed: int = 0) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.fitting", backend, str(threads), str(frames),
                           json.dumps(overrides or {}), str(seed)],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return (json.loads(line[-1]) if proc.returncode == 0 and line else
            {"backend": backend, "threads": threads, "frames": frames, "error": proc.stderr[-2000:]})


def changes(backend: str) -> list[dict]:
    """``CHANGES`` on ``SCENES`` scenes: per row the mean seconds per photo, evaluations, Procrustes joint error,
    reprojection error and mask IoU, and the speed-up against the first row."""
    rows = []
    for label, settings in CHANGES:
        cases = [_subprocess_case(backend, 1, 1, {**BEFORE_ISSUE_14, **settings}, seed) for seed in range(SCENES)]
        ok = [c for c in cases if "error" not in c]
        if len(ok) < len(cases):
            rows.append({"change": label, "error": next(c["error"] for c in cases if "error" in c)})
            continue

        def mean(key, pick=lambda x: x):
            return sum(pick(c[key]) for c in ok) / len(ok)

        rows.append({"change": label, "settings": {**BEFORE_ISSUE_14, **settings},
                     "s_per_photo": round(mean("fit_s"), 2), "evaluations": round(mean("evaluations"), 1),
                     "pa_mpjpe_cm": round(mean("pa_mpjpe_cm", lambda x: x[0]), 2),
                     "reprojection_error_rel": round(mean("reprojection_error_rel", lambda x: x[0]), 4),
                     "mask_iou": round(mean("mask_iou", lambda x: x[0]), 3),
                     "per_scene_s": [c["fit_s"] for c in ok]})
    base = rows[0].get("s_per_photo")
    for r in rows:
        if base and r.get("s_per_photo"):
            r["speedup"] = round(base / r["s_per_photo"], 2)
    return rows


def run() -> dict:
    results = [_subprocess_case(backend, threads, frames) for backend, threads, frames in CASES]
    return {"goal": "issue 14: the fit >= 3x faster than before it, dinar eval no worse",
            "changes": {backend: changes(backend) for backend in ("anny", "smplx")}, "cases": results}


if __name__ == "__main__":
    print(json.dumps(_case(sys.argv[1], sys.argv[2] if sys.argv[2] == "auto" else int(sys.argv[2]),
                           int(sys.argv[3]), json.loads(sys.argv[4]) if len(sys.argv) > 4 else None,
                           int(sys.argv[5]) if len(sys.argv) > 5 else 0)))
