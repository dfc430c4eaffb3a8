"""Parametric body models behind one stateless interface (see ``base.BodyModel``).

- ``SMPLXBody`` (``smplx_model``): the licensed SMPL-X files, built as DINAR builds them.
- ``AnnyBody`` (``anny_model``): the open Anny model shipped in the ``anny`` wheel.
- ``dinar_pickle``: DINAR's ``smplx/<frame>.pkl`` reader/writer; ``joint_maps``: keypoint tables.
"""

from dinar_core.body.base import BodyModel, BodyOutput, Keypoints3D, UVLayout
from dinar_core.body.anny_model import AnnyBody, AnnyConfig, AnnyParams, anny_cache_dir
from dinar_core.body.smplx_model import (
    SMPLXBody,
    SMPLXParams,
    find_smplx_model_file,
    resolve_smplx_models_dir,
)
from dinar_core.keypoints.layout import KEYPOINT_SLICES, NUM_KEYPOINTS

__all__ = [
    "KEYPOINT_SLICES", "NUM_KEYPOINTS", "BodyModel", "BodyOutput", "Keypoints3D", "UVLayout", "SMPLXBody",
    "SMPLXParams", "find_smplx_model_file", "resolve_smplx_models_dir", "AnnyBody", "AnnyConfig", "AnnyParams",
    "anny_cache_dir",
]
