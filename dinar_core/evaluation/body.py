"""Body errors of a fit against ground truth: MPJPE (root-aligned), PA-MPJPE and standing height."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from dinar_core.fitting.metrics import procrustes_joint_error


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: int = 0) -> float:
    """Mean per-joint position error after aligning the root joints. pred, gt: (J, 3) in metres -> metres."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.ndim != 2 or pred.shape[1] != 3:
        raise ValueError(f"pred and gt must both be (J, 3), got {pred.shape} and {gt.shape}")
    return float(np.linalg.norm((pred - pred[root]) - (gt - gt[root]), axis=1).mean())


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint error after the best similarity transform (Procrustes). (J, 3) each -> metres."""
    return procrustes_joint_error(np.asarray(pred, np.float64), np.asarray(gt, np.float64))


def rest_height(model, params) -> float:
    """Standing height (m) of the body `params` (batch 1) of `model`: the vertical extent (model frame, y up) of
    its vertices with every joint at rest and no global rotation."""
    zero = {f.name: torch.zeros_like(getattr(params, f.name)) for f in dataclasses.fields(params)
            if f.name in ("pose", "body_pose", "global_orient", "jaw_pose", "left_hand_pose", "right_hand_pose",
                          "transl")}
    with torch.no_grad():
        verts = model(dataclasses.replace(params, **zero)).vertices[0]
    return float(verts[:, 1].max() - verts[:, 1].min())
