"""Motions: the typed :class:`Motion`, file formats (DINAR's animation pickle, AMASS .npz), built-in procedural
motions (turntable, walk, wave, idle), frame-rate retargeting and ground contact."""

from dinar_core.motion.formats import (load_amass_npz, load_dinar_animation, load_motion, save_dinar_animation,
                                       z_up_to_y_up)
from dinar_core.motion.motion import (NUM_SMPLX_BODY_JOINTS, NUM_SMPLX_JOINTS, SMPLX_BODY_JOINTS, HandFormat,
                                      Motion)
from dinar_core.motion.procedural import (ANNY_ALIASES, SMPLX_SKELETON, MotionName, Skeleton, anny_skeleton,
                                          idle, procedural_motion, rest, retarget_smplx, turntable,
                                          walk, wave)
from dinar_core.motion.retime import apply_ground_offsets, ground_offsets, resample, slerp_axis_angle

__all__ = ["ANNY_ALIASES", "anny_skeleton", "HandFormat", "Motion", "MotionName", "NUM_SMPLX_BODY_JOINTS", "NUM_SMPLX_JOINTS",
           "SMPLX_BODY_JOINTS", "SMPLX_SKELETON", "Skeleton", "apply_ground_offsets", "ground_offsets", "idle",
           "load_amass_npz", "load_dinar_animation", "load_motion", "procedural_motion", "resample", "rest",
           "retarget_smplx",
           "save_dinar_animation", "slerp_axis_angle", "turntable", "walk", "wave", "z_up_to_y_up"]
