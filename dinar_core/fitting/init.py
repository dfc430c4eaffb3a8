"""Stage 1's starting point: camera-frame translation and global orientation from the torso keypoints.

With DINAR's camera (f = 5000 px, no rotation) a body is placed by its translation only, so the depth follows from
similar triangles: ``z = f * L_3d / L_px`` with L the torso length (neck to mid-hip; shoulder width for an
upper-body photo). The orientation is ``Rz(roll) Ry(yaw) Rx(pi)``: ``Rx(pi)`` turns the canonical body (y up,
facing +z) upright and facing the camera; the yaw magnitude follows from how foreshortened the shoulders are
relative to the torso, its sign from which side of the neck the nose is, and a back view (the left shoulder on the
image's left) gives yaw = pi; the roll aligns the model's torso axis with the image's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dinar_core.fitting.variables import FitVariables
from dinar_core.keypoints.layout import BODY_25
from dinar_core.rotations import matrix_to_axis_angle, rot_x, rot_y, rot_z

NOSE, NECK, RSHO, LSHO, MIDHIP, RHIP, LHIP = (BODY_25[n] for n in ("Nose", "Neck", "RShoulder", "LShoulder", "MidHip",
                                                                  "RHip", "LHip"))
YAW_FORESHORTENING = 0.82
"""Below this ratio of observed to expected shoulder width the initial yaw follows the foreshortening."""
TORSO = (NECK, RSHO, LSHO, MIDHIP, RHIP, LHIP)
"""BODY_25 indices the initialisation (and stage 1) use."""


@dataclass
class CameraInit:
    """global_orient: (B, 3) axis-angle; transl: (B, 3) metres; depth: (B,) the torso's distance (metres)."""

    global_orient: Tensor
    transl: Tensor
    depth: Tensor


def _mid(a: Tensor, b: Tensor) -> Tensor:
    return 0.5 * (a + b)


def _torso_axis(p: Tensor, ok: Tensor) -> tuple[Tensor | None, Tensor | None]:
    """Top (neck or shoulder centre) and bottom (mid-hip or hip centre) of the torso: p (K, D), ok (K,) bool."""
    top = p[NECK] if ok[NECK] else (_mid(p[RSHO], p[LSHO]) if ok[RSHO] and ok[LSHO] else None)
    bottom = p[MIDHIP] if ok[MIDHIP] else (_mid(p[RHIP], p[LHIP]) if ok[RHIP] and ok[LHIP] else None)
    return top, bottom


def init_camera(rest_points: Tensor, root: Tensor, available: Tensor, target: Tensor, K: Tensor,
                focal: float) -> CameraInit:
    """Translation and orientation that put the model's torso on the detected one.

    rest_points: (B, 137, 3) model keypoints with zero global orientation and zero translation (canonical frame).
    root: (B, 3) the root joint in the same pose (global_orient rotates about it).
    available: (137,) bool, which model keypoints exist.
    target: (B, 137, 3) detections (x, y, confidence); confidence 0 = missing.
    K: (B, 3, 3) intrinsics; focal: f in pixels.
    Raises ValueError when a frame has no usable torso (the fitter checks this earlier with a named error).
    """
    B = rest_points.shape[0]
    orients, transls, depths = [], [], []
    for b in range(B):
        p3 = rest_points[b].detach().double()
        p2 = target[b, :, :2].double()
        ok2 = (target[b, :, 2] > 0) & available[: target.shape[1]]
        top2, bottom2 = _torso_axis(p2, ok2)
        top3, bottom3 = _torso_axis(p3, available)
        shoulders = bool(ok2[RSHO] and ok2[LSHO])
        s2 = p2[LSHO] - p2[RSHO] if shoulders else None
        s3_len = float((p3[LSHO] - p3[RSHO]).norm())
        if top2 is not None and bottom2 is not None and float((top2 - bottom2).norm()) > 1.0:
            axis2 = top2 - bottom2  # image vector bottom -> top of the torso
            length3 = float((top3 - bottom3).norm())
            z = focal * length3 / float(axis2.norm())
            if shoulders:  # foreshortening of the shoulders: |cos yaw|
                cos_yaw = min(1.0, abs(float(s2[0])) * z / (focal * s3_len))
            else:
                cos_yaw = 1.0
        elif shoulders:  # upper body without hips: assume the shoulders face the camera
            axis2 = torch.tensor([-float(s2[1]), float(s2[0])], dtype=torch.float64)  # s2 rotated by -90 deg
            axis2 = axis2 if float(axis2[1]) < 0 else -axis2
            z = focal * s3_len / max(float(s2.norm()), 1.0)
            cos_yaw = 1.0
        else:
            raise ValueError(f"frame {b}: no torso (need neck/shoulders and hips, or both shoulders)")
        # Shoulder foreshortening confounds yaw with body proportions (a narrow-shouldered person looks turned),
        # so only a clear turn (beyond ~35 deg) starts turned; smaller yaws are left to the optimisation.
        yaw = math.acos(cos_yaw) if cos_yaw < YAW_FORESHORTENING else 0.0
        back = shoulders and float(s2[0]) < 0  # left shoulder on the image's left: we see the back
        if ok2[NOSE] and top2 is not None and yaw > 1e-3:
            # Ry(yaw) moves the face (canonical +z, i.e. -z after Rx(pi)) towards image -x for yaw > 0.
            yaw = yaw if float(p2[NOSE][0] - top2[0]) < 0 else -yaw
        if back:  # turned away: pi - yaw keeps the face on the nose's side (face x-direction is -sin(yaw))
            yaw = math.pi - yaw
        roll = math.atan2(float(axis2[0]), -float(axis2[1]))  # angle from the image's up (0, -1)
        # Rz(a) turns the image's up (0, -1) towards (sin a, -cos a): the observed axis leans by atan2(x, -y).
        R = rot_z(roll).double() @ rot_y(yaw).double() @ rot_x(math.pi).double()
        r0 = root[b].detach().double()
        posed = (p3 - r0) @ R.T + r0  # (137, 3) as the body model rotates: about its root joint
        use = [k for k in TORSO if ok2[k] and available[k]]
        c3 = posed[use].mean(0)
        c2 = p2[use].mean(0)
        Kinv = torch.linalg.inv(K[b].double())
        ray = Kinv @ torch.tensor([float(c2[0]), float(c2[1]), 1.0], dtype=torch.float64)
        t = z * ray - c3
        orients.append(matrix_to_axis_angle(R.float()))
        transls.append(t.float())
        depths.append(z)
    return CameraInit(torch.stack(orients).to(rest_points.device), torch.stack(transls).to(rest_points.device),
                      torch.tensor(depths, device=rest_points.device))


