"""How good a body fit is: reprojection error, mask IoU of the exact silhouette, Procrustes-aligned 3D error; and
whether the 3D body is plausible, which the 2D figures cannot tell: interpenetration, joint limits, the feet's
heights, the standing height and the waist girth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dinar_core.keypoints.layout import BODY


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
    plausibility: "Plausibility | None" = None


@dataclass
class Plausibility:
    """The 3D checks of one fitted frame.

    height_m: standing height of the fitted shape (rest pose); waist_girth_m: its waist circumference;
    girth_change_m: that minus the rest shape's (the population mean); penetration_mm: the deepest interpenetration,
    penetrations: {pair: mm} of the pairs deeper than 1 mm (``contact.penetration_depths``); limit_violations:
    [{joint, axis, excess_deg}] of the joint-angle components more than 1 degree beyond the limit table;
    feet_gap_mm: height difference of the two feet's lowest points along the body's up axis (NaN unless both
    feet are seen)."""

    height_m: float
    waist_girth_m: float
    girth_change_m: float
    penetration_mm: float
    penetrations: dict
    limit_violations: list
    feet_gap_mm: float

    def to_dict(self) -> dict:
        return {"height_m": round(self.height_m, 4), "waist_girth_m": round(self.waist_girth_m, 4),
                "girth_change_m": round(self.girth_change_m, 4), "penetration_mm": round(self.penetration_mm, 1),
                "penetrations": {k: round(v, 1) for k, v in self.penetrations.items()},
                "limit_violations": self.limit_violations,
                "feet_gap_mm": None if not np.isfinite(self.feet_gap_mm) else round(self.feet_gap_mm, 1)}


def waist_girth(vertices: np.ndarray, midhip: np.ndarray, neck: np.ndarray, torso: np.ndarray,
                level: float = 0.3, band: float = 0.015) -> float:
    """Waist circumference (m) of a rest-pose mesh (y up): the perimeter of the convex hull, in the x-z plane, of
    the torso vertices within ``band`` m of the height ``level`` of the way from the mid-hip to the neck.
    vertices: (V, 3); midhip, neck: (3,); torso: (V,) bool. NaN with fewer than 3 vertices in the band."""
    from scipy.spatial import ConvexHull, QhullError

    y = midhip[1] + level * (neck[1] - midhip[1])
    sel = vertices[torso & (np.abs(vertices[:, 1] - y) <= band)][:, [0, 2]]
    if len(sel) < 3:
        return float("nan")
    try:
        hull = ConvexHull(sel)
    except QhullError:
        return float("nan")
    ring = sel[hull.vertices]
    return float(np.linalg.norm(ring - np.roll(ring, 1, 0), axis=1).sum())


def limit_violations(pose: np.ndarray, lower: np.ndarray, upper: np.ndarray, names, min_deg: float = 1.0) -> list:
    """[{joint, axis, excess_deg}] of the axis-angle components of ``pose`` (J, 3) beyond [lower, upper] (J, 3) by
    more than ``min_deg``; names: J joint names (or None: indices)."""
    excess = np.degrees(np.maximum(np.maximum(lower - pose, pose - upper), 0.0))
    out = []
    for j, a in zip(*np.nonzero(excess > min_deg)):
        out.append({"joint": names[j] if names else int(j), "axis": "xyz"[a], "excess_deg": round(float(excess[j, a]), 1)})
    return out


def frame_metrics(projected: np.ndarray, target: np.ndarray, available: np.ndarray, vertices2d: np.ndarray,
                  faces: np.ndarray, masks: Sequence[np.ndarray | None], image_sizes: Sequence[tuple[int, int]],
                  heights_px: Sequence[float]) -> list[FrameMetrics]:
    """:class:`FrameMetrics` of B fitted frames.

    projected: (B, 137, 2) fitted keypoints in pixels; target: (B, 137, 3) detections; available: (137,) bool, the
    keypoints the body has; vertices2d: (B, V, 2) projected vertices; faces: (F, 3); masks: B (H, W) or None;
    image_sizes: B (H, W); heights_px: B body heights (``body_height_px``).
    """
    out = []
    for b, height in enumerate(heights_px):
        tgt = target[b] * available[:, None]
        iou = float("nan")
        if masks[b] is not None:
            iou = mask_iou(silhouette(vertices2d[b], faces, image_sizes[b]), np.asarray(masks[b], bool))
        out.append(FrameMetrics(
            reprojection_error_px=reprojection_error_px(projected[b, BODY], tgt[BODY]),
            reprojection_error_rel=reprojection_error_rel(projected[b, BODY], tgt[BODY], height),
            reprojection_error_px_all=reprojection_error_px(projected[b], tgt),
            mask_iou=iou, body_height_px=height))
    return out


def body_height_px(mask: np.ndarray | None, keypoints: np.ndarray) -> float:
    """The body's height in the image (pixels): the mask's row extent, else the detected keypoints' y extent.

    mask: (H, W) bool or None; keypoints: (K, 3) x, y, confidence. At least 1.
    """
    if mask is not None and mask.any():
        rows = np.nonzero(mask.any(1))[0]
        return float(max(rows[-1] - rows[0] + 1, 1))
    ok = keypoints[:, 2] > 0
    if not ok.any():
        return 1.0
    y = keypoints[ok, 1]
    return float(max(y.max() - y.min(), 1.0))


def reprojection_error_px(projected: np.ndarray, target: np.ndarray) -> float:
    """Mean pixel distance between projected model keypoints and the detections with confidence > 0.

    projected: (K, 2); target: (K, 3) x, y, confidence (rows the model cannot provide must have confidence 0).
    NaN when no keypoint counts.
    """
    ok = target[:, 2] > 0
    if not ok.any():
        return float("nan")
    return float(np.linalg.norm(projected[ok] - target[ok, :2], axis=1).mean())


def reprojection_error_rel(projected: np.ndarray, target: np.ndarray, height_px: float) -> float:
    """:func:`reprojection_error_px` as a fraction of the body's height in the image."""
    return reprojection_error_px(projected, target) / max(height_px, 1.0)


