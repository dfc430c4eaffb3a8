"""Motion files: DINAR's animation pickle and AMASS-style ``.npz`` in, :class:`Motion` out.

DINAR's animation pickle (what its ``visualize.py`` reads, e.g. ``testseq_azure_amass_merged_poses.pickle``): a dict
with ``'body_params_list'``, one dict per frame with ``body_pose`` (1, 63) axis-angle, ``global_orient`` (1, 3),
``jaw_pose`` (1, 3) and ``left_hand_pose`` / ``right_hand_pose`` PCA coefficients (1, N), arrays or torch tensors.
DINAR cuts the hands to their first 6 PCA coefficients and takes shape, expression and translation from the avatar;
so do we (``hand_format='pca'``, ``transl=None``). DINAR renders these sequences at 30 fps, our default.
This is the DINAR compatibility layer, the one place that speaks string-keyed dicts.

AMASS ``.npz`` (https://amass.is.tue.mpg.de): ``poses`` (T, 165) for SMPL-X, laid out [global 3, body 63, jaw 3,
left eye 3, right eye 3, left hand 45, right hand 45]; (T, 156) for SMPL+H [global 3, body 63, left hand 45, right
hand 45]; (T, 72) for SMPL [global 3, 23 joints x 3, whose first 21 are SMPL-X's body joints and the last two SMPL's
hand joints, dropped]. Also ``trans`` (T, 3), ``mocap_frame_rate`` (SMPL-X) or ``mocap_framerate`` (SMPL+H),
``betas``, ``gender``; SMPL-X exports may carry the split keys ``root_orient``/``pose_body``/``pose_hand``/
``pose_jaw`` instead of ``poses``. AMASS's world is z-up; by default it is turned into SMPL-X's canonical y-up frame
(a -90 degree rotation about x applied to the root rotation and translation).

Every malformed file raises :class:`MotionError` naming the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Literal

import numpy as np

from dinar_core.errors import MotionError, MotionLimitError, UnsafeMotionError
from dinar_core.safeload import GB, MB, FileKind, load_npz, load_pickle
from dinar_core.fileio import atomic_target
from dinar_core.motion.motion import NUM_SMPLX_BODY_JOINTS, Motion

DINAR_FPS = 30.0
DINAR_HAND_PCA = 6
DINAR_FRAME_KEYS = ("body_pose", "global_orient", "jaw_pose", "left_hand_pose", "right_hand_pose")

# AMASS 'poses' layouts: width -> slices (global, body, jaw, left hand, right hand); None = absent.
_AMASS_LAYOUTS: dict[int, tuple[str, dict[str, slice | None]]] = {
    165: ("SMPL-X", {"global_orient": slice(0, 3), "body_pose": slice(3, 66), "jaw_pose": slice(66, 69),
                     "left_hand_pose": slice(75, 120), "right_hand_pose": slice(120, 165)}),
    156: ("SMPL+H", {"global_orient": slice(0, 3), "body_pose": slice(3, 66), "jaw_pose": None,
                     "left_hand_pose": slice(66, 111), "right_hand_pose": slice(111, 156)}),
    72: ("SMPL", {"global_orient": slice(0, 3), "body_pose": slice(3, 66), "jaw_pose": None,
                  "left_hand_pose": None, "right_hand_pose": None}),
}
# z-up (AMASS) -> y-up (SMPL-X canonical): rotation by -90 degrees about x maps +z to +y.
Z_UP_TO_Y_UP = np.array([-np.pi / 2, 0.0, 0.0])


def load_motion(path: str | Path, fps: float | None = None, num_body_joints: int | None = NUM_SMPLX_BODY_JOINTS,
                amass_up: Literal["z", "y"] = "z") -> Motion:
    """Load a motion file by its extension: ``.pkl``/``.pickle`` (DINAR) or ``.npz`` (AMASS).

    fps: frame rate for DINAR pickles (default 30, as DINAR renders them); for AMASS only used when the file has no
        frame rate of its own.
    num_body_joints: the body model's non-root joint count; a motion with another count raises MotionError
        (None: any count, for a caller that retargets).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle"):
        motion = load_dinar_animation(path, fps=DINAR_FPS if fps is None else fps)
    elif suffix == ".npz":
        motion = load_amass_npz(path, fps=fps, up=amass_up)
    else:
        raise MotionError(f"motion file {path} has an unknown format ({suffix or 'no extension'})",
                          fix="give DINAR's animation pickle (.pkl/.pickle) or an AMASS-style .npz")
    return motion if num_body_joints is None else motion.check_body_joints(num_body_joints)


