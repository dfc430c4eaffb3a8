"""Small seeded texture sets for the training tests: smooth per-person textures seen by views that each know one
overlapping band of the UV square (as a front, a side and a back camera would), with cosines falling off from
each band's centre."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dinar_core.training.textures import save_texture_set_person


def person_textures(rng: np.random.Generator, channels: int, size: int, views: int) -> tuple[np.ndarray, np.ndarray]:
    """(V, C, S, S) view textures and (V, S, S) cosines of one synthetic person."""
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0, 1)))
                     * np.cos(2 * np.pi * (rng.uniform(0.5, 2) * y + rng.uniform(0, 1))) for _ in range(channels)])
    out, cos = [], []
    for v in range(views):
        centre = (v + 0.5) / views
        dist = np.abs((x - centre + 0.5) % 1.0 - 0.5)  # distance around the body (u wraps)
        known = (dist < 0.75 / views).astype(np.float32)
        tex = (base * known).astype(np.float32)
        tex[-2] = known
        tex[-1] = 0.0
        out.append(tex)
        cos.append(np.clip(1.0 - dist * views, 0.0, 1.0).astype(np.float32))
    return np.stack(out), np.stack(cos)


def write_texture_set(root: Path, persons: int = 4, channels: int = 21, size: int = 32, views: int = 3,
                      layout: str = "anny", seed: int = 0) -> Path:
    """`persons` files ``p<i>.npz`` under `root`."""
    rng = np.random.default_rng(seed)
    for i in range(persons):
        tex, cos = person_textures(rng, channels, size, views)
        save_texture_set_person(Path(root) / f"p{i}.npz", tex, cos, layout)
    return Path(root)
