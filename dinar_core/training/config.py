"""Training settings (torch-free, so `tasks.config` can hold them as its ``train`` section).

The network sizes are not here: every phase trains the networks that ``neural`` (`NeuralAvatarConfig`) describes,
so a trained checkpoint fits the inference config it was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Union

Phase = Literal["first_stage", "vq", "diffusion"]
PHASES: tuple[str, ...] = ("first_stage", "vq", "diffusion")
"""In training order: a phase reads the weights of the ones before it."""


@dataclass
class TrainConfig:
    """How `dinar train` trains one phase.

    Every random draw of a step (the batch, the diffusion timesteps, the noise) comes from a generator seeded by
    (``seed``, step, rank), so a run is reproducible and a resumed run continues exactly as a straight one.
    """

    seed: int = 0
    max_steps: int = 20_000
    """Optimiser steps of the phase."""
    batch_size: int = 8
    """Samples per step and process (the global batch is ``batch_size * devices * num_nodes``)."""
    lr: float = 1e-4
    """Adam learning rate (DINAR's LDM config: base 1e-6 scaled by GPUs x batch)."""
    ema_decay: float = 0.9999
    """Decay of the exponential moving average of the weights kept for inference (DINAR's LitEma: 0.9999)."""
    checkpoint_every: int = 1000
    """Steps between resumable checkpoints (``OUT/checkpoints/``; ``last.ckpt`` is always the newest)."""
    log_every: int = 10
    """Steps between rows of ``OUT/logs/.../metrics.csv``."""
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: Union[int, Literal["auto"]] = 1
    """Processes per machine (GPUs, or CPU processes with ``accelerator: cpu``)."""
    num_nodes: int = 1
    strategy: Literal["auto", "ddp", "ddp_spawn"] = "auto"
    """``ddp`` on several devices or machines (launched by ``torchrun`` or SLURM), ``ddp_spawn`` to start the
    processes from one command."""
    precision: Literal["32-true", "bf16-mixed", "16-mixed"] = "32-true"
    segm_weight: float = 1.0
    """Phase first_stage: weight of the L1 between the rendered mask and the person mask."""
    lpips_weight: float = 1.0
    """Phase first_stage: weight of LPIPS-VGG when ``lpips_weights`` is set (phase vq: ``vq_lpips_weight``)."""
    lpips_weights: Optional[str] = None
    """A local LPIPS-VGG state dict (as ``eval.lpips_weights``); unset: no perceptual loss (nothing is downloaded)."""
    adversarial_weight: float = 0.0
    """Phase first_stage: weight of the adversarial terms (StyleGAN2 discriminator, logistic loss, R1, renders under
    random rotations); 0 leaves them out. DINAR's finetuning uses 0.01."""
    lr_discriminator: float = 4e-4
    """Adam learning rate of the discriminator (DINAR's finetuning: 4e-4; betas 0, 0.99 for both sides)."""
    r1_weight: float = 0.1
    r1_every: int = 16
    """R1 penalty on real images every this many discriminator steps, weighted ``r1_weight / 2 * r1_every``."""
    codebook_weight: float = 1.0
    """Phase vq: weight of the codebook + commitment loss beside the L1 reconstruction."""
    vq_lpips_weight: float = 1.0
    """Phase vq: weight of LPIPS-VGG on the textures' RGB channels when ``lpips_weights`` is set (taming: 1.0)."""
    vq_adversarial_weight: float = 0.0
    """Phase vq: weight of the PatchGAN discriminator's hinge loss on the decoded textures; 0 leaves it out."""
    vq_adversarial_start: int = 0
    """Phase vq: the training step from which the discriminator trains and judges (taming's ``disc_start``)."""
    vq_discriminator_channels: int = 64
    vq_discriminator_layers: int = 3
    """Phase vq: the PatchGAN's first width and strided layers (taming: 64, 3)."""
    vq_weights: Optional[str] = None
    """The trained VQ autoencoder (``vq.pt`` of phase ``vq``, or DINAR's checkpoint) that encodes the textures of
    the diffusion phase. Unset is an error unless ``allow_untrained`` is set."""
    scale_by_std: bool = True
    """Phase diffusion: bring the VQ's latents of the training textures to unit standard deviation (LDM's
    ``scale_by_std``) by folding the factor into the VQ's weights (`dinar_core.nets.vq.scale_latents`: it decodes
    exactly as before, so inference and DINAR's layout need no scale). Our VQs' latents have a std near 0.1, at
    which the noise of the schedule drowns the signal early and the eps loss says little; false trains on them as
    they are (DINAR's ``scale_factor`` 1.0)."""
    allow_untrained: bool = False
    """Let a phase use freshly initialised networks where it would load trained ones (tests, and the 'untrained'
    baseline of `dinar eval`); the checkpoint records it."""
    progress: bool = True
    """Lightning's progress bar."""