# ----------------------------------------------------------------------------------------------------------------
# DINAR's animation pickle
# ----------------------------------------------------------------------------------------------------------------
MAX_FRAMES = 100_000
"""Longest motion accepted (~55 minutes at 30 fps): a longer file is refused before its frames are built."""

MAX_PICKLE_FRAMES = 20_000
"""Longest animation pickle accepted (~11 minutes at 30 fps). A pickle builds one object per value, so its cost
grows with its opcodes: measured on one core, 10,000 frames load in 1.0 s and 100,000 in 8.7 s, and a hostile
stream of nested tuples at the opcode budget of 100,000 frames in 6.9 s. At 20,000 frames both stay near 2 s;
longer motions go in an AMASS-style ``.npz`` (plain arrays, up to :data:`MAX_FRAMES`)."""

ANIMATION_PICKLE = FileKind(
    label="motion file", format="animation pickle", error=MotionError, unsafe=UnsafeMotionError,
    too_large=MotionLimitError, fix="give DINAR's animation pickle: a dict with 'body_params_list'",
    unsafe_fix="give DINAR's animation pickle: plain dicts of numpy arrays or torch tensors",
    max_file_bytes=64 * MB, max_array_bytes=1 * GB, max_ops=130 * MAX_PICKLE_FRAMES,
    max_items=8 * MAX_PICKLE_FRAMES,
    max_depth=8, torch_tensors=True)
"""DINAR's animation pickles: a dict of per-frame dicts of (1, N) arrays or tensors (~500 bytes, ~125 pickle
opcodes and 6 container items per frame)."""

AMASS_NPZ = FileKind(
    label="motion file", format=".npz", error=MotionError, unsafe=UnsafeMotionError, too_large=MotionLimitError,
    fix="give an AMASS-style .npz with 'poses', 'trans' and 'mocap_frame_rate' (plain numeric arrays)",
    max_file_bytes=1 * GB, max_array_bytes=1 * GB)
"""AMASS-style .npz motions: plain numeric arrays only (no pickled objects)."""

_AMASS_KEYS = ("poses", "trans", "mocap_frame_rate", "mocap_framerate", "betas", "gender", "root_orient",
               "pose_body", "pose_hand", "pose_jaw")


def _read_pickle(path: Path):
    if not path.is_file():
        raise MotionError(f"motion file {path} does not exist", fix="check the path given with --motion")
    return load_pickle(path, ANIMATION_PICKLE)


def _check_frames(path: Path, count: int, limit: int = MAX_FRAMES) -> None:
    if count > limit:
        fix = "cut the motion into shorter pieces"
        if limit < MAX_FRAMES:
            fix += f" or store it as an AMASS-style .npz (up to {MAX_FRAMES:,} frames)"
        raise MotionLimitError(f"motion file {path} has {count:,} frames, more than the {limit:,} allowed",
                               fix=fix)


def _row(path: Path, frame: int, key: str, value) -> np.ndarray:
    """One per-frame value as a flat float32 vector; accepts (N,) or (1, N) arrays or tensors."""
    try:
        if hasattr(value, "detach"):
            value = value.detach().cpu().float().numpy()
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError, OverflowError, RuntimeError):
        raise MotionError(f"motion file {path}: frame {frame} '{key}' is not numeric ({type(value).__name__})",
                          fix="store numpy arrays or tensors shaped (1, N)") from None
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise MotionError(f"motion file {path}: frame {frame} '{key}' must be (1, N), got {arr.shape}",
                          fix="store one pose per frame, shaped (1, N)")
    return arr


