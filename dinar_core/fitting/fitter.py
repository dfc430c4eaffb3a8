"""SMPLify-X-style fitting of a body model to 2D keypoints and a person mask, in DINAR's camera.

Entry point: :func:`fit_body`. The body comes in through the :class:`~dinar_core.fitting.variables.FitBody`
protocol (``dinar_core.fitting.adapters`` wraps ``SMPLXBody`` and ``AnnyBody``; any object with ``spec``,
``faces``, ``device``, ``forward(FitVariables)`` and ``keypoints(output)`` works), so the fitter owns the
optimisable tensors and the body model stays stateless.

The pieces, one module each: ``config`` (:class:`FitConfig`), ``targets`` (the inputs prepared once), ``init``
(the torso-based start), ``objective`` (the loss terms), ``schedule`` (the stages and one optimiser run),
``metrics`` (the quality figures).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from dinar_core.body import AnnyBody, SMPLXBody
from dinar_core.body.parts import Part, body_parts
from dinar_core.fitting import contact
from dinar_core.fitting.adapters import AnnyFitBody, SMPLXFitBody
from dinar_core.fitting.config import FitConfig
from dinar_core.fitting.init import aim_limbs, init_camera
from dinar_core.fitting.metrics import FrameMetrics, Plausibility, frame_metrics, limit_violations, waist_girth
from dinar_core.fitting.objective import HeightModel, Problem, vertex_order
from dinar_core.fitting.schedule import StageReport, run_stage, stage_plan
from dinar_core.fitting.targets import LEG_KEYPOINTS, FitTargets, prepare_targets
from dinar_core.fitting.variables import FitBody, FitVariables
from dinar_core.render.camera import project


@dataclass
class BodyFit:
    """The fitted bodies of B frames.

    variables: the optimised :class:`FitVariables` (detached).
    params: the backend's own parameters (``SMPLXParams`` for SMPL-X; from the adapter's ``to_params``), or None.
    vertices: (B, V, 3) camera frame; faces: (F, 3).
    keypoints3d: (B, 137, 3) fitted OpenPose-layout keypoints, camera frame.
    keypoints2d: (B, 137, 3) their projections (x, y) and a confidence: 1 where a detection supported it, 0 for
        keypoints the body cannot provide and for unseen legs of a partial body, 0.3 elsewhere (inferred).
    K: (B, 3, 3) DINAR's intrinsics per frame; image_sizes: (H, W) per frame.
    partial_body: per frame, True when the legs are not seen (both ankles missing or outside the image).
    metrics: per frame :class:`FrameMetrics`; stages: :class:`StageReport` per stage run.
    seconds: wall time of the fit (metrics included).
    dropped_keypoints: per frame, the OpenPose indices of leg keypoints dropped at a cut frame edge
        (``FitConfig.cut_edge_margin``).
    """

    variables: FitVariables
    params: object
    vertices: Tensor
    faces: Tensor
    keypoints3d: Tensor
    keypoints2d: Tensor
    K: Tensor
    image_sizes: list[tuple[int, int]]
    partial_body: list[bool]
    metrics: list[FrameMetrics]
    stages: list[StageReport]
    seconds: float = 0.0
    dropped_keypoints: list[list[int]] = field(default_factory=list)


def as_fit_body(body) -> FitBody:
    """``body`` itself if it follows :class:`FitBody`, else the adapter for a ``dinar_core.body`` model."""
    if hasattr(body, "spec") and hasattr(body, "forward") and hasattr(body, "keypoints"):
        return body
    if isinstance(body, SMPLXBody):
        return SMPLXFitBody(body)
    if isinstance(body, AnnyBody):
        return AnnyFitBody(body)
    raise TypeError(f"cannot fit a {type(body).__name__}: expected a FitBody, SMPLXBody or AnnyBody")


def fit_body(body, keypoints: Sequence, masks: Sequence[np.ndarray | None], image_sizes: Sequence[tuple[int, int]],
             cfg: FitConfig | None = None, device: torch.device | str = "cpu") -> BodyFit:
    """Fit one body per frame to its keypoints and mask, in DINAR's camera (f = cfg.focal, centre (W//2, H//2)).

    body: a :class:`FitBody`, or an ``SMPLXBody`` / ``AnnyBody`` (wrapped by the adapters); its buffers must be on
        ``device``.
    keypoints: B ``Keypoints2D`` (BODY_25 (25, 3), left_hand/right_hand (21, 3), face (70, 3); pixels).
    masks: B (H, W) bool person masks (None: no silhouette term for that frame).
    image_sizes: B (H, W).
    Raises KeypointsError (NaN, all confidences zero, no torso), NoPersonError (empty mask), MaskError (mask of
    the wrong size, or holding under ``cfg.min_body_fraction`` of the body keypoints), ValueError (mismatched list
    lengths).
    """
    t0 = time.perf_counter()
    cfg = cfg or FitConfig()
    device = torch.device(device)
    B = len(keypoints)
    if B == 0 or len(masks) != B or len(image_sizes) != B:
        raise ValueError(f"need as many masks and image sizes as keypoint sets (>= 1), got {B} keypoints, "
                         f"{len(masks)} masks, {len(image_sizes)} sizes")
    image_sizes = [(int(h), int(w)) for h, w in image_sizes]
    fb = as_fit_body(body)

    # 1. Targets: keypoints in the image, masks as distance maps and outlines, body heights, DINAR's K.
    targets = prepare_targets(keypoints, masks, image_sizes, fb.spec, cfg, device)
    # 2. Start: the rest body, turned and placed on the torso keypoints.
    v, problem = _start(fb, targets, cfg, device)
    # 3. Optimise: camera, (the limbs aimed at the keypoints,) then body with annealed priors, then hands and face.
    stages = []
    for run in stage_plan(cfg, targets.has_detail):
        stages.append(run_stage(problem, v, run))
        if run.stage == "camera" and cfg.aim_limbs:
            aim_limbs(fb, v, targets.target, targets.K)
    # 4. The fitted bodies, their keypoints and the quality figures.
    v = v.detach()
    with torch.no_grad():
        out = fb.forward(v)
        kp3 = fb.keypoints(out).points  # (B, 137, 3)
        proj = project(kp3, targets.K)  # (B, 137, 2)
        verts2d = project(out.vertices, targets.K).cpu().numpy()  # (B, V, 2)
    metrics = frame_metrics(proj.cpu().numpy(), targets.keypoints, problem.available.cpu().numpy(), verts2d,
                            fb.faces.cpu().numpy(), masks, image_sizes, targets.scale_px)
    for m, plaus in zip(metrics, plausibility(fb, problem, v, kp3)):
        m.plausibility = plaus
    params = fb.to_params(v) if hasattr(fb, "to_params") else None
    return BodyFit(variables=v, params=params, vertices=out.vertices, faces=fb.faces, keypoints3d=kp3,
                   keypoints2d=fitted_keypoints2d(proj, targets, problem.available), K=targets.K,
                   image_sizes=image_sizes, partial_body=targets.partial, metrics=metrics, stages=stages,
                   seconds=time.perf_counter() - t0, dropped_keypoints=targets.dropped)


def _start(fb: FitBody, targets: FitTargets, cfg: FitConfig, device: torch.device) -> tuple[FitVariables, Problem]:
    """The rest variables with the camera start of :func:`~dinar_core.fitting.init.init_camera`, and the
    :class:`Problem` the stages share."""
    B = targets.target.shape[0]
    v = FitVariables.rest(fb.spec, B, device)
    with torch.no_grad():
        rest_out = fb.forward(v)
        rest_kp = fb.keypoints(rest_out)
    available = rest_kp.available.to(device).bool()
    init = init_camera(rest_kp.points, rest_out.joints[:, 0], available, targets.target, targets.K, cfg.focal)
    v.global_orient = init.global_orient.clone()
    v.transl = init.transl.clone()
    shared = v.betas[:1].clone() if cfg.share_shape and B > 1 and v.betas.numel() else None
    order = vertex_order(rest_out.vertices.shape[1], cfg, device)
    parts = vertex_parts(fb)
    cover_weight = shapes = None
    if parts is not None:
        parts = parts.to(device)
        loose = (parts == int(Part.TORSO)) | (parts == int(Part.LEG_L)) | (parts == int(Part.LEG_R))
        weight = torch.where(loose, float(cfg.coverage_loose_scale), 1.0)  # (V,)
        cover_weight = weight
        shapes = contact.contact_shapes(rest_out.vertices[0], rest_kp.points[0], parts)
    problem = Problem(fb, cfg, targets, available, order, init.global_orient.clone(), shared, cover_weight, shapes,
                      height_model(fb, device), contact.probe_table(available.cpu()), parts)
    return v, problem


def vertex_parts(fb: FitBody) -> Tensor | None:
    """(V,) :class:`~dinar_core.body.parts.Part` of each vertex: the adapter's ``vertex_parts`` if it has them, else
    from the skinning weights of the model it wraps, else None (then the fit has no contact terms and a symmetric
    silhouette)."""
    parts = getattr(fb, "vertex_parts", None)
    if parts is None and hasattr(fb, "body"):
        parts = body_parts(fb.body)
    return parts


def height_model(fb: FitBody, device: torch.device) -> HeightModel | None:
    """The standing height (top minus bottom vertex of the rest pose, along the canonical up axis y) and its
    gradient in the shape at the rest shape: :class:`HeightModel`, or None for a body without shape parameters."""
    v = FitVariables.rest(fb.spec, 1, device)
    if v.betas.numel() == 0:
        return None
    betas = v.betas.clone().requires_grad_(True)
    v.betas = betas
    with torch.enable_grad():
        y = fb.forward(v).vertices[0, :, 1]
        top, bottom = int(y.argmax()), int(y.argmin())
        height = y[top] - y[bottom]
        (grad,) = torch.autograd.grad(height, betas)
    return HeightModel(float(height.detach()), grad[0].detach(), betas[0].detach())


def plausibility(fb: FitBody, p: Problem, v: FitVariables, kp3: Tensor) -> list[Plausibility | None]:
    """The 3D checks of every fitted frame (:class:`~dinar_core.fitting.metrics.Plausibility`); None per frame for a
    body without part labels. kp3: (B, 137, 3) fitted keypoints, camera frame."""
    B = v.batch_size
    if p.shapes is None:
        return [None] * B
    from dinar_core.rotations import axis_angle_to_matrix

    torso = p.parts.cpu().numpy() == int(Part.TORSO)
    with torch.no_grad():
        rest = FitVariables.rest(fb.spec, B + 1, fb.device)
        rest.betas = torch.cat([rest.betas[:1], v.betas], 0)  # row 0: the rest shape (the population mean)
        out = fb.forward(rest)
        verts = out.vertices.cpu().numpy()
        rkp = fb.keypoints(out).points.cpu().numpy()
        depths = {k: d.cpu().numpy() for k, d in contact.penetration_depths(kp3, p.probes, p.shapes).items()}
        up = axis_angle_to_matrix(v.global_orient)[:, :, 1]
        feet = contact.feet_heights(kp3, up).cpu().numpy()
    both_feet = contact.feet_seen(p.targets.target).cpu().numpy()
    girth = [waist_girth(verts[k], rkp[k, contact.MIDHIP], rkp[k, contact.NECK], torso) for k in range(B + 1)]
    spec = fb.spec
    lower, upper = spec.pose_lower.cpu().numpy(), spec.pose_upper.cpu().numpy()
    out_list = []
    for b in range(B):
        pen = {k: 1000 * float(d[b]) for k, d in depths.items()}
        out_list.append(Plausibility(
            height_m=float(verts[b + 1, :, 1].max() - verts[b + 1, :, 1].min()), waist_girth_m=girth[b + 1],
            girth_change_m=girth[b + 1] - girth[0], penetration_mm=max(pen.values()),
            penetrations={k: d for k, d in pen.items() if d > 1.0},
            limit_violations=limit_violations(v.body_pose[b].cpu().numpy(), lower, upper, spec.joint_names),
            feet_gap_mm=1000 * float(abs(feet[b, 0] - feet[b, 1])) if both_feet[b] else float("nan")))
    return out_list


def fitted_keypoints2d(proj: Tensor, targets: FitTargets, available: Tensor) -> Tensor:
    """(B, 137, 3) projected fitted keypoints with a confidence: 1 where a detection supported the point, 0.3 where
    it is inferred, 0 where the body has no such point and for unseen legs of a partial body. proj: (B, 137, 2)."""
    observed = (targets.target[:, :, 2] > 0) & available
    conf = torch.where(observed, 1.0, 0.3) * available
    leg_idx = list(LEG_KEYPOINTS)
    for b, partial in enumerate(targets.partial):
        if partial:
            conf[b, leg_idx] = torch.where(observed[b, leg_idx], conf[b, leg_idx], torch.zeros_like(conf[b, leg_idx]))
    return torch.cat([proj, conf[..., None]], -1)
