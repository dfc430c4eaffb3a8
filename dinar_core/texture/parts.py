"""Body parts per texel: what the back transfer, the mirror and the hair work on. The per-vertex parts (from the
skinning weights) live in ``dinar_core.body.parts`` and are re-exported here.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dinar_core.body.parts import (  # noqa: F401 - re-exported: the texture code's one import of parts
    LIMBS,
    Part,
    body_parts,
    geometric_parts,
    joint_part,
    vertex_parts_from_weights,
)
from dinar_core.texture.layout import UVLayout, texel_map

__all__ = ["LIMBS", "Part", "body_parts", "geometric_parts", "is_limb", "joint_part", "texel_parts",
           "vertex_parts_from_weights"]


def texel_parts(layout: UVLayout, texture_size: int, vertex_parts: Tensor) -> Tensor:
    """(T, T) int64 part of every texel (that of the face corner with the largest barycentric), -1 outside.
    vertex_parts: (V,) over the body's vertices (``layout.vertex_index`` indexes them)."""
    T = int(texture_size)
    tm = texel_map(layout, T)
    corner = layout.vertex_index.cpu()[layout.uv_faces.cpu()]  # (F, 3) body vertex ids
    vid = corner[tm.face_flat().cpu()]  # (N, 3)
    pick = vid.gather(1, tm.bary_flat().cpu().argmax(1, keepdim=True))[:, 0]
    out = torch.full((T * T,), -1, dtype=torch.int64)
    out[tm.flat.cpu()] = vertex_parts.cpu().long()[pick]
    return out.view(T, T)


def is_limb(parts: Tensor) -> Tensor:
    """(T, T) bool where the part map is a limb (:data:`LIMBS`)."""
    return torch.from_numpy(np.isin(parts.cpu().numpy(), [int(p) for p in LIMBS]))
