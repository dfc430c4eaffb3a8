"""The trained phases as one DINAR model: `build_model` puts the first stage's and the diffusion phase's weights
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
from dinar_core.training.weights import load_strict, read_phase_weights

DINAR_LAYOUT = "smplx-dinar"


def build_model(first_stage: str | Path, diffusion: str | Path, neural, uv_faces: torch.Tensor,
                uv_values: torch.Tensor):
    """A DinarModel (eval mode; EMA UNet in ``unet``, raw in ``unet_train``) of the two weights files for the UV layout (`uv_faces` (F, 3), `uv_values` (U, 2)).
    Raises TrainingCheckpointError when the files are of other phases, of two layouts, or of other sizes."""
    from dinar_core.nets.dinar import DinarModel

    fs = read_phase_weights(first_stage, "first_stage")
    df = read_phase_weights(diffusion, "diffusion", fs.layout)
    config = replace(neural.dinar_config(with_discriminator=False), keep_training_unet=True)
    model = DinarModel(config, uv_faces=uv_faces, uv_values=uv_values)
    for weights, part in ((fs, "encoder"), (fs, "generator"), (fs, "renderer"), (df, "compress_branch"),
                          (df, "unet"), (df, "unet_train")):
        load_strict(getattr(model, part), weights.part(part), weights.path, part)
    return model.eval(), fs.layout


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

