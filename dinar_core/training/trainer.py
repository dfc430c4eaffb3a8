"""One trainer for every phase: `train_phase` builds the phase from a texture set, fits it with PyTorch
Lightning (checkpoints, resume, CSV logs, mixed precision, DDP over devices and machines) and writes
``OUT/<phase>.pt`` (`dinar_core.training.weights`).

``OUT`` after a run: ``<phase>.pt`` (the weights for the next phase or for inference), ``checkpoints/`` (Lightning
checkpoints every ``train.checkpoint_every`` steps and ``last.ckpt``, for ``--resume``), ``logs/`` (``metrics.csv``
with the loss per ``train.log_every`` steps).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

from dinar_core.errors import MissingModelError, TrainingCheckpointError, TrainingDataError
from dinar_core.safeload import FileKind, GB, torch_load_named
from dinar_core.training.config import PHASES, TrainConfig
from dinar_core.training.textures import TextureSet, read_texture_set
from dinar_core.training.weights import load_strict, read_phase_weights, save_phase_weights

RESUME_FILE = FileKind(
    label="training checkpoint", format="Lightning checkpoint of dinar train", error=TrainingCheckpointError,
    max_file_bytes=64 * GB, max_array_bytes=64 * GB,
    fix="give a checkpoint from OUT/checkpoints/ of a `dinar train` run of the same phase (last.ckpt is the newest)")
MIN_VIEWS = {"vq": 1, "diffusion": 2}
"""Views per person a phase needs: the diffusion phase learns the unseen side from the other views."""


@dataclass(frozen=True)
class TrainResult:
    """``weights``: the written ``<phase>.pt``; ``steps``: optimiser steps done; ``metrics``: the CSV log."""

    weights: Path
    steps: int
    metrics: Path | None


def _check_sizes(textures: TextureSet, neural) -> None:
    if textures.channels != neural.texture_channels or textures.size != neural.texture_size:
        raise TrainingDataError(
            f"{textures.root}: textures of {textures.channels} channels at {textures.size} px, but the networks "
            f"are configured for {neural.texture_channels} channels at {neural.texture_size} px",
            fix="set neural.texture_size and neural.generator.output_channels (channels - 5) to the data's, or "
                "give data made with the configured sizes")


def build_phase(phase: str, data: Path, neural, train: TrainConfig):
    """The phase's LightningModule on the texture set `data` (networks initialised from ``train.seed``)."""
    if phase not in MIN_VIEWS:
        raise TrainingDataError(f"phase {phase!r} does not train on a texture set", fix=(
            "the first stage trains on prepared views (dinar_core.training.first_stage)" if phase in PHASES
            else f"use one of {', '.join(PHASES)}"))
    textures = read_texture_set(Path(data), min_views=MIN_VIEWS[phase])
    _check_sizes(textures, neural)
    lpips = _lpips(train) if phase == "vq" else None  # built before the seed, as the first stage's
    pl.seed_everything(train.seed, workers=True, verbose=False)
    from dinar_core.nets.vq import VQModel

    if phase == "vq":
        from dinar_core.training.vq import VQPhase, texture_samples

        return VQPhase(neural, train, texture_samples(textures), textures.layout, lpips)
    from dinar_core.training.diffusion import DiffusionPhase, encode_pairs

    vq, untrained = VQModel(neural.vq), ()
    if train.vq_weights:
        weights = read_phase_weights(train.vq_weights, "vq", textures.layout)
        load_strict(vq, weights.part("compress_branch"), weights.path, "VQ autoencoder")
    elif train.allow_untrained:
        untrained = ("compress_branch",)
    else:
        raise MissingModelError("phase diffusion encodes the textures with the trained VQ autoencoder, and "
                                "train.vq_weights is not set",
                                fix="train it first (`dinar train vq --data DIR --out VQ_OUT`) and pass "
                                    "--set train.vq_weights=VQ_OUT/vq.pt")
    vq, scale = vq.eval(), 1.0
    pairs = encode_pairs(vq, textures)
    if train.scale_by_std:
        from dinar_core.nets.vq import scale_latents

        scale = 1.0 / float(pairs.x0.std())
        vq = scale_latents(vq, scale).eval()
        pairs = encode_pairs(vq, textures)
    return DiffusionPhase(neural, train, vq, pairs, textures.layout, untrained, latent_scale=scale)


def _lpips(train: TrainConfig):
    """LPIPS-VGG from ``train.lpips_weights`` (a local file), or None when unset."""
    if not train.lpips_weights:
        return None
    from dinar_core.avatar.lpips import load_lpips_vgg

    return load_lpips_vgg(train.lpips_weights)


def build_first_stage(views, neural, train: TrainConfig):
    """The first stage's LightningModule on prepared views (`first_stage.ViewSet`), networks initialised from
    ``train.seed``, with LPIPS-VGG from ``train.lpips_weights`` when set."""
    from dinar_core.training.first_stage import FirstStagePhase

    lpips = _lpips(train)
    pl.seed_everything(train.seed, workers=True, verbose=False)
    return FirstStagePhase(neural, train, views, lpips)