def aim_limbs(fb, v, target: Tensor, K: Tensor, min_length: float = 0.3) -> FitVariables:
    """Turn each limb the body lists in ``fb.limb_aims`` (upper arms, forearms, thighs, shins; parents first) about
    the camera's optical axis through its joint, so that it points in the image as the detected limb (near to far
    keypoint) does: a closed-form start for the body stages from the 2D keypoints (the depth of each limb stays as
    it was). A limb is left as it is when its far keypoint is not detected, or when its detected image length is
    under ``min_length`` of the model's (a limb pointing at the camera: its image direction is noise).

    fb: a FitBody with ``limb_aims`` ((body_pose joint, model joint, BODY_25 near and far keypoints), ...) and
        ``pose_frames(v)`` ((B, Jb, 3, 3) the camera-frame rotation each local rotation acts in); without them ``v``
        is returned unchanged.
    v: FitVariables after the camera stage (updated in place and returned).
    target: (B, 137, 3) detections (x, y, confidence); K: (B, 3, 3).
    """
    from dinar_core.render.camera import project
    from dinar_core.rotations import axis_angle_to_matrix

    aims = getattr(fb, "limb_aims", ())
    if not aims or not hasattr(fb, "pose_frames"):
        return v
    with torch.no_grad():
        for pose_j, joint, start, end in aims:
            out = fb.forward(v)
            kp = fb.keypoints(out).points  # (B, 137, 3)
            image = project(torch.stack([out.joints[:, joint], kp[:, end]], 1), K)  # (B, 2, 2)
            a = image[:, 1] - image[:, 0]  # (B, 2) the model's limb in the image, from its joint
            # the detected limb: from its detected near end when there is one (the model's joint need not be on
            # it: a foreshortened parent limb puts it beyond), else from the model's joint
            seen_start = (target[:, start, 2] > 0)[:, None]
            b = target[:, end, :2] - torch.where(seen_start, target[:, start, :2], image[:, 0])
            la, lb = a.norm(dim=-1), b.norm(dim=-1)
            ok = (target[:, end, 2] > 0) & (la > 1.0) & (lb > min_length * la)
            theta = torch.atan2(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0], (a * b).sum(-1))
            theta = torch.where(ok, theta, torch.zeros_like(theta))
            c, s = torch.cos(theta), torch.sin(theta)
            delta = torch.zeros(theta.shape[0], 3, 3, dtype=theta.dtype, device=theta.device)
            delta[:, 0, 0], delta[:, 0, 1], delta[:, 1, 0], delta[:, 1, 1], delta[:, 2, 2] = c, -s, s, c, 1.0
            G = fb.pose_frames(v)[:, pose_j]  # (B, 3, 3)
            local = axis_angle_to_matrix(v.body_pose[:, pose_j])
            turned = G.transpose(-1, -2) @ delta @ G @ local
            pose = v.body_pose.clone()
            pose[:, pose_j] = matrix_to_axis_angle(turned)
            v.body_pose = pose
    return v
