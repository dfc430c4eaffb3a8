"""Load DINAR's Lightning checkpoint (``ddpm-epoch=24.ckpt``) into :class:`~dinar_core.nets.dinar.DinarModel`,
and write a model back in DINAR's key layout.

Every key of the checkpoint is accounted for: loaded into the model, or recorded as known-unused with the
reason. Anything else (a key that cannot be placed, a model key the checkpoint lacks, a shape that differs)
raises :class:`~dinar_core.errors.CheckpointMismatchError` listing all of them; DINAR itself loads with
``strict=False`` and would silently keep random weights.

The key map, one table read both ways, is ``dinar_core.compat.keys``.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import torch
from torch import nn

from dinar_core.compat.keys import plan_dinar_keys, to_dinar_state_dict  # noqa: F401 (to_dinar_state_dict: public)
from dinar_core.diffusion.schedule import BUFFER_NAMES
from dinar_core.errors import (
    CheckpointLimitError,
    DinarError,
    CheckpointMismatchError,
    MissingModelError,
    NotACheckpointError,
    NotDinarCheckpointError,
    TruncatedCheckpointError,
    UnsafeCheckpointError,
    UnsupportedCheckpointObjectError,
)
from dinar_core.safeload import GB, ZIP_ERRORS, FileKind, torch_load

_UV_KEYS = ("uv_faces", "uv_values", "normal_faces")
_DINAR_MARKERS = ("model_ema.", "first_stage.", "model.")


# ----------------------------------------------------------------------------------------------------------------
# Reading the file


class _AttributeDictStandIn:
    """Builds a plain dict where the pickle names Lightning's ``AttributeDict`` (a dict subclass used for
    ``hyper_parameters``); weights-only unpickling can then fill it like any dict."""

    def __new__(cls, *args: Any, **kwargs: Any) -> dict:  # type: ignore[misc]
        return {}


# Objects Lightning checkpoints hold that the weights-only unpickler refuses by default. All are plain data.
_SAFE_GLOBALS: list[Any] = [
    (_AttributeDictStandIn, "pytorch_lightning.utilities.parsing.AttributeDict"),
    (_AttributeDictStandIn, "lightning_fabric.utilities.data.AttributeDict"),
    (_AttributeDictStandIn, "lightning.fabric.utilities.data.AttributeDict"),
    (np.core.multiarray.scalar, "numpy.core.multiarray.scalar"),  # numpy scalars in callback states
    (np.dtype, "numpy.dtype"),
    *[(getattr(np.dtypes, n), f"numpy.dtypes.{n}") for n in ("Float64DType", "Float32DType", "Int64DType", "Int32DType")
      if hasattr(np, "dtypes") and hasattr(np.dtypes, n)],
]


@dataclass(frozen=True)
class LightningCheckpoint:
    """A checkpoint file's content.

    Attributes:
        state_dict: DINAR key -> tensor.
        epoch, global_step, lightning_version: Lightning's bookkeeping when present (None otherwise).
        extra_keys: the other top-level keys (optimizer_states, callbacks, ...), unused for inference.
    """

    state_dict: dict[str, torch.Tensor]
    epoch: int | None = None
    global_step: int | None = None
    lightning_version: str | None = None
    extra_keys: tuple[str, ...] = ()


CHECKPOINT_FILE = FileKind(
    label="checkpoint", format="PyTorch checkpoint", error=NotACheckpointError, unsafe=UnsafeCheckpointError,
    too_large=CheckpointLimitError, max_file_bytes=64 * GB, max_array_bytes=64 * GB,
    fix="point the config at DINAR's ddpm-epoch=24.ckpt (a PyTorch Lightning checkpoint)")
"""DINAR's checkpoint (~2.5 GB): read with weights-only torch.load after the archive's member sizes are checked."""

_CODE_MODULES = ("builtins", "__builtin__", "os", "posix", "nt", "subprocess", "sys", "shutil", "importlib",
                 "runpy", "pty", "socket", "pickle", "marshal", "code", "codeop", "ctypes", "webbrowser", "types",
                 "functools", "operator", "io", "pathlib", "tempfile", "torch", "numpy")


def _wants_code(what: str, message: str) -> bool:
    """True when the global weights-only loading refused is code (a function, a blocked module), not a data class:
    by torch's 'is blocked' verdict, a code-running module, or a lower-case name (functions; classes are CapWords)."""
    module, _, name = what.rpartition(".")
    return ("is blocked" in message or not module or module.split(".")[0] in _CODE_MODULES
            or not name[:1].isupper())


