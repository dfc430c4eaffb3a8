"""The fit's schedule: which variables each stage frees, the list of optimiser runs a config asks for, and one run.

Stages (each an optimiser run; LBFGS with a strong-Wolfe line search by default, or Adam):

1. ``camera``: global orientation + translation, from :func:`~dinar_core.fitting.init.init_camera`, on the torso
   keypoints only (the rest of the body cannot be trusted before the body is placed).
2. ``body``: + body pose and shape, on all BODY_25 keypoints, the mask silhouette and the priors; run once per entry
   of ``FitConfig.body_prior_schedule`` (``body1``, ``body2``, ...), the priors annealed from strong to weak.
3. ``detail``: + hand PCA, jaw and expression, with the hand and face keypoints; run only when some frame has
   hand or face detections (confidence > 0); frames without them keep these near rest through the priors.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from dinar_core.fitting.config import FitConfig
from dinar_core.fitting.objective import Problem, objective
from dinar_core.fitting.variables import FitVariables

STAGE_FIELDS = {
    "camera": ("global_orient", "transl"),
    "body": ("global_orient", "transl", "body_pose", "betas"),
    "detail": ("global_orient", "transl", "body_pose", "betas", "left_hand", "right_hand", "jaw_pose",
               "expression"),
}
"""The variables each stage optimises (the others stay fixed)."""


@dataclass(frozen=True)
class StageRun:
    """One optimiser run: the stage, its steps, the prior and silhouette multipliers, the name in the report."""

    stage: str
    iterations: int
    prior_scale: float = 1.0
    silhouette_scale: float = 1.0
    label: str | None = None
    silhouette_vertices: int | None = None
    """Vertices the silhouette terms use in this run (None: ``FitConfig.silhouette_vertices``)."""


@dataclass
class StageReport:
    """One stage's run: name, steps taken, loss evaluations, loss after each step (summed over frames)."""

    name: str
    iterations: int
    evaluations: int
    losses: list[float]
    seconds: float
    converged: bool


def stage_plan(cfg: FitConfig, has_detail: bool) -> list[StageRun]:
    """The runs of a fit: camera, one body run per ``cfg.body_prior_schedule`` entry (with the matching
    ``body_silhouette_schedule`` and ``silhouette_vertex_schedule`` values; the last repeats), then detail when
    ``has_detail`` and it has steps."""
    runs = [StageRun("camera", cfg.camera_iterations)]
    sil_schedule = tuple(cfg.body_silhouette_schedule) or (1.0,)
    counts = tuple(cfg.silhouette_vertex_schedule)
    for k, scale in enumerate(cfg.body_prior_schedule):
        sil_scale = sil_schedule[min(k, len(sil_schedule) - 1)]
        count = counts[min(k, len(counts) - 1)] if counts else None
        runs.append(StageRun("body", cfg.body_iterations, scale, sil_scale, f"body{k + 1}", count))
    if has_detail and cfg.detail_iterations > 0:
        runs.append(StageRun("detail", cfg.detail_iterations))
    return runs


def run_stage(p: Problem, v: FitVariables, run: StageRun) -> StageReport:
    """Optimise the stage's variables of ``v`` in place (with the shared shape, when there is one) until
    ``run.iterations`` steps or a relative loss change under ``ftol``. Raises FloatingPointError on a non-finite
    loss."""
    cfg = p.cfg
    names = [n for n in STAGE_FIELDS[run.stage] if getattr(v, n).numel() > 0]
    for name, t in v.tensors().items():
        t.requires_grad_(name in names)
    shared = p.shared_betas is not None
    if shared:
        p.shared_betas.requires_grad_("betas" in names)
    params = [p.shared_betas if shared and n == "betas" else getattr(v, n) for n in names]
    start, evals0 = time.perf_counter(), p.evaluations
    history: list[float] = []
    converged = False
    if cfg.optimizer == "lbfgs":
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=cfg.lbfgs_inner, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-9, tolerance_change=1e-12, history_size=20)
    else:
        opt = torch.optim.Adam(params, lr=cfg.adam_lr)

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        loss = objective(p, v, run.stage, run.prior_scale, run.silhouette_scale, run.silhouette_vertices)
        loss.backward()
        return loss

    steps = 0
    for steps in range(1, run.iterations + 1):
        if cfg.optimizer == "lbfgs":
            loss = float(opt.step(closure).detach())  # the loss at the start of this step (no extra evaluation)
        else:
            loss = float(closure().detach())
            opt.step()
        if not math.isfinite(loss):
            raise FloatingPointError(f"stage {run.stage}: the loss became {loss} at step {steps}")
        history.append(loss)
        if len(history) >= 2 and abs(history[-2] - history[-1]) <= cfg.ftol * max(abs(history[-2]), 1e-12):
            converged = True
            break
    for t in v.tensors().values():
        t.requires_grad_(False)
    if shared:
        p.shared_betas.requires_grad_(False)
        v.betas = p.shared_betas.expand(v.batch_size, -1).clone()
    return StageReport(run.label or run.stage, steps, p.evaluations - evals0, history, time.perf_counter() - start,
                       converged)
