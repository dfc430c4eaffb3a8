"""Stage `fit`: keypoints + mask -> body parameters in the photo's camera (DINAR's: fx = fy = ``fit.focal``, 5000 px
by default, centre (W//2, H//2)), with diagnostics.

Outputs per frame: for the SMPL-X body ``smplx/<frame>.pkl`` in DINAR's format and its camera
``smplx/<frame>_camera.json`` beside it (DINAR's pickle has none; ``tasks.artifacts``), for Anny
``smplx/<frame>_anny.npz`` (its own parameters and K); ``fit/<frame>_overlay.png`` (mesh edges and joints over the
photo), ``fit/<frame>_front.png`` and ``fit/<frame>_side.png`` (the fitted body), and ``fit/metrics.json``. The
``fit_check`` thresholds turn a poor fit into a `PoorFit` warning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dinar_core.keypoints.layout import BODY_25_NAMES as BODY25_NAMES
from dinar_core.fitting import fit_body
from dinar_core.keypoints.openpose import Keypoints2D
from dinar_core.overlay import draw_fit_overlay
from dinar_core.render.shading import shaded_render
from dinar_core.texture.render import framing_camera, rotate_about_vertical
from tasks.artifacts import read_keypoints, read_mask, read_rgb, write_anny_fit, write_png, write_smplx_fit
from tasks.bodies import body_kind, load_body, smplx_model_file
from tasks.config import PipelineConfig
from tasks.fit_check import fit_problems
from tasks.runner import Stage, StageOutput
from tasks.workspace import Workspace, atomic_write_json

VIEW_SIZE = (512, 384)  # (H, W) of the front and side diagnostic views


def fit_inputs(ws: Workspace, cfg: PipelineConfig) -> list[Path]:
    """Keypoints and masks of every frame, and the SMPL-X model file when that body is used."""
    frames = ws.frames()
    inputs = [ws.keypoints(f) for f in frames] + [ws.segm(f) for f in frames]
    if body_kind(cfg.body) == "smplx":
        inputs.append(smplx_model_file(cfg.body))
    return inputs


def fit(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    frames = ws.frames()
    body = load_body(cfg.body)
    keypoints = [read_keypoints(ws, f) for f in frames]
    masks = [read_mask(ws.segm(f)) for f in frames]
    sizes = [m.shape[:2] for m in masks]
    device = next(iter(body.model.buffers())).device
    result = fit_body(body.model, keypoints, masks, sizes, cfg.fit, device=device)

    outputs, warnings, per_frame = [], [], {}
    faces = result.faces.cpu().numpy()
    for i, frame in enumerate(frames):
        if body.kind == "smplx":
            outputs += write_smplx_fit(ws, frame, result.params, cfg.body.gender, i, result.K[i], sizes[i])
        else:
            outputs.append(write_anny_fit(ws, frame, result.params, i, result.K[i]))
        verts = result.vertices[i:i + 1]  # (1, V, 3) camera frame
        K = result.K[i]
        proj = (verts[0] @ K.T)
        points2d = (proj[:, :2] / proj[:, 2:3].clamp_min(1e-6)).cpu().numpy()
        rgb = read_rgb(ws.rgb(frame))
        overlay = draw_fit_overlay(rgb, points2d, faces, Keypoints2D.from_array(result.keypoints2d[i].cpu().numpy()),
                                   detected=keypoints[i])
        outputs.append(write_png(ws.fit_dir / f"{frame}_overlay.png", overlay))
        for name, angle in (("front", 0.0), ("side", 90.0)):
            turned = rotate_about_vertical(verts, angle)
            framed, K_view = framing_camera(turned, VIEW_SIZE)
            image = shaded_render(framed, K_view, result.faces, VIEW_SIZE)[0]
            outputs.append(write_png(ws.fit_dir / f"{frame}_{name}.png", image))
        m = result.metrics[i]
        per_frame[frame] = {
            "reprojection_error_px": m.reprojection_error_px, "reprojection_error_rel": m.reprojection_error_rel,
            "reprojection_error_px_all": m.reprojection_error_px_all, "mask_iou": m.mask_iou,
            "body_height_px": m.body_height_px, "partial_body": bool(result.partial_body[i]),
            "dropped_keypoints": [BODY25_NAMES[k] for k in result.dropped_keypoints[i]],
            "plausibility": m.plausibility.to_dict() if m.plausibility is not None else None,
        }
        problems = fit_problems(per_frame[frame], cfg.fit_check)
        if problems:
            warnings.append(f"PoorFit: {frame}: {'; '.join(problems)}; look at fit/{frame}_overlay.png and "
                            f"fit/{frame}_side.png")
        if result.dropped_keypoints[i]:
            names = ", ".join(BODY25_NAMES[k] for k in result.dropped_keypoints[i])
            warnings.append(f"CutLegKeypoints: {frame}: {names} dropped: they lie at the photo's bottom edge where the "
                            f"body runs out of the picture (fit.cut_edge_margin)")
        if result.partial_body[i]:
            warnings.append(f"PartialBody: {frame}: the legs are not visible; only the visible part is fitted")
    metrics = {
        "body": body.kind, "model_file": str(body.model_file) if body.model_file else None,
        "frames": per_frame, "seconds": result.seconds,
        "stages": [{"name": s.name, "iterations": s.iterations, "evaluations": s.evaluations,
                    "final_loss": s.losses[-1] if s.losses else None, "losses": s.losses,
                    "seconds": s.seconds, "converged": s.converged} for s in result.stages],
    }
    outputs.append(atomic_write_json(ws.fit_dir / "metrics.json", metrics))
    return StageOutput(outputs=outputs, warnings=warnings,
                       info={"body": body.kind, "frames": per_frame, "seconds": round(result.seconds, 2)})


STAGE = Stage(name="fit", version="3", after=("keypoints",), sections=("body", "fit", "fit_check"),
              inputs=fit_inputs, run=fit, tools=("torch", "smplx", "anny"))