def load_dinar_animation(path: str | Path, fps: float = DINAR_FPS, num_hand_pca: int = DINAR_HAND_PCA) -> Motion:
    """DINAR's animation pickle -> Motion (hands: PCA, cut to ``num_hand_pca`` coefficients as DINAR does)."""
    path = Path(path)
    data = _read_pickle(path)
    if not isinstance(data, dict) or "body_params_list" not in data:
        keys = sorted(map(str, data))[:8] if isinstance(data, dict) else type(data).__name__
        raise MotionError(f"motion file {path} has no 'body_params_list' (found {keys})",
                          fix="give DINAR's animation pickle: a dict with 'body_params_list', one dict per frame")
    frames = data["body_params_list"]
    if not isinstance(frames, (list, tuple)) or len(frames) == 0:
        raise MotionError(f"motion file {path} has zero frames in 'body_params_list'",
                          fix="give a motion with at least one frame")
    _check_frames(path, len(frames), MAX_PICKLE_FRAMES)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in DINAR_FRAME_KEYS}
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise MotionError(f"motion file {path}: frame {i} is a {type(frame).__name__}, not a dict",
                              fix="each entry of 'body_params_list' must be a dict of pose arrays")
        for key in DINAR_FRAME_KEYS:
            if key not in frame:
                raise MotionError(f"motion file {path}: frame {i} has no '{key}' (DINAR needs {DINAR_FRAME_KEYS})",
                                  fix="add the missing pose (zeros give the rest pose)")
            row = _row(path, i, key, frame[key])
            if key.endswith("hand_pose"):
                row = row[:num_hand_pca]
            if columns[key] and row.shape != columns[key][0].shape:
                raise MotionError(f"motion file {path}: frame {i} '{key}' has {row.shape[0]} values, frame 0 has "
                                  f"{columns[key][0].shape[0]}", fix="give every frame the same layout")
            columns[key].append(row)
    stacked = {k: np.stack(v) for k, v in columns.items()}  # each (T, N)
    return Motion(global_orient=stacked["global_orient"], body_pose=stacked["body_pose"], fps=fps,
                  jaw_pose=stacked["jaw_pose"], left_hand_pose=stacked["left_hand_pose"],
                  right_hand_pose=stacked["right_hand_pose"], hand_format="pca", source=str(path))


def save_dinar_animation(path: str | Path, motion: Motion, num_hand_pca: int = DINAR_HAND_PCA) -> Path:
    """Write ``motion`` as DINAR's animation pickle (float32 (1, N) arrays; atomic). Hands must be PCA or absent
    (absent -> zeros = SMPL-X's mean hand); the frame rate is not stored (DINAR assumes 30 fps)."""
    motion.check_body_joints(NUM_SMPLX_BODY_JOINTS)
    if motion.hand_format != "pca" and (motion.left_hand_pose is not None or motion.right_hand_pose is not None):
        raise ValueError("DINAR's animation pickle stores hands as PCA coefficients; this motion has axis-angle "
                         "hands (drop them with motion.replace(left_hand_pose=None, right_hand_pose=None))")
    t = motion.num_frames
    zeros3 = np.zeros((t, 3), np.float32)
    zeros_hand = np.zeros((t, num_hand_pca), np.float32)
    fields = {"body_pose": motion.body_pose, "global_orient": motion.global_orient,
              "jaw_pose": zeros3 if motion.jaw_pose is None else motion.jaw_pose,
              "left_hand_pose": zeros_hand if motion.left_hand_pose is None else motion.left_hand_pose,
              "right_hand_pose": zeros_hand if motion.right_hand_pose is None else motion.right_hand_pose}
    frames = [{k: np.ascontiguousarray(v[i:i + 1], dtype=np.float32) for k, v in fields.items()} for i in range(t)]
    path = Path(path)
    with atomic_target(path) as tmp:
        tmp.write_bytes(pickle.dumps({"body_params_list": frames}, protocol=4))
    return path


# ----------------------------------------------------------------------------------------------------------------
# AMASS .npz
# ----------------------------------------------------------------------------------------------------------------
def _floats(path: Path, key: str, value) -> np.ndarray:
    """``value`` as float32, or MotionError naming the key (strings, complex numbers)."""
    if value.dtype.kind not in "biuf":
        raise MotionError(f"motion file {path}: '{key}' holds {value.dtype} values, not real numbers",
                          fix="store poses, translations, betas and frame rates as float arrays")
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, which Motion refuses by name
        return value.astype(np.float32)


def _first(path: Path, key: str, value: np.ndarray):
    if value.size == 0:
        raise MotionError(f"motion file {path}: '{key}' is empty", fix=f"store '{key}' as one value")
    return value.reshape(-1)[0]


