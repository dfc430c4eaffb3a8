"""Where a fitted body touches itself and the ground: interpenetration of arms, hands and feet with the torso, the
thighs and the other leg, and the height of each foot above the lowest one. Pure functions on the OpenPose-layout
keypoints (B, 137, 3), so the terms cost a few hundred flops per frame, whatever the mesh.

The body is approximated by solids fitted once to the rest mesh (:func:`contact_shapes`): the torso is an
elliptic cylinder with caps around the mid-hip -> neck axis (wider than deep, as a torso is), each thigh, shin and
foot a capsule. Probes are points with a radius (wrists, elbows, forearm middles, the hand keypoints where the body
has them, the foot keypoints). The solids are conservative (inner) fits: a hand resting on a thigh or an arm
hanging along the torso touches them without entering, so only a real interpenetration costs.

Units: metres. Frames: the camera frame of the fit (any frame works; ``up`` gives the body's vertical).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dinar_core.body.parts import Part
from dinar_core.keypoints.layout import HANDS

# BODY_25 indices
NECK, RSHO, RELB, RWRI, LSHO, LELB, LWRI, MIDHIP = 1, 2, 3, 4, 5, 6, 7, 8
RHIP, RKNEE, RANK, LHIP, LKNEE, LANK = 9, 10, 11, 12, 13, 14
LBIGTOE, LSMALLTOE, LHEEL, RBIGTOE, RSMALLTOE, RHEEL = 19, 20, 21, 22, 23, 24
LEFT_FOOT = (LANK, LBIGTOE, LSMALLTOE, LHEEL)
RIGHT_FOOT = (RANK, RBIGTOE, RSMALLTOE, RHEEL)

CAPSULES = {  # name: (from keypoint, to keypoint, the body part whose vertices give the radius)
    "right thigh": (RHIP, RKNEE, Part.LEG_R), "left thigh": (LHIP, LKNEE, Part.LEG_L),
    "right shin": (RKNEE, RANK, Part.LEG_R), "left shin": (LKNEE, LANK, Part.LEG_L),
    "right foot": (RHEEL, RBIGTOE, Part.FOOT_R), "left foot": (LHEEL, LBIGTOE, Part.FOOT_L),
}
"""The limb solids (the torso is apart: :func:`torso_penetration`)."""
CAPSULE_ENDS = torch.tensor([[a, b] for a, b, _ in CAPSULES.values()])
"""(C, 2) the keypoints each capsule runs between, in ``CAPSULES``' order."""

PROBE_RADIUS = {"wrist": 0.03, "elbow": 0.035, "forearm": 0.035, "hand": 0.01, "foot": 0.02}
"""Radius (m) of each kind of probe point."""

INNER = 0.85
"""The solids' radii are this fraction of the rest mesh's median radius (an inner fit: contact is free)."""


@dataclass(frozen=True)
class ContactShapes:
    """The solids of one body shape (rest mesh), metres.

    torso_half: (lateral, depth) half-axes of the torso's elliptic section; radius: (C,) the capsules' radii in
    ``CAPSULES``' order.
    """

    torso_half: tuple[float, float]
    radius: Tensor


