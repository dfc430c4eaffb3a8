"""Adapters from the project's body models (``dinar_core.body``) to the fitter's :class:`FitBody` protocol.

``SMPLXFitBody`` evaluates SMPL-X from the buffers of an :class:`~dinar_core.body.SMPLXBody` with a skinning
written for speed on the CPU (smplx's ``lbs`` multiplies 10,475 separate 4x4 matrices, ~0.23 s per forward +
backward on 2 cores; the same maths as broadcast products takes a fraction of that). A unit test checks that it
reproduces ``SMPLXBody.forward`` (vertices and all 144 points) to float precision.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dinar_core.body.base import BodyOutput, Keypoints3D
from dinar_core.rotations import axis_angle_to_matrix
from dinar_core.fitting.variables import BodySpec, FitVariables

INF = math.inf

# SMPL-X body_pose joint indices (body joint k = SMPL-X joint k + 1).
SMPLX_BODY = {
    "left_hip": 0, "right_hip": 1, "spine1": 2, "left_knee": 3, "right_knee": 4, "spine2": 5, "left_ankle": 6,
    "right_ankle": 7, "spine3": 8, "left_foot": 9, "right_foot": 10, "neck": 11, "left_collar": 12,
    "right_collar": 13, "head": 14, "left_shoulder": 15, "right_shoulder": 16, "left_elbow": 17, "right_elbow": 18,
    "left_wrist": 19, "right_wrist": 20,
}


def smplx_body_spec() -> BodySpec:
    """SMPL-X's prior tables (canonical frame: y up, facing +z, x = the body's left; arms along +-x).

    Why these signs: a left forearm (along +x) bends forwards (towards +z) under a negative rotation about y, a
    right one under a positive; a shin (along -y) bends backwards under a positive rotation about x. So positive
    y at the left elbow, negative y at the right elbow and negative x at the knees are the unnatural directions.
    """
    j = SMPLX_BODY
    lower = torch.full((21, 3), -INF)
    upper = torch.full((21, 3), INF)

    def limit(name: str, lo: tuple[float, float, float], hi: tuple[float, float, float]) -> None:
        lower[j[name]] = torch.tensor(lo)
        upper[j[name]] = torch.tensor(hi)

    for knee in ("left_knee", "right_knee"):
        limit(knee, (-0.1, -0.2, -0.2), (2.7, 0.2, 0.2))
    # Hips: flexion (thigh forwards) is a negative rotation about x, up to ~130 deg, extension ~30 deg; abduction
    # (the left thigh towards +x under +z) to ~70 deg, adduction ~30 deg; twist about the thigh ~45 deg.
    limit("left_hip", (-2.3, -0.8, -0.5), (0.5, 0.8, 1.2))
    limit("right_hip", (-2.3, -0.8, -1.2), (0.5, 0.8, 0.5))
    for collar in ("left_collar", "right_collar"):
        limit(collar, (-0.5, -0.5, -0.5), (0.5, 0.5, 0.5))
    limit("left_elbow", (-0.8, -2.7, -0.4), (0.8, 0.1, 0.4))
    limit("right_elbow", (-0.8, -0.1, -0.4), (0.8, 2.7, 0.4))
    for spine in ("spine1", "spine2", "spine3"):
        limit(spine, (-0.7, -0.7, -0.7), (0.7, 0.7, 0.7))
    for name in ("neck", "head"):
        limit(name, (-0.9, -1.2, -0.9), (0.9, 1.2, 0.9))
    for name in ("left_ankle", "right_ankle"):
        limit(name, (-0.9, -0.6, -0.6), (0.9, 0.6, 0.6))
    # Shoulders: no twist beyond ~70 deg about the upper arm (the arm's own axis, x in the T-pose); a twisted
    # upper arm lets a forearm bent forwards point backwards, the classic depth ambiguity of a single view.
    limit("left_shoulder", (-1.2, -1.6, -1.6), (1.2, 1.6, 1.3))
    limit("right_shoulder", (-1.2, -1.6, -1.3), (1.2, 1.6, 1.6))
    for name in ("left_foot", "right_foot", "left_wrist", "right_wrist"):
        limit(name, (-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
    weight = torch.ones(21)
    for spine in ("spine1", "spine2", "spine3"):
        weight[j[spine]] = 4.0  # the spine bends only when the data insist
    for name in ("left_foot", "right_foot", "left_collar", "right_collar"):
        weight[j[name]] = 4.0  # feet and collars are poorly observed by keypoints
    bend = [(j["left_elbow"], 1, 1.0), (j["right_elbow"], 1, -1.0), (j["left_knee"], 0, -1.0),
            (j["right_knee"], 0, -1.0)]
    legs = tuple((j[f"{side}_{joint}"], side[0].upper(), level) for side in ("left", "right")
                 for joint, level in (("hip", "hip"), ("knee", "knee"), ("ankle", "ankle"), ("foot", "ankle")))
    rest = torch.zeros(21, 3)
    rest[j["left_shoulder"], 2], rest[j["right_shoulder"], 2] = -1.0, 1.0  # arms down (~57 deg from T)
    rest[j["left_elbow"], 1], rest[j["right_elbow"], 1] = -0.3, 0.3  # forearms slightly forwards
    rest[j["left_knee"], 0], rest[j["right_knee"], 0] = 0.1, 0.1  # knees slightly bent
    weight[j["left_wrist"]] = weight[j["right_wrist"]] = 2.0  # a wrist turns only for the hand keypoints
    return BodySpec(
        num_body_joints=21, pose_rest=rest, num_betas=10, num_hand=6, num_expression=10, has_jaw=True, pose_lower=lower,
        pose_upper=upper, pose_weight=weight, bend_joint=torch.tensor([b[0] for b in bend]),
        bend_axis=torch.tensor([b[1] for b in bend]), bend_sign=torch.tensor([b[2] for b in bend]),
        leg_joints=legs, joint_names=tuple(sorted(j, key=j.get)))


SMPLX_LIMB_AIMS: tuple[tuple[int, int, int, int], ...] = (
    (SMPLX_BODY["left_shoulder"], 16, 5, 6), (SMPLX_BODY["left_elbow"], 18, 6, 7),
    (SMPLX_BODY["right_shoulder"], 17, 2, 3), (SMPLX_BODY["right_elbow"], 19, 3, 4),
    (SMPLX_BODY["left_hip"], 1, 12, 13), (SMPLX_BODY["left_knee"], 4, 13, 14),
    (SMPLX_BODY["right_hip"], 2, 9, 10), (SMPLX_BODY["right_knee"], 5, 10, 11),
)
"""(body_pose joint, the model joint it turns about, the BODY_25 keypoints at the limb's near and far ends) of
each upper arm, forearm, thigh and shin, parents first: the limbs ``init.aim_limbs`` turns towards the
detections."""


class SMPLXFitBody:
    """:class:`FitBody` over an :class:`~dinar_core.body.SMPLXBody` (DINAR's settings: 6 hand PCA components,
    flat_hand_mean=False, 10 betas / expression, face contour, DINAR's fixed eye poses).

    forward(FitVariables) -> ``BodyOutput`` (vertices (B, 10475, 3), joints (B, 55, 3), source_points (B, 144, 3));
    keypoints(output) -> ``Keypoints3D`` (B, 137, 3); to_params(FitVariables) -> ``SMPLXParams`` for the pickle.
    """

    def __init__(self, body):
        self.body = body
        m = body.smplx
        self.spec = smplx_body_spec()
        self.faces = body.faces
        self.limb_aims = SMPLX_LIMB_AIMS
        dirs = torch.cat([m.shapedirs, m.expr_dirs], -1)  # (V, 3, 20)
        V = dirs.shape[0]
        self.v_template = m.v_template  # (V, 3)
        self.shape_dirs = dirs.reshape(V * 3, -1)  # (V*3, 20)
        # Joints are linear in the shape coefficients: regress the template and every direction once.
        self.j_template = m.J_regressor @ m.v_template  # (55, 3)
        self.j_dirs = torch.einsum("jv,vkl->jkl", m.J_regressor, dirs).reshape(-1, dirs.shape[-1])  # (165, 20)
        self.posedirs = m.posedirs  # (486, V*3)
        self.weights = m.lbs_weights  # (V, 55)
        self.parents = [int(p) for p in m.parents]
        self.parent_index = torch.tensor([max(p, 0) for p in self.parents], device=body.device)
        depth = [0] * len(self.parents)
        for k in range(1, len(self.parents)):
            depth[k] = depth[self.parents[k]] + 1  # SMPL-X lists parents before children
        self.levels = [torch.tensor([k for k in range(len(depth)) if depth[k] == d], device=body.device)
                       for d in range(max(depth) + 1)]
        position = {int(k): (d, i) for d, lv in enumerate(self.levels) for i, k in enumerate(lv)}
        self.level_parent = [None] + [torch.tensor([position[self.parents[int(k)]][1] for k in lv],
                                                   device=body.device) for lv in self.levels[1:]]
        order = torch.cat(self.levels)
        self.level_inverse = torch.argsort(order)
        self.pose_mean = m.pose_mean  # (165,)
        self.hand_components = (m.left_hand_components, m.right_hand_components)  # (6, 45) each
        self.eyes = torch.cat([body.leye_pose, body.reye_pose], 0)  # (2, 3)

    @property
    def device(self) -> torch.device:
        return self.faces.device

    def full_pose(self, v: FitVariables) -> Tensor:
        """(B, 165) axis-angle of the 55 joints, hand PCA expanded and smplx's mean pose added."""
        b = v.batch_size
        left = v.left_hand @ self.hand_components[0]  # (B, 45)
        right = v.right_hand @ self.hand_components[1]
        pose = torch.cat([v.global_orient, v.body_pose.reshape(b, -1), v.jaw_pose,
                          self.eyes.reshape(1, 6).expand(b, 6), left, right], 1)
        return pose + self.pose_mean

    def _chain(self, v: FitVariables, J: Tensor, rot: Tensor) -> tuple[Tensor, Tensor]:
        """The kinematic chain, one tree level at a time (11 batched steps instead of 54 per-joint ones).
        J: (B, 55, 3) rest joints; rot: (B, 55, 3, 3) local rotations -> global rotations R (B, 55, 3, 3) and
        posed joints P (B, 55, 3), before the translation."""
        b = v.batch_size
        rel = J - J[:, self.parent_index]  # (B, 55, 3) offset of each joint from its parent (root: 0)
        rel = rel.clone()
        rel[:, 0] = J[:, 0]
        R_levels, P_levels = [rot[:, self.levels[0]]], [rel[:, self.levels[0]]]
        for lvl in range(1, len(self.levels)):
            idx = self.levels[lvl]
            pr = R_levels[lvl - 1][:, self.level_parent[lvl]]  # (B, n, 3, 3) parents' global rotations
            pp = P_levels[lvl - 1][:, self.level_parent[lvl]]  # (B, n, 3)
            R_levels.append(pr @ rot[:, idx])
            P_levels.append(pp + (pr @ rel[:, idx, :, None])[..., 0])
        R = torch.cat(R_levels, 1)[:, self.level_inverse]  # (B, 55, 3, 3) global rotations, joint order
        P = torch.cat(P_levels, 1)[:, self.level_inverse]  # (B, 55, 3) posed joints
        return R, P

    def forward(self, v: FitVariables) -> BodyOutput:
        return self._forward(v, None)

    def forward_vertices(self, v: FitVariables, vertex_ids: Tensor) -> BodyOutput:
        """``forward`` with only the vertices ``vertex_ids`` (N,) evaluated, plus those the keypoints come from (the
        face landmarks' triangles, static and dynamic, and smplx's 21 extra surface points): vertices (B, N, 3),
        joints and source_points exactly as ``forward``'s."""
        return self._forward(v, self._vertex_selection(vertex_ids))

    def _vertex_selection(self, vertex_ids: Tensor) -> dict:
        """The buffers of one vertex set (cached): the set extended by the keypoints' vertices, its rows of the
        template, shape and pose directions and skinning weights, the faces renumbered into it, and where the
        extra surface points are in it."""
        key = tuple(vertex_ids.tolist())
        cache = self.__dict__.setdefault("_selections", {})
        if key in cache:
            return cache[key]
        m = self.body.smplx
        faces = m.faces_tensor
        needed = torch.cat([faces[m.lmk_faces_idx].reshape(-1), faces[m.dynamic_lmk_faces_idx.reshape(-1)].reshape(-1),
                            m.vertex_joint_selector.extra_joints_idxs.reshape(-1)]).to(vertex_ids)
        ids = vertex_ids.to(self.device)
        extra = needed[~torch.isin(needed, ids)].unique()
        full = torch.cat([ids, extra])  # (N',): the requested vertices first
        V = self.v_template.shape[0]
        position = torch.zeros(V, dtype=torch.int64, device=self.device)  # 0 for faces no landmark uses
        position[full] = torch.arange(len(full), device=self.device)
        rows = (3 * full[:, None] + torch.arange(3, device=self.device)).reshape(-1)  # the (V*3) rows of full
        sel = {"count": len(ids), "template": self.v_template[full], "shape_dirs": self.shape_dirs[rows],
               "posedirs": self.posedirs[:, rows], "weights": self.weights[full], "faces": position[faces],
               "extra": position[m.vertex_joint_selector.extra_joints_idxs]}
        cache[key] = sel
        return sel

    def _forward(self, v: FitVariables, sel: dict | None) -> BodyOutput:
        """The posed body on all vertices (``sel`` None) or on a ``_vertex_selection``."""
        from smplx.lbs import find_dynamic_lmk_idx_and_bcoords, vertices2landmarks

        m = self.body.smplx
        if sel is None:
            sel = {"count": None, "template": self.v_template, "shape_dirs": self.shape_dirs,
                   "posedirs": self.posedirs, "weights": self.weights, "faces": m.faces_tensor,
                   "extra": m.vertex_joint_selector.extra_joints_idxs}
        b = v.batch_size
        coeffs = torch.cat([v.betas, v.expression], 1)  # (B, 20)
        v_shaped = sel["template"] + (coeffs @ sel["shape_dirs"].T).reshape(b, -1, 3)  # (B, V, 3)
        J = self.j_template + (coeffs @ self.j_dirs.T).reshape(b, -1, 3)  # (B, 55, 3)
        pose = self.full_pose(v)
        rot = axis_angle_to_matrix(pose.reshape(b, -1, 3))  # (B, 55, 3, 3)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        feat = (rot[:, 1:] - eye).reshape(b, -1)  # (B, 486)
        v_posed = v_shaped + (feat @ sel["posedirs"]).reshape(b, -1, 3)  # (B, V, 3)
        R, P = self._chain(v, J, rot)
        t = P - (R @ J[..., None])[..., 0]  # (B, 55, 3): x -> R x + t moves rest points with their joint
        A = torch.cat([R.reshape(b, -1, 9), t], -1)  # (B, 55, 12)
        T = sel["weights"] @ A  # (B, V, 12) blended transforms, row-major 3x3 then translation
        x, y, z = v_posed[..., 0:1], v_posed[..., 1:2], v_posed[..., 2:3]
        verts = torch.stack([(T[..., 3 * r:3 * r + 3] * torch.cat([x, y, z], -1)).sum(-1) for r in range(3)], -1)
        verts = verts + T[..., 9:]  # (B, V, 3)
        # Landmarks as smplx computes them (static 51 + the contour chosen by the head's yaw).
        lmk_idx = m.lmk_faces_idx[None].expand(b, -1)
        lmk_bary = m.lmk_bary_coords[None].expand(b, -1, -1)
        dyn_idx, dyn_bary = find_dynamic_lmk_idx_and_bcoords(verts, pose, m.dynamic_lmk_faces_idx,
                                                             m.dynamic_lmk_bary_coords, m.neck_kin_chain)
        lmk_idx = torch.cat([lmk_idx, dyn_idx], 1)
        lmk_bary = torch.cat([lmk_bary, dyn_bary], 1)
        landmarks = vertices2landmarks(verts, sel["faces"], lmk_idx, lmk_bary)  # (B, 68, 3)
        extra = verts[:, sel["extra"]]  # (B, 21, 3)
        points = torch.cat([P, extra, landmarks], 1) + v.transl[:, None]  # (B, 144, 3)
        verts = verts if sel["count"] is None else verts[:, : sel["count"]]
        return BodyOutput(vertices=verts + v.transl[:, None], joints=points[:, :55], source_points=points)

    __call__ = forward

    def keypoints(self, output: BodyOutput) -> Keypoints3D:
        return self.body.keypoints(output)

    def pose_frames(self, v: FitVariables) -> Tensor:
        """(B, Jb, 3, 3) for each ``body_pose`` joint, the camera-frame rotation G in which its local rotation acts:
        the joint's world rotation is ``G @ local`` (for SMPL-X, G is the parent's world rotation)."""
        b = v.batch_size
        coeffs = torch.cat([v.betas, v.expression], 1)
        J = self.j_template + (coeffs @ self.j_dirs.T).reshape(b, -1, 3)
        rot = axis_angle_to_matrix(self.full_pose(v).reshape(b, -1, 3))
        R, _ = self._chain(v, J, rot)
        parents = self.parent_index[1:self.spec.num_body_joints + 1]  # body joint k is SMPL-X joint k + 1
        return R[:, parents]

    def to_params(self, v: FitVariables):
        """The fitted variables as ``SMPLXParams`` (for ``SMPLXBody`` and DINAR's pickle)."""
        from dinar_core.body import SMPLXParams

        v = v.detach()
        return SMPLXParams(betas=v.betas, expression=v.expression, global_orient=v.global_orient,
                           body_pose=v.body_pose.reshape(v.batch_size, -1), jaw_pose=v.jaw_pose,
                           left_hand_pose=v.left_hand, right_hand_pose=v.right_hand, transl=v.transl)


ANNY_BODY_BONES: tuple[str, ...] = tuple(
    f"{bone}.{side}" for side in ("L", "R")
    for bone in ("upperleg01", "upperleg02", "lowerleg01", "lowerleg02", "foot")
) + ("spine05", "spine04", "spine03", "spine02", "spine01") + tuple(
    f"{bone}.{side}" for side in ("L", "R")
    for bone in ("clavicle", "shoulder01", "upperarm01", "upperarm02", "lowerarm01", "lowerarm02", "wrist")
) + ("neck01", "neck02", "neck03", "head")
"""The Anny bones the fit poses (33 of 104): legs, spine, arms to the wrists, neck and head; fingers, toes and
eyes stay at rest (Anny's hand keypoints still steer the wrists)."""


def anny_body_spec() -> BodySpec:
    """Anny's prior tables. Anny's rest pose is an A-pose, so the relaxed pose is near zero. Bending signs were
    measured on the model: a positive rotation about a lower leg's local x bends the knee backwards (natural), a
    positive one about a lower arm's local x swings the forearm backwards (unnatural)."""
    idx = {name: k for k, name in enumerate(ANNY_BODY_BONES)}
    n = len(ANNY_BODY_BONES)
    lower = torch.full((n, 3), -INF)
    upper = torch.full((n, 3), INF)
    rest = torch.zeros(n, 3)
    weight = torch.ones(n)
    bend = []
    for side in ("L", "R"):
        knee, elbow = idx[f"lowerleg01.{side}"], idx[f"lowerarm01.{side}"]
        lower[knee, 0], upper[knee, 0] = -0.1, 2.7
        lower[elbow, 0], upper[elbow, 0] = -2.7, 0.1
        rest[knee, 0], rest[elbow, 0] = 0.1, -0.2
        bend += [(knee, 0, -1.0), (elbow, 0, 1.0)]
        for bone in ("clavicle", "foot"):
            weight[idx[f"{bone}.{side}"]] = 4.0
    for k in range(1, 6):
        weight[idx[f"spine0{k}"]] = 4.0
    legs = tuple((idx[f"{bone}.{side}"], side, level) for side in ("L", "R")
                 for bone, level in (("upperleg01", "hip"), ("upperleg02", "hip"), ("lowerleg01", "knee"),
                                     ("lowerleg02", "knee"), ("foot", "ankle")))
    return BodySpec(
        num_body_joints=n, num_betas=6, num_hand=0, num_expression=0, has_jaw=False, pose_lower=lower,
        pose_upper=upper, pose_weight=weight, bend_joint=torch.tensor([b[0] for b in bend]),
        bend_axis=torch.tensor([b[1] for b in bend]), bend_sign=torch.tensor([b[2] for b in bend]),
        leg_joints=legs, pose_rest=rest, betas_rest=0.5, betas_range=(0.0, 1.0), joint_names=ANNY_BODY_BONES)


class AnnyFitBody:
    """:class:`FitBody` over an :class:`~dinar_core.body.anny_model.AnnyBody`: ``betas`` are Anny's 6 phenotypes
    (in [0, 1], 0.5 = average), ``body_pose`` rotates the bones of ``ANNY_BODY_BONES``; no hand, jaw or
    expression parameters. to_params(FitVariables) -> ``AnnyParams``."""

    def __init__(self, body):
        self.body = body
        self.spec = anny_body_spec()
        self.faces = body.faces
        names = {name: k for k, name in enumerate(body.joint_names)}
        missing = [b for b in ANNY_BODY_BONES if b not in names]
        if missing:
            raise ValueError(f"this Anny model lacks the bones {missing}")
        self.bone_index = torch.tensor([names[b] for b in ANNY_BODY_BONES], device=body.device)
        pose_index = {b: k for k, b in enumerate(ANNY_BODY_BONES)}
        # BODY_25: 2-4 right shoulder, elbow, wrist; 5-7 left; 9-11 right hip, knee, ankle; 12-14 left.
        ends = (("upperarm01.L", 5, 6), ("lowerarm01.L", 6, 7), ("upperarm01.R", 2, 3), ("lowerarm01.R", 3, 4),
                ("upperleg01.L", 12, 13), ("lowerleg01.L", 13, 14), ("upperleg01.R", 9, 10),
                ("lowerleg01.R", 10, 11))
        self.limb_aims = tuple((pose_index[bone], names[bone], near, far) for bone, near, far in ends)

    @property
    def device(self) -> torch.device:
        return self.faces.device

    def to_params(self, v: FitVariables):
        from dinar_core.body.anny_model import AnnyParams

        b = v.batch_size
        pose = torch.zeros(b, self.body.num_joints, 3, dtype=v.body_pose.dtype, device=v.body_pose.device)
        pose = pose.index_copy(1, self.bone_index, v.body_pose)  # (B, J, 3), differentiable in body_pose
        return AnnyParams(phenotype=v.betas, pose=pose, global_orient=v.global_orient, transl=v.transl)

    def forward(self, v: FitVariables) -> BodyOutput:
        return self.body.forward(self.to_params(v))

    def forward_vertices(self, v: FitVariables, vertex_ids: Tensor) -> BodyOutput:
        """``forward`` with only the vertices ``vertex_ids`` (N,) evaluated (``AnnyBody.forward_vertices``)."""
        return self.body.forward_vertices(self.to_params(v), vertex_ids)

    def pose_frames(self, v: FitVariables) -> Tensor:
        """(B, Jb, 3, 3) for each ``body_pose`` bone, the camera-frame rotation G in which its axis-angle acts: the
        bone's world rotation is ``G @ local @ U`` (Anny's 'local-ref' chain: G = W_parent U_parent^T, U the
        reference orientations, then the canonical frame and ``global_orient``)."""
        out = self.body._run(self.to_params(v))
        W = out["bone_poses"][..., :3, :3]  # (B, J, 3, 3) Anny frame
        U = self.body.anny.reference_bone_orientations
        if U is None:
            U = out["rest_bone_poses"][0, :, :3, :3]
        parents = self.body.parents[self.bone_index]
        G = W[:, parents] @ U[parents].transpose(-1, -2)  # (B, Jb, 3, 3)
        g = axis_angle_to_matrix(v.global_orient)[:, None]  # (B, 1, 3, 3)
        return g @ self.body.frame @ G

    __call__ = forward

    def keypoints(self, output: BodyOutput) -> Keypoints3D:
        return self.body.keypoints(output)