def silhouette(points: np.ndarray, faces: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Exact filled silhouette of a projected mesh, (H, W) bool: pixel (i, j) is set when its centre
    (j + 0.5, i + 0.5) lies in some triangle (either winding), as the project's rasterizer samples pixels.

    points: (V, 2) pixel coordinates; faces: (F, 3). Uses ``dinar_core.render``'s torch rasterizer (exact, no
    conservative edge pixels, which would add half a pixel all round and bias the IoU down on small images).
    """
    import torch

    from dinar_core.render import RasterizerConfig, rasterize

    pts = torch.as_tensor(np.asarray(points, np.float32))
    verts_pix = torch.cat([pts, torch.ones(len(pts), 1)], 1)[None]  # depth 1: (x z, y z, z) = (x, y, 1)
    frags = rasterize(verts_pix, torch.as_tensor(np.asarray(faces, np.int64)), tuple(image_size),
                      RasterizerConfig(backend="torch", cull_backfaces=False))
    return frags.mask[0, 0].numpy()


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks (1.0 when both are empty)."""
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``pred`` (N, 3) moved by the similarity (scale, rotation, translation) that best fits ``gt`` (N, 3)."""
    if pred.shape != gt.shape or pred.ndim != 2 or pred.shape[1] != 3:
        raise ValueError(f"pred and gt must both be (N, 3), got {pred.shape} and {gt.shape}")
    mp, mg = pred.mean(0), gt.mean(0)
    p, g = pred - mp, gt - mg
    u, s, vt = np.linalg.svd(p.T @ g)  # (3, 3)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])  # no reflections
    rot = u @ fix @ vt  # p @ rot ~ g
    scale = (s * np.diag(fix)).sum() / max((p ** 2).sum(), 1e-12)
    return scale * p @ rot + mg


def procrustes_joint_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint distance after Procrustes alignment (PA-MPJPE), in the units of the input."""
    return float(np.linalg.norm(procrustes_align(pred, gt) - gt, axis=1).mean())
