"""A trained phase's weights: one weights-only file (``OUT/<phase>.pt``) with its config beside it.

The file is ``torch.save`` of a dict of plain values and tensors, so it loads through the same strict
``torch.load(weights_only=True)`` path (`dinar_core.safeload.torch_load`) as DINAR's checkpoint:

* ``format``: `FORMAT`; ``phase``: the phase that wrote it; ``layout``: the UV layout it was trained on;
* ``steps``: optimiser steps done; ``untrained``: the parts that were freshly initialised instead of loaded;
* ``neural``: the network sizes (`NeuralAvatarConfig` as a dict); ``train``: the `TrainConfig` used;
* ``state_dict``: the networks' tensors under DINAR's container names (``unet.*`` EMA weights, ``unet_train.*``
  raw weights, ``compress_branch.*`` the VQ autoencoder ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from dinar_core.errors import MissingCheckpointError, NotACheckpointError, TrainingCheckpointError
from dinar_core.safeload import FileKind, GB, torch_load_named

FORMAT = "dinar-pipeline-weights/1"
WEIGHTS_FILE = FileKind(
    label="trained weights", format="dinar-pipeline weights file (<phase>.pt of dinar train)",
    error=NotACheckpointError, max_file_bytes=64 * GB, max_array_bytes=64 * GB,
    fix="give the <phase>.pt that `dinar train PHASE` wrote")


@dataclass(frozen=True)
class PhaseWeights:
    """A read weights file (see the module docstring)."""

    path: Path
    phase: str
    layout: str
    steps: int
    untrained: tuple[str, ...]
    neural: dict
    train: dict
    state_dict: dict[str, torch.Tensor]

    def part(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors under ``prefix.`` with the prefix removed (e.g. ``part('compress_branch')``)."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.state_dict.items() if k.startswith(p)}


def save_phase_weights(path: Path, *, phase: str, layout: str, steps: int, untrained: tuple[str, ...],
                       neural: dict, train: dict, state_dict: Mapping[str, torch.Tensor]) -> Path:
    """Write a weights file (tensors detached, contiguous, on the CPU)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, "phase": phase, "layout": layout, "steps": int(steps),
                "untrained": list(untrained), "neural": neural, "train": train,
                "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}}, tmp)
    tmp.replace(path)
    return path


def is_weights_file(path: str | Path) -> bool:
    """Whether `path` is a weights file of `dinar train` (its ``data.pkl`` names `FORMAT`), told without unpickling
    anything and without reading the tensors (DINAR's own checkpoint is not)."""
    import zipfile

    from dinar_core.safeload import ZIP_ERRORS

    try:
        with zipfile.ZipFile(path) as zf:
            pkl = [i for i in zf.infolist() if i.filename.rsplit("/", 1)[-1] == "data.pkl"]
            return len(pkl) == 1 and pkl[0].file_size < (64 << 20) and FORMAT.encode() in zf.read(pkl[0])
    except ZIP_ERRORS:
        return False


def read_phase_weights(path: str | Path, phase: str, layout: str | None = None) -> PhaseWeights:
    """Read a weights file strictly: weights-only, ``format`` known, ``phase`` (and ``layout`` when given) as
    expected, every state value a tensor. Raises MissingCheckpointError, NotACheckpointError (not such a file) or
    TrainingCheckpointError (another phase or layout), each naming the file."""
    path = Path(path)
    if not path.is_file():
        raise MissingCheckpointError(f"trained weights {path} not found",
                                     fix=f"train the phase first (`dinar train {phase} ...`) and give its {phase}.pt")
    obj = torch_load_named(path, WEIGHTS_FILE)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise NotACheckpointError(f"{path} is not a {WEIGHTS_FILE.format} (no format {FORMAT!r})",
                                  fix=WEIGHTS_FILE.fix + "; DINAR's own checkpoint goes to neural.checkpoint")
    got_phase, got_layout = obj.get("phase"), obj.get("layout")
    if got_phase != phase:
        raise TrainingCheckpointError(f"{path} holds the weights of phase {got_phase!r}, not of {phase!r}",
                                      fix=f"give the {phase}.pt of `dinar train {phase}`")
    if layout is not None and got_layout != layout:
        raise TrainingCheckpointError(f"{path} was trained on the UV layout {got_layout!r}, this data is {layout!r}",
                                      fix="train or use weights of the same UV layout as the data")
    sd = obj.get("state_dict")
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise NotACheckpointError(f"{path}: 'state_dict' is not a mapping of names to tensors", fix=WEIGHTS_FILE.fix)
    return PhaseWeights(path=path, phase=phase, layout=str(got_layout), steps=int(obj.get("steps", 0)),
                        untrained=tuple(obj.get("untrained", ())), neural=dict(obj.get("neural", {})),
                        train=dict(obj.get("train", {})), state_dict=sd)


def load_strict(module: torch.nn.Module, tensors: Mapping[str, Any], source: Path, part: str) -> None:
    """``module.load_state_dict(tensors)`` strictly, a mismatch being a TrainingCheckpointError that names
    `source`, the `part` and the first differing keys or shapes."""
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    shapes = sorted(k for k in set(own) & set(tensors) if tuple(own[k].shape) != tuple(tensors[k].shape))
    if missing or extra or shapes:
        what = "; ".join(f"{n}: {', '.join(v[:4])}{' ...' if len(v) > 4 else ''}"
                         for n, v in (("missing", missing), ("unexpected", extra), ("other shape", shapes)) if v)
        raise TrainingCheckpointError(f"{source}: its {part} does not fit the configured sizes ({what})",
                                      fix="use the same `neural` sizes as the run that trained it (its 'neural' "
                                          "entry), or retrain")
    module.load_state_dict(dict(tensors), strict=True)