def _segment_param(points: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Closest points on segments a-b. points: (..., 3); a, b: broadcastable (..., 3). Returns (t (...), offset
    (..., 3) = point - closest point), t clamped to [0, 1]."""
    ab = b - a
    t = ((points - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)
    t = t.clamp(0.0, 1.0)
    return t, points - (a + t[..., None] * ab)


def point_segment_distance(points: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Distance of points (..., 3) to the segments a-b (broadcastable (..., 3)). Returns (...)."""
    return _segment_param(points, a, b)[1].norm(dim=-1)


def capsule_penetration(points: Tensor, radius_points: Tensor, a: Tensor, b: Tensor, radius: float | Tensor) -> Tensor:
    """How deep spheres (centres (..., 3), radii (...)) reach into the capsule a-b of ``radius``: (...) >= 0."""
    return (radius + radius_points - point_segment_distance(points, a, b)).clamp_min(0.0)


def torso_penetration(points: Tensor, radius_points: Tensor, base: Tensor, top: Tensor, lateral: Tensor,
                      half: tuple[float, float]) -> Tensor:
    """How deep spheres reach into the torso: an elliptic cylinder (half-axes ``half`` = (lateral, depth)) with
    elliptic caps around the segment base-top.

    points: (B, P, 3); radius_points: (P,); base, top, lateral: (B, 3) (lateral: the body's right -> left
    direction, e.g. from the hips; made orthogonal to the axis here). Returns (B, P) >= 0: the depth along the
    section's smaller half-axis, ``(1 - rho) * min(half)`` where rho is the sphere-grown elliptic radius.
    """
    axis = top - base
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    lat = lateral - (lateral * axis).sum(-1, keepdim=True) * axis
    lat = lat / lat.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    dep = torch.cross(axis, lat, dim=-1)
    _, off = _segment_param(points, base[:, None], top[:, None])  # (B, P, 3)
    a = half[0] + radius_points  # (P,)
    b = half[1] + radius_points
    x = (off * lat[:, None]).sum(-1) / a
    y = (off * dep[:, None]).sum(-1) / b
    z = (off * axis[:, None]).sum(-1) / b  # beyond the ends: a cap as deep as the torso
    rho = (x * x + y * y + z * z + 1e-12).sqrt()
    return (1.0 - rho).clamp_min(0.0) * min(half)


ARM_PROBES = {"L": (LSHO, LELB, LWRI), "R": (RSHO, RELB, RWRI)}


def _probe_points(kp: Tensor, hands: tuple[Tensor, Tensor] | None) -> Tensor:
    """The probe centres, (B, P, 3), in the order of :func:`probe_table`: per side (left, right) wrist, elbow,
    forearm middle and (with hand keypoints) the hand's middle; then the left and the right foot's keypoints."""
    pts = []
    for k, side in enumerate("LR"):
        _, elb, wri = ARM_PROBES[side]
        pts += [kp[:, wri], kp[:, elb], 0.5 * (kp[:, elb] + kp[:, wri])]
        if hands is not None:
            pts.append(kp[:, hands[k]].mean(1))
    arms = torch.stack(pts, 1)
    return torch.cat([arms, kp[:, list(LEFT_FOOT)], kp[:, list(RIGHT_FOOT)]], 1)


@dataclass(frozen=True)
class ProbeTable:
    """Which probes meet which solids, prepared once per body.

    names: P probe names ('left wrist', ...); radius: (P,) metres; arm: (P,) bool, the arm probes (tested against
    the torso); pairs: (P, C) bool over ``CAPSULES``' order, the probe-capsule pairs that count (an arm in either
    thigh, a foot in the other foot and shin); hands: the finger keypoint indices of each hand, or None.
    """

    names: tuple[str, ...]
    radius: Tensor
    arm: Tensor
    pairs: Tensor
    hands: tuple[Tensor, Tensor] | None


def probe_table(available: Tensor) -> ProbeTable:
    """The :class:`ProbeTable` of a body with keypoints ``available`` (137,) bool (hands only where it has them)."""
    left = [k for k in range(HANDS.start + 1, HANDS.start + 21) if bool(available[k])]
    right = [k for k in range(HANDS.start + 22, HANDS.start + 42) if bool(available[k])]
    hands = (torch.tensor(left), torch.tensor(right)) if left and right else None
    names, radius, arm = [], [], []
    for side in ("left", "right"):
        kinds = ["wrist", "elbow", "forearm"] + (["hand"] if hands is not None else [])
        names += [f"{side} {k}" for k in kinds]
        radius += [PROBE_RADIUS[k] + (0.03 if k == "hand" else 0.0) for k in kinds]  # a hand: a 4 cm ball
        arm += [True] * len(kinds)
    for side in ("left", "right"):
        names += [f"{side} foot {k}" for k in ("ankle", "big toe", "small toe", "heel")]
        radius += [PROBE_RADIUS["foot"]] * 4
        arm += [False] * 4
    caps = list(CAPSULES)
    pairs = torch.zeros(len(names), len(caps), dtype=torch.bool)
    for i, name in enumerate(names):
        for c, cap in enumerate(caps):
            if arm[i]:
                pairs[i, c] = cap.endswith("thigh")
            else:
                other = "right" if name.startswith("left") else "left"
                pairs[i, c] = cap in (f"{other} foot", f"{other} shin")
    return ProbeTable(tuple(names), torch.tensor(radius), torch.tensor(arm), pairs, hands)


def contact_depths(kp: Tensor, table: ProbeTable, shapes: ContactShapes) -> tuple[Tensor, Tensor]:
    """Every probe's depth in every solid: (torso (B, P) with zeros for the foot probes, capsules (B, P, C) with
    zeros for the pairs that do not count). kp: (B, 137, 3) keypoints. Metres."""
    pts = _probe_points(kp, table.hands)  # (B, P, 3)
    radius = table.radius.to(kp)
    ends = CAPSULE_ENDS.to(kp.device)
    a, b = kp[:, ends[:, 0]], kp[:, ends[:, 1]]  # (B, C, 3)
    caps_depth = capsule_penetration(pts[:, :, None], radius[:, None], a[:, None], b[:, None],
                                     shapes.radius.to(kp)) * table.pairs.to(kp)  # (B, P, C)
    torso = torso_penetration(pts, radius, kp[:, MIDHIP], kp[:, NECK], kp[:, LHIP] - kp[:, RHIP], shapes.torso_half)
    return torso * table.arm.to(kp), caps_depth


def contact_penalty(kp: Tensor, table: ProbeTable, shapes: ContactShapes, unit: float) -> Tensor:
    """Sum of the squared depths (in ``unit`` metres) of every probe in every solid it must not enter: (B,)."""
    torso, caps = contact_depths(kp, table, shapes)
    return ((torso / unit) ** 2).sum(-1) + ((caps / unit) ** 2).sum((-1, -2))


def penetration_depths(kp: Tensor, table: ProbeTable, shapes: ContactShapes) -> dict[str, Tensor]:
    """The deepest interpenetration of each named pair of the body at keypoints ``kp`` (B, 137, 3):
    {pair name: (B,) metres}. Pairs: each side's arm (wrist, elbow, forearm, hand) in the torso and in either
    thigh; each foot in the other foot and the other shin."""
    torso, caps = contact_depths(kp, table, shapes)
    out: dict[str, Tensor] = {}
    arm = table.arm
    for side in ("left", "right"):
        mine = torch.tensor([n.startswith(side + " ") for n in table.names])
        out[f"{side} arm in torso"] = torso[:, mine & arm].amax(1)
        for c, cap in enumerate(CAPSULES):
            sel = mine & table.pairs[:, c]
            if sel.any():
                what = "arm" if bool(arm[sel].all()) else "foot"
                out[f"{side} {what} in {cap}"] = caps[:, sel, c].amax(1)
    return out


def feet_seen(target: Tensor) -> Tensor:
    """(B,) bool: frames where both feet have a detection. target: (B, 137, 3) keypoints with confidences."""
    return (target[:, list(LEFT_FOOT), 2] > 0).any(-1) & (target[:, list(RIGHT_FOOT), 2] > 0).any(-1)


def feet_heights(kp: Tensor, up: Tensor) -> Tensor:
    """Height of each foot's lowest keypoint along ``up`` (B, 3) unit vectors: (B, 2) (left, right), metres,
    relative to any origin (only the difference means something)."""
    left = (kp[:, list(LEFT_FOOT)] * up[:, None]).sum(-1).amin(1)
    right = (kp[:, list(RIGHT_FOOT)] * up[:, None]).sum(-1).amin(1)
    return torch.stack([left, right], 1)


def _quantile_radius(dist: Tensor, q: float = 0.5) -> float:
    return float(torch.quantile(dist, q)) if dist.numel() >= 8 else 0.0


def contact_shapes(vertices: Tensor, kp: Tensor, parts: Tensor) -> ContactShapes:
    """The solids fitted to a rest mesh: vertices (V, 3), its keypoints (137, 3) and per-vertex
    :class:`~dinar_core.body.parts.Part` (V,). Radii are ``INNER`` x the median distance of the part's vertices
    to the solid's axis (vertices whose projection falls in the axis' middle 60 %)."""
    v = vertices.detach().float()
    kp = kp.detach().float()
    parts = parts.to(v.device)
    radius = []
    for name, (a, b, part) in CAPSULES.items():
        sel = v[parts == int(part)]
        t, off = _segment_param(sel, kp[a], kp[b])
        mid = (t > 0.2) & (t < 0.8)
        if name.endswith("foot"):
            mid = t >= 0.0  # a foot: every vertex (its axis runs heel -> toe along the sole)
        radius.append(INNER * _quantile_radius(off[mid].norm(dim=-1)))
    torso = v[parts == int(Part.TORSO)]
    base, top = kp[MIDHIP], kp[NECK]
    axis = (top - base) / (top - base).norm().clamp_min(1e-9)
    lat = kp[LHIP] - kp[RHIP]
    lat = lat - (lat @ axis) * axis
    lat = lat / lat.norm().clamp_min(1e-9)
    dep = torch.cross(axis, lat, dim=0)
    t, off = _segment_param(torso, base, top)
    mid = (t > 0.2) & (t < 0.8)
    half = (INNER * _quantile_radius((off[mid] @ lat).abs(), 0.75),
            INNER * _quantile_radius((off[mid] @ dep).abs(), 0.75))
    return ContactShapes(torso_half=half, radius=torch.tensor(radius))
