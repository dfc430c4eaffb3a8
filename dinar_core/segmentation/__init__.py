"""Person segmentation: a probability map from a backend -> one binary mask of the main person.

Images are (H, W, 3) uint8 RGB; masks are (H, W) bool; probabilities (H, W) float32 in [0, 1].

A backend (`PersonSegmenter`) only predicts a probability map. What makes it a *person* mask is decided here, the
same way for every backend: threshold, group the foreground into regions (pieces closer than a few pixels, such as
a hand cut off by a thin gap, count as one region), keep the largest region, and report any other region large
enough to be a second person. Backends that see only one person at a time (mediapipe pose) are asked again with
the first person hidden, so a second person is still noticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from dinar_core.errors import NoPersonError
from dinar_core.segmentation.user_masks import binarize_user_mask

__all__ = [
    "PersonSegmenter",
    "Regions",
    "Segmentation",
    "binarize_user_mask",
    "check_rgb",
    "mask_box",
    "segment_person",
    "split_regions",
]


@runtime_checkable
class PersonSegmenter(Protocol):
    """A backend: RGB image -> foreground probability.

    `predict(rgb: (H, W, 3) uint8) -> (H, W) float32 in [0, 1]`, or None when the backend found no person at all.
    `single_person` is True for backends that segment only one (detected) person per call.
    """

    single_person: bool

    def predict(self, rgb: np.ndarray) -> np.ndarray | None: ...


@dataclass
class Regions:
    """The foreground of a binary mask grouped into regions (largest first)."""

    main: np.ndarray
    """(H, W) bool: the largest region (pixels of the input mask only)."""
    areas: list[int]
    """Pixel areas of all regions, largest first (empty if the mask is empty)."""


@dataclass
class Segmentation:
    """The main person's mask in one image."""

    mask: np.ndarray
    """(H, W) bool, True on the main person."""
    box: tuple[int, int, int, int]
    """(x0, y0, x1, y1) of the mask, x1/y1 exclusive, in pixels."""
    fraction: float
    """Fraction of the image the mask covers."""
    people: int
    """Number of person-sized regions seen (1 = only the main person)."""
    other_fractions: list[float] = field(default_factory=list)
    """Area of every other person-sized region relative to the kept one (each >= second_person_fraction)."""
    warnings: list[str] = field(default_factory=list)
    """Messages for the user (e.g. ``MultiplePeople: ...``)."""


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """Raise ValueError unless `rgb` is an (H, W, 3) uint8 image; returns it."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {shape} dtype {dtype}")
    return rgb


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) bounding box of a non-empty (H, W) bool mask, x1/y1 exclusive."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(xs) == 0:
        raise ValueError("mask_box of an empty mask")
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def _join_radius(shape: tuple[int, int]) -> int:
    # Pieces of one body split by a thin gap (thresholding a soft edge at a wrist or an ankle) are joined when
    # closer than ~1% of the image size; two people standing apart are much further apart than that.
    return max(1, round(0.01 * max(shape)))


def split_regions(mask: np.ndarray, join_px: int | None = None) -> Regions:
    """Group the True pixels of `mask` (H, W) bool into regions; pieces within `join_px` pixels are one region."""
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape}")
    m = mask.astype(np.uint8)
    if not m.any():
        return Regions(main=np.zeros(mask.shape, bool), areas=[])
    r = _join_radius(mask.shape) if join_px is None else join_px
    grouped = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) if r > 0 else m
    count, labels = cv2.connectedComponents(grouped, connectivity=8)
    # Areas counted on the original pixels, not on the dilated ones.
    areas = np.bincount(labels[mask], minlength=count)[1:]
    order = np.argsort(-areas, kind="stable")
    areas_sorted = [int(a) for a in areas[order] if a > 0]
    main = mask & (labels == int(order[0]) + 1)
    return Regions(main=main, areas=areas_sorted)


def _hide(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`rgb` with the box around `mask` painted in the image's median colour (so a one-person detector looks
    elsewhere). rgb: (H, W, 3) uint8, mask: (H, W) bool -> (H, W, 3) uint8."""
    x0, y0, x1, y1 = mask_box(mask)
    pad_x, pad_y = round(0.05 * (x1 - x0)), round(0.05 * (y1 - y0))
    out = rgb.copy()
    fill = np.median(rgb.reshape(-1, 3), axis=0).astype(np.uint8)
    out[max(0, y0 - pad_y):y1 + pad_y, max(0, x0 - pad_x):x1 + pad_x] = fill
    return out