class PhaseStamp(pl.Callback):
    """Writes the phase and the UV layout into every checkpoint (checked at resume)."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:  # noqa: ARG002 - Lightning's signature
        checkpoint["dinar"] = {"phase": pl_module.phase, "layout": pl_module.layout}


class WriteWeights(pl.Callback):
    """At the end of training, process 0 writes ``<phase>.pt`` (in the training process itself, so it works the
    same for one process, ``ddp_spawn``, ``torchrun`` and SLURM)."""

    def __init__(self, path: Path, neural, train: TrainConfig):
        self.path, self.neural, self.train = path, neural, train

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            save_phase_weights(self.path, phase=pl_module.phase, layout=pl_module.layout,
                               steps=int(trainer.global_step) // pl_module.optimizers_per_step,
                               untrained=pl_module.untrained,
                               neural=dataclasses.asdict(self.neural), train=dataclasses.asdict(self.train),
                               state_dict=pl_module.export_state())


def _next_version(logs: Path) -> int:
    """The CSV log's version number for a new run under `logs` (decided before any process starts)."""
    taken = [int(p.name.split("_")[1]) for p in logs.glob("version_*") if p.name.split("_")[1].isdigit()]
    return max(taken, default=-1) + 1


def make_trainer(train: TrainConfig, out: Path, callbacks: list, log_version: int,
                 optimizers_per_step: int = 1) -> pl.Trainer:
    """The Lightning Trainer of a phase run: deterministic, CSV logs, checkpoints every
    ``train.checkpoint_every`` steps (and ``last.ckpt``), no validation loop; `callbacks` added. Lightning counts
    optimiser steps: `optimizers_per_step` (2 with a discriminator) scales ``train.max_steps`` and
    ``train.checkpoint_every`` to them (the checkpoints' file names count optimiser steps)."""
    checkpoints = ModelCheckpoint(dirpath=out / "checkpoints", filename="step-{step:07d}", save_top_k=-1,
                                  every_n_train_steps=train.checkpoint_every * optimizers_per_step, save_last=True,
                                  auto_insert_metric_name=False)
    return pl.Trainer(
        max_steps=train.max_steps * optimizers_per_step, accelerator=train.accelerator, devices=train.devices,
        num_nodes=train.num_nodes,
        strategy=train.strategy, precision=train.precision, deterministic="warn", benchmark=False,
        logger=CSVLogger(out, name="logs", version=log_version), callbacks=[checkpoints, PhaseStamp(), *callbacks],
        log_every_n_steps=train.log_every, enable_progress_bar=train.progress, enable_model_summary=False,
        use_distributed_sampler=False, limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=out)


def check_resume(path: Path, module) -> Path:
    """`path` read strictly (weights-only, prescanned) and checked to be a checkpoint of this phase, layout and
    sizes before Lightning loads it; raises TrainingCheckpointError (another phase, layout or sizes) or the
    loader's named errors."""
    path = Path(path)
    if not path.is_file():
        raise TrainingCheckpointError(f"training checkpoint {path} not found", fix=RESUME_FILE.fix)
    ckpt = torch_load_named(path, RESUME_FILE)
    stamp = ckpt.get("dinar") if isinstance(ckpt, dict) else None
    if not isinstance(stamp, dict) or "state_dict" not in ckpt:
        raise TrainingCheckpointError(f"{path} is not a checkpoint of `dinar train`", fix=RESUME_FILE.fix)
    if stamp.get("phase") != module.phase or stamp.get("layout") != module.layout:
        raise TrainingCheckpointError(
            f"{path} is a checkpoint of phase {stamp.get('phase')!r} on layout {stamp.get('layout')!r}; this run "
            f"trains phase {module.phase!r} on {module.layout!r}", fix=RESUME_FILE.fix)
    own = module.state_dict()
    sd = ckpt["state_dict"]
    bad = sorted(k for k in set(own) | set(sd)
                 if k not in own or k not in sd or tuple(own[k].shape) != tuple(sd[k].shape))
    if bad:
        raise TrainingCheckpointError(f"{path} does not fit the configured network sizes ({', '.join(bad[:4])} "
                                      f"...)", fix="resume with the config the checkpoint was trained with")
    return path


def train_phase(phase: str, data: Path, out: Path, neural, train: TrainConfig,
                resume: Path | None = None) -> TrainResult:
    """Train `phase` (vq or diffusion) on the texture set `data` into `out` (see the module docstring); from
    `resume` when given."""
    return fit_phase(build_phase(phase, data, neural, train), out, neural, train, resume)


def fit_phase(module: pl.LightningModule, out: Path, neural, train: TrainConfig, resume: Path | None = None,
              callbacks: list | None = None) -> TrainResult:
    """Fit a built phase module (e.g. a `FirstStagePhase` on prepared views) into `out`; from `resume` if given;
    extra Lightning `callbacks` (e.g. a benchmark's clock)."""
    out = Path(out)
    if resume is not None:
        resume = check_resume(resume, module)
    weights = out / f"{module.phase}.pt"
    version = _next_version(out / "logs")
    trainer = make_trainer(train, out, [WriteWeights(weights, neural, train), *(callbacks or [])], version,
                           module.optimizers_per_step)
    trainer.fit(module, ckpt_path=str(resume) if resume else None, weights_only=True)
    if not weights.is_file():
        raise TrainingCheckpointError(f"training ended without writing {weights}", fix="see the log above")
    return TrainResult(weights=weights, steps=read_phase_weights(weights, module.phase).steps,
                       metrics=out / "logs" / f"version_{version}" / "metrics.csv")