def _raise_unreadable(path: Path, err: Exception) -> None:
    with path.open("rb") as f:
        head = f.read(64)
    msg = str(err).split("\n")[0][:200]
    looks_torch = head.startswith(b"PK") or head[:1] == b"\x80"
    text = str(err)
    m = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"got <class '([\w.]+)'>", text)
    if looks_torch and isinstance(err, pickle.UnpicklingError) and m:
        what = m.group(1)
        if _wants_code(what, text):
            raise UnsafeCheckpointError(
                f"{path}: this file wants to run code ({what}) when loaded; it is not DINAR's checkpoint and "
                "nothing from it was loaded",
                fix="do not use this file; download ddpm-epoch=24.ckpt from DINAR's README link again",
            ) from err
        raise UnsupportedCheckpointObjectError(
            f"{path}: safe loading (weights_only) refuses the class {what} inside the checkpoint",
            fix="use DINAR's ddpm-epoch=24.ckpt (README link), or re-export only the tensors of its state_dict "
            "with the tool that wrote the file (a checkpoint of tensors and plain containers loads here)",
        ) from err
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except ZIP_ERRORS:
            names = None  # a damaged archive: truncated below
        if names is not None and not any(n.endswith("data.pkl") for n in names):
            raise NotACheckpointError(
                f"{path} is a zip archive but not a PyTorch checkpoint (no data.pkl inside)",
                fix="point the config at DINAR's ddpm-epoch=24.ckpt (unzip the download first if it is an archive)",
            ) from err
        raise TruncatedCheckpointError(
            f"{path} ({path.stat().st_size} bytes) is a truncated or corrupted PyTorch checkpoint ({msg})",
            fix="download ddpm-epoch=24.ckpt again (the full file is about 2.5 GB) and check its size",
        ) from err
    if head[:1] == b"\x80" and isinstance(err, (EOFError, RuntimeError, pickle.UnpicklingError)):
        raise TruncatedCheckpointError(
            f"{path} looks like a legacy PyTorch checkpoint but cannot be read to the end ({msg})",
            fix="download the checkpoint again; the file is truncated or corrupted",
        ) from err
    kind = "empty" if not head else ("an HTML page" if head.lstrip()[:1] == b"<" else
                                    "a NumPy file" if head.startswith(b"\x93NUMPY") else "not a PyTorch checkpoint")
    raise NotACheckpointError(
        f"{path} is {kind}" + (" (a download page saved instead of the file?)" if kind == "an HTML page" else ""),
        fix="point the config at DINAR's ddpm-epoch=24.ckpt (a PyTorch Lightning checkpoint)",
    ) from err


