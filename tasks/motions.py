"""The avatar's motions, shared by the `render` stage (video) and the `export` stage (GLB animation): a built-in
motion or a motion file resolved for the body, and the body model's parameters for each of its frames.

Built-in motions: 'turntable' (holds the fitted pose while turning), 'walk', 'wave', 'rest'. Files: DINAR's
animation pickle (its poses are in DINAR's camera frame, as DINAR renders them) or an AMASS .npz (turned from z up
to SMPL-X's canonical y up by the loader). Shape, expression and translation come from the fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from dinar_core.body import AnnyParams
from dinar_core.body.smplx_model import SMPLXParams
from dinar_core.errors import MotionError
from dinar_core.motion import (NUM_SMPLX_BODY_JOINTS, SMPLX_SKELETON, Motion, anny_skeleton, load_motion,
                               procedural_motion, resample, retarget_smplx)
from dinar_core.motion.procedural import Skeleton
from tasks.artifacts import FitFrame
from tasks.bodies import LoadedBody

BUILTIN_MOTIONS = ("turntable", "walk", "wave", "idle", "rest")
UPRIGHT = np.array([np.pi, 0.0, 0.0])
"""Axis-angle from SMPL-X's canonical frame (y up, facing +z) to DINAR's camera frame (y down, facing the camera);
its own inverse."""
CHUNK = 32  # frames posed per body forward (bounds memory for long motion files)


def skeleton_of(body: LoadedBody) -> Skeleton:
    if body.kind == "smplx":
        return SMPLX_SKELETON
    m = body.model
    return anny_skeleton(m.joint_names, m.frame.cpu().numpy(), m.rest_joints.cpu().numpy())


def fitted_body_pose(body: LoadedBody, fit: FitFrame) -> np.ndarray:
    """(3 J,) the fitted pose in the motion's body_pose layout."""
    p = fit.params
    pose = p.body_pose if body.kind == "smplx" else p.pose
    return pose.detach().reshape(-1).cpu().numpy()


def resolve_motion(spec: str, body: LoadedBody, fit: FitFrame, fps: float, seconds: float,
                   frame: str = "camera") -> Motion:
    """The motion named by `spec` at `fps`, with its root rotation in DINAR's camera frame (`frame='camera'`) or
    SMPL-X's canonical frame (`frame='canonical'`, for glTF). MotionError for a bad file or joint count."""
    skeleton = skeleton_of(body)
    if spec in BUILTIN_MOTIONS:
        n = max(1, int(round(seconds * fps)))
        options = {"body_pose": fitted_body_pose(body, fit)} if spec == "turntable" else {}
        motion = procedural_motion(spec, n, fps, skeleton, **options)
        in_camera = False
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise MotionError(f"motion {spec!r} is neither a built-in motion ({', '.join(BUILTIN_MOTIONS)}) nor an "
                              "existing file",
                              fix="give turntable, walk, wave, idle, rest or a DINAR .pkl / AMASS .npz")
        if body.kind == "smplx":
            motion = load_motion(path, num_body_joints=skeleton.num_joints)
        else:  # a motion of Anny's own rig as it is; a SMPL-X motion (AMASS, DINAR) retargeted onto it
            motion = load_motion(path, num_body_joints=None)
            if motion.num_body_joints == NUM_SMPLX_BODY_JOINTS and skeleton.num_joints != NUM_SMPLX_BODY_JOINTS:
                motion = retarget_smplx(motion, skeleton)
            motion.check_body_joints(skeleton.num_joints, "Anny")
        motion = resample(motion, fps)
        in_camera = path.suffix.lower() in (".pkl", ".pickle")
    if in_camera != (frame == "camera"):
        motion = motion.compose_global(UPRIGHT)
    return motion


def _hand_pca(hand: np.ndarray, fmt: str, components: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """(T, D) motion hand -> (T, P) PCA coefficients of the SMPL-X model (P = its component count):
    PCA is cut or zero-padded, axis-angle (T, 45) is projected on the components (they are orthonormal rows)."""
    P = components.shape[0]
    h = torch.as_tensor(hand, dtype=components.dtype, device=components.device)
    if fmt == "pca":
        out = torch.zeros(h.shape[0], P, dtype=h.dtype, device=h.device)
        k = min(P, h.shape[1])
        out[:, :k] = h[:, :k]
        return out
    return (h - mean[None]) @ components.T


def motion_params(body: LoadedBody, fitted: SMPLXParams | AnnyParams, motion: Motion
                  ) -> Iterator[SMPLXParams | AnnyParams]:
    """The body model's parameters for every frame of `motion`, CHUNK frames at a time: the fitted avatar (shape,
    expression, translation and, where the motion has none, pose and orientation of `fitted`, batch 1) moved by
    `motion`."""
    device = body.model.device
    T = motion.num_frames
    for start in range(0, T, CHUNK):
        sl = slice(start, min(T, start + CHUNK))
        n = sl.stop - sl.start

        def col(values, fallback: torch.Tensor) -> torch.Tensor:
            if values is None:
                return fallback.expand(n, -1).clone()
            return torch.as_tensor(values[sl], dtype=torch.float32, device=device)

        p = fitted
        transl = p.transl.expand(n, -1).clone()
        if motion.transl is not None:
            transl = transl + torch.as_tensor(motion.transl[sl] - motion.transl[:1], dtype=torch.float32,
                                              device=device)
        orient = col(motion.global_orient, p.global_orient)
        if body.kind == "smplx":
            s = body.model.smplx
            hands = []
            for side, fitted_hand in (("left", p.left_hand_pose), ("right", p.right_hand_pose)):
                pose = getattr(motion, f"{side}_hand_pose")
                hands.append(fitted_hand.expand(n, -1).clone() if pose is None else _hand_pca(
                    pose[sl], motion.hand_format, getattr(s, f"{side}_hand_components"),
                    getattr(s, f"{side}_hand_mean")))
            params = SMPLXParams(
                betas=p.betas.expand(n, -1).clone(), expression=p.expression.expand(n, -1).clone(),
                global_orient=orient, body_pose=col(motion.body_pose, p.body_pose),
                jaw_pose=col(motion.jaw_pose, p.jaw_pose), left_hand_pose=hands[0], right_hand_pose=hands[1],
                transl=transl, body_scale=None if p.body_scale is None else p.body_scale.expand(n, -1).clone())
        else:
            params = AnnyParams(phenotype=p.phenotype.expand(n, -1).clone(),
                                pose=col(motion.body_pose, p.pose.reshape(1, -1)).reshape(n, -1, 3),
                                global_orient=orient, transl=transl)
        yield params


def pose_motion(body: LoadedBody, fit: FitFrame, motion: Motion) -> torch.Tensor:
    """(T, V, 3) vertices of the fitted avatar (shape, expression, translation of `fit`) moved by `motion`."""
    with torch.no_grad():
        return torch.cat([body.model(params).vertices for params in motion_params(body, fit.params, motion)], 0)
