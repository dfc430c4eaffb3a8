"""How the body fit runs: :class:`FitConfig`, the fit stage's one config dataclass (``fit:`` in the pipeline
config). Defaults in code; YAML only overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dinar_core.render.conventions import DINAR_FOCAL


@dataclass
class FitConfig:
    """How the fit runs. Weights are relative to the data term, whose unit is one keypoint off by 1% of the body's
    image height (so they do not depend on the image size)."""

    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    """LBFGS (strong-Wolfe line search, SMPLify-X's choice: few iterations) or Adam (``adam_lr``)."""
    camera_iterations: int = 15
    """Stage 1 optimiser steps (LBFGS: outer steps of up to ``lbfgs_inner`` evaluations)."""
    aim_limbs: bool = True
    """After the camera stage, turn each upper arm, forearm, thigh and shin about the optical axis towards its
    detected keypoints (``init.aim_limbs``, closed form): the body stages start near the 2D pose instead of the
    rest pose."""
    body_iterations: int = 5
    """Stage 2 optimiser steps, per entry of ``body_prior_schedule``."""
    body_prior_schedule: tuple[float, ...] = (20.0, 4.0, 1.0)
    """Stage 2 runs once per entry with the pose and shape prior weights multiplied by it (SMPLify's annealing):
    strong priors first, so the body turns and moves as a whole to the keypoints before its limbs bend."""
    body_silhouette_schedule: tuple[float, ...] = (0.1, 0.5, 1.0)
    """Multiplies the silhouette weights in the same stage-2 runs (shorter: the last value repeats). The
    silhouette cannot tell the left leg from the right: weighted fully from the start, it holds limbs that
    begin on the wrong side (crossed knees in a profile view) where the keypoints would have moved them."""
    detail_iterations: int = 5
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
    coverage_loose_scale: float = 0.05
    """The asymmetric silhouette: mask outline not covered by the body costs this fraction of
    ``w_silhouette_coverage`` where the nearest body part is one clothes hang loose on (torso, legs), the full
    weight on skin (arms, head, hands, feet); body outside the mask always costs fully. 1 = symmetric (the fit
    before issue 11, which made slim people fill loose clothes). Measured on the demo photos (waist girth, 0.15 ->
    0.05): the walking woman in a loose T-shirt (sports2d_1) 1.00 -> 0.85 m at a higher mask IoU (0.839 -> 0.861),
    sports2d_2 0.876 -> 0.872 m, the astronaut's suit 0.91 -> 0.87 m."""
    w_height: float = 2.0
    """Partial bodies (legs not seen): squared z-score of the body's standing height against ``height_prior``
    (the shape alone cannot be told from an upper body, and a big torso in a close-up made a 2.3 m giant)."""
    height_prior: tuple[float, float] = (1.70, 0.10)
    """Mean and standard deviation (m) of adult standing height for ``w_height``."""
    w_penetration: float = 2.0
    """Interpenetration (``contact``): squared depth, in units of 1 % of the body height, of arms and hands in
    the torso or the thighs and of a foot in the other foot or shin."""
    w_feet_ground: float = 0.5
    """Both feet seen: robust squared height difference of the two feet's lowest points along the body's up
    axis, in units of 1 % of the body height (Geman-McClure, ``feet_sigma``): feet stand on one plane unless the
    keypoints clearly lift one."""
    feet_sigma: float = 3.0
    """Geman-McClure scale of ``w_feet_ground`` in those units (a lift of 3 % of the height counts half)."""
    w_unseen_arms: float = 20.0
    """Stages 2-3: lean of each upper arm and forearm whose lower end is not seen towards or away from the
    camera (the depth of an unseen limb kept near rest, as for the legs)."""
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
    silhouette_vertex_schedule: tuple[int, ...] = ()
    """Coarse to fine: the silhouette vertices of each stage-2 run (parallel to ``body_prior_schedule``; the last
    repeats; each set is part of the next; empty = ``silhouette_vertices`` throughout; detail always uses
    ``silhouette_vertices``)."""
    partial_forward: bool = True
    """Evaluate the body only where the loss looks (the silhouette vertices, the keypoints' support) when the body
    offers it (``forward_vertices``; Anny): the same loss, a fraction of the skinning."""
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
    """Seeds the mask outline sampling and the silhouette vertex subset (the only randomness): the same inputs give
    bit-identical fits."""
