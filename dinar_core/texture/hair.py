"""Hair, texture side: its colour from the head's observed texels, the scalp and the back of the head in it, and
long hair continued down the upper back.

1. Zones of the head part in the rest pose (heights relative to the head, 0 = its lowest vertex, 1 = its top;
   normals in the model frame, z forward): the **face** is front-facing (``n_z > 0.35``) below 0.78; the **scalp**
   is the rest of the head above 0.75, plus the back-facing (``n_z < 0``) head above 0.3 (down to the nape).
2. Colour clustering in CIE Lab of the head's observed texels: the skin reference is the median of the face
   centre (``n_z > 0.6``, heights 0.3-0.7); a 2-means starts from it and from the median of the seen top of the
   head (above 0.75, outside the face).
   Hair is found when the other cluster is ``hair_delta_e`` or more from the skin cluster and covers at least
   ``hair_min_fraction`` of the observed scalp texels (a bald head or a cap of skin colour finds none).
3. The observed hair texels, the unseen scalp and (for long hair) the upper back become one more part, ``HAIR``,
   which the part fill (``texture.synth``) paints with the hair's colour profile and texture synthesised from the
   observed hair texels. Nothing of the face is used.
4. Long hair: in height bins of 2 % of the body below the head, the front-facing torso/arm texels within 1.6 head
   half-widths of the head's axis (hair falling over the shoulders) are tested for hair colour (closer to the hair
   centre than to the skin, and within ``hair_delta_e``); the hair reaches down to the lowest bin of the run of
   bins, from the head down, where at least 15 % of the observed texels are hair. The back-facing torso within 1.3
   head half-widths of the axis, from there up to the head, becomes ``HAIR``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dinar_core.texture.parts import Part

HAIR = len(Part)
"""The part id given to hair (one past the body parts)."""


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] -> CIE Lab (D65)."""
    c = np.clip(rgb, 0, 1)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    M = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ M.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


@dataclass
class HairEstimate:
    """colour: (3,) RGB in [0, 1] or None when no hair was found; parts: (T, T) int64, the part map with ``HAIR``
    where hair is (observed or painted); reach: lowest rest height (fraction of the body) the hair reaches;
    skin: (3,) the face skin colour (None without a seen face)."""

    colour: np.ndarray | None
    parts: Tensor
    reach: float
    skin: np.ndarray | None


