"""Hair volume: an offset shell of the scalp, its thickness measured against the photo's person mask.

A parametric body (SMPL-X, Anny) is bald: hair, a bun or curls stick out of its head in the photo's silhouette, and
the fit cannot explain them. Here the scalp's vertices are pushed out along their normals by a thickness ``t``
(metres), with a weight that fades to 0 at the hairline so the mesh stays closed and the face keeps its shape. ``t``
is the thickness whose silhouette best matches the person mask in a box around the head (IoU over that box), searched
on a grid: a bald head measures 0.

All functions are pure; shapes are given in each docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dinar_core.body.parts import Part
from dinar_core.render.rasterizer import RasterizerConfig, rasterize_camera
from dinar_core.render.shading import vertex_normals


def _smoothstep(x: Tensor, lo: float, hi: float) -> Tensor:
    t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def scalp_weights(rest_vertices: Tensor, parts: Tensor, up_axis: int = 1, front_axis: int = 2
                  ) -> Tensor:
    """How much each vertex belongs to the scalp, in [0, 1].

    rest_vertices: (V, 3) the rest pose (``up_axis`` up, ``front_axis`` forward); parts: (V,) body
    parts (:class:`~dinar_core.body.parts.Part`). The head part's vertices count from ear height up (fading in over
    the head's 45-65 % height), except the face: vertices in front of the head's vertical axis (their horizontal
    direction from it within ~60 degrees of forward) below the hairline (85 % of the head's height) fade out. The face
    is found by position, not by normal, so the sides of the nose and the eyes stay put. Returns (V,) float32, 0 off
    the head.
    """
    head = parts == int(Part.HEAD)
    w = torch.zeros(rest_vertices.shape[0], dtype=torch.float32)
    if int(head.sum()) < 8:
        return w
    v = rest_vertices.detach().float()
    y = v[:, up_axis]
    y0, y1 = float(y[head].min()), float(y[head].max())
    h = (y - y0) / max(y1 - y0, 1e-9)  # (V,) 0 at the head's lowest vertex (the neck), 1 at the crown
    side = 3 - up_axis - front_axis  # the remaining (lateral) axis
    centre = v[head].mean(0)
    d = torch.stack([v[:, side] - centre[side], v[:, front_axis] - centre[front_axis]], dim=1)  # (V, 2)
    forward = d[:, 1] / d.norm(dim=1).clamp_min(1e-9)  # cosine of the angle to straight ahead
    face = _smoothstep(forward, 0.3, 0.6) * (1.0 - _smoothstep(h, 0.8, 0.95))
    w = _smoothstep(h, 0.45, 0.65) * (1.0 - face)
    return torch.where(head, w, torch.zeros_like(w))


def offset_shell(verts: Tensor, faces: Tensor, weights: Tensor, thickness: float) -> Tensor:
    """The body with its scalp pushed out. verts: (B, V, 3) in any pose and frame; faces: (F, 3); weights: (V,)
    from :func:`scalp_weights`; thickness: metres. Returns (B, V, 3) (``verts`` itself when thickness is 0)."""
    if thickness <= 0 or not bool((weights > 0).any()):
        return verts
    n = vertex_normals(verts, faces)
    return verts + (thickness * weights.to(verts))[None, :, None] * n


def camera_silhouette(verts_cam: Tensor, K: Tensor, faces: Tensor, image_size: tuple[int, int],
                      config: RasterizerConfig | None = None) -> np.ndarray:
    """(H, W) bool: the pixels the mesh covers. verts_cam: (1, V, 3); K: (3, 3); faces: (F, 3)."""
    frags = rasterize_camera(verts_cam, K, faces, image_size, config)
    return (frags.pix_to_face[0] >= 0).cpu().numpy()


@dataclass
class HairVolume:
    """thickness_m: the shell's thickness (0: no hair volume seen); head_iou: IoU of the body's silhouette with the
    person mask in the box around the head, without the shell and with it; candidates / ious: the grid searched."""

    thickness_m: float
    head_iou: tuple[float, float]
    candidates: list[float]
    ious: list[float]

    def to_dict(self) -> dict:
        iou = [None if not np.isfinite(x) else round(float(x), 4) for x in self.head_iou]  # None: head not seen
        return {"thickness_m": round(self.thickness_m, 4), "head_iou": iou}


def head_box(points2d: np.ndarray, head: np.ndarray, image_size: tuple[int, int], margin: float = 0.6
             ) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) pixel box around the projected head, grown by ``margin`` of its size on the top and sides
    (not below: the shoulders are there). points2d: (V, 2) x, y; head: (V,) bool. None when the head is off the
    image."""
    H, W = image_size
    p = points2d[head]
    if len(p) == 0:
        return None
    x0, y0 = p.min(0)
    x1, y1 = p.max(0)
    sx, sy = (x1 - x0) * margin, (y1 - y0) * margin
    box = (int(max(0, np.floor(y0 - sy))), int(min(H, np.ceil(y1))),
           int(max(0, np.floor(x0 - sx))), int(min(W, np.ceil(x1 + sx))))
    return box if box[1] - box[0] >= 2 and box[3] - box[2] >= 2 else None


def measure_hair_volume(verts_cam: Tensor, K: Tensor, faces: Tensor, mask: np.ndarray, weights: Tensor,
                        silhouette=camera_silhouette, max_thickness: float = 0.08, step: float = 0.005) -> HairVolume:
    """The scalp shell thickness that best explains the person mask around the head.

    verts_cam: (1, V, 3) the fitted body in the photo's camera; K: (3, 3); faces: (F, 3); mask: (H, W) person mask
    (bool or 0..1); weights: (V,) :func:`scalp_weights`; silhouette: ``f(verts_cam, K, faces, (H, W)) -> (H, W) bool``
    (injectable; default :func:`camera_silhouette`). Thicknesses 0, ``step``, ... ``max_thickness`` are tried;
    ties go to the thinner.
    """
    H, W = mask.shape[:2]
    person = np.asarray(mask) > 0.5
    proj = verts_cam[0] @ K.T.to(verts_cam)
    points2d = (proj[:, :2] / proj[:, 2:3].clamp_min(1e-6)).detach().cpu().numpy()
    head = (weights > 0).cpu().numpy()
    box = head_box(points2d, head, (H, W))
    candidates = [round(float(t), 6) for t in np.arange(0.0, max_thickness + 1e-9, step)]
    if box is None:
        return HairVolume(0.0, (float("nan"), float("nan")), candidates, [])
    y0, y1, x0, x1 = box
    target = person[y0:y1, x0:x1]
    ious = []
    for t in candidates:
        sil = silhouette(offset_shell(verts_cam, faces, weights, t), K, faces, (H, W))[y0:y1, x0:x1]
        union = np.logical_or(sil, target).sum()
        ious.append(float(np.logical_and(sil, target).sum() / union) if union else 0.0)
    best = int(np.argmax(ious))  # argmax takes the first, i.e. the thinnest of equal scores
    return HairVolume(candidates[best], (ious[0], ious[best]), candidates, ious)
