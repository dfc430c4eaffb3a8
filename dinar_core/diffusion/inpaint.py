"""Inpainting glue around the sampler: the condition tensor, mask erosion, and copying known texels back.

These reproduce DINAR's test path (``LatentDiffusion.get_input`` / ``sample_log`` and
``NeuralRenderer.decode(copy_input_part=True)`` with ``test_phase`` on).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def erode3x3(mask: torch.Tensor) -> torch.Tensor:
    """Grey-scale erosion with a 3x3 square; pixels outside the image are ignored (neither kornia's
    'geodesic' border nor OpenCV's default border erodes at the image edge). mask: (B, 1, H, W) -> same."""
    return -F.max_pool2d(-mask, kernel_size=3, stride=1, padding=1)


def box_blur3x3(x: torch.Tensor) -> torch.Tensor:
    """3x3 mean filter with reflect-101 borders (OpenCV's ``cv2.blur`` default). x: (B, C, H, W) -> same."""
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel_size=3, stride=1)


def make_condition(latent: torch.Tensor, texture_mask: torch.Tensor) -> torch.Tensor:
    """The UNet condition: the known latent and the known-texel mask resized (nearest) to the latent size.

    latent: (B, C, h, w) VQ-encoded texture; texture_mask: (B, 1, H, W) known texels (channel -2 of the neural
    texture) -> (B, C + 1, h, w).
    """
    if latent.ndim != 4 or texture_mask.ndim != 4 or texture_mask.shape[1] != 1 or latent.shape[0] != texture_mask.shape[0]:
        raise ValueError(
            f"make_condition: expected latent (B, C, h, w) and texture_mask (B, 1, H, W), got {tuple(latent.shape)} "
            f"and {tuple(texture_mask.shape)}"
        )
    small = F.interpolate(texture_mask.to(latent.dtype), size=latent.shape[-2:], mode="nearest")  # (B, 1, h, w)
    return torch.cat([latent, small], dim=1)


@dataclass(frozen=True)
class KnownTexelMerge:
    """Result of :func:`copy_known_texels`.

    Attributes:
        ntexture: (B, C, H, W) final texture: the source where known, the decoded diffusion output elsewhere.
        mask: (B, 1, H, W) blend weight in [0, 1] (1 = source texel), multiples of 1/255.
    """

    ntexture: torch.Tensor
    mask: torch.Tensor


def copy_known_texels(
    decoded: torch.Tensor, source_ntexture: torch.Tensor, binary_uv_map: torch.Tensor | None = None
) -> KnownTexelMerge:
    """Blend the VQ-decoded diffusion texture with the source texture where texels were seen in the photo.

    DINAR's test-phase rule: mask = known-texel mask (channel -2 of the source) plus everything outside the UV
    layout; quantised to 8 bits, eroded 3x3, blurred 3x3 (a soft seam), then the outside of the layout removed
    again; ntexture = (1 - mask) * decoded + mask * source.

    decoded, source_ntexture: (B, C, H, W); binary_uv_map: (B or 1, 1, H, W) or (1, H, W) 0/1 layout mask,
    optional (without it the mask is used as is, DINAR's non-test behaviour).
    """
    if decoded.shape != source_ntexture.shape or decoded.ndim != 4 or decoded.shape[1] < 2:
        raise ValueError(
            f"copy_known_texels: decoded {tuple(decoded.shape)} and source {tuple(source_ntexture.shape)} must be equal "
            "(B, C, H, W) with C >= 2"
        )
    mask = source_ntexture[:, -2:-1].detach().float()  # (B, 1, H, W)
    if binary_uv_map is not None:
        uv = binary_uv_map.to(device=mask.device, dtype=mask.dtype)
        if uv.ndim == 3:
            uv = uv[None]
        if uv.shape[1:] != mask.shape[1:] or uv.shape[0] not in (1, mask.shape[0]):
            raise ValueError(f"copy_known_texels: binary_uv_map {tuple(binary_uv_map.shape)} does not match mask {tuple(mask.shape)}")
        outside = 1 - uv
        mask = (mask + outside).clip(0, 1)
        # DINAR does this step on uint8 images with OpenCV: truncate to 0..255, erode, blur (rounded), /255.
        m8 = torch.floor(mask * 255)
        m8 = torch.round(box_blur3x3(erode3x3(m8)))
        mask = (m8 / 255 - outside).clip(0, 1)
    mask = mask.to(decoded.dtype)
    return KnownTexelMerge(ntexture=(1 - mask) * decoded + mask * source_ntexture, mask=mask)
