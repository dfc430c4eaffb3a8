"""The fit's objective, term by term (each term a (B,) tensor, one value per frame; frames are independent bodies).

``data`` (Geman-McClure on keypoint residuals in units of the body's image height, times confidence) +
``silhouette`` (outside-distance of the projected vertices + chamfer from the mask outline to them) +
``upright`` (the root's pitch, the lean of the torso, the legs and each thigh and shin towards the camera, and of
unseen arms) + ``contact`` (arms and hands out of the torso and thighs, a foot out of the other leg, both feet on one
ground plane; ``contact``) + priors (shape L2, a height prior for partial bodies, pose L2 with a heavier spine,
joint-angle limits, elbow/knee bending, unseen legs pulled to rest, and in the detail stage hand PCA, expression and
jaw L2). The pure loss functions are in ``losses`` and ``contact``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from dinar_core.fitting import contact, losses
from dinar_core.fitting.config import FitConfig
from dinar_core.fitting.init import MIDHIP, NECK, TORSO
from dinar_core.fitting.targets import LANKLE, LHIP, LKNEE, RANKLE, RHIP, RKNEE, FitTargets
from dinar_core.fitting.variables import FitBody, FitVariables
from dinar_core.keypoints.layout import BODY, FACE, HANDS, NUM_KEYPOINTS
from dinar_core.render.camera import project
from dinar_core.rotations import axis_angle_to_matrix

DATA_UNIT = 1e4
"""Multiplies the image-space terms: one keypoint off by 1% of the body height costs ~1."""

# (lower pair, upper pair) of BODY_25 indices: mid-hip -> neck; ankles -> mid-hip.
LEAN_SEGMENTS = torch.tensor([[[MIDHIP, MIDHIP], [NECK, NECK]], [[RANKLE, LANKLE], [MIDHIP, MIDHIP]]])
# Each thigh and shin (lower end first): an unseen one should hang straight down, as a standing person's does.
# Without this, a partial body (legs out of the picture) bends its unseen legs towards the camera, where they
# project into the photo and cover the mask of whatever is at the bottom of the picture (arms, a held object).
LEG_BONES = torch.tensor([[[RKNEE, RKNEE], [RHIP, RHIP]], [[RANKLE, RANKLE], [RKNEE, RKNEE]],
                          [[LKNEE, LKNEE], [LHIP, LHIP]], [[LANKLE, LANKLE], [LKNEE, LKNEE]]])
# Each upper arm and forearm (lower end first): unseen, it keeps its depth near rest (in the image plane).
ARM_BONES = torch.tensor([[[contact.RELB] * 2, [contact.RSHO] * 2], [[contact.RWRI] * 2, [contact.RELB] * 2],
                          [[contact.LELB] * 2, [contact.LSHO] * 2], [[contact.LWRI] * 2, [contact.LELB] * 2]])


@dataclass
class Problem:
    """One fit's fixed data and bookkeeping.

    body: the :class:`FitBody`; targets: :class:`FitTargets`; available: (137,) bool, the keypoints the body has.
    vertex_order: (V,) int64 a seeded permutation of the vertices, whose first ``n`` (sorted) the silhouette
    terms use (:meth:`silhouette_vertices`), or None (all). init_orient: (B, 3) stage 1's starting
    orientation. shared_betas: (1, num_betas) the one shape of every frame (``FitConfig.share_shape``), or None.
    cover_weight: (V,) weight of each vertex in the coverage term (``FitConfig.coverage_loose_scale``
    on loose-clothes parts), or None. shapes: the ``contact`` solids of the rest body, or None (no part labels);
    probes: the ``contact.ProbeTable`` of the body's keypoints.
    height: :class:`HeightModel`, or None. parts: (V,) the body's vertex parts, or None. partial: (B,) float, 1 for
    a partial body (``targets.partial``); standing: (B,) float, 1 where both feet are seen on a full body (the
    ground-plane term). evaluations: objective calls so far.
    """

    body: FitBody
    cfg: FitConfig
    targets: FitTargets
    available: Tensor
    vertex_order: Tensor | None = None
    init_orient: Tensor | None = None
    shared_betas: Tensor | None = None
    cover_weight: Tensor | None = None
    shapes: contact.ContactShapes | None = None
    height: "HeightModel | None" = None
    probes: contact.ProbeTable | None = None
    parts: Tensor | None = None
    partial: Tensor | None = field(init=False, default=None)  # derived from targets in __post_init__
    standing: Tensor | None = field(init=False, default=None)
    evaluations: int = 0

    def silhouette_vertices(self, count: int | None = None) -> tuple[Tensor | None, Tensor | None]:
        """The vertices the silhouette terms use and their coverage weights: the first ``count`` (None:
        ``cfg.silhouette_vertices``) of ``vertex_order``, sorted, so a smaller set is part of every larger one
        (the coarse-to-fine stages); (None, ``cover_weight``) for all vertices. Cached per count."""
        count = self.cfg.silhouette_vertices if count is None else count
        if self.vertex_order is None or not 0 < count < len(self.vertex_order):
            return None, self.cover_weight
        cache = self.__dict__.setdefault("_subsets", {})
        if count not in cache:
            ids = self.vertex_order[:count].sort().values
            cache[count] = (ids, None if self.cover_weight is None else self.cover_weight[ids])
        return cache[count]

    def __post_init__(self) -> None:
        t = self.targets.target
        self.partial = torch.tensor(self.targets.partial, dtype=t.dtype, device=t.device)
        self.standing = contact.feet_seen(t).to(t) * (1 - self.partial)


@dataclass
class HeightModel:
    """The body's standing height as a linear function of the shape, measured on the rest pose at the start:
    ``height(betas) = h0 + grad . (betas - betas0)`` (exact for SMPL-X, whose shape is linear; a first-order model for
    Anny). h0: metres; grad: (num_betas,); betas0: (num_betas,). unit: 1 % of h0, the contact terms' unit."""

    h0: float
    grad: Tensor
    betas0: Tensor

    @property
    def unit(self) -> float:
        return 0.01 * self.h0

    def __call__(self, betas: Tensor) -> Tensor:
        """(B, num_betas) -> (B,) metres."""
        return self.h0 + (betas - self.betas0) @ self.grad


