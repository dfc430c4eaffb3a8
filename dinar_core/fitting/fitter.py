"""SMPLify-X-style fitting of a body model to 2D keypoints and a person mask, in DINAR's camera.

Entry point: :func:`fit_body`. The body comes in through the :class:`~dinar_core.fitting.variables.FitBody`
protocol (``dinar_core.fitting.adapters`` wraps ``SMPLXBody``; any object with ``spec``, ``faces``, ``device``,
``forward(FitVariables)`` and ``keypoints(output)`` works), so the fitter owns the optimisable tensors and the
body model stays stateless.

Stages (each an optimiser run; LBFGS with a strong-Wolfe line search by default, or Adam):

1. ``camera``: global orientation + translation, from :func:`~dinar_core.fitting.init.init_camera`, on the torso
   keypoints only (the rest of the body cannot be trusted before the body is placed).
2. ``body``: + body pose and shape, on all BODY_25 keypoints, the mask silhouette and the priors.
3. ``detail``: + hand PCA, jaw and expression, with the hand and face keypoints; run only when some frame has
   hand or face detections (confidence > 0); frames without them keep these near rest through the priors.

Objective per frame (summed over frames: frames are independent bodies; batching only shares the work):
``data`` (Geman-McClure on residuals in units of the body's image height, times confidence) +
``silhouette`` (outside-distance of the projected vertices + chamfer from the mask outline to them) +
priors (shape L2, pose L2 with a heavier spine, joint-angle limits, elbow/knee bending, hand PCA and
expression L2, and -- for legs that are not seen -- a pull towards the rest pose).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from dinar_core.errors import KeypointsError, MaskError, NoPersonError
from dinar_core.fitting import losses
from dinar_core.fitting.init import LSHO, MIDHIP, NECK, RSHO, TORSO, init_camera
from dinar_core.fitting.metrics import (body_height_px, mask_iou, reprojection_error_px, reprojection_error_rel,
                                        silhouette)
from dinar_core.rotations import axis_angle_to_matrix
from dinar_core.fitting.variables import BodySpec, FitBody, FitVariables
from dinar_core.render.camera import DINAR_FOCAL, make_K, project

NUM_KEYPOINTS = 137
BODY = slice(0, 25)
HANDS = slice(25, 67)
FACE = slice(67, 137)
RHIP, LHIP = 9, 12
RKNEE, RANKLE, LKNEE, LANKLE = 10, 11, 13, 14
LEFT_FOOT_KP = (19, 20, 21)  # LBigToe, LSmallToe, LHeel
RIGHT_FOOT_KP = (22, 23, 24)
LEG_KEYPOINTS = (RKNEE, RANKLE, LKNEE, LANKLE) + LEFT_FOOT_KP + RIGHT_FOOT_KP


@dataclass
class FitConfig:
    """How the fit runs. Weights are relative to the data term, whose unit is one keypoint off by 1% of the body's
    image height (so they do not depend on the image size)."""

    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    """LBFGS (strong-Wolfe line search, SMPLify-X's choice: few iterations) or Adam (``adam_lr``)."""
    camera_iterations: int = 15
    """Stage 1 optimiser steps (LBFGS: outer steps of up to ``lbfgs_inner`` evaluations)."""
    body_iterations: int = 10
    """Stage 2 optimiser steps, per entry of ``body_prior_schedule``."""
    body_prior_schedule: tuple[float, ...] = (20.0, 4.0, 1.0)
    """Stage 2 runs once per entry with the pose and shape prior weights multiplied by it (SMPLify's annealing):
    strong priors first, so the body turns and moves as a whole to the keypoints before its limbs bend."""
    body_silhouette_schedule: tuple[float, ...] = (0.1, 0.5, 1.0)
    """Multiplies the silhouette weights in the same stage-2 runs (shorter: the last value repeats). The
    silhouette cannot tell the left leg from the right: weighted fully from the start, it holds limbs that
    begin on the wrong side (crossed knees in a profile view) where the keypoints would have moved them."""
    detail_iterations: int = 10
    """Stage 3 optimiser steps."""
    lbfgs_inner: int = 10
    """LBFGS ``max_iter``: function evaluations per outer step, at most (x 1.25 with the line search)."""
    adam_lr: float = 0.01
    """Adam learning rate (radians / metres per step, roughly)."""
    ftol: float = 1e-6
    """Stop a stage when the loss changes by less than this fraction between two steps."""
    focal: float = DINAR_FOCAL
    """fx = fy in pixels; DINAR's is 5000 whatever the image size."""
    robust_sigma: float = 0.1
    """Geman-McClure scale, as a fraction of the body height (a keypoint this far off counts half)."""
    w_body_keypoints: float = 1.0
    w_hand_keypoints: float = 0.5
    w_face_keypoints: float = 0.5
    w_silhouette_outside: float = 20.0
    """Projected vertices outside the mask (mean squared outside distance)."""
    w_silhouette_coverage: float = 20.0
    """Mask outline farther than the body's outline (mean robust squared distance to the nearest projected
    vertex)."""
    silhouette_sigma: float = 0.05
    """Geman-McClure scale of the coverage term, as a fraction of the body height: mask outline further than this
    from the body (a held object, a loose coat) pulls with bounded force instead of bending the body towards it."""
    w_betas: float = 0.05
    w_pose: float = 0.02
    w_limits: float = 50.0
    w_bending: float = 50.0
    w_hand_pose: float = 0.05
    w_expression: float = 0.05
    w_jaw: float = 0.5
    w_init_orient: float = 100.0
    """Stage 1: keep the global orientation near the torso-based initialisation (squared axis-angle difference).
    Without it, a torso whose proportions differ from the mean shape is matched by pitching the body (a far
    camera shows pitch only as foreshortening), a minimum the later stages do not leave."""
    w_upright: float = 20.0
    """Stages 2-3: squared depth component of the body's up axis in the camera frame (sin^2 of the pitch).
    Photos are taken roughly level, and a far camera (f = 5000 px) hardly shows pitch: without this the fit
    leans the body towards or away from the camera to absorb keypoint noise."""
    w_upright_body: float = 50.0
    """Stages 2-3: lean of the torso (mid-hip -> neck) and of the legs (mid-ankle -> mid-hip) towards or away from
    the camera (``losses.lean_penalty``). ``w_upright`` constrains only the root's orientation; the pose can still
    lean the body through the spine, hips and ankles, which a far camera cannot see."""
    w_leg_depth: float = 20.0
    """Stages 2-3: lean of each seen thigh and shin towards or away from the camera (unseen ones get
    ``w_upright_body``). A frontal photo cannot tell a leg stepping forward from one stepping back."""
    w_unseen_legs: float = 5.0
    """Pull towards rest for leg joints none of whose keypoints below them are seen."""
    mask_samples: int = 400
    """Points sampled on each mask's outline for the coverage term."""
    silhouette_vertices: int = 4000
    """Vertices (a fixed, seeded subset; 0 = all) the silhouette terms use: their cost is linear in it."""
    mask_pad: float = 0.25
    """The outside-distance map extends this fraction of the image beyond each side (border replicated, so a
    mask cut by the frame continues beyond it and the body may leave the picture there)."""
    cut_edge_margin: float = 0.08
    """Where the mask runs off the bottom of the photo (the legs continue below the frame), knee, ankle and foot
    keypoints within this fraction of the image height of that edge are dropped: a landmark model still places
    them, guessing from the visible part (on an upper-body portrait, a 'knee' on the hands a hip's width below the
    hip), and the fit would fold the leg up towards the camera to reach it. 0 keeps them."""
    min_body_fraction: float = 0.05
    """A mask that holds fewer than this fraction of the detected body keypoints shows someone (or something)
    else: MaskError."""
    share_shape: bool = True
    """Several photos of one person are fitted with one body shape (they show the same body): the avatar's
    geometry is then the same whichever photo it is posed from, and each photo constrains it."""
    seed: int = 0
    """Seeds the mask outline sampling (the only randomness): the same inputs give bit-identical fits."""


@dataclass
class StageReport:
    """One stage's run: name, steps taken, loss evaluations, loss after each step (summed over frames)."""

    name: str
    iterations: int
    evaluations: int
    losses: list[float]
    seconds: float
    converged: bool


@dataclass
class FrameMetrics:
    """Quality of one frame's fit.

    reprojection_error_px / _rel: mean distance of the detected BODY_25 keypoints to the fitted ones (pixels /
    fraction of the body's image height); reprojection_error_px_all: over body, hands and face;
    mask_iou: IoU of the fitted mesh's filled silhouette with the mask (NaN without a mask);
    body_height_px: the height used for _rel.
    """

    reprojection_error_px: float
    reprojection_error_rel: float
    reprojection_error_px_all: float
    mask_iou: float
    body_height_px: float


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


# ----------------------------------------------------------------------------------------------------------------
# Inputs


def _stack_keypoints(keypoints: Sequence, image_sizes: Sequence[tuple[int, int]]) -> np.ndarray:
    """Keypoints2D list -> (B, 137, 3) float32 with confidences of points outside the image set to 0.

    Raises KeypointsError for NaN, all-zero confidences or no torso."""
    out = []
    for b, (kp, (H, W)) in enumerate(zip(keypoints, image_sizes)):
        arr = np.concatenate([kp.body, kp.left_hand, kp.right_hand, kp.face]).astype(np.float32)  # (137, 3)
        if arr.shape != (NUM_KEYPOINTS, 3):
            raise ValueError(f"frame {b}: keypoints must stack to ({NUM_KEYPOINTS}, 3), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise KeypointsError(f"frame {b}: keypoints contain NaN or infinite values",
                                 fix="re-run the keypoints stage or fix the OpenPose JSON")
        if not (arr[:, 2] > 0).any():
            raise KeypointsError(f"frame {b}: all keypoint confidences are zero (no person detected)",
                                 fix="check the photo shows a person; re-run the keypoints stage")
        inside = (arr[:, 0] >= 0) & (arr[:, 0] < W) & (arr[:, 1] >= 0) & (arr[:, 1] < H)
        arr[~inside | (arr[:, 2] <= 0), 2] = 0.0
        arr[arr[:, 2] <= 0] = 0.0
        ok = arr[:, 2] > 0
        top = ok[NECK] or (ok[RSHO] and ok[LSHO])
        bottom = ok[MIDHIP] or (ok[RHIP] and ok[LHIP])
        if not ((top and bottom) or (ok[RSHO] and ok[LSHO])):
            raise KeypointsError(
                f"frame {b}: no torso among the keypoints (need both shoulders, or the neck and the hips)",
                fix="use a photo where the person's shoulders are visible; check the keypoints overlay")
        out.append(arr)
    return np.stack(out)


@dataclass
class _Silhouettes:
    """Per-frame silhouette data on a common canvas. dt: (B, 1, Hc, Wc) outside distance (pixels); size: (B, 2)
    valid (W, H) of each frame's padded map; pad: (B,) offset of the image inside it; outline: (B, M, 2) pixel
    positions of outline samples; outline_w: (B, M) 1 real / 0 padding; has_mask: (B,) bool."""

    dt: Tensor
    size: Tensor
    pad: Tensor
    outline: Tensor
    outline_w: Tensor
    has_mask: Tensor


def _prepare_masks(masks: Sequence[np.ndarray | None], image_sizes, cfg: FitConfig,
                   device: torch.device) -> _Silhouettes:
    import cv2

    gen = torch.Generator().manual_seed(cfg.seed)
    dts, pads, outlines = [], [], []
    for b, (mask, (H, W)) in enumerate(zip(masks, image_sizes)):
        if mask is None:
            dts.append(np.zeros((1, 1), np.float32))
            pads.append(0)
            outlines.append(np.zeros((0, 2), np.float32))
            continue
        mask = np.asarray(mask)
        if mask.shape != (H, W):
            raise MaskError(f"frame {b}: mask is {mask.shape[:2]} but the image is {(H, W)}",
                            fix="segment the same (EXIF-rotated) image the keypoints were detected on")
        mask = mask.astype(bool)
        if not mask.any():
            raise NoPersonError(f"frame {b}: the person mask is empty", fix="check the segmentation of this photo "
                                "(segm/<frame>.png) or give a user mask")
        pad = int(round(cfg.mask_pad * max(H, W)))
        padded = cv2.copyMakeBorder(mask.astype(np.uint8), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        dt = cv2.distanceTransform((padded == 0).astype(np.uint8), cv2.DIST_L2, 5).astype(np.float32)
        dts.append(dt)
        pads.append(pad)
        eroded = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
        edge = mask & (eroded == 0)
        edge[0, :] = edge[-1, :] = False  # where the frame cuts the person, the mask's edge is not the body's
        edge[:, 0] = edge[:, -1] = False
        ij = np.argwhere(edge)
        if len(ij) > cfg.mask_samples:
            ij = ij[torch.randperm(len(ij), generator=gen)[: cfg.mask_samples].numpy()]
        outlines.append(np.stack([ij[:, 1] + 0.5, ij[:, 0] + 0.5], 1).astype(np.float32))
    Hc = max(d.shape[0] for d in dts)
    Wc = max(d.shape[1] for d in dts)
    canvas = np.stack([np.pad(d, ((0, Hc - d.shape[0]), (0, Wc - d.shape[1])), mode="edge") for d in dts])
    M = max(1, max(len(o) for o in outlines))
    outline = np.zeros((len(dts), M, 2), np.float32)
    outline_w = np.zeros((len(dts), M), np.float32)
    for b, o in enumerate(outlines):
        outline[b, : len(o)] = o
        outline_w[b, : len(o)] = 1.0
    return _Silhouettes(
        dt=torch.from_numpy(canvas)[:, None].to(device),
        size=torch.tensor([[d.shape[1], d.shape[0]] for d in dts], dtype=torch.float32, device=device),
        pad=torch.tensor(pads, dtype=torch.float32, device=device),
        outline=torch.from_numpy(outline).to(device), outline_w=torch.from_numpy(outline_w).to(device),
        has_mask=torch.tensor([m is not None for m in masks], device=device))


def drop_cut_leg_keypoints(target: np.ndarray, masks: Sequence[np.ndarray | None], margin: float) -> list[list[int]]:
    """Zero the confidence of leg keypoints near the bottom edge of frames whose mask is cut by that edge
    (``FitConfig.cut_edge_margin``). target: (B, 137, 3), changed in place. Returns the dropped indices per frame."""
    dropped: list[list[int]] = []
    for b, mask in enumerate(masks):
        gone: list[int] = []
        if mask is not None and margin > 0:
            m = np.asarray(mask, bool)
            H = m.shape[0]
            if m[-1].any():
                for k in LEG_KEYPOINTS:
                    if target[b, k, 2] > 0 and target[b, k, 1] >= H * (1.0 - margin):
                        target[b, k] = 0.0
                        gone.append(k)
        dropped.append(gone)
    return dropped


def _leg_prior_mask(spec: BodySpec, target: np.ndarray) -> np.ndarray:
    """(B, Jb) 1 for leg joints whose keypoints below them are all unseen (they get pulled to rest)."""
    B = target.shape[0]
    out = np.zeros((B, spec.num_body_joints), np.float32)
    seen = target[:, :, 2] > 0
    below = {("L", "hip"): (LKNEE, LANKLE) + LEFT_FOOT_KP, ("R", "hip"): (RKNEE, RANKLE) + RIGHT_FOOT_KP,
             ("L", "knee"): (LANKLE,) + LEFT_FOOT_KP, ("R", "knee"): (RANKLE,) + RIGHT_FOOT_KP,
             ("L", "ankle"): LEFT_FOOT_KP, ("R", "ankle"): RIGHT_FOOT_KP}
    for joint, side, level in spec.leg_joints:
        out[:, joint] = ~seen[:, list(below[(side, level)])].any(1)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Objective


@dataclass
class _Problem:
    body: FitBody
    cfg: FitConfig
    target: Tensor  # (B, 137, 3)
    K: Tensor  # (B, 3, 3)
    scale: Tensor  # (B,) body height in pixels
    sil: _Silhouettes
    leg_mask: Tensor  # (B, Jb)
    available: Tensor  # (137,) bool
    vertex_subset: Tensor | None = None  # (V',) int64 vertices used by the silhouette terms
    init_orient: Tensor | None = None  # (B, 3) stage 1's starting orientation
    shared_betas: Tensor | None = None  # (1, num_betas) the one shape of every frame (FitConfig.share_shape)
    evaluations: int = 0


# (lower pair, upper pair) of BODY_25 indices: mid-hip (8) -> neck (1); ankles (11, 14) -> mid-hip (8).
_LEAN_SEGMENTS = torch.tensor([[[8, 8], [1, 1]], [[11, 14], [8, 8]]])
# Each thigh and shin (lower end first): an unseen one should hang straight down, as a standing person's does.
# Without this, a partial body (legs out of the picture) bends its unseen legs towards the camera, where they
# project into the photo and cover the mask of whatever is at the bottom of the picture (arms, a held object).
_LEG_BONES = torch.tensor([[[RKNEE, RKNEE], [RHIP, RHIP]], [[RANKLE, RANKLE], [RKNEE, RKNEE]],
                           [[LKNEE, LKNEE], [LHIP, LHIP]], [[LANKLE, LANKLE], [LKNEE, LKNEE]]])


def _objective(p: _Problem, v: FitVariables, stage: str, prior_scale: float = 1.0,
               silhouette_scale: float = 1.0) -> Tensor:
    """Total loss (scalar) of stage 'camera' | 'body' | 'detail'; ``prior_scale`` multiplies the pose and shape
    priors, ``silhouette_scale`` the silhouette terms."""
    cfg, spec = p.cfg, p.body.spec
    if p.shared_betas is not None:
        v = replace(v, betas=p.shared_betas.expand(v.batch_size, -1))
    out = p.body.forward(v)
    kp = p.body.keypoints(out).points  # (B, 137, 3)
    proj = project(kp, p.K)  # (B, 137, 2)
    conf = p.target[:, :, 2] * p.available.to(p.target)  # (B, 137)
    part_w = torch.zeros(NUM_KEYPOINTS, device=conf.device)
    if stage == "camera":
        part_w[list(TORSO)] = 1.0
    else:
        part_w[BODY] = cfg.w_body_keypoints
        if stage == "detail":
            part_w[HANDS] = cfg.w_hand_keypoints
            part_w[FACE] = cfg.w_face_keypoints
    # Data unit: one keypoint off by 1% of the body height costs ~1.
    data = 1e4 * losses.reprojection_loss(proj, p.target[..., :2], conf * part_w, p.scale, cfg.robust_sigma)
    total = data
    if stage == "camera" and p.init_orient is not None:
        total = total + cfg.w_init_orient * ((v.global_orient - p.init_orient) ** 2).sum(-1)
    if stage != "camera":
        if p.sil.has_mask.any() and (cfg.w_silhouette_outside > 0 or cfg.w_silhouette_coverage > 0):
            verts = out.vertices if p.vertex_subset is None else out.vertices[:, p.vertex_subset]
            verts2d = project(verts, p.K)  # (B, V', 2)
            has = p.sil.has_mask.to(verts2d)
            front = (verts[..., 2] > 1e-3).to(verts2d)  # (B, V')
            outside = losses.silhouette_outside_loss(verts2d + p.sil.pad[:, None, None], p.sil.dt, p.sil.size,
                                                     p.scale, front)
            cover = losses.silhouette_coverage_loss(verts2d, p.sil.outline, p.sil.outline_w, p.scale,
                                                     cfg.silhouette_sigma or None)
            total = total + 1e4 * silhouette_scale * has * (cfg.w_silhouette_outside * outside
                                                             + cfg.w_silhouette_coverage * cover)
        up = axis_angle_to_matrix(v.global_orient)[:, :, 1]  # (B, 3) canonical +y in the camera frame
        total = total + cfg.w_upright * up[:, 2] ** 2
        segments = _LEAN_SEGMENTS.to(kp.device)
        seen = (p.target[:, segments.flatten(1), 2] > 0).all(-1).to(kp)  # (B, S): only segments both ends seen
        total = total + cfg.w_upright_body * losses.lean_penalty(kp, segments, seen)
        bones = _LEG_BONES.to(kp.device)
        unseen = (p.target[:, bones[:, 0, 0], 2] <= 0).to(kp)  # (B, 4): the bone's lower end not detected
        total = total + losses.lean_penalty(kp, bones, cfg.w_upright_body * unseen + cfg.w_leg_depth * (1 - unseen))
        pose = v.body_pose  # (B, Jb, 3)
        rest = torch.zeros_like(pose[0]) if spec.pose_rest is None else spec.pose_rest.to(pose)
        total = total + prior_scale * cfg.w_betas * losses.l2_prior(v.betas - spec.betas_rest)
        total = total + prior_scale * cfg.w_pose * losses.pose_l2(pose - rest, spec.pose_weight)
        total = total + cfg.w_limits * losses.hinge_limits(pose, spec.pose_lower, spec.pose_upper)
        total = total + cfg.w_bending * losses.bending_penalty(pose, spec.bend_joint, spec.bend_axis,
                                                               spec.bend_sign)
        total = total + cfg.w_unseen_legs * (((pose - rest) ** 2).sum(-1) * p.leg_mask).sum(-1)
        if spec.betas_range is not None:
            lo, hi = spec.betas_range
            total = total + 1e3 * losses.l2_prior((lo - v.betas).clamp_min(0) + (v.betas - hi).clamp_min(0))
        if stage == "detail":
            total = total + cfg.w_hand_pose * (losses.l2_prior(v.left_hand) + losses.l2_prior(v.right_hand))
            total = total + cfg.w_expression * losses.l2_prior(v.expression)
            total = total + cfg.w_jaw * losses.l2_prior(v.jaw_pose)
    p.evaluations += 1
    return total.sum()


STAGE_FIELDS = {
    "camera": ("global_orient", "transl"),
    "body": ("global_orient", "transl", "body_pose", "betas"),
    "detail": ("global_orient", "transl", "body_pose", "betas", "left_hand", "right_hand", "jaw_pose",
               "expression"),
}


def _run_stage(p: _Problem, v: FitVariables, stage: str, iterations: int, prior_scale: float = 1.0,
               label: str | None = None, silhouette_scale: float = 1.0) -> StageReport:
    cfg = p.cfg
    names = [n for n in STAGE_FIELDS[stage] if getattr(v, n).numel() > 0]
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
        loss = _objective(p, v, stage, prior_scale, silhouette_scale)
        loss.backward()
        return loss

    steps = 0
    for steps in range(1, iterations + 1):
        if cfg.optimizer == "lbfgs":
            loss = float(opt.step(closure).detach())  # the loss at the start of this step (no extra evaluation)
        else:
            loss = float(closure())
            opt.step()
        if not math.isfinite(loss):
            raise FloatingPointError(f"stage {stage}: the loss became {loss} at step {steps}")
        history.append(loss)
        if len(history) >= 2 and abs(history[-2] - history[-1]) <= cfg.ftol * max(abs(history[-2]), 1e-12):
            converged = True
            break
    for t in v.tensors().values():
        t.requires_grad_(False)
    if shared:
        p.shared_betas.requires_grad_(False)
        v.betas = p.shared_betas.expand(v.batch_size, -1).clone()
    return StageReport(label or stage, steps, p.evaluations - evals0, history, time.perf_counter() - start, converged)


# ----------------------------------------------------------------------------------------------------------------
# Entry point


def as_fit_body(body) -> FitBody:
    """``body`` itself if it follows :class:`FitBody`, else the adapter for a ``dinar_core.body`` model."""
    if hasattr(body, "spec") and hasattr(body, "forward") and hasattr(body, "keypoints"):
        return body
    from dinar_core.body import SMPLXBody

    if isinstance(body, SMPLXBody):
        from dinar_core.fitting.adapters import SMPLXFitBody

        return SMPLXFitBody(body)
    if type(body).__name__ == "AnnyBody":
        from dinar_core.fitting.adapters import AnnyFitBody

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
    spec = fb.spec
    target_np = _stack_keypoints(keypoints, image_sizes)  # (B, 137, 3)
    dropped = drop_cut_leg_keypoints(target_np, masks, cfg.cut_edge_margin)
    sil = _prepare_masks(masks, image_sizes, cfg, device)
    scale_np = np.array([body_height_px(None if m is None else np.asarray(m, bool), target_np[b, BODY])
                         for b, m in enumerate(masks)], np.float32)
    for b, m in enumerate(masks):  # a mask that does not contain the person's keypoints is someone else
        if m is not None:
            ok = target_np[b, BODY, 2] > 0
            xy = target_np[b, BODY][ok, :2].astype(int)
            hits = np.asarray(m, bool)[xy[:, 1], xy[:, 0]].mean() if len(xy) else 1.0
            if hits < cfg.min_body_fraction:
                raise MaskError(f"frame {b}: only {hits:.0%} of the body keypoints fall inside the mask",
                                fix="the mask and the keypoints show different people or images; re-run segment")
    target = torch.from_numpy(target_np).to(device)
    K = torch.stack([make_K(h, w, cfg.focal) for h, w in image_sizes]).to(device)  # (B, 3, 3)
    leg_mask = torch.from_numpy(_leg_prior_mask(spec, target_np)).to(device)
    partial = [not ((target_np[b, RANKLE, 2] > 0) or (target_np[b, LANKLE, 2] > 0)) for b in range(B)]

    v = FitVariables.rest(spec, B, device)
    with torch.no_grad():
        rest_out = fb.forward(v)
        rest_kp = fb.keypoints(rest_out)
    available = rest_kp.available.to(device).bool()
    init = init_camera(rest_kp.points, rest_out.joints[:, 0], available, target, K, cfg.focal)
    v.global_orient = init.global_orient.clone()
    v.transl = init.transl.clone()

    num_verts = rest_out.vertices.shape[1]
    subset = None
    if 0 < cfg.silhouette_vertices < num_verts:
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        subset = torch.randperm(num_verts, generator=gen)[: cfg.silhouette_vertices].sort().values.to(device)
    problem = _Problem(fb, cfg, target, K, torch.from_numpy(scale_np).to(device), sil, leg_mask, available,
                       subset, init.global_orient.clone(),
                       v.betas[:1].clone() if cfg.share_shape and B > 1 and v.betas.numel() else None)
    stages = [_run_stage(problem, v, "camera", cfg.camera_iterations)]
    sil_schedule = tuple(cfg.body_silhouette_schedule) or (1.0,)
    for k, scale in enumerate(cfg.body_prior_schedule):
        sil_scale = sil_schedule[min(k, len(sil_schedule) - 1)]
        stages.append(_run_stage(problem, v, "body", cfg.body_iterations, scale, f"body{k + 1}", sil_scale))
    detected = (target_np[:, HANDS, 2] > 0).any() or (target_np[:, FACE, 2] > 0).any()
    if detected and cfg.detail_iterations > 0:
        stages.append(_run_stage(problem, v, "detail", cfg.detail_iterations))

    v = v.detach()
    with torch.no_grad():
        out = fb.forward(v)
        kp3 = fb.keypoints(out).points  # (B, 137, 3)
        proj = project(kp3, K)  # (B, 137, 2)
        verts2d = project(out.vertices, K).cpu().numpy()
    observed = (target[:, :, 2] > 0) & available
    conf = torch.where(observed, 1.0, 0.3) * available
    leg_idx = list(LEG_KEYPOINTS)
    for b in range(B):
        if partial[b]:
            conf[b, leg_idx] = torch.where(observed[b, leg_idx], conf[b, leg_idx], torch.zeros_like(conf[b, leg_idx]))
    kp2 = torch.cat([proj, conf[..., None]], -1)
    faces_np = fb.faces.cpu().numpy()
    proj_np = proj.cpu().numpy()
    metrics = []
    for b in range(B):
        tgt = target_np[b] * available.cpu().numpy()[:, None]
        iou = float("nan")
        if masks[b] is not None:
            iou = mask_iou(silhouette(verts2d[b], faces_np, image_sizes[b]), np.asarray(masks[b], bool))
        metrics.append(FrameMetrics(
            reprojection_error_px=reprojection_error_px(proj_np[b, BODY], tgt[BODY]),
            reprojection_error_rel=reprojection_error_rel(proj_np[b, BODY], tgt[BODY], float(scale_np[b])),
            reprojection_error_px_all=reprojection_error_px(proj_np[b], tgt),
            mask_iou=iou, body_height_px=float(scale_np[b])))
    params = fb.to_params(v) if hasattr(fb, "to_params") else None
    return BodyFit(variables=v, params=params, vertices=out.vertices, faces=fb.faces, keypoints3d=kp3,
                   keypoints2d=kp2, K=K, image_sizes=image_sizes, partial_body=partial, metrics=metrics,
                   stages=stages, seconds=time.perf_counter() - t0, dropped_keypoints=dropped)