def segment_person(
    rgb: np.ndarray,
    segmenter: PersonSegmenter,
    threshold: float = 0.5,
    min_person_fraction: float = 0.01,
    second_person_fraction: float = 0.25,
    name: str = "the image",
) -> Segmentation:
    """Segment the main person of `rgb` (H, W, 3) uint8 with `segmenter`.

    Raises `NoPersonError` (naming `name`) when no region covers `min_person_fraction` of the image.
    """
    check_rgb(rgb)
    prob = segmenter.predict(rgb)
    masks = []
    if prob is not None:
        masks.append(_check_prob(prob, rgb.shape[:2]) > threshold)
        if segmenter.single_person and masks[0].any():
            second = segmenter.predict(_hide(rgb, split_regions(masks[0]).main))
            if second is not None:
                masks.append(_check_prob(second, rgb.shape[:2]) > threshold)
    return select_person(masks, min_person_fraction, second_person_fraction, name)


def _check_prob(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    prob = np.asarray(prob)
    if prob.shape != tuple(shape):
        raise ValueError(f"segmenter returned a map of shape {prob.shape}, expected {tuple(shape)}")
    return prob


def select_person(
    masks: list[np.ndarray],
    min_person_fraction: float = 0.01,
    second_person_fraction: float = 0.25,
    name: str = "the image",
) -> Segmentation:
    """Keep the largest person of one or more binary masks of one image (each (H, W) bool, e.g. a user mask, or
    the two passes of a one-person segmenter) and report the others.

    A region is a person when it covers at least `min_person_fraction` of the image; another person counts (and
    gives a ``MultiplePeople`` warning) when its area is at least `second_person_fraction` of the kept one.
    """
    if not masks:
        raise NoPersonError(f"no person found in {name}: the segmenter detected nobody",
                            fix="use a photo where one person is clearly visible, or give a mask "
                                "(segment.backend=precomputed, segment.masks_dir)")
    shape = masks[0].shape
    total = float(shape[0] * shape[1])
    candidates: list[tuple[int, np.ndarray]] = []  # (area, region mask) of every region, all masks pooled
    for m in masks:
        regions = split_regions(m)
        if regions.areas:
            candidates.append((regions.areas[0], regions.main))
            # Other regions of the same mask: only their areas matter (they are dropped from the output).
            candidates.extend((a, None) for a in regions.areas[1:])
    # The second pass of a one-person segmenter can find the first person again (partly outside the hidden box):
    # a region overlapping an already kept one is the same person, not a new one.
    people: list[tuple[int, np.ndarray | None]] = []
    for area, region in sorted(candidates, key=lambda c: -c[0]):
        if area < min_person_fraction * total:
            continue
        if region is not None and any(r is not None and (r & region).sum() > 0.3 * min(area, r.sum())
                                      for _a, r in people):
            continue
        people.append((area, region))
    people = [p for p in people if p[1] is not None] + [p for p in people if p[1] is None]
    if not people:
        biggest = max((a for a, _r in candidates), default=0) / total
        raise NoPersonError(
            f"no person found in {name}: the largest foreground region covers {biggest:.1%} of the image, below "
            f"segment.min_person_fraction={min_person_fraction}",
            fix="use a photo where the person is larger and clearly visible, lower segment.min_person_fraction, "
                "or give a mask (segment.backend=precomputed, segment.masks_dir)")
    kept_area, kept = max((p for p in people if p[1] is not None), key=lambda p: p[0])
    others = [a / kept_area for a, r in people if r is not kept and a >= second_person_fraction * kept_area]
    warnings = []
    if others:
        warnings.append(
            f"MultiplePeople: {name} shows {1 + len(others)} people; kept the largest "
            f"({kept_area / total:.1%} of the image), the others are {', '.join(f'{o:.0%}' for o in others)} of "
            f"its size -- crop the photo to one person if the wrong one was kept")
    return Segmentation(mask=kept, box=mask_box(kept), fraction=kept_area / total, people=1 + len(others),
                        other_fractions=others, warnings=warnings)
