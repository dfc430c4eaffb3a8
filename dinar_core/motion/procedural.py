"""Built-in motions that need no download: turntable, walk, wave.

Angles are designed in the body's canonical frame (SMPL-X: y up, the body faces +z, x = the body's left) as
rotations of each joint in the *rest* pose, then written as each target joint's local axis-angle. For SMPL-X the
joints' rest frames are the canonical axes, so a joint's local axis-angle *is* the canonical one. A skeleton whose
bones carry their own rest orientations (Anny's Blender-style bones) passes them as ``Skeleton.rest_frames``; a
canonical rotation D of joint j becomes the local R_j^T D R_j, i.e. axis-angle R_j^T a.

Sign conventions in SMPL-X's canonical frame (derived, and checked in the tests on the rest-pose directions):
- hip / knee / ankle about +x: a negative hip angle swings the leg forward (+z); a positive knee angle bends the shin
  backward (flexion); a positive ankle angle points the toes down.
- shoulders about z lower the T-pose arms: left by a negative angle, right by a positive one; then about x a positive
  angle swings a lowered arm backward.
- elbows about y bend the forearm forward: left by a negative angle, right by a positive one.
- pelvis / spine about y: a positive angle turns the body's left side backward.

``Skeleton`` says which joints a generator may drive. ``SMPLX_SKELETON`` = the 21 ``body_pose`` joints (indices in
``dinar_core.motion.motion``'s docstring). ``ANNY_ALIASES`` maps the same semantic joints onto Anny's default rig
(a semantic angle split evenly over several bones, e.g. the spine); :func:`anny_skeleton` builds it from
``AnnyBody.joint_names``, ``AnnyBody.frame`` and its rest joints (Anny's bone rotations act about its z-up world
axes, and it rests in an A-pose). ``Skeleton.generic(n)`` serves any other joint count: turntable only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

import numpy as np

from dinar_core.motion.motion import NUM_SMPLX_BODY_JOINTS, SMPLX_BODY_JOINTS, Motion
from dinar_core.motion.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rotation_between

MotionName = Literal["turntable", "walk", "wave", "idle", "rest"]

ANNY_ALIASES: dict[str, tuple[str, ...]] = {
    "left_hip": ("upperleg01.L",), "right_hip": ("upperleg01.R",),
    "left_knee": ("lowerleg01.L",), "right_knee": ("lowerleg01.R",),
    "left_ankle": ("foot.L",), "right_ankle": ("foot.R",),
    "spine1": ("spine05", "spine04"), "spine2": ("spine03",), "spine3": ("spine02", "spine01"),
    "neck": ("neck01", "neck02", "neck03"), "head": ("head",),
    "left_collar": ("clavicle.L",), "right_collar": ("clavicle.R",),
    "left_shoulder": ("upperarm01.L",), "right_shoulder": ("upperarm01.R",),
    "left_elbow": ("lowerarm01.L",), "right_elbow": ("lowerarm01.R",),
    "left_wrist": ("wrist.L",), "right_wrist": ("wrist.R",),
}
"""SMPL-X semantic joint -> Anny default-rig bones (``.L`` = the body's left)."""


@dataclass(frozen=True)
class Skeleton:
    """The joints a generated motion drives.

    joint_names: the J non-root joints, in ``body_pose`` order (the motion's body_pose is (T, 3 J)).
    aliases: semantic joint (SMPL-X body joint name) -> target joint names sharing its angle; a semantic joint
        with no alias is not driven.
    rest_frames: (J, 3, 3) each joint's rest orientation in the canonical frame, or None (= identity, SMPL-X).
    name: shown in errors.
    rest_arm_angle: how far (radians) the rest pose's upper arms already hang below the horizontal (SMPL-X's
        T-pose: 0; an A-pose: ~0.8), so the generators lower or raise the arms to the same final angle.
    rest_forearm: semantic elbow ("left_elbow", "right_elbow") -> (3, 3) the rotation, canonical frame, that turns
        the rig's rest forearm onto the line of its upper arm (Anny's elbows rest bent ~43 degrees; SMPL-X's T-pose
        arm is straight), for `retarget_smplx`. Empty: the forearms rest straight.
    """

    joint_names: tuple[str, ...]
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rest_frames: np.ndarray | None = None
    name: str = "skeleton"
    rest_arm_angle: float = 0.0
    rest_forearm: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        index = {n: i for i, n in enumerate(self.joint_names)}
        for semantic, targets in self.aliases.items():
            missing = [t for t in targets if t not in index]
            if missing:
                raise ValueError(f"{self.name}: alias {semantic!r} -> {missing} not among its joint names")
        if self.rest_frames is not None and np.shape(self.rest_frames) != (len(self.joint_names), 3, 3):
            raise ValueError(f"rest_frames must be ({len(self.joint_names)}, 3, 3), got {np.shape(self.rest_frames)}")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @classmethod
    def generic(cls, num_joints: int) -> "Skeleton":
        """A skeleton known only by its joint count (no semantic joints: turntable and rest only)."""
        if num_joints < 1:
            raise ValueError(f"num_joints must be >= 1, got {num_joints}")
        return cls(tuple(f"joint{i}" for i in range(num_joints)), {}, None, f"{num_joints}-joint skeleton")

    @classmethod
    def from_names(cls, joint_names, aliases: Mapping[str, tuple[str, ...]] = ANNY_ALIASES,
                   rest_frames: np.ndarray | None = None, name: str = "Anny",
                   rest_arm_angle: float = 0.0, rest_forearm: Mapping[str, np.ndarray] | None = None
                   ) -> "Skeleton":
        """A named skeleton; ``rest_frames`` (J, 3, 3), or one (3, 3) shared by every joint; aliases whose bones
        are absent are dropped."""
        names = tuple(joint_names)
        kept = {k: v for k, v in aliases.items() if all(t in names for t in v)}
        if rest_frames is not None and np.shape(rest_frames) == (3, 3):
            rest_frames = np.broadcast_to(np.asarray(rest_frames, np.float64), (len(names), 3, 3)).copy()
        return cls(names, kept, rest_frames, name, rest_arm_angle, dict(rest_forearm or {}))


def anny_skeleton(joint_names, frame: np.ndarray, rest_joints: np.ndarray | None = None) -> Skeleton:
    """The skeleton of Anny's rig (``AnnyBody.joint_names``) for the generators.

    Anny's per-bone pose rotations act about axes of Anny's own z-up frame (measured: posing one bone by the
    canonical rotation D needs the local axis-angle ``frame^T a``), so every joint's rest frame is ``frame``
    (``AnnyBody.frame``, canonical-from-Anny). Anny rests in an A-pose: with ``rest_joints`` (J, 3) in the
    canonical frame, the upper arms' angle below the horizontal is measured from them
    (``upperarm01.L`` -> ``wrist.L``), else 0.8 rad is assumed.
    """
    names = tuple(joint_names)
    angle, forearm = 0.8, {}
    if rest_joints is not None and "upperarm01.L" in names and "wrist.L" in names:
        at = {n: np.asarray(rest_joints)[i] for i, n in enumerate(names)}  # (their dtype: the angle as before)
        d = at["wrist.L"] - at["upperarm01.L"]
        angle = float(np.arctan2(-d[1], abs(d[0])))
        for side, s in (("left", "L"), ("right", "R")):
            bones = (f"upperarm01.{s}", f"lowerarm01.{s}", f"wrist.{s}")
            if all(b in at for b in bones):
                upper, fore = at[bones[1]] - at[bones[0]], at[bones[2]] - at[bones[1]]
                lu, lf = np.linalg.norm(upper), np.linalg.norm(fore)
                if lu > 1e-9 and lf > 1e-9:  # (a test skeleton may put several joints at one point)
                    forearm[f"{side}_elbow"] = rotation_between(fore / lf, upper / lu)
    return Skeleton.from_names(names, ANNY_ALIASES, np.asarray(frame, np.float64), "Anny", angle, forearm)


SMPLX_SKELETON = Skeleton(SMPLX_BODY_JOINTS, {n: (n,) for n in SMPLX_BODY_JOINTS}, None, "SMPL-X")


def _as_skeleton(skeleton: Skeleton | int) -> Skeleton:
    if isinstance(skeleton, Skeleton):
        return skeleton
    if skeleton == NUM_SMPLX_BODY_JOINTS:
        return SMPLX_SKELETON
    return Skeleton.generic(int(skeleton))


def _rot(axis: str, angle: np.ndarray) -> np.ndarray:
    """(T,) angles about a canonical axis -> (T, 3, 3)."""
    aa = np.zeros(np.shape(angle) + (3,))
    aa[..., "xyz".index(axis)] = angle
    return axis_angle_to_matrix(aa)


def _pose_from_semantic(skeleton: Skeleton, rotations: Mapping[str, np.ndarray], num_frames: int) -> np.ndarray:
    """Canonical per-semantic-joint rotations {name: (T, 3, 3)} -> body_pose (T, 3 J) local axis-angle."""
    pose = np.zeros((num_frames, skeleton.num_joints, 3))
    index = {n: i for i, n in enumerate(skeleton.joint_names)}
    for semantic, mat in rotations.items():
        targets = skeleton.aliases.get(semantic, ())
        if not targets:
            continue
        aa = matrix_to_axis_angle(mat) / len(targets)  # (T, 3) split evenly over the bones
        for target in targets:
            j = index[target]
            local = aa if skeleton.rest_frames is None else aa @ np.asarray(skeleton.rest_frames[j], np.float64)
            pose[:, j] = local  # row-vector form of R_j^T a
    return pose.reshape(num_frames, -1)


def _require(skeleton: Skeleton, joints: tuple[str, ...], motion: str) -> None:
    missing = [j for j in joints if j not in skeleton.aliases]
    if missing:
        raise ValueError(f"the {motion} motion needs the joints {missing}, which {skeleton.name} does not map "
                         "(give a Skeleton with aliases for them)")


def _times(num_frames: int, fps: float) -> np.ndarray:
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return np.arange(num_frames) / float(fps)


def rest(num_frames: int = 1, fps: float = 30.0, skeleton: Skeleton | int = SMPLX_SKELETON) -> Motion:
    """The rest pose held for ``num_frames`` frames."""
    sk = _as_skeleton(skeleton)
    _times(num_frames, fps)
    return Motion(np.zeros((num_frames, 3)), np.zeros((num_frames, 3 * sk.num_joints)), fps, source="rest")


def turntable(num_frames: int = 360, fps: float = 30.0, turns: float = 1.0,
              skeleton: Skeleton | int = SMPLX_SKELETON, body_pose: np.ndarray | None = None) -> Motion:
    """``turns`` full rotations about the body's vertical (+y) axis; frame k at angle 2 pi turns k / T, so the
    last frame stops one step short of the first and the video loops without a repeated frame.

    body_pose: (3 J,) the pose held while turning (e.g. the avatar's fitted pose), default rest.
    """
    sk = _as_skeleton(skeleton)
    _times(num_frames, fps)
    angle = 2 * np.pi * turns * np.arange(num_frames) / num_frames
    orient = np.zeros((num_frames, 3))
    orient[:, 1] = angle
    pose = np.zeros((num_frames, 3 * sk.num_joints))
    if body_pose is not None:
        body_pose = np.asarray(body_pose, np.float64).reshape(-1)
        if body_pose.shape[0] != 3 * sk.num_joints:
            raise ValueError(f"body_pose must have {3 * sk.num_joints} values for {sk.name}, got {body_pose.shape[0]}")
        pose[:] = body_pose
    return Motion(orient, pose, fps, source="turntable")


def walk(num_frames: int = 300, fps: float = 30.0, cycle_seconds: float = 1.1, stride: float = 1.0,
         arm_lowering: float = 1.25, forward_speed: float = 0.0, skeleton: Skeleton | int = SMPLX_SKELETON) -> Motion:
    """A cyclic walk (in place unless ``forward_speed`` > 0, in model units per second along +z).

    One gait cycle lasts ``cycle_seconds``; phase phi = 2 pi t / cycle. Left and right are half a cycle apart:
    hips swing +-0.45 rad (scaled by ``stride``), knees bend up to ~0.7 rad in mid-swing, ankles +-0.15, arms
    (lowered to ``arm_lowering`` rad below the horizontal) swing opposite to the leg on their side, elbows bend 0.3-0.5
    rad, the pelvis yaws and the spine counter-rotates, and the root bobs 1.2 cm at twice the step frequency.
    """
    sk = _as_skeleton(skeleton)
    need = ("left_hip", "right_hip", "left_knee", "right_knee", "left_shoulder", "right_shoulder")
    _require(sk, need, "walk")
    t = _times(num_frames, fps)
    lower = arm_lowering - sk.rest_arm_angle  # from the rest pose's arm angle to the target one
    phi = 2 * np.pi * t / cycle_seconds
    s = np.sin(phi)
    swing_l = (0.5 + 0.5 * np.cos(phi)) ** 2  # 1 in the left leg's mid-swing, 0 in its stance
    swing_r = (0.5 - 0.5 * np.cos(phi)) ** 2
    rot = {
        "left_hip": _rot("x", -0.45 * stride * s), "right_hip": _rot("x", 0.45 * stride * s),
        "left_knee": _rot("x", 0.1 + 0.6 * stride * swing_l), "right_knee": _rot("x", 0.1 + 0.6 * stride * swing_r),
        "left_ankle": _rot("x", -0.15 * stride * s), "right_ankle": _rot("x", 0.15 * stride * s),
        # arms: lower from the rest pose first, then swing about x (matrix order: swing @ lower)
        "left_shoulder": _rot("x", 0.35 * stride * s) @ _rot("z", np.full_like(t, -lower)),
        "right_shoulder": _rot("x", -0.35 * stride * s) @ _rot("z", np.full_like(t, lower)),
        "left_elbow": _rot("y", -(0.3 + 0.2 * np.maximum(0.0, -s))),
        "right_elbow": _rot("y", 0.3 + 0.2 * np.maximum(0.0, s)),
    }
    for name in ("spine1", "spine2", "spine3"):
        rot[name] = _rot("y", 0.04 * stride * s)  # 0.12 rad in all, against the pelvis yaw
    pose = _pose_from_semantic(sk, rot, num_frames)
    orient = np.zeros((num_frames, 3))
    orient[:, 1] = -0.1 * stride * s  # the pelvis turns with the forward leg
    transl = np.zeros((num_frames, 3))
    transl[:, 1] = 0.012 * np.cos(2 * phi)  # highest in single support
    transl[:, 2] = forward_speed * t
    return Motion(orient, pose, fps, transl=transl, source="walk")


def wave(num_frames: int = 120, fps: float = 30.0, side: Literal["left", "right"] = "right",
         waves_per_second: float = 1.5, arm_lowering: float = 1.25,
         skeleton: Skeleton | int = SMPLX_SKELETON) -> Motion:
    """One arm raised ~30 degrees above the shoulder with the forearm up, waving +-0.35 rad side to side at
    ``waves_per_second``; the other arm rests ``arm_lowering`` rad below the horizontal."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    sk = _as_skeleton(skeleton)
    other = "left" if side == "right" else "right"
    _require(sk, (f"{side}_shoulder", f"{side}_elbow", f"{other}_shoulder"), "wave")
    t = _times(num_frames, fps)
    sign = 1.0 if side == "left" else -1.0  # about z, +angle raises the left arm and lowers the right one
    ramp = np.clip(t / 0.4, 0.0, 1.0)  # raise the arm over the first 0.4 s instead of popping into place
    ramp = ramp * ramp * (3 - 2 * ramp)
    wave_angle = 0.35 * np.sin(2 * np.pi * waves_per_second * t) * ramp
    rest_angle = sk.rest_arm_angle  # an A-pose arm has further to rise and less to fall
    rot = {
        f"{side}_shoulder": _rot("z", sign * (0.5 + rest_angle) * ramp),
        f"{side}_elbow": _rot("z", sign * (1.3 * ramp + wave_angle)),
        f"{other}_shoulder": _rot("z", np.full_like(t, sign * (arm_lowering - rest_angle))),
    }
    pose = _pose_from_semantic(sk, rot, num_frames)
    return Motion(np.zeros((num_frames, 3)), pose, fps, source="wave")


def idle(num_frames: int = 180, fps: float = 30.0, breath_seconds: float = 3.0, arm_lowering: float = 1.25,
         skeleton: Skeleton | int = SMPLX_SKELETON) -> Motion:
    """Standing at ease: arms lowered ``arm_lowering`` rad below the horizontal with the elbows a little bent, a
    breath every ``breath_seconds`` (the spine straightens 0.03 rad, the shoulders lift 0.04 rad), the weight
    shifting from foot to foot once per two breaths (hips +-0.03 rad about z, the pelvis 1 cm to the side). Loops
    when the clip lasts a whole number of two-breath cycles: the default 6 s clip (``render.seconds``) is one."""
    sk = _as_skeleton(skeleton)
    _require(sk, ("left_shoulder", "right_shoulder", "left_hip", "right_hip"), "idle")
    t = _times(num_frames, fps)
    breath = 0.5 - 0.5 * np.cos(2 * np.pi * t / breath_seconds)  # 0 exhaled .. 1 inhaled
    sway = np.sin(np.pi * t / breath_seconds)  # one weight shift and back per two breaths
    lower = arm_lowering - sk.rest_arm_angle
    rot = {
        "left_shoulder": _rot("z", -lower + 0.04 * breath), "right_shoulder": _rot("z", lower - 0.04 * breath),
        "left_elbow": _rot("y", np.full_like(t, -0.15)), "right_elbow": _rot("y", np.full_like(t, 0.15)),
        "left_hip": _rot("z", 0.03 * sway), "right_hip": _rot("z", 0.03 * sway),
    }
    for name in ("spine1", "spine2", "spine3"):
        rot[name] = _rot("x", -0.01 * breath)
    pose = _pose_from_semantic(sk, rot, num_frames)
    transl = np.zeros((num_frames, 3))
    transl[:, 0] = 0.01 * sway
    return Motion(np.zeros((num_frames, 3)), pose, fps, transl=transl, source="idle")


def retarget_smplx(motion: Motion, skeleton: Skeleton) -> Motion:
    """A SMPL-X body motion (21 body joints: an AMASS file, a DINAR pickle) onto another rig (`skeleton`, e.g.
    `anny_skeleton`): each SMPL-X joint's local rotation is a rotation about canonical axes (SMPL-X's bind
    orientations are identity), so it is the semantic rotation the generators give, and goes through the same
    aliases and rest frames; the upper arms first undo the rig's rest angle (an A-pose arm hangs
    ``rest_arm_angle`` below SMPL-X's T-pose), and the forearms the rig's rest bend (``rest_forearm``; the
    elbow's rotation is then taken about the T-pose's axes). The root's orientation and translation are kept;
    hands, jaw and eyes (no aliases) are dropped. Joints the rig does not map stay at rest."""
    motion.check_body_joints(NUM_SMPLX_BODY_JOINTS, "SMPL-X")
    T = motion.num_frames
    local = axis_angle_to_matrix(motion.body_joint_rotations())  # (T, 21, 3, 3)
    rot = {name: local[:, j] for j, name in enumerate(SMPLX_BODY_JOINTS)}
    raise_by = np.full(T, skeleton.rest_arm_angle)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lift = _rot("z", sign * raise_by)  # (T, 3, 3) from the rig's A-pose to the T-pose first
        rot[f"{side}_shoulder"] = rot[f"{side}_shoulder"] @ lift
        straighten = skeleton.rest_forearm.get(f"{side}_elbow")
        if straighten is not None:  # the elbow's rotation about the T-pose's axes, on a straightened forearm
            rot[f"{side}_elbow"] = lift.transpose(0, 2, 1) @ rot[f"{side}_elbow"] @ lift @ straighten
    pose = _pose_from_semantic(skeleton, rot, T)
    return Motion(motion.global_orient.copy(), pose, motion.fps,
                  transl=None if motion.transl is None else motion.transl.copy(),
                  source=f"{motion.source} (retargeted onto {skeleton.name})")


def procedural_motion(name: MotionName, num_frames: int, fps: float = 30.0,
                      skeleton: Skeleton | int = SMPLX_SKELETON, **options) -> Motion:
    """The built-in motion called ``name`` ('turntable' | 'walk' | 'wave' | 'idle' | 'rest'), for config and CLI
    use."""
    generators = {"turntable": turntable, "walk": walk, "wave": wave, "idle": idle, "rest": rest}
    if name not in generators:
        raise ValueError(f"unknown built-in motion {name!r}; choose one of {sorted(generators)}")
    return generators[name](num_frames=num_frames, fps=fps, skeleton=skeleton, **options)
