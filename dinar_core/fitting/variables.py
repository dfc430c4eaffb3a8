"""What the fitter optimises and what it needs from a body model (the ``FitBody`` protocol).

The fitter never touches a backend's own parameter dataclass: it owns a :class:`FitVariables` (the optimisable
tensors, backend-neutral) and a :class:`FitBody` adapter turns them into vertices and OpenPose keypoints.
Adapters for the project's body models are in ``dinar_core.fitting.adapters`` (SMPL-X, Anny); a test can pass any
object with the same members (a stick figure).

Frame convention shared by all adapters: the body's canonical frame is SMPL-X's (y up, facing +z, x = the body's
left), and ``global_orient`` rotates it about the root joint into DINAR's camera frame (x right, y down, z forward);
so ``global_orient = (pi, 0, 0)`` is a body standing upright and facing the camera.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@dataclass
class BodySpec:
    """Sizes and prior tables of a fittable body (constant per adapter).

    num_body_joints: Jb, rotations in ``FitVariables.body_pose`` (SMPL-X: 21).
    num_betas / num_hand / num_expression: widths of the shape, per-hand and expression vectors (0 = none).
    has_jaw: whether ``jaw_pose`` drives the mesh.
    pose_lower, pose_upper: (Jb, 3) axis-angle component limits (radians; +-inf where free).
    pose_weight: (Jb,) weight of each joint in the pose L2 prior (spine higher: bending penalty).
    bend_joint, bend_axis: (N,) int64 and bend_sign (N,) float: components whose sign tells an unnatural bend of
        an elbow or knee (see ``losses.bending_penalty``).
    leg_joints: (index into body_pose, side 'L'|'R', level 'hip'|'knee'|'ankle') of each leg joint: a joint is held
        near rest when none of the keypoints below its level on its side is seen (a leg cut off by the frame).
    betas_range: None for an unbounded Gaussian shape space (SMPL-X), or (low, high) for bounded ones (Anny's
        phenotypes in [0, 1]); betas_rest is the value the shape prior pulls towards.
    """

    num_body_joints: int
    num_betas: int
    num_hand: int
    num_expression: int
    has_jaw: bool
    pose_lower: Tensor
    pose_upper: Tensor
    pose_weight: Tensor
    bend_joint: Tensor
    bend_axis: Tensor
    bend_sign: Tensor
    leg_joints: tuple[tuple[int, str, str], ...]
    pose_rest: Tensor | None = None
    """(Jb, 3) the relaxed pose the fit starts from and the pose priors pull towards (None: zeros). Starting
    with the arms down and the elbows and knees slightly bent forwards/backwards makes the fit resolve a single
    view's depth ambiguity (a forearm towards or away from the camera) the natural way, as SMPLify's GMM mean."""
    betas_rest: float = 0.0
    betas_range: tuple[float, float] | None = None
    joint_names: tuple[str, ...] | None = None
    """Jb names of the ``body_pose`` joints (for reports: the limit violations), or None."""


@dataclass
class FitVariables:
    """The optimisable parameters of B bodies (float32, one device).

    global_orient: (B, 3) axis-angle, canonical body frame -> camera frame, about the root joint.
    transl: (B, 3) metres, camera frame.
    body_pose: (B, Jb, 3) axis-angle of the body joints (relative to their parents).
    betas: (B, num_betas); left_hand, right_hand: (B, num_hand); jaw_pose: (B, 3); expression: (B, num_expression).
    """

    global_orient: Tensor
    transl: Tensor
    body_pose: Tensor
    betas: Tensor
    left_hand: Tensor
    right_hand: Tensor
    jaw_pose: Tensor
    expression: Tensor

    @property
    def batch_size(self) -> int:
        return int(self.transl.shape[0])

    @classmethod
    def rest(cls, spec: BodySpec, batch_size: int, device: torch.device | str = "cpu") -> "FitVariables":
        """Every body in the spec's relaxed pose (``pose_rest``), rest shape, at the camera centre."""
        z = lambda *s: torch.zeros(batch_size, *s, device=device)  # noqa: E731
        pose = z(spec.num_body_joints, 3)
        if spec.pose_rest is not None:
            pose = pose + spec.pose_rest.to(pose)
        return cls(z(3), z(3), pose, torch.full((batch_size, spec.num_betas),
                   float(spec.betas_rest), device=device), z(spec.num_hand), z(spec.num_hand), z(3),
                   z(spec.num_expression))

    def detach(self) -> "FitVariables":
        return FitVariables(**{f.name: getattr(self, f.name).detach().clone() for f in fields(self)})

    def select(self, index: Tensor | slice | list[int]) -> "FitVariables":
        """The bodies at ``index`` (along the batch)."""
        return FitVariables(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def tensors(self) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@runtime_checkable
class FitBody(Protocol):
    """What the fitter needs from a body model.

    spec: :class:`BodySpec`. faces: (F, 3) int64. device.
    forward(v) -> an object with ``vertices`` (B, V, 3) (camera frame, translation applied) that ``keypoints``
        accepts. keypoints(output) -> an object with ``points`` (B, 137, 3) in the OpenPose layout (BODY_25, left
        hand 21, right hand 21, face 70) and ``available`` (137,) bool (rows the body cannot provide are ignored).
        ``dinar_core.body``'s ``BodyOutput`` and ``Keypoints3D`` are such objects.

    Optional, for speed (both adapters have them; a body without them is fitted the plain way):
    forward_vertices(v, vertex_ids) -> like ``forward`` with ``vertices`` (B, N, 3) of those vertices only and the
        same keypoints (the partial forward, ``FitConfig.partial_forward``);
    limb_aims ((body_pose joint, model joint, near keypoint, far keypoint), ...) and pose_frames(v) -> (B, Jb, 3, 3)
        the camera-frame rotation each joint's local rotation acts in (``init.aim_limbs``).
    """

    spec: BodySpec
    faces: Tensor
    device: torch.device

    def forward(self, variables: FitVariables): ...

    def keypoints(self, output): ...
