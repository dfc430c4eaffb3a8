"""The typed motion every loader and generator returns: per-frame SMPL-X-style pose parameters and a frame rate.

Layout (SMPL-X, smplx's joint order; joint 0 = pelvis is driven by ``global_orient``):

    ``body_pose`` (T, 63) = 21 joints x 3 axis-angle, in this order (index into body_pose's joints; +1 for smplx's
    55-joint index): 0 left_hip, 1 right_hip, 2 spine1, 3 left_knee, 4 right_knee, 5 spine2, 6 left_ankle,
    7 right_ankle, 8 spine3, 9 left_foot, 10 right_foot, 11 neck, 12 left_collar, 13 right_collar, 14 head,
    15 left_shoulder, 16 right_shoulder, 17 left_elbow, 18 right_elbow, 19 left_wrist, 20 right_wrist.
    smplx's full pose (55 joints) = pelvis, 21 body, jaw (22), left eye (23), right eye (24), 15 left-hand joints
    (25..39), 15 right-hand joints (40..54).

Rotations are axis-angle relative to the parent joint, in the model's canonical frame (SMPL-X: y up, the body
faces +z, x = the body's left). Another skeleton uses the same class with ``body_pose`` (T, 3 * J) for its J
non-root joints (see :func:`Motion.check_body_joints`).

Hands are axis-angle (T, 45) per hand, or PCA coefficients (T, D) as DINAR stores them (``hand_format='pca'``;
SMPL-X's hand PCA basis is needed to turn them into rotations, see :meth:`Motion.smplx_full_pose`).
Shape (betas) and the avatar's own translation come from the avatar, not the motion; ``betas``/``gender`` are kept
only as information from files that carry them (AMASS).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dinar_core.errors import MotionError
from dinar_core.motion.rotations import axis_angle_to_matrix, axis_angle_to_quat, quat_multiply, quat_to_axis_angle

HandFormat = Literal["axis_angle", "pca"]

SMPLX_BODY_JOINTS: tuple[str, ...] = (
    "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle", "spine3",
    "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist")
"""The 21 joints of SMPL-X's ``body_pose``, in order (smplx's joints 1..21)."""

NUM_SMPLX_BODY_JOINTS = 21
NUM_SMPLX_JOINTS = 55
SMPLX_HAND_JOINTS = 15


def _fail(source: str, what: str, fix: str) -> MotionError:
    return MotionError(f"motion {source}: {what}", fix=fix)


@dataclass
class Motion:
    """T frames of pose parameters (float32 numpy arrays) at ``fps`` frames per second.

    global_orient: (T, 3) axis-angle of the root (pelvis) in the model's canonical frame.
    body_pose: (T, 3 * J) axis-angle of the J non-root body joints (SMPL-X: J = 21, order ``SMPLX_BODY_JOINTS``).
    fps: frames per second (> 0).
    jaw_pose: (T, 3) axis-angle, or None (rest).
    left_hand_pose, right_hand_pose: (T, D) axis-angle (D = 45) or PCA coefficients (``hand_format='pca'``), or
        None (rest / the model's mean hand).
    hand_format: 'axis_angle' | 'pca'.
    transl: (T, 3) root translation in the canonical frame, or None (the avatar's own translation only).
    source: where the motion came from (a file name, or 'walk' ...), named in every error.
    betas: (B,) shape coefficients stored with the motion (information only), or None.
    gender: gender stored with the motion (information only), or None.

    Construction checks shapes, frame counts and finiteness and raises :class:`MotionError` naming ``source``.
    """

    global_orient: np.ndarray
    body_pose: np.ndarray
    fps: float
    jaw_pose: np.ndarray | None = None
    left_hand_pose: np.ndarray | None = None
    right_hand_pose: np.ndarray | None = None
    hand_format: HandFormat = "axis_angle"
    transl: np.ndarray | None = None
    source: str = "<in memory>"
    betas: np.ndarray | None = None
    gender: str | None = None

    def __post_init__(self) -> None:
        src = self.source
        self.global_orient = self._array("global_orient", self.global_orient)
        self.body_pose = self._array("body_pose", self.body_pose)
        for name in ("jaw_pose", "left_hand_pose", "right_hand_pose", "transl"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, self._array(name, value))
        t = self.global_orient.shape[0]
        if t == 0:
            raise _fail(src, "has zero frames", "give a motion with at least one frame")
        if self.global_orient.shape[1] != 3:
            raise _fail(src, f"global_orient must be (T, 3), got {self.global_orient.shape}",
                        "store the root rotation as one axis-angle (3 values) per frame")
        if self.body_pose.shape[1] == 0 or self.body_pose.shape[1] % 3:
            raise _fail(src, f"body_pose must be (T, 3 * joints), got {self.body_pose.shape}",
                        "store one axis-angle (3 values) per body joint and frame (SMPL-X: 21 joints = 63 values)")
        widths = {"jaw_pose": 3, "transl": 3}
        for name in ("body_pose", "jaw_pose", "left_hand_pose", "right_hand_pose", "transl"):
            value = getattr(self, name)
            if value is None:
                continue
            if value.shape[0] != t:
                raise _fail(src, f"{name} has {value.shape[0]} frames but global_orient has {t}",
                            "give every pose field the same number of frames")
            if name in widths and value.shape[1] != widths[name]:
                raise _fail(src, f"{name} must be (T, {widths[name]}), got {value.shape}", "fix the file's layout")
        if self.hand_format not in ("axis_angle", "pca"):
            raise ValueError(f"hand_format must be 'axis_angle' or 'pca', got {self.hand_format!r}")
        for name in ("left_hand_pose", "right_hand_pose"):
            value = getattr(self, name)
            if value is not None and self.hand_format == "axis_angle" and value.shape[1] % 3:
                raise _fail(src, f"{name} is axis-angle but has {value.shape[1]} values per frame",
                            "give 3 values per hand joint (SMPL-X: 45), or mark the hands as PCA coefficients")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise _fail(src, f"frame rate must be a positive number, got {self.fps!r}", "give the motion's fps")
        self.fps = float(self.fps)

    def _array(self, name: str, value) -> np.ndarray:
        try:
            arr = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise _fail(self.source, f"{name} is not numeric ({exc})", "store numbers") from None
        if arr.ndim != 2:
            raise _fail(self.source, f"{name} must be 2-D (frames, values), got shape {arr.shape}",
                        "store one row per frame")
        bad = ~np.isfinite(arr)
        if bad.any():
            frame = int(np.argwhere(bad)[0, 0])
            raise _fail(self.source, f"{name} has NaN or infinite values (first at frame {frame}, "
                        f"{int(bad.any(axis=1).sum())} frames affected)",
                        "clean or re-export the motion; NaNs usually mean lost mocap markers")
        return arr

    # ------------------------------------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return int(self.global_orient.shape[0])

    @property
    def num_body_joints(self) -> int:
        return int(self.body_pose.shape[1] // 3)

    @property
    def duration(self) -> float:
        """Playback length in seconds: T frames shown 1/fps each."""
        return self.num_frames / self.fps

    def body_joint_rotations(self) -> np.ndarray:
        """(T, J, 3) axis-angle per body joint."""
        return self.body_pose.reshape(self.num_frames, self.num_body_joints, 3)

    def check_body_joints(self, expected: int, model: str = "SMPL-X") -> "Motion":
        """Raise :class:`MotionError` unless ``body_pose`` has ``expected`` joints; returns self for chaining."""
        if self.num_body_joints != expected:
            raise _fail(self.source, f"has {self.num_body_joints} body joints ({self.body_pose.shape[1]} values per "
                        f"frame), but {model} needs {expected} ({3 * expected} values)",
                        f"use a motion made for {model}, or a generator with num_joints={expected}")
        return self

    def replace(self, **changes) -> "Motion":
        """A copy with some fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)

    def frames(self, start: int, stop: int | None = None) -> "Motion":
        """Frames [start, stop) as a new Motion."""
        sl = slice(start, stop)
        fields = {}
        for name in ("global_orient", "body_pose", "jaw_pose", "left_hand_pose", "right_hand_pose", "transl"):
            value = getattr(self, name)
            fields[name] = None if value is None else value[sl]
        return self.replace(**fields)

    def compose_global(self, base_orient: np.ndarray) -> "Motion":
        """The motion with every frame's root rotation applied *after* ``base_orient`` in the body frame:
        R_t' = R_base * R_t, so a turntable motion (rotation about the body's vertical) turns an avatar fitted in
        a camera frame about its own vertical axis. ``transl`` is rotated by R_base too.

        base_orient: (3,) axis-angle (e.g. the avatar's fitted ``global_orient``).
        """
        base = np.asarray(base_orient, dtype=np.float64).reshape(3)
        q_base = axis_angle_to_quat(base)
        new = quat_to_axis_angle(quat_multiply(q_base[None], axis_angle_to_quat(self.global_orient)))
        transl = None
        if self.transl is not None:
            transl = self.transl.astype(np.float64) @ axis_angle_to_matrix(base).T
        return self.replace(global_orient=new.astype(np.float32), transl=transl)

    def smplx_full_pose(self, left_hand_components: np.ndarray | None = None,
                        right_hand_components: np.ndarray | None = None,
                        left_hand_mean: np.ndarray | None = None,
                        right_hand_mean: np.ndarray | None = None) -> np.ndarray:
        """(T, 55, 3) axis-angle for all SMPL-X joints in smplx's order (pelvis, 21 body, jaw, eyes, hands).

        Hands: axis-angle (T, 45) are used as they are; PCA coefficients (T, D) need the model's basis
        ``*_hand_components`` (>= D, 45) (SMPL-X's ``hands_components{l,r}``); the optional ``*_hand_mean`` (45,)
        is added (SMPL-X with flat_hand_mean=False, as DINAR). Missing hands are the mean (or flat) hand; eyes rest.
        """
        self.check_body_joints(NUM_SMPLX_BODY_JOINTS)
        t = self.num_frames
        full = np.zeros((t, NUM_SMPLX_JOINTS, 3), dtype=np.float32)
        full[:, 0] = self.global_orient
        full[:, 1:22] = self.body_joint_rotations()
        if self.jaw_pose is not None:
            full[:, 22] = self.jaw_pose
        for side, pose, comps, mean, start in (("left", self.left_hand_pose, left_hand_components, left_hand_mean, 25),
                                               ("right", self.right_hand_pose, right_hand_components, right_hand_mean,
                                                40)):
            hand = np.zeros((t, 45), dtype=np.float32)
            if pose is not None:
                if self.hand_format == "pca":
                    if comps is None:
                        raise ValueError(f"{side} hand is PCA ({pose.shape[1]} coefficients): pass "
                                         f"{side}_hand_components of shape (>= {pose.shape[1]}, 45)")
                    comps = np.asarray(comps, dtype=np.float32)
                    if comps.ndim != 2 or comps.shape[1] != 45 or comps.shape[0] < pose.shape[1]:
                        raise ValueError(f"{side}_hand_components must be (>= {pose.shape[1]}, 45), "
                                         f"got {comps.shape}")
                    hand = pose @ comps[: pose.shape[1]]  # (T, 45)
                else:
                    if pose.shape[1] != 45:
                        raise _fail(self.source, f"{side}_hand_pose has {pose.shape[1] // 3} joints, SMPL-X hands "
                                    "have 15", "give 45 axis-angle values per hand and frame")
                    hand = pose
            if mean is not None:
                hand = hand + np.asarray(mean, dtype=np.float32).reshape(1, 45)
            full[:, start:start + SMPLX_HAND_JOINTS] = hand.reshape(t, SMPLX_HAND_JOINTS, 3)
        return full
