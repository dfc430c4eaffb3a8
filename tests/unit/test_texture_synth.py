"""Patch synthesis only where a part was seen enough: a sliver of exemplars tiled over a whole part blotches."""

from __future__ import annotations

import numpy as np

from dinar_core.texture.synth import synthesise_residual


def _scene(T: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    colour = 0.5 + 0.2 * rng.standard_normal((T, T, 3))
    parts = np.zeros((T, T), np.int64)
    parts[:, T // 2:] = 1
    known = np.zeros((T, T), bool)
    known[: T // 2, : T // 2] = True  # part 0: half of it seen
    known[: 6, T // 2:] = True  # part 1: a sliver (~9 %), like legs cut at the photo's bottom edge
    return colour, known, parts


def test_a_sliver_of_a_part_gives_it_no_synthesised_texture():
    colour, known, parts = _scene()
    res = synthesise_residual(colour, known, parts, patch=4, sigma=1.0, outlier=2.5, seed=0, min_known=0.15)
    unknown = ~known
    assert np.abs(res[unknown & (parts == 0)]).mean() > 0.02  # the half-seen part is textured
    assert np.abs(res[parts == 1]).max() == 0.0  # the sliver part keeps its smooth colour


def test_without_the_share_rule_the_sliver_is_tiled():
    colour, known, parts = _scene()
    res = synthesise_residual(colour, known, parts, patch=4, sigma=1.0, outlier=2.5, seed=0, min_known=0.0)
    assert np.abs(res[~known & (parts == 1)]).mean() > 0.02


def test_fewer_than_four_patches_are_never_tiled():
    colour, known, parts = _scene()
    known[:, :] = False
    known[:4, :8] = True  # two 4x4 patches of part 0
    res = synthesise_residual(colour, known, parts, patch=4, sigma=1.0, outlier=2.5, seed=0, min_known=0.0)
    assert np.abs(res).max() == 0.0