def vertex_order(num_verts: int, cfg: FitConfig, device: torch.device) -> Tensor:
    """(V,) int64 a seeded permutation of the vertex ids: the silhouette terms use its first n (sorted), so the
    default 4,000 are the same vertices whatever the coarser stages use."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    return torch.randperm(num_verts, generator=gen).to(device)


def keypoint_weights(stage: str, cfg: FitConfig, device: torch.device) -> Tensor:
    """(137,) weight of each keypoint in stage 'camera' (torso only), 'body' (BODY_25) or 'detail' (+ hands, face)."""
    part_w = torch.zeros(NUM_KEYPOINTS, device=device)
    if stage == "camera":
        part_w[list(TORSO)] = 1.0
    else:
        part_w[BODY] = cfg.w_body_keypoints
        if stage == "detail":
            part_w[HANDS] = cfg.w_hand_keypoints
            part_w[FACE] = cfg.w_face_keypoints
    return part_w


def data_term(p: Problem, kp: Tensor, stage: str) -> Tensor:
    """Robust keypoint reprojection. kp: (B, 137, 3) the body's keypoints, camera frame -> (B,)."""
    t = p.targets
    proj = project(kp, t.K)  # (B, 137, 2)
    conf = t.target[:, :, 2] * p.available.to(t.target)  # (B, 137)
    weight = conf * keypoint_weights(stage, p.cfg, conf.device)
    return DATA_UNIT * losses.reprojection_loss(proj, t.target[..., :2], weight, t.scale, p.cfg.robust_sigma)


