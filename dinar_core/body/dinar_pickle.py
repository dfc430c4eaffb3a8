"""DINAR's ``smplx/<frame>.pkl``: a pickled dict of float32 arrays shaped (1, N) (the DINAR compatibility layer,
the one place in the core that speaks string-keyed dicts).

Written: betas (1,10), expression (1,10), global_orient (1,3), body_pose (1,63), jaw_pose (1,3),
left_hand_pose / right_hand_pose (1,6) PCA, transl (1,3), optional body_scale (1,1) or (1,3), gender str.

Read, accepting what DINAR's loader accepts: the dict may be nested as ``{'result': {'smplx': {...}}}``;
``camera_translation`` stands for ``transl``; hand poses longer than 6 are cut to their first 6 PCA coefficients;
``frame_fns``, ``camera_rotation``, ``leye_pose``/``reye_pose`` (DINAR overwrites the eyes) and ``ltrb`` are
ignored here (``ltrb``, a pre-crop box, is returned separately). Anything else malformed raises
:class:`DinarPickleError` naming the key and the shape it has.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from dinar_core.fileio import atomic_target
from dinar_core.body.smplx_model import SMPLXParams
from dinar_core.errors import DinarError, FileLimitError, UnsafeFileError
from dinar_core.safeload import MB, FileKind, load_pickle

WIDTHS = {"betas": 10, "expression": 10, "global_orient": 3, "body_pose": 63, "jaw_pose": 3,
          "left_hand_pose": 6, "right_hand_pose": 6, "transl": 3}


class DinarPickleError(DinarError):
    """An ``smplx/<frame>.pkl`` that DINAR could not read either (not a dict, a key missing, a wrong shape, NaN)."""


class UnsafeDinarPickleError(DinarPickleError, UnsafeFileError):
    """An ``smplx/<frame>.pkl`` that refers to code or classes a fit file never holds; nothing was loaded."""


class DinarPickleLimitError(DinarPickleError, FileLimitError):
    """An ``smplx/<frame>.pkl`` over a size limit (a fit file is ~1 KB)."""


FIT_PICKLE = FileKind(label="", format="pickle", fix="re-run the fit stage to rewrite it", error=DinarPickleError,
                      unsafe=UnsafeDinarPickleError, too_large=DinarPickleLimitError, max_file_bytes=4 * MB,
                      max_array_bytes=16 * MB, max_ops=20_000, max_items=20_000, max_depth=8,
                      unsafe_fix="write the file with plain dicts of numpy arrays (dinar_core.body.dinar_pickle)")
"""DINAR fit pickles: plain dicts of numpy arrays (one frame, ~1 KB)."""


@dataclass
class DinarSMPLX:
    """One frame's SMPL-X fit as DINAR stores it.

    params: SMPLXParams with batch size 1 (float32, CPU).
    gender: 'neutral' | 'male' | 'female'.
    ltrb: (4,) pre-crop box [left, top, right, bottom] in pixels, or None.
    """

    params: SMPLXParams
    gender: Literal["neutral", "male", "female"] = "neutral"
    ltrb: np.ndarray | None = None


def to_dinar_dict(params: SMPLXParams, gender: str = "neutral", index: int = 0) -> dict:
    """The dict DINAR reads for item ``index`` of a batch: float32 numpy arrays shaped (1, N) and the gender."""
    params.validate()
    if gender not in ("neutral", "male", "female"):
        raise ValueError(f"gender must be 'neutral', 'male' or 'female', got {gender!r}")
    out: dict = {}
    for key in WIDTHS:
        value = getattr(params, key)[index:index + 1].detach().cpu().numpy().astype(np.float32)  # (1, N)
        out[key] = value
    if params.body_scale is not None:
        out["body_scale"] = params.body_scale[index:index + 1].detach().cpu().numpy().astype(np.float32)
    out["gender"] = gender
    return out


def write_dinar_pickle(path: str | Path, params: SMPLXParams, gender: str = "neutral", index: int = 0) -> Path:
    """Pickle item ``index`` of ``params`` to ``path`` in DINAR's format (atomically: a temporary file renamed
    into place)."""
    path = Path(path)
    data = to_dinar_dict(params, gender, index)
    with atomic_target(path) as tmp:
        tmp.write_bytes(pickle.dumps(data, protocol=4))
    return path


def _as_row(key: str, value, source: str, dtype=np.float32) -> np.ndarray:
    try:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().double().numpy()
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError, RuntimeError) as exc:
        raise DinarPickleError(f"{source}: {key} is not numeric ({type(value).__name__})") from exc
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[0] != 1:
        raise DinarPickleError(f"{source}: {key} has shape {arr.shape}, expected (1, N)",
                               fix="store one frame per file, each value shaped (1, N)")
    if not np.isfinite(arr).all():
        raise DinarPickleError(f"{source}: {key} contains NaN or inf")
    return arr


def from_dinar_dict(data, source: str = "<dict>") -> DinarSMPLX:
    """Parse a DINAR smplx dict (see the module docstring for the accepted variants)."""
    if isinstance(data, dict) and "result" in data:
        inner = data["result"]
        if not isinstance(inner, dict) or "smplx" not in inner:
            raise DinarPickleError(f"{source}: has 'result' but no 'result' -> 'smplx' dict")
        data = inner["smplx"]
    if not isinstance(data, dict):
        raise DinarPickleError(f"{source}: holds a {type(data).__name__}, expected a dict of (1, N) arrays")
    data = dict(data)
    if "transl" not in data and "camera_translation" in data:
        data["transl"] = data.pop("camera_translation")
    data.pop("camera_translation", None)
    missing = [k for k in WIDTHS if k not in data]
    if missing:
        raise DinarPickleError(f"{source}: lacks {missing} (DINAR needs {list(WIDTHS)})")
    values = {}
    for key, width in WIDTHS.items():
        arr = _as_row(key, data[key], source)
        if key in ("left_hand_pose", "right_hand_pose") and arr.shape[1] > width:
            arr = arr[:, :width]  # DINAR keeps the first 6 PCA coefficients
        if arr.shape[1] != width:
            raise DinarPickleError(f"{source}: {key} has shape {arr.shape}, expected (1, {width})")
        values[key] = torch.from_numpy(arr.copy())
    body_scale = None
    if data.get("body_scale") is not None:
        arr = _as_row("body_scale", data["body_scale"], source)
        if arr.shape[1] not in (1, 3):
            raise DinarPickleError(f"{source}: body_scale has shape {arr.shape}, expected (1, 1) or (1, 3)")
        body_scale = torch.from_numpy(arr.copy())
    gender = data.get("gender", "neutral")
    if isinstance(gender, bytes):
        gender = gender.decode()
    gender = str(gender).lower()
    if gender not in ("neutral", "male", "female"):
        raise DinarPickleError(f"{source}: gender {gender!r} is not 'neutral', 'male' or 'female'")
    ltrb = None
    if data.get("ltrb") is not None:
        ltrb = _as_row("ltrb", data["ltrb"], source, np.float64).reshape(-1)
        if ltrb.shape != (4,):
            raise DinarPickleError(f"{source}: ltrb has {ltrb.size} values, expected 4 (left, top, right, bottom)")
    return DinarSMPLX(SMPLXParams(**values, body_scale=body_scale), gender, ltrb)


def read_dinar_pickle(path: str | Path) -> DinarSMPLX:
    """Read ``smplx/<frame>.pkl`` (numpy/plain objects only; a pickle that would import other code is refused)."""
    data = load_pickle(path, FIT_PICKLE)
    return from_dinar_dict(data, source=str(path))