def read_checkpoint(path: str | Path) -> LightningCheckpoint:
    """Read a DINAR checkpoint with ``torch.load(weights_only=True)`` (never executes code from the file).

    Accepts a Lightning checkpoint (``{'state_dict': ..., 'epoch': ...}``) or a bare state_dict. Raises
    MissingModelError, NotACheckpointError, TruncatedCheckpointError, UnsupportedCheckpointObjectError (a data class
    weights-only loading refuses), UnsafeCheckpointError (the file wants to run code), CheckpointLimitError (members
    declaring more bytes than the file holds) or NotDinarCheckpointError, each naming the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingModelError(f"checkpoint {path} not found", fix="download DINAR's ddpm-epoch=24.ckpt and set its path")
    try:
        obj = torch_load(path, CHECKPOINT_FILE, _SAFE_GLOBALS)
    except DinarError:
        raise
    except Exception as err:  # noqa: BLE001 - whatever a damaged or crafted file makes torch raise gets a name
        _raise_unreadable(path, err)
        raise  # unreachable: _raise_unreadable always raises
    if not isinstance(obj, Mapping):
        raise NotDinarCheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict",
                                      fix="point the config at DINAR's ddpm-epoch=24.ckpt")
    sd = obj.get("state_dict", obj)
    if not isinstance(sd, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise NotDinarCheckpointError(f"{path}: 'state_dict' is not a mapping of names to tensors",
                                      fix="point the config at DINAR's ddpm-epoch=24.ckpt")
    if not any(k.startswith(_DINAR_MARKERS) for k in sd):
        some = ", ".join(list(sd)[:5])
        raise NotDinarCheckpointError(
            f"{path} is a PyTorch checkpoint but not DINAR's: no 'model.', 'model_ema.' or 'first_stage.' keys (has {some} ...)",
            fix="point the config at DINAR's ddpm-epoch=24.ckpt (the LatentDiffusion checkpoint from DINAR's README)",
        )
    meta = obj if "state_dict" in obj else {}
    epoch, step, version = meta.get("epoch"), meta.get("global_step"), meta.get("pytorch-lightning_version")
    return LightningCheckpoint(
        state_dict=dict(sd),
        epoch=int(epoch) if isinstance(epoch, int) else None,
        global_step=int(step) if isinstance(step, int) else None,
        lightning_version=str(version) if version is not None else None,
        extra_keys=tuple(k for k in meta if k != "state_dict"),
    )


# ----------------------------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class CheckpointLoadReport:
    """What :func:`load_dinar_checkpoint` did.

    Attributes:
        path: the checkpoint file.
        num_loaded: tensors copied into the model.
        unused: DINAR key -> reason it was deliberately not loaded.
        legacy_keys: number of ``vq_branch`` keys read as ``compress_branch``.
        schedule_max_abs_diff: largest difference between the checkpoint's schedule and the computed one.
        uv_layout: "loaded" (from the checkpoint) or "checked" (equal to the configured UV assets).
        epoch, global_step, lightning_version: Lightning's bookkeeping, if stored.
    """

    path: str
    num_loaded: int
    unused: dict[str, str] = field(default_factory=dict)
    legacy_keys: int = 0
    schedule_max_abs_diff: float = 0.0
    uv_layout: Literal["loaded", "checked"] = "loaded"
    epoch: int | None = None
    global_step: int | None = None
    lightning_version: str | None = None


def _fmt(items: list[str], limit: int = 25) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def load_dinar_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    uv_layout: Literal["auto", "load", "check"] = "auto",
    schedule: Literal["load", "check"] = "load",
    schedule_atol: float = 1e-6,
) -> CheckpointLoadReport:
    """Load DINAR's checkpoint into `model` (a DinarModel), strictly.

    uv_layout: "load" copies the rasterizer faces/UVs from the checkpoint; "check" requires them to equal the
        model's (configured UV assets); "auto" checks when the model was built with UV assets, else loads.
    schedule: "load" takes the checkpoint's schedule buffers (DINAR's behaviour); "check" keeps the computed
        ones and fails if the checkpoint differs by more than `schedule_atol`.
    """
    ckpt = read_checkpoint(path)
    return load_dinar_state_dict_into(model, ckpt.state_dict, source=str(path), uv_layout=uv_layout,
                                      schedule=schedule, schedule_atol=schedule_atol, ckpt=ckpt)


def load_dinar_state_dict_into(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str = "state dict",
    uv_layout: Literal["auto", "load", "check"] = "auto",
    schedule: Literal["load", "check"] = "load",
    schedule_atol: float = 1e-6,
    ckpt: LightningCheckpoint | None = None,
) -> CheckpointLoadReport:
    """Like :func:`load_dinar_checkpoint` for an in-memory DINAR state_dict (full LatentDiffusion key layout)."""
    plan = plan_dinar_keys(list(state_dict), model)
    own = model.state_dict()
    missing = sorted(set(own) - set(plan.targets.values()))
    unknown_targets = sorted(f"{k} -> {v}" for k, v in plan.targets.items() if v not in own)
    shapes = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)}, model {tuple(own[v].shape)}"
        for k, v in plan.targets.items()
        if v in own and tuple(state_dict[k].shape) != tuple(own[v].shape)
    )
    problems = []
    for title, items in (("keys with no place in the model", plan.unplaced + unknown_targets),
                         ("model keys missing from the checkpoint", missing),
                         ("shape mismatches", shapes), ("keys given twice", plan.duplicates)):
        if items:
            problems.append(f"{len(items)} {title}: {_fmt(items)}")
    if problems:
        raise CheckpointMismatchError(
            f"{source} does not match the configured DINAR model: " + "; ".join(problems),
            fix="use DINAR's ddpm-epoch=24.ckpt with the official sizes (configs/neural.yaml), or a checkpoint "
            "written by this project for the same config",
        )

    ours = {v: state_dict[k] for k, v in plan.targets.items()}
    # UV layout: load it, or check it against the configured assets.
    mode = uv_layout
    if mode == "auto":
        mode = "check" if getattr(model, "uv_from_assets", False) else "load"
    if mode == "check":
        differ = [k for k in _UV_KEYS if not torch.equal(ours[k].to(own[k].dtype).cpu(), own[k].cpu())]
        if differ:
            raise CheckpointMismatchError(
                f"{source}: UV layout {differ} differs from the configured UV assets",
                fix="point the UV asset paths at DINAR's smplx_data (uv.npy, uv_faces.npy) or load with uv_layout='load'",
            )
    # Schedule: compare with the computed values; load or insist on them.
    expected = model.schedule.expected_buffers()
    diff = max(float((ours[f"schedule.{n}"].float().cpu() - expected[n]).abs().max()) for n in BUFFER_NAMES)
    if schedule == "check" and diff > schedule_atol:
        raise CheckpointMismatchError(
            f"{source}: diffusion schedule differs from the configured one by {diff:.3g}",
            fix="set the schedule config (num_timesteps, linear_start, linear_end) to the checkpoint's, or load with schedule='load'",
        )
    if schedule == "check":
        for n in BUFFER_NAMES:
            ours[f"schedule.{n}"] = own[f"schedule.{n}"]
    model.load_state_dict(ours, strict=True)
    legacy = sum(1 for k in plan.targets if k.startswith("first_stage.vq_branch."))
    return CheckpointLoadReport(
        path=source, num_loaded=len(ours), unused=dict(plan.unused), legacy_keys=legacy,
        schedule_max_abs_diff=diff, uv_layout="checked" if mode == "check" else "loaded",
        epoch=ckpt.epoch if ckpt else None, global_step=ckpt.global_step if ckpt else None,
        lightning_version=ckpt.lightning_version if ckpt else None,
    )


# ----------------------------------------------------------------------------------------------------------------
# Writing


def lightning_checkpoint(state_dict: Mapping[str, torch.Tensor], *, epoch: int = 0, global_step: int = 0,
                         version: str = "1.6.5") -> dict[str, Any]:
    """Wrap a DINAR state_dict as PyTorch Lightning saves it (for writing checkpoints DINAR's code can read)."""
    return {
        "epoch": epoch,
        "global_step": global_step,
        "pytorch-lightning_version": version,
        "state_dict": OrderedDict(state_dict),
        "callbacks": {},
        "optimizer_states": [],
        "lr_schedulers": [],
    }
