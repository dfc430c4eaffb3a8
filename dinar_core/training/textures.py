"""Texture sets: what the diffusion phase learns from.

A texture set is a folder of ``<person>.npz`` files, one per person seen from several views, each holding

* ``views``: (V, C, H, W) float32, the person's neural texture as each view alone gives it (DINAR's layout:
  generator channels, RGB, the view's known-texel mask in channel -2, the inpainting ring in channel -1);
* ``cos``: (V, H, W) float32, per texel the cosine between the body's normal and the direction to that view's
  camera (how squarely the view sees the texel);
* ``layout``: the UV layout's name (``smplx-dinar`` or ``anny``), one string.

The complete texture of a person merges its views as DINAR's ``merge_textures`` does: per texel, a softmax over
the views that see it of ``sharpness * cos`` (DINAR: 10), so the view that sees a texel most squarely dominates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dinar_core.errors import TrainingDataError
from dinar_core.safeload import FileKind, load_npz

LAYOUT_OF_BODY = {"smplx": "smplx-dinar", "anny": "anny"}
"""The UV layout a body's fits are trained on: SMPL-X's is DINAR's own (its UV assets), Anny's its own."""


def layout_of(body_kind: str) -> str:
    """The layout name (what texture sets and weights record) of the body `body_kind` (``smplx``, ``anny``)."""
    return LAYOUT_OF_BODY.get(body_kind, body_kind)


MERGE_SHARPNESS = 10.0
"""DINAR's factor on the normal-to-camera cosines in ``merge_textures``."""

TEXTURE_SET_FILE = FileKind(
    label="texture set file", format="texture set .npz (views, cos, layout)", error=TrainingDataError,
    fix="write it with dinar_core.training.textures.save_texture_set_person, or remove it from the folder",
    max_file_bytes=4 << 30, max_array_bytes=4 << 30)


def merge_textures(views: torch.Tensor, cos: torch.Tensor, sharpness: float = MERGE_SHARPNESS) -> torch.Tensor:
    """Merge per-view neural textures into one (DINAR's ``merge_textures``).

    views: (V, C, H, W), the known-texel mask of each view in channel -2; cos: (V, H, W) normal-to-camera
    cosines -> (C, H, W): per texel the softmax(sharpness * cos) weighted mean over the views that know it;
    channel -2 is 1 where any view knows the texel; texels no view knows are 0.
    """
    if views.ndim != 4 or cos.shape != (views.shape[0], *views.shape[-2:]):
        raise ValueError(f"merge_textures: views (V, C, H, W) and cos (V, H, W), got {tuple(views.shape)} "
                         f"and {tuple(cos.shape)}")
    known = views[:, -2] > 0.5  # (V, H, W)
    logits = torch.where(known, sharpness * cos, torch.full_like(cos, -torch.inf))
    weights = torch.softmax(logits, dim=0).nan_to_num(0.0)  # a texel no view knows: all -inf -> 0
    merged = (weights[:, None] * views).sum(dim=0)
    merged[-2] = known.any(dim=0).to(merged.dtype)
    return merged


@dataclass(frozen=True)
class TexturePerson:
    """One person of a texture set: ``views`` (V, C, H, W), ``cos`` (V, H, W), ``complete`` (C, H, W) merged."""

    name: str
    views: torch.Tensor
    cos: torch.Tensor
    complete: torch.Tensor


@dataclass(frozen=True)
class TextureSet:
    """The persons of a texture set folder, all of one ``layout``, ``channels`` and ``size``."""

    root: Path
    layout: str
    persons: tuple[TexturePerson, ...]

    @property
    def channels(self) -> int:
        return self.persons[0].views.shape[1]

    @property
    def size(self) -> int:
        return self.persons[0].views.shape[-1]


def save_texture_set_person(path: Path, views: np.ndarray, cos: np.ndarray, layout: str) -> Path:
    """Write one person's file of a texture set (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, views=np.asarray(views, np.float32), cos=np.asarray(cos, np.float32), layout=np.array(layout))
    return path


def read_texture_set(root: Path, min_views: int = 2) -> TextureSet:
    """Every ``<person>.npz`` under `root`, checked: at least `min_views` views each (a single view cannot teach
    what the unseen side looks like), one layout, channel count and texture size for all, finite values.
    Raises TrainingDataError naming the file and the fix."""
    root = Path(root)
    files = sorted(p for p in root.glob("*.npz") if p.is_file()) if root.is_dir() else []
    if not files:
        raise TrainingDataError(f"{root} holds no texture set (<person>.npz files)",
                                fix="point --data at a folder of texture set files")
    persons, first = [], None
    for path in files:
        arrays = load_npz(path, TEXTURE_SET_FILE, keys=("views", "cos", "layout"))
        missing = sorted({"views", "cos", "layout"} - set(arrays))
        if missing:
            raise TrainingDataError(f"{path} has no {', '.join(missing)}", fix=TEXTURE_SET_FILE.fix)
        views, cos, layout = arrays["views"], arrays["cos"], arrays["layout"]
        if layout.shape != () or layout.dtype.kind != "U":
            raise TrainingDataError(f"{path}: 'layout' is not one string", fix=TEXTURE_SET_FILE.fix)
        if (views.ndim != 4 or views.shape[1] < 5 or views.shape[2] != views.shape[3]
                or cos.shape != (views.shape[0], *views.shape[2:])):
            raise TrainingDataError(f"{path}: views {views.shape} and cos {cos.shape} are not (V, C, S, S) and "
                                    f"(V, S, S) with C >= 5", fix=TEXTURE_SET_FILE.fix)
        if views.dtype.kind != "f" or cos.dtype.kind != "f" or not (np.isfinite(views).all() and np.isfinite(cos).all()):
            raise TrainingDataError(f"{path}: views and cos must be finite floats", fix=TEXTURE_SET_FILE.fix)
        if views.shape[0] < min_views:
            raise TrainingDataError(
                f"{path} has {views.shape[0]} view(s); this phase needs at least {min_views} per person",
                fix="give each person several views (sub-folders of photos, a multi-view import or dinar synth), "
                    "or leave the single-view persons out")
        signature = (str(layout), views.shape[1], views.shape[-1])
        if first is None:
            first = (path, signature)
        elif signature != first[1]:
            raise TrainingDataError(
                f"{path} is layout {signature[0]!r} with {signature[1]} channels at {signature[2]} px, but "
                f"{first[0].name} is {first[1][0]!r} with {first[1][1]} channels at {first[1][2]} px",
                fix="train on one UV layout and texture size at a time (one texture set per layout)")
        v, c = torch.from_numpy(views.astype(np.float32)), torch.from_numpy(cos.astype(np.float32))
        persons.append(TexturePerson(path.stem, v, c, merge_textures(v, c)))
    return TextureSet(root, first[1][0], tuple(persons))
