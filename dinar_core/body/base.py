"""The body-model interface every backend implements (SMPL-X, Anny).

A body model here is *stateless* (as smplx's ``SMPLXLayer``): it owns only constant buffers (template, blend
shapes, skinning weights, regressors); every parameter is passed to :meth:`BodyModel.forward`, so the fitter owns
the optimisable tensors. Everything is float32 on the model's ``device`` unless a docstring says otherwise.

Coordinates are the model's own frame, with the translation applied: for SMPL-X fits in DINAR's convention that is
the camera frame (x right, y down, z forward, see ``docs/conventions.md``); the backends do not rotate anything.

Keypoints: :meth:`BodyModel.keypoints` returns the OpenPose layout used in ``openpose/<frame>_keypoints.json``,
concatenated in the order of ``dinar_core.keypoints.layout`` (``KEYPOINT_SLICES``): BODY_25 (25), left hand (21),
right hand (21), face (70) = 137 points, with an availability mask for the points a backend cannot provide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from dinar_core.keypoints.layout import KEYPOINT_SLICES


@dataclass(frozen=True)
class UVLayout:
    """A texture layout whose UV vertices are split along seams (DINAR's ``uv.npy``/``uv_faces.npy``/``v_inds.npy``).

    uv: (U, 2) float32 in [0, 1], u right, v *down* (image convention: texture row follows v, as DINAR).
    uv_faces: (F, 3) int64 indices into ``uv``; face i is the same triangle as the model's ``faces[i]``.
    vertex_index: (U,) int64, the mesh vertex each UV vertex belongs to, so ``verts[:, vertex_index]`` gives the
        (B, U, 3) positions of the split mesh and ``vertex_index[uv_faces] == faces``.
    """

    uv: torch.Tensor
    uv_faces: torch.Tensor
    vertex_index: torch.Tensor

    def __post_init__(self) -> None:
        if self.uv.ndim != 2 or self.uv.shape[1] != 2:
            raise ValueError(f"uv must be (U, 2), got {tuple(self.uv.shape)}")
        if self.uv_faces.ndim != 2 or self.uv_faces.shape[1] != 3:
            raise ValueError(f"uv_faces must be (F, 3), got {tuple(self.uv_faces.shape)}")
        if self.vertex_index.shape != (self.uv.shape[0],):
            raise ValueError(f"vertex_index must be ({self.uv.shape[0]},), got {tuple(self.vertex_index.shape)}")


@dataclass
class BodyOutput:
    """What a body model's forward returns (all in the model frame with translation applied).

    vertices: (B, V, 3) posed mesh vertices.
    joints: (B, J, 3) posed kinematic-tree joints (J = ``len(model.parents)``; SMPL-X: 55, in smplx's order).
    source_points: (B, S, 3) the backend's full point set from which :meth:`BodyModel.keypoints` is taken
        (SMPL-X: smplx's 144 joints = 55 joints + 21 surface points + 51 face landmarks + 17 face contour points;
        Anny: its joints followed by its 23 COCO-wholebody-foot keypoints).
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    source_points: torch.Tensor


@dataclass
class Keypoints3D:
    """Model keypoints in the OpenPose layout (``KEYPOINT_SLICES``).

    points: (B, 137, 3); rows whose ``available`` is False are zeros and must be ignored.
    available: (137,) bool, which rows this backend can provide.
    """

    points: torch.Tensor
    available: torch.Tensor

    def part(self, name: str) -> "Keypoints3D":
        """The rows of one part ('body', 'left_hand', 'right_hand', 'face'): points (B, K, 3), available (K,)."""
        sl = KEYPOINT_SLICES[name]
        return Keypoints3D(self.points[:, sl], self.available[sl])


@runtime_checkable
class BodyModel(Protocol):
    """A stateless parametric body model.

    Attributes (constant, on ``device``):
        faces: (F, 3) int64 triangle indices into the vertices.
        skinning_weights: (V, J) float32 linear-blend-skinning weights (rows sum to 1).
        parents: (J,) int64 parent joint of each joint, -1 for the root.
        rest_joints: (J, 3) float32 joints of the mean shape in the rest pose.
        rest_vertices: (V, 3) float32 vertices of the mean shape in the rest pose.
        uv_layout: UVLayout or None when the backend has no texture layout.
        joint_names: J names.
        device: where the buffers live.
    """

    faces: torch.Tensor
    skinning_weights: torch.Tensor
    parents: torch.Tensor
    rest_joints: torch.Tensor
    rest_vertices: torch.Tensor
    uv_layout: UVLayout | None
    joint_names: tuple[str, ...]
    device: torch.device

    def forward(self, params) -> BodyOutput:  # params: the backend's own parameter dataclass
        ...

    def keypoints(self, output: BodyOutput) -> Keypoints3D:
        ...


def apply_keypoint_matrix(matrix: torch.Tensor, source_points: torch.Tensor) -> torch.Tensor:
    """Keypoints as fixed linear combinations of source points (selections or midpoints).

    matrix: (K, S) float32; row k is all zeros for an unavailable keypoint.
    source_points: (B, S, 3).
    Returns (B, K, 3).
    """
    if source_points.ndim != 3 or source_points.shape[1] != matrix.shape[1] or source_points.shape[2] != 3:
        raise ValueError(f"source_points must be (B, {matrix.shape[1]}, 3), got {tuple(source_points.shape)}")
    return torch.einsum("ks,bsd->bkd", matrix.to(source_points), source_points)


def check_batch(name: str, value: torch.Tensor, batch: int, width: int) -> None:
    """Raise ValueError unless ``value`` is a float tensor shaped (batch, width)."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape ({batch}, {width}), got {type(value).__name__}")
    if value.shape != (batch, width):
        raise ValueError(f"{name} must be ({batch}, {width}), got {tuple(value.shape)}")
    if not value.is_floating_point():
        raise ValueError(f"{name} must be a float tensor, got {value.dtype}")
