"""What the fit aims at, prepared once before any optimisation: the keypoint targets (checked, clipped to the image,
leg keypoints at a cut frame edge dropped), each mask as an outside-distance map and outline samples, the body's
image height (the unit of every image-space loss), DINAR's intrinsics, and which legs are unseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from dinar_core.errors import KeypointsError, MaskError, NoPersonError
from dinar_core.fitting.config import FitConfig
from dinar_core.fitting.init import LHIP, LSHO, MIDHIP, NECK, RHIP, RSHO
from dinar_core.fitting.metrics import body_height_px
from dinar_core.fitting.variables import BodySpec
from dinar_core.keypoints.layout import BODY, BODY_25, FACE, HANDS, NUM_KEYPOINTS
from dinar_core.render.camera import make_K

RKNEE, RANKLE, LKNEE, LANKLE = (BODY_25[n] for n in ("RKnee", "RAnkle", "LKnee", "LAnkle"))
LEFT_FOOT_KP = tuple(BODY_25[n] for n in ("LBigToe", "LSmallToe", "LHeel"))
RIGHT_FOOT_KP = tuple(BODY_25[n] for n in ("RBigToe", "RSmallToe", "RHeel"))
LEG_KEYPOINTS = (RKNEE, RANKLE, LKNEE, LANKLE) + LEFT_FOOT_KP + RIGHT_FOOT_KP
"""The BODY_25 keypoints below the hips: dropped at a cut frame edge, inferred-only for a partial body."""


@dataclass
class Silhouettes:
    """Per-frame silhouette data on a common canvas. dt: (B, 1, Hc, Wc) outside distance (pixels); size: (B, 2)
    valid (W, H) of each frame's padded map; pad: (B,) offset of the image inside it; outline: (B, M, 2) pixel
    positions of outline samples; outline_w: (B, M) 1 real / 0 padding; has_mask: (B,) bool."""

    dt: Tensor
    size: Tensor
    pad: Tensor
    outline: Tensor
    outline_w: Tensor
    has_mask: Tensor


@dataclass
class FitTargets:
    """Everything the objective compares the body with, for B frames.

    keypoints: (B, 137, 3) float32 numpy (x, y, confidence; 0 = missing), the host copy of ``target``.
    target: (B, 137, 3) the same on the fit's device. K: (B, 3, 3) DINAR's intrinsics per frame.
    scale: (B,) the body's image height in pixels (``metrics.body_height_px``); scale_px: the same as floats.
    silhouettes: :class:`Silhouettes`. leg_mask: (B, Jb) 1 for leg joints pulled to rest (nothing below seen).
    partial: per frame, True when neither ankle is seen. dropped: per frame, leg keypoints dropped at a cut edge.
    """

    keypoints: np.ndarray
    target: Tensor
    K: Tensor
    scale: Tensor
    scale_px: list[float]
    silhouettes: Silhouettes
    leg_mask: Tensor
    partial: list[bool]
    dropped: list[list[int]]

    @property
    def has_detail(self) -> bool:
        """True when some frame has hand or face detections (the detail stage has something to fit)."""
        return bool((self.keypoints[:, HANDS, 2] > 0).any() or (self.keypoints[:, FACE, 2] > 0).any())


def prepare_targets(keypoints: Sequence, masks: Sequence[np.ndarray | None], image_sizes: Sequence[tuple[int, int]],
                    spec: BodySpec, cfg: FitConfig, device: torch.device) -> FitTargets:
    """The fit's targets for B frames (see :func:`~dinar_core.fitting.fitter.fit_body` for the inputs and the
    errors). image_sizes: B (H, W) ints."""
    target = stack_keypoints(keypoints, image_sizes)  # (B, 137, 3)
    dropped = drop_cut_leg_keypoints(target, masks, cfg.cut_edge_margin)
    sil = prepare_masks(masks, image_sizes, cfg, device)
    scale = np.array([body_height_px(None if m is None else np.asarray(m, bool), target[b, BODY])
                      for b, m in enumerate(masks)], np.float32)
    check_masks_hold_keypoints(target, masks, cfg.min_body_fraction)
    return FitTargets(
        keypoints=target, target=torch.from_numpy(target).to(device),
        K=torch.stack([make_K(h, w, cfg.focal) for h, w in image_sizes]).to(device),  # (B, 3, 3)
        scale=torch.from_numpy(scale).to(device), scale_px=[float(s) for s in scale], silhouettes=sil,
        leg_mask=torch.from_numpy(leg_prior_mask(spec, target)).to(device),
        partial=[not ((target[b, RANKLE, 2] > 0) or (target[b, LANKLE, 2] > 0)) for b in range(len(target))],
        dropped=dropped)


def stack_keypoints(keypoints: Sequence, image_sizes: Sequence[tuple[int, int]]) -> np.ndarray:
    """Keypoints2D list -> (B, 137, 3) float32 with confidences of points outside the image set to 0.

    Raises KeypointsError for NaN, all-zero confidences or no torso."""
    out = []
    for b, (kp, (H, W)) in enumerate(zip(keypoints, image_sizes)):
        arr = kp.to_array().astype(np.float32)  # (137, 3)
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


def prepare_masks(masks: Sequence[np.ndarray | None], image_sizes, cfg: FitConfig,
                  device: torch.device) -> Silhouettes:
    """Each (H, W) mask -> its padded outside-distance map and up to ``cfg.mask_samples`` outline points (seeded
    by ``cfg.seed``), stacked on one canvas. A None mask gives an empty entry (no silhouette term for that frame).
    Raises MaskError (wrong size) and NoPersonError (empty mask)."""
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
    return Silhouettes(
        dt=torch.from_numpy(canvas)[:, None].to(device),
        size=torch.tensor([[d.shape[1], d.shape[0]] for d in dts], dtype=torch.float32, device=device),
        pad=torch.tensor(pads, dtype=torch.float32, device=device),
        outline=torch.from_numpy(outline).to(device), outline_w=torch.from_numpy(outline_w).to(device),
        has_mask=torch.tensor([m is not None for m in masks], device=device))


def check_masks_hold_keypoints(target: np.ndarray, masks: Sequence[np.ndarray | None], min_fraction: float) -> None:
    """MaskError for a mask that holds under ``min_fraction`` of its frame's detected BODY_25 keypoints: it shows
    someone (or something) else. target: (B, 137, 3)."""
    for b, m in enumerate(masks):
        if m is not None:
            ok = target[b, BODY, 2] > 0
            xy = target[b, BODY][ok, :2].astype(int)
            hits = np.asarray(m, bool)[xy[:, 1], xy[:, 0]].mean() if len(xy) else 1.0
            if hits < min_fraction:
                raise MaskError(f"frame {b}: only {hits:.0%} of the body keypoints fall inside the mask",
                                fix="the mask and the keypoints show different people or images; re-run segment")


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


def leg_prior_mask(spec: BodySpec, target: np.ndarray) -> np.ndarray:
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
