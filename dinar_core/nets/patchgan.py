"""A PatchGAN discriminator (Isola et al. 2017; the layout of taming-transformers' ``NLayerDiscriminator``, which
DINAR's VQ-GAN texture autoencoder descends from): strided 4x4 convolutions that score each overlapping patch of
the input as real or fake. Here it judges neural textures (all their channels) in the vq phase
(`dinar_core.training.vq`). GroupNorm instead of BatchNorm, so a sample's score does not depend on the rest of its
batch (DDP processes then compute what one process computes).
"""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """x (B, in_channels, S, S) -> (B, 1, s, s) patch logits, s ~ S / 2**(layers - 1) - 2.

    in_channels: channels of the input; channels: width of the first layer (doubling per layer, at most 8x);
    layers: strided layers (each halves the side)."""

    def __init__(self, in_channels: int, channels: int = 64, layers: int = 3):
        super().__init__()
        if layers < 1 or channels < 1:
            raise ValueError(f"PatchDiscriminator: layers {layers} and channels {channels} must be positive")
        widths = [channels * min(2 ** i, 8) for i in range(layers + 1)]
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            blocks += [nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=False),
                       nn.GroupNorm(min(8, widths[i]), widths[i]), nn.LeakyReLU(0.2)]
        blocks.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
