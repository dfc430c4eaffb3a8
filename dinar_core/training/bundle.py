"""The trained phases as one DINAR model: `bundle_weights` writes the first stage's and the diffusion phase's weights
as one ``model.pt`` (phase ``model``: what ``avatar.checkpoint`` takes for a neural avatar), `build_model` puts it
into a `DinarModel` (strictly: every tensor loaded, every size as configured), and `export_dinar_checkpoint` writes
it in DINAR's own LatentDiffusion key layout, wrapped as Lightning saves it, so DINAR's code (and our
`load_dinar_checkpoint`) reads it. Only a model trained on DINAR's SMPL-X UV layout (``smplx-dinar``) is exported:
DINAR's code rasterises that layout.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from dinar_core.errors import TrainingCheckpointError
from dinar_core.training.weights import PhaseWeights, load_strict, read_phase_weights, save_phase_weights

DINAR_LAYOUT = "smplx-dinar"


MODEL_PARTS = {"first_stage": ("encoder", "generator", "renderer"), "diffusion": ("compress_branch", "unet",
                                                                                "unet_train")}
"""Which phase's file gives each part of the model."""


def bundle_weights(first_stage: str | Path, diffusion: str | Path, out: str | Path) -> Path:
    """``model.pt`` (phase ``model``) of a first_stage.pt and a diffusion.pt trained on one UV layout with the same
    network sizes; TrainingCheckpointError otherwise."""
    fs = read_phase_weights(first_stage, "first_stage")
    df = read_phase_weights(diffusion, "diffusion", fs.layout)
    first = {k: fs.neural.get(k) for k in ("image_size", "texture_size", "encoder", "generator", "renderer")}
    second = {k: df.neural.get(k) for k in first}
    if first != second:
        differ = ", ".join(k for k in first if first[k] != second[k])
        raise TrainingCheckpointError(f"{fs.path} and {df.path} were trained with different sizes ({differ})",
                                      fix="train both phases with the same `neural` section")
    state = {f"{part}.{k}": v for phase, w in (("first_stage", fs), ("diffusion", df))
             for part in MODEL_PARTS[phase] for k, v in w.part(part).items()}
    return save_phase_weights(out, phase="model", layout=fs.layout, steps=fs.steps + df.steps,
                              untrained=fs.untrained + df.untrained, neural=df.neural, train=df.train,
                              state_dict=state)


def build_model(weights: PhaseWeights, neural, uv_faces: torch.Tensor, uv_values: torch.Tensor):
    """A DinarModel (eval mode; EMA UNet in ``unet``, raw in ``unet_train``) of a ``model.pt`` for the UV layout
    (`uv_faces` (F, 3), `uv_values` (U, 2)), every part loaded strictly (TrainingCheckpointError naming the part
    whose sizes differ from `neural`'s)."""
    from dinar_core.nets.dinar import DinarModel

    config = replace(neural.dinar_config(with_discriminator=False), keep_training_unet=True)
    model = DinarModel(config, uv_faces=uv_faces, uv_values=uv_values)
    for part in (p for parts in MODEL_PARTS.values() for p in parts):
        load_strict(getattr(model, part), weights.part(part), weights.path, part)
    return model.eval()


def export_dinar_checkpoint(model, layout: str, path: str | Path, steps: int = 0) -> Path:
    """Write `model` as a DINAR checkpoint (``state_dict`` in DINAR's keys, Lightning's wrapper) at `path`: the EMA
    UNet as ``model_ema.*``, the raw one as ``model.*``, as DINAR's checkpoint holds them."""
    from dinar_core.compat.checkpoint import lightning_checkpoint
    from dinar_core.compat.keys import to_dinar_state_dict

    if layout != DINAR_LAYOUT:
        raise TrainingCheckpointError(
            f"this model was trained on the UV layout {layout!r}; DINAR's code rasterises SMPL-X's {DINAR_LAYOUT!r}",
            fix="export models trained on texture sets of DINAR's SMPL-X layout; use this one with dinar-pipeline")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(lightning_checkpoint(to_dinar_state_dict(model, include_discriminator=False), global_step=steps),
               path)
    return path