def estimate_hair(colour: Tensor, weight: Tensor, parts: Tensor, points: Tensor, normals: Tensor, height: Tensor,
                  config) -> HairEstimate:
    """colour: (T, T, 3) fused known colour; weight: (T, T) its weight (0 unknown); parts: (T, T) part map;
    points / normals: (T, T, 3) rest-pose texel points and normals (x left, y up, z forward); height: (T, T) rest
    height fraction of the body; config: :class:`ClassicAvatarConfig`. Returns :class:`HairEstimate`."""
    prt = parts.cpu().numpy().copy()
    col = colour.detach().cpu().numpy().astype(np.float64)
    seen = weight.cpu().numpy() >= 0.5 * config.full_confidence
    pts, nrm, hgt = points.cpu().numpy(), normals.cpu().numpy(), height.cpu().numpy()
    head = prt == int(Part.HEAD)
    none = HairEstimate(None, parts, 1.0, None)
    if head.sum() < 16:
        return none
    y = pts[..., 1]
    y0, y1 = y[head].min(), y[head].max()
    r = (y - y0) / max(y1 - y0, 1e-9)
    nz = nrm[..., 2]
    face = head & (nz > 0.35) & (r < 0.78)
    scalp = head & ~face & ((r > 0.75) | ((nz < 0.0) & (r > 0.3)))
    centre = head & (nz > 0.6) & (r > 0.3) & (r < 0.7) & seen
    if centre.sum() < 4:  # a face seen from the side: its grazing front texels are not trusted; the rest of it is
        centre = face & seen
    if centre.sum() < 4:  # no face seen at all: the hands are skin too
        centre = ((prt == int(Part.HAND_L)) | (prt == int(Part.HAND_R))) & seen
    if centre.sum() < 4:
        return none
    lab = np.zeros_like(col)
    lab[seen] = rgb_to_lab(col[seen])  # only seen texels are ever compared
    skin = np.median(lab[centre], 0)
    obs = head & seen
    top = head & ~face & (r > 0.75) & seen
    if top.sum() < 4:
        return HairEstimate(None, parts, 1.0, np.median(col[centre], 0))
    x = lab[obs]
    centres = np.stack([skin, np.median(lab[top], 0)])
    for _ in range(10):  # 2-means in Lab
        lbl = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        for k in range(2):
            if (lbl == k).any():
                centres[k] = x[lbl == k].mean(0)
    is_hair = np.zeros_like(head)
    is_hair[obs] = lbl == 1
    seen_scalp = (scalp | (head & (r > 0.75))) & seen
    share = is_hair[seen_scalp].mean() if seen_scalp.any() else 0.0
    skin_rgb = np.median(col[centre], 0)
    delta = float(np.linalg.norm(centres[1] - centres[0]))
    darker = centres[0][0] - centres[1][0]  # Lab L of the skin minus that of the scalp cluster
    # Hair when the clusters are far apart, or (a looser bound) when the scalp is clearly darker than the face: a
    # crown lighter than the face at a small distance is a lit bald head (measured on the demo photos: the red
    # ponytail dE 10.96 with the scalp 10.9 L darker; two bald heads dE 9.0 and 7.6, their crowns 8-9 L lighter).
    found = delta >= config.hair_delta_e or (delta >= config.hair_dark_delta_e and darker >= config.hair_dark_l)
    if not found or share < config.hair_min_fraction:
        return HairEstimate(None, parts, 1.0, skin_rgb)
    hair_rgb = np.median(col[is_hair], 0)
    prt[is_hair & ~face] = HAIR
    prt[scalp & ~seen] = HAIR
    reach = _hair_reach(lab, seen, prt, pts, nrm, hgt, head, centres, config)
    if config.long_hair and reach < float(hgt[head].min()):
        half = 0.5 * (pts[..., 0][head].max() - pts[..., 0][head].min())
        axis = 0.5 * (pts[..., 0][head].max() + pts[..., 0][head].min())
        upper_back = (prt == int(Part.TORSO)) & (nz < 0) & (np.abs(pts[..., 0] - axis) < 1.3 * half) & \
            (hgt >= reach) & ~seen
        prt[upper_back] = HAIR
    return HairEstimate(hair_rgb, torch.from_numpy(prt).to(parts.device), reach, skin_rgb)


def _hair_reach(lab, seen, prt, pts, nrm, hgt, head, centres, config) -> float:
    """Lowest body height fraction long hair reaches in front of the shoulders (the head's bottom if none)."""
    bottom = float(hgt[head].min())
    half = 0.5 * (pts[..., 0][head].max() - pts[..., 0][head].min())
    axis = 0.5 * (pts[..., 0][head].max() + pts[..., 0][head].min())
    band = seen & np.isin(prt, [int(Part.TORSO), int(Part.ARM_L), int(Part.ARM_R)]) & (nrm[..., 2] > 0) & \
        (np.abs(pts[..., 0] - axis) < 1.6 * half)
    d_hair = np.sqrt(((lab - centres[1]) ** 2).sum(-1))
    d_skin = np.sqrt(((lab - centres[0]) ** 2).sum(-1))
    hairy = (d_hair < d_skin) & (d_hair < config.hair_delta_e)
    reach, step = bottom, 0.02
    h = bottom - step
    while h > 0.3:
        sel = band & (hgt >= h) & (hgt < h + step)
        if sel.sum() < 4 or hairy[sel].mean() < 0.15:
            break
        reach = h
        h -= step
    return reach