def load_amass_npz(path: str | Path, fps: float | None = None, up: Literal["z", "y"] = "z") -> Motion:
    """An AMASS-style ``.npz`` -> Motion (hands axis-angle, ``transl`` from ``trans``).

    fps: used only when the file has no ``mocap_frame_rate``/``mocap_framerate``.
    up: the file's vertical axis; 'z' (AMASS) is turned into SMPL-X's y-up canonical frame, 'y' is kept as is.
    """
    path = Path(path)
    if not path.is_file():
        raise MotionError(f"motion file {path} does not exist", fix="check the path given with --motion")
    npz = load_npz(path, AMASS_NPZ, keys=_AMASS_KEYS)
    keys = set(npz)
    fields: dict[str, np.ndarray | None]
    if "poses" in keys:
        poses = _floats(path, "poses", npz["poses"])
        if poses.ndim != 2:
            raise MotionError(f"motion file {path}: 'poses' must be (T, D), got {poses.shape}",
                              fix="store one pose row per frame")
        if poses.shape[1] not in _AMASS_LAYOUTS:
            accepted = ", ".join(f"{w} ({name}, {w // 3} joints)" for w, (name, _) in _AMASS_LAYOUTS.items())
            raise MotionError(f"motion file {path}: 'poses' has {poses.shape[1]} values per frame "
                              f"({poses.shape[1] / 3:g} joints); accepted: {accepted}",
                              fix="use an SMPL-X, SMPL+H or SMPL motion")
        _, layout = _AMASS_LAYOUTS[poses.shape[1]]
        fields = {k: (None if sl is None else poses[:, sl]) for k, sl in layout.items()}
    elif {"root_orient", "pose_body"} <= keys:
        fields = {"global_orient": _floats(path, "root_orient", npz["root_orient"]),
                  "body_pose": _floats(path, "pose_body", npz["pose_body"]),
                  "jaw_pose": _floats(path, "pose_jaw", npz["pose_jaw"]) if "pose_jaw" in keys else None,
                  "left_hand_pose": None, "right_hand_pose": None}
        if "pose_hand" in keys:
            hands = _floats(path, "pose_hand", npz["pose_hand"])
            if hands.ndim != 2 or hands.shape[1] != 90:
                raise MotionError(f"motion file {path}: 'pose_hand' must be (T, 90), got {hands.shape}",
                                  fix="store 15 joints x 3 values per hand")
            fields["left_hand_pose"], fields["right_hand_pose"] = hands[:, :45], hands[:, 45:]
    else:
        raise MotionError(f"motion file {path} has no 'poses' (nor 'root_orient' + 'pose_body'); keys: "
                          f"{sorted(keys)}", fix="give an AMASS-style .npz")
    if fields["global_orient"].ndim >= 1:
        _check_frames(path, fields["global_orient"].shape[0])
    transl = _floats(path, "trans", npz["trans"]) if "trans" in keys else None
    file_fps = None
    for key in ("mocap_frame_rate", "mocap_framerate"):
        if key in keys:
            file_fps = float(_first(path, key, _floats(path, key, npz[key])))
            break
    betas = _floats(path, "betas", npz["betas"]).reshape(-1) if "betas" in keys else None
    gender = str(_first(path, "gender", npz["gender"])) if "gender" in keys else None
    if isinstance(gender, str) and gender.startswith("b'"):
        gender = gender[2:-1]
    if file_fps is None and fps is None:
        raise MotionError(f"motion file {path} has no frame rate ('mocap_frame_rate' or 'mocap_framerate')",
                          fix="pass the frame rate explicitly (fps=...)")
    motion = Motion(global_orient=fields["global_orient"], body_pose=fields["body_pose"],
                    fps=file_fps if file_fps is not None else fps, jaw_pose=fields["jaw_pose"],
                    left_hand_pose=fields["left_hand_pose"], right_hand_pose=fields["right_hand_pose"],
                    hand_format="axis_angle", transl=transl, source=str(path), betas=betas, gender=gender)
    if up == "z":
        motion = z_up_to_y_up(motion)
    elif up != "y":
        raise ValueError(f"up must be 'z' or 'y', got {up!r}")
    return motion


def z_up_to_y_up(motion: Motion) -> Motion:
    """Rotate a z-up motion's root into the y-up canonical frame (root rotation and translation).

    The rotation is about the world origin; the body's pelvis offset makes that a constant shift of the body,
    which the renderer's placement (and :func:`dinar_core.motion.retime.ground_offsets`) absorbs.
    """
    return motion.compose_global(Z_UP_TO_Y_UP)