def silhouette_term(p: Problem, verts: Tensor, silhouette_scale: float, cover_weight: Tensor | None) -> Tensor:
    """Outside distance of the projected vertices + coverage of the mask outline, 0 for frames without a mask.
    verts: (B, V', 3) the silhouette vertices, camera frame; cover_weight: (V',) or None -> (B,)."""
    cfg, t, sil = p.cfg, p.targets, p.targets.silhouettes
    verts2d = project(verts, t.K)  # (B, V', 2)
    has = sil.has_mask.to(verts2d)
    front = (verts[..., 2] > 1e-3).to(verts2d)  # (B, V')
    outside = losses.silhouette_outside_loss(verts2d + sil.pad[:, None, None], sil.dt, sil.size, t.scale, front)
    cover = losses.silhouette_coverage_loss(verts2d, sil.outline, sil.outline_w, t.scale, cfg.silhouette_sigma or None,
                                            cover_weight)
    return DATA_UNIT * silhouette_scale * has * (cfg.w_silhouette_outside * outside
                                                 + cfg.w_silhouette_coverage * cover)


def upright_terms(p: Problem, v: FitVariables, kp: Tensor) -> list[Tensor]:
    """The root's pitch; the lean of the torso and the legs (both ends seen); each thigh and shin (an unseen one
    weighted as the body, a seen one by ``w_leg_depth``). kp: (B, 137, 3). Returns (B,) terms."""
    cfg, target = p.cfg, p.targets.target
    up = axis_angle_to_matrix(v.global_orient)[:, :, 1]  # (B, 3) canonical +y in the camera frame
    segments = LEAN_SEGMENTS.to(kp.device)
    seen = (target[:, segments.flatten(1), 2] > 0).all(-1).to(kp)  # (B, S): only segments both ends seen
    bones = LEG_BONES.to(kp.device)
    unseen = (target[:, bones[:, 0, 0], 2] <= 0).to(kp)  # (B, 4): the bone's lower end not detected
    arms = ARM_BONES.to(kp.device)
    unseen_arm = (target[:, arms[:, 0, 0], 2] <= 0).to(kp)  # (B, 4)
    return [cfg.w_upright * up[:, 2] ** 2,
            cfg.w_upright_body * losses.lean_penalty(kp, segments, seen),
            losses.lean_penalty(kp, bones, cfg.w_upright_body * unseen + cfg.w_leg_depth * (1 - unseen)),
            cfg.w_unseen_arms * losses.lean_penalty(kp, arms, unseen_arm)]


def contact_terms(p: Problem, v: FitVariables, kp: Tensor) -> list[Tensor]:
    """Interpenetration (every pair of ``contact.penetration_depths``, squared depth in units of 1 % of the body
    height) and, for frames with both feet seen and not a partial body, the feet's robust height difference.
    kp: (B, 137, 3). Returns (B,) terms (none without solids)."""
    cfg = p.cfg
    if p.shapes is None:
        return []
    unit = p.height.unit if p.height is not None else 0.017
    terms = [cfg.w_penetration * contact.contact_penalty(kp, p.probes, p.shapes, unit)]
    if cfg.w_feet_ground > 0:
        # its own rotation, not upright_terms': sharing one changes the gradient's rounding, and LBFGS follows it
        up = axis_angle_to_matrix(v.global_orient)[:, :, 1]  # (B, 3)
        feet = contact.feet_heights(kp, up) / unit  # (B, 2)
        gap2 = (feet[:, 0] - feet[:, 1]) ** 2
        terms.append(cfg.w_feet_ground * p.standing * losses.geman_mcclure(gap2, cfg.feet_sigma))
    return terms


