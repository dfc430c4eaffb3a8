"""LPIPS with the VGG-16 backbone (Zhang et al. 2018; the ``lpips`` package's ``LPIPS(net='vgg')``), built from a
local state dict only: nothing is ever downloaded.

The module and parameter names equal the ``lpips`` package's (``net.slice1.0.weight`` ... ``net.slice5.28.bias``,
``lin0.model.1.weight`` ... ``lin4.model.1.weight``, optional ``scaling_layer.shift/scale``), so
``torch.save(lpips.LPIPS(net='vgg').state_dict(), 'lpips_vgg.pth')`` made once elsewhere gives a file this loads.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dinar_core.errors import DinarError, MissingModelError, ModelFileLimitError, WrongModelFileError
from dinar_core.safeload import GB, FileKind, torch_load

# torchvision's VGG-16 ``features``: conv widths, 'M' = max pool; LPIPS taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))
CHANNELS = (64, 128, 256, 512, 512)


def _vgg_layers() -> list[nn.Module]:
    layers: list[nn.Module] = []
    width = 3
    for item in _VGG16:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(width, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            width = int(item)
    return layers  # 30 layers, indices as torchvision's


class LPIPSVGG(nn.Module):
    """Perceptual distance d(x, y) (B,) for images (B, 3, H, W) in [-1, 1]. Frozen."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        layers = _vgg_layers()
        self.net = nn.Module()
        for k, (a, b) in enumerate(_SLICES, start=1):
            block = nn.Sequential()
            for idx in range(a, b):
                block.add_module(str(idx), layers[idx])
            setattr(self.net, f"slice{k}", block)
        for k, ch in enumerate(CHANNELS):
            setattr(self, f"lin{k}", nn.Module())
            getattr(self, f"lin{k}").model = nn.Sequential(nn.Dropout(), nn.Conv2d(ch, 1, 1, bias=False))
        self.scaling_layer = nn.Module()
        self.scaling_layer.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.scaling_layer.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS: expected two (B, 3, H, W) images, got {tuple(x.shape)} and {tuple(y.shape)}")
        sl = self.scaling_layer
        hx, hy = (x - sl.shift) / sl.scale, (y - sl.shift) / sl.scale
        total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for k in range(1, 6):
            block = getattr(self.net, f"slice{k}")
            hx, hy = block(hx), block(hy)
            nx = hx / (hx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ny = hy / (hy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            d = getattr(self, f"lin{k - 1}").model((nx - ny) ** 2)  # (B, 1, h, w)
            total = total + d.mean(dim=(1, 2, 3))
        return total


LPIPS_FILE = FileKind(label="LPIPS-VGG weights", format="PyTorch state dict", error=WrongModelFileError,
                      too_large=ModelFileLimitError, max_file_bytes=1 * GB, max_array_bytes=1 * GB,
                      fix="save lpips.LPIPS(net='vgg').state_dict() with torch.save")
"""The LPIPS-VGG state dict (~60 MB), read weights-only."""


def load_lpips_vgg(path: str | Path, device: torch.device | str = "cpu") -> LPIPSVGG:
    """LPIPS-VGG from a local state dict file (strict; ``scaling_layer`` buffers optional)."""
    path = Path(path)
    if not path.is_file():
        raise MissingModelError(
            f"LPIPS-VGG weights {path} not found",
            fix="save them once where the lpips package is installed: "
                "`torch.save(lpips.LPIPS(net='vgg').state_dict(), 'lpips_vgg.pth')`, and pass that path "
                "(or set finetune.lpips_weights to null to finetune without the perceptual loss)",
        )
    try:
        sd = torch_load(path, LPIPS_FILE)
    except DinarError:
        raise
    except Exception as exc:  # noqa: BLE001 - any read failure means the wrong file
        raise WrongModelFileError(f"{path} is not a readable PyTorch state dict ({type(exc).__name__}: {exc})",
                                  fix="save lpips.LPIPS(net='vgg').state_dict() with torch.save") from exc
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise WrongModelFileError(f"{path} holds a {type(sd).__name__}, not an LPIPS-VGG state dict",
                                  fix="save lpips.LPIPS(net='vgg').state_dict() with torch.save")
    model = LPIPSVGG()
    own = model.state_dict()
    sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    for k in ("scaling_layer.shift", "scaling_layer.scale"):
        sd.setdefault(k, own[k])
    missing = sorted(set(own) - set(sd))
    extra = sorted(set(sd) - set(own))
    shapes = sorted(k for k in set(own) & set(sd) if own[k].shape != sd[k].shape)
    if missing or extra or shapes:
        raise WrongModelFileError(
            f"{path} is not an LPIPS-VGG state dict (missing {missing[:5]}, unexpected {extra[:5]}, "
            f"wrong shapes {shapes[:5]})", fix="save lpips.LPIPS(net='vgg').state_dict() with torch.save")
    model.load_state_dict(sd, strict=True)
    return model.to(device)
