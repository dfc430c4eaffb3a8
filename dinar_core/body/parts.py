"""Coarse body parts of a body model's vertices, from its skinning weights (SMPL-X and Anny both have them, with
joint names): every joint is mapped to a part by its name (:func:`joint_part`), and a vertex takes the part with
the largest summed weight. Anny also ships a UV segmentation (``anny/data/segmentation/``), but it only tells body /
head / hands / feet (no arms or legs), so the skinning weights are used for both models. Without weights,
:func:`geometric_parts` cuts the rest pose by height and reach (a fallback, documented as such).

Used by the fit (which parts may be covered by loose clothes) and the texture (back transfer, mirror, hair);
``dinar_core.texture.parts`` adds the per-texel maps.
"""

from __future__ import annotations

from enum import IntEnum

import torch
from torch import Tensor


class Part(IntEnum):
    """Coarse body parts (values of the part maps)."""

    TORSO = 0
    HEAD = 1
    ARM_L = 2
    ARM_R = 3
    HAND_L = 4
    HAND_R = 5
    LEG_L = 6
    LEG_R = 7
    FOOT_L = 8
    FOOT_R = 9


LIMBS = (Part.ARM_L, Part.ARM_R, Part.HAND_L, Part.HAND_R, Part.LEG_L, Part.LEG_R, Part.FOOT_L, Part.FOOT_R)
"""The parts that are really left/right symmetric, where the mirror copy is kept."""

_KEYWORDS = (  # first match wins: hands before arms, feet before legs
    (("head", "jaw", "eye"), None),
    (("wrist", "finger", "metacarpal", "thumb", "index", "middle", "ring", "pinky", "hand"), "HAND"),
    (("ankle", "foot", "toe", "heel"), "FOOT"),
    (("shoulder", "elbow", "arm"), "ARM"),
    (("hip", "knee", "leg"), "LEG"),
)


def joint_part(name: str) -> Part:
    """The coarse part a joint drives, from its name (SMPL-X ``left_elbow``, Anny ``lowerarm01.L``): head, hands,
    feet, arms and legs by keyword and side (``left``/``.L`` = the body's left), everything else torso (spine,
    pelvis, collar/clavicle, neck)."""
    n = name.lower()
    left = n.startswith("left") or n.endswith(".l") or n.startswith("l_")
    right = n.startswith("right") or n.endswith(".r") or n.startswith("r_")
    for words, kind in _KEYWORDS:
        if any(w in n for w in words):
            if kind is None:
                return Part.HEAD
            if left or right:
                return Part[f"{kind}_{'L' if left else 'R'}"]
    return Part.TORSO


def vertex_parts_from_weights(weights: Tensor, joint_names) -> Tensor:
    """weights: (V, J) skinning weights; joint_names: J names. Returns (V,) int64 :class:`Part` per vertex."""
    if weights.ndim != 2 or weights.shape[1] != len(joint_names):
        raise ValueError(f"weights must be (V, J={len(joint_names)}), got {tuple(weights.shape)}")
    table = torch.tensor([int(joint_part(n)) for n in joint_names])
    acc = torch.zeros(weights.shape[0], len(Part))
    acc.index_add_(1, table, weights.detach().float().cpu())
    return acc.argmax(1)


def body_parts(model) -> Tensor | None:
    """(V,) parts of a body model with ``skinning_weights`` and ``joint_names`` (SMPL-X, Anny), else None."""
    w, names = getattr(model, "skinning_weights", None), getattr(model, "joint_names", None)
    if w is None or names is None:
        return None
    return vertex_parts_from_weights(w, names)


def geometric_parts(rest_vertices: Tensor, lateral_axis: int = 0, up_axis: int = 1) -> Tensor:
    """Fallback parts from the rest pose alone: head above 87 % of the height, legs below 45 % (left/right by the
    side of the centre), arms where the reach from the centre exceeds 0.2 of the height above the legs.
    rest_vertices: (V, 3). Returns (V,) int64."""
    v = rest_vertices.detach().float().cpu()
    y, x = v[:, up_axis], v[:, lateral_axis]
    h = (y - y.min()) / (y.max() - y.min()).clamp_min(1e-9)
    cx = 0.5 * (x.min() + x.max())
    reach = (x - cx) / (y.max() - y.min()).clamp_min(1e-9)
    parts = torch.full((len(v),), int(Part.TORSO), dtype=torch.int64)
    parts[(h <= 0.45) & (reach >= 0)] = int(Part.LEG_L)
    parts[(h <= 0.45) & (reach < 0)] = int(Part.LEG_R)
    parts[(h > 0.45) & (reach > 0.12)] = int(Part.ARM_L)
    parts[(h > 0.45) & (reach < -0.12)] = int(Part.ARM_R)
    parts[h > 0.87] = int(Part.HEAD)
    return parts
