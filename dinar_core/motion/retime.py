"""Frame-rate retargeting and ground contact.

:func:`resample` puts a motion on a new frame rate: frame k of the result is at time k / target_fps (the first
frame is kept, none is extrapolated past the last source frame), rotations are slerped joint by joint through unit
quaternions (so an interpolated pose is a real rotation on the shortest arc, not a blend of axis-angle vectors),
PCA hand coefficients and translations are interpolated linearly.

:func:`ground_offsets` gives per-frame shifts along the up axis that put the lowest vertex on the ground, so a
walking avatar's feet touch the floor instead of floating or sinking as the pose changes.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from dinar_core.motion.motion import Motion
from dinar_core.motion.rotations import axis_angle_to_quat, quat_slerp, quat_to_axis_angle

UpAxis = Literal["x", "y", "z", "-x", "-y", "-z"]


def resample_times(num_frames: int, fps: float, target_fps: float) -> np.ndarray:
    """Source-frame positions (fractional indices) of the resampled frames: (T',) with T' = floor((T - 1) *
    target / fps) + 1, so 60 -> 30 fps keeps every other frame and T' = ceil(T / 2)."""
    if not target_fps > 0:
        raise ValueError(f"target_fps must be > 0, got {target_fps}")
    ratio = fps / target_fps
    count = int(np.floor((num_frames - 1) / ratio + 1e-9)) + 1
    return np.arange(count) * ratio  # (T',)


def slerp_axis_angle(rotations: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Slerp a sequence of axis-angle rotations at fractional frame positions.

    rotations: (T, J, 3) axis-angle; positions: (T',) in [0, T - 1]. Returns (T', J, 3).
    """
    if rotations.ndim != 3 or rotations.shape[2] != 3:
        raise ValueError(f"rotations must be (T, J, 3), got {rotations.shape}")
    t = rotations.shape[0]
    lo = np.clip(np.floor(positions).astype(int), 0, t - 1)  # (T',)
    hi = np.minimum(lo + 1, t - 1)
    frac = (positions - lo)[:, None]  # (T', 1)
    quats = axis_angle_to_quat(rotations)  # (T, J, 4)
    return quat_to_axis_angle(quat_slerp(quats[lo], quats[hi], np.broadcast_to(frac, (len(lo), rotations.shape[1]))))


def _lerp(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values (T, D) at fractional positions (T',) -> (T', D)."""
    t = values.shape[0]
    lo = np.clip(np.floor(positions).astype(int), 0, t - 1)
    hi = np.minimum(lo + 1, t - 1)
    frac = (positions - lo)[:, None]
    return values[lo] * (1 - frac) + values[hi] * frac


def resample(motion: Motion, target_fps: float) -> Motion:
    """The motion at ``target_fps`` (see the module docstring); returns ``motion`` itself if the rate is equal."""
    if abs(target_fps - motion.fps) < 1e-9:
        return motion
    pos = resample_times(motion.num_frames, motion.fps, target_fps)
    t = motion.num_frames

    def rotations(values: np.ndarray | None) -> np.ndarray | None:
        if values is None:
            return None
        out = slerp_axis_angle(values.reshape(t, -1, 3).astype(np.float64), pos)  # (T', J, 3)
        return out.reshape(len(pos), -1)

    hands_rot = motion.hand_format == "axis_angle"
    return motion.replace(
        global_orient=rotations(motion.global_orient), body_pose=rotations(motion.body_pose),
        jaw_pose=rotations(motion.jaw_pose),
        left_hand_pose=None if motion.left_hand_pose is None else (
            rotations(motion.left_hand_pose) if hands_rot else _lerp(motion.left_hand_pose, pos)),
        right_hand_pose=None if motion.right_hand_pose is None else (
            rotations(motion.right_hand_pose) if hands_rot else _lerp(motion.right_hand_pose, pos)),
        transl=None if motion.transl is None else _lerp(motion.transl, pos),
        fps=float(target_fps))


def _up_vector(up_axis: UpAxis) -> tuple[int, float]:
    if up_axis not in ("x", "y", "z", "-x", "-y", "-z"):
        raise ValueError(f"up_axis must be one of x, y, z, -x, -y, -z; got {up_axis!r}")
    return "xyz".index(up_axis[-1]), (-1.0 if up_axis.startswith("-") else 1.0)


def ground_offsets(vertices_per_frame: np.ndarray | torch.Tensor, up_axis: UpAxis = "y", ground: float = 0.0,
                   mode: Literal["per_frame", "constant"] = "per_frame") -> np.ndarray | torch.Tensor:
    """Per-frame offsets along ``up_axis`` that put the lowest vertex at height ``ground``.

    vertices_per_frame: (T, V, 3) posed vertices (numpy or torch; the result has the same type and device).
    up_axis: the direction that points up, signed: 'y' for SMPL-X's canonical frame, '-y' for DINAR's camera frame
        (y down), 'z' for z-up worlds.
    mode: 'per_frame' puts every frame's lowest vertex on the ground (feet stay down through a walk);
        'constant' uses one offset, from the lowest vertex of the whole sequence (keeps jumps in the air).
    Returns offsets (T,): height to add along the up direction, i.e. move frame t by ``offsets[t] * up`` where up
    is the unit vector of ``up_axis`` (see :func:`apply_ground_offsets`).
    """
    if vertices_per_frame.ndim != 3 or vertices_per_frame.shape[2] != 3 or vertices_per_frame.shape[1] == 0:
        raise ValueError(f"vertices_per_frame must be (T, V, 3) with V > 0, got {tuple(vertices_per_frame.shape)}")
    axis, sign = _up_vector(up_axis)
    height = vertices_per_frame[..., axis] * sign  # (T, V)
    if isinstance(height, torch.Tensor):
        lowest = height.min(dim=1).values  # (T,)
        if mode == "constant":
            lowest = lowest.min().expand_as(lowest)
    else:
        lowest = height.min(axis=1)
        if mode == "constant":
            lowest = np.full_like(lowest, lowest.min())
    if mode not in ("per_frame", "constant"):
        raise ValueError(f"mode must be 'per_frame' or 'constant', got {mode!r}")
    return ground - lowest


def apply_ground_offsets(vertices_per_frame: np.ndarray | torch.Tensor, offsets, up_axis: UpAxis = "y"):
    """vertices (T, V, 3) moved by offsets (T,) along ``up_axis``; same type as the input."""
    axis, sign = _up_vector(up_axis)
    out = vertices_per_frame.clone() if isinstance(vertices_per_frame, torch.Tensor) else vertices_per_frame.copy()
    out[..., axis] += sign * offsets[:, None]
    return out
