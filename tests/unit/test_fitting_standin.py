"""The fitter depends only on the FitBody protocol: a 25-joint stick figure with octahedron blobs (no body model
files, no dinar_core.body) is fitted like SMPL-X."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dinar_core.fitting import BodySpec, FitBody, FitConfig, FitVariables, fit_body
from dinar_core.rotations import axis_angle_to_matrix
from tests.helpers.fitting_scenes import make_scene, natural_pose, place

# BODY_25 rest positions (canonical frame: y up, facing +z, x = the figure's left), and the posed joint that moves
# each keypoint last: 0 hip.L, 1 hip.R, 2 knee.L, 3 knee.R, 4 shoulder.L, 5 shoulder.R, 6 elbow.L, 7 elbow.R.
_REST = {
    0: (0, 0.65, 0.1), 1: (0, 0.5, 0), 2: (-0.18, 0.48, 0), 3: (-0.45, 0.48, 0), 4: (-0.7, 0.48, 0),
    5: (0.18, 0.48, 0), 6: (0.45, 0.48, 0), 7: (0.7, 0.48, 0), 8: (0, 0, 0), 9: (-0.09, -0.05, 0),
    10: (-0.1, -0.48, 0), 11: (-0.1, -0.9, 0), 12: (0.09, -0.05, 0), 13: (0.1, -0.48, 0), 14: (0.1, -0.9, 0),
    15: (-0.03, 0.68, 0.08), 16: (0.03, 0.68, 0.08), 17: (-0.07, 0.66, 0), 18: (0.07, 0.66, 0),
    19: (0.12, -0.95, 0.12), 20: (0.16, -0.95, 0.1), 21: (0.1, -0.95, -0.05), 22: (-0.12, -0.95, 0.12),
    23: (-0.16, -0.95, 0.1), 24: (-0.1, -0.95, -0.05),
}
# joint index -> (pivot keypoint, parent joint or -1, keypoints it moves)
_JOINTS = [
    (12, -1, (13, 14, 19, 20, 21)), (9, -1, (10, 11, 22, 23, 24)), (13, 0, (14, 19, 20, 21)),
    (10, 1, (11, 22, 23, 24)), (5, -1, (6, 7)), (2, -1, (3, 4)), (6, 4, (7,)), (3, 5, (4,)),
]


@dataclass
class _Out:
    vertices: torch.Tensor
    joints: torch.Tensor
    points: torch.Tensor


@dataclass
class _Kp:
    points: torch.Tensor
    available: torch.Tensor


class StickFigure:
    """FitBody: 8 posed joints (hips, knees, shoulders, elbows), 1 shape coefficient (overall size)."""

    def __init__(self):
        self.rest = torch.tensor([_REST[k] for k in range(25)], dtype=torch.float32)  # (25, 3)
        # Octahedron per keypoint, radius 6 cm, wound outwards.
        offs = 0.06 * torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
                                   dtype=torch.float32)
        tri = [(0, 2, 4), (2, 1, 4), (1, 3, 4), (3, 0, 4), (2, 0, 5), (1, 2, 5), (3, 1, 5), (0, 3, 5)]
        self.offsets = offs
        self.faces = torch.tensor([[a + 6 * k, b + 6 * k, c + 6 * k] for k in range(25) for a, b, c in tri])
        self.device = torch.device("cpu")
        inf = math.inf
        self.spec = BodySpec(
            num_body_joints=8, num_betas=1, num_hand=0, num_expression=0, has_jaw=False,
            pose_lower=torch.full((8, 3), -inf), pose_upper=torch.full((8, 3), inf), pose_weight=torch.ones(8),
            bend_joint=torch.zeros(0, dtype=torch.long), bend_axis=torch.zeros(0, dtype=torch.long),
            bend_sign=torch.zeros(0), leg_joints=((0, "L", "hip"), (1, "R", "hip"), (2, "L", "knee"),
                                                  (3, "R", "knee")))

    def forward(self, v: FitVariables) -> _Out:
        b = v.batch_size
        pts = self.rest[None].expand(b, 25, 3) * (1 + 0.1 * v.betas[:, :1, None])  # (B, 25, 3)
        rot = axis_angle_to_matrix(v.body_pose)  # (B, 8, 3, 3)
        pts = list(pts.unbind(1))
        for j in (2, 3, 6, 7, 0, 1, 4, 5):  # children first: a parent then moves the already posed child
            pivot, _parent, moved = _JOINTS[j]
            for k in moved:
                pts[k] = pts[pivot] + (rot[:, j] @ (pts[k] - pts[pivot])[..., None])[..., 0]
        pts = torch.stack(pts, 1)  # (B, 25, 3)
        g = axis_angle_to_matrix(v.global_orient)  # (B, 3, 3)
        root = pts[:, 8:9]
        pts = (pts - root) @ g.transpose(1, 2) + root + v.transl[:, None]
        verts = (pts[:, :, None] + self.offsets @ g.transpose(1, 2)[:, None]).reshape(b, -1, 3)  # (B, 150, 3)
        return _Out(verts, pts[:, 8:9], pts)

    def keypoints(self, out: _Out) -> _Kp:
        b = out.points.shape[0]
        points = torch.cat([out.points, torch.zeros(b, 112, 3)], 1)  # no hands or face
        available = torch.zeros(137, dtype=torch.bool)
        available[:25] = True
        return _Kp(points, available)


def test_stick_figure_is_a_fit_body_and_gets_fitted():
    body = StickFigure()
    assert isinstance(body, FitBody)
    size = (256, 192)
    v = natural_pose(body, 1, seed=2, scale=0.2, yaw_deg=10.0)
    v.betas = torch.tensor([[0.5]])
    v = place(body, v, size)
    scene = make_scene(body, v, size, seed=0, noise_px=1.0, dropped=2)[0]
    fit = fit_body(body, [scene.keypoints], [scene.mask], [size], FitConfig(body_prior_schedule=(4.0, 1.0),
                                                                                 body_iterations=6))
    m = fit.metrics[0]
    assert m.reprojection_error_rel < 0.01, m
    assert m.mask_iou > 0.8, m
    assert fit.params is None  # no to_params: the stand-in has no parameter file of its own
    assert [s.name for s in fit.stages] == ["camera", "body1", "body2"]  # nothing for hands or face
    assert np.isfinite(fit.vertices.numpy()).all()