def body_priors(p: Problem, v: FitVariables, prior_scale: float) -> list[Tensor]:
    """Shape and pose L2 (times ``prior_scale``, the annealing), joint limits, bending, unseen legs to rest and the
    backend's shape range. Returns (B,) terms."""
    cfg, spec = p.cfg, p.body.spec
    pose = v.body_pose  # (B, Jb, 3)
    rest = torch.zeros_like(pose[0]) if spec.pose_rest is None else spec.pose_rest.to(pose)
    terms = [prior_scale * cfg.w_betas * losses.l2_prior(v.betas - spec.betas_rest),
             prior_scale * cfg.w_pose * losses.pose_l2(pose - rest, spec.pose_weight),
             cfg.w_limits * losses.hinge_limits(pose, spec.pose_lower, spec.pose_upper),
             cfg.w_bending * losses.bending_penalty(pose, spec.bend_joint, spec.bend_axis, spec.bend_sign),
             cfg.w_unseen_legs * (((pose - rest) ** 2).sum(-1) * p.targets.leg_mask).sum(-1)]
    if p.height is not None and cfg.w_height > 0 and any(p.targets.partial):
        mean, sd = p.cfg.height_prior
        terms.append(cfg.w_height * p.partial * ((p.height(v.betas) - mean) / sd) ** 2)
    if spec.betas_range is not None:
        lo, hi = spec.betas_range
        terms.append(1e3 * losses.l2_prior((lo - v.betas).clamp_min(0) + (v.betas - hi).clamp_min(0)))
    return terms


def detail_priors(p: Problem, v: FitVariables) -> list[Tensor]:
    """Hand PCA, expression and jaw L2 (the detail stage). Returns (B,) terms."""
    cfg = p.cfg
    return [cfg.w_hand_pose * (losses.l2_prior(v.left_hand) + losses.l2_prior(v.right_hand)),
            cfg.w_expression * losses.l2_prior(v.expression),
            cfg.w_jaw * losses.l2_prior(v.jaw_pose)]


def objective(p: Problem, v: FitVariables, stage: str, prior_scale: float = 1.0,
              silhouette_scale: float = 1.0, silhouette_vertices: int | None = None) -> Tensor:
    """Total loss (scalar, summed over frames) of stage 'camera' | 'body' | 'detail'; ``prior_scale`` multiplies
    the pose and shape priors, ``silhouette_scale`` the silhouette terms; ``silhouette_vertices`` how many vertices
    they use (None: ``cfg.silhouette_vertices``; see :meth:`Problem.silhouette_vertices`)."""
    cfg = p.cfg
    # 1. Pose the body (every frame with the one shared shape when there is one).
    if p.shared_betas is not None:
        v = replace(v, betas=p.shared_betas.expand(v.batch_size, -1))
    silhouette = (stage != "camera" and bool(p.targets.silhouettes.has_mask.any())
                  and (cfg.w_silhouette_outside > 0 or cfg.w_silhouette_coverage > 0))
    ids, cover_weight = p.silhouette_vertices(silhouette_vertices) if silhouette else (None, None)
    if cfg.partial_forward and hasattr(p.body, "forward_vertices") and (ids is not None or not silhouette):
        if ids is None:  # no silhouette term: the keypoints' support only
            ids = torch.zeros(0, dtype=torch.int64, device=p.available.device)
        out = p.body.forward_vertices(v, ids)  # only the vertices the loss looks at
        sil_verts = out.vertices
    else:
        out = p.body.forward(v)
        sil_verts = out.vertices if ids is None else out.vertices[:, ids]
    kp = p.body.keypoints(out).points  # (B, 137, 3)
    # 2. The terms of this stage, in a fixed order (the sum is then the same to the bit from run to run).
    terms = [data_term(p, kp, stage)]
    if stage == "camera" and p.init_orient is not None:
        terms.append(cfg.w_init_orient * ((v.global_orient - p.init_orient) ** 2).sum(-1))
    if stage != "camera":
        if silhouette:
            terms.append(silhouette_term(p, sil_verts, silhouette_scale, cover_weight))
        terms += upright_terms(p, v, kp) + contact_terms(p, v, kp) + body_priors(p, v, prior_scale)
        if stage == "detail":
            terms += detail_priors(p, v)
    # 3. Sum per frame, then over frames.
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    p.evaluations += 1
    return total.sum()
