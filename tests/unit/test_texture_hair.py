"""Hair, texture side (issue 11): a synthetic head with hair on its scalp, photographed from the front (hair above
the face), gets hair colour on the back of its head, not the skin and not the face. With ``hair=False`` the back
of the head is not hair-coloured (so the test can fail)."""

from __future__ import annotations

import pytest
import torch

from dinar_core.texture import ClassicAvatarConfig, PhotoView, classic_texture
from dinar_core.texture.hair import HAIR
from dinar_core.texture.parts import Part
from tests.helpers.synthetic_smplx import synthetic_smplx_dir  # noqa: F401 (fixture)
from tests.helpers.texture_people import PART_COLOURS, person_scene, photo_of, plain_texture

HAIR_RGB = torch.tensor([0.35, 0.18, 0.07])  # auburn


@pytest.fixture(scope="module")
def haired(synthetic_smplx_dir):  # noqa: F811
    return haired_scene(synthetic_smplx_dir)


def haired_scene(synthetic_smplx_dir):
    s = person_scene(synthetic_smplx_dir, 256)
    head = s.texel_parts == int(Part.HEAD)
    y, nz = s.points[..., 1], s.normals[..., 2]
    r = (y - y[head].min()) / (y[head].max() - y[head].min())
    scalp = head & ((r > 0.78) | ((nz < 0.1) & (r > 0.35)))  # the top and the back of the head
    tex = torch.where(scalp[..., None], HAIR_RGB, plain_texture(s))
    rgb, mask = photo_of(s, tex)
    return s, tex, head, r, nz, rgb, mask


def _run(s, rgb, mask, **options):
    cfg = ClassicAvatarConfig(texture_size=s.T, **options)
    return classic_texture([PhotoView(rgb, mask, s.front, s.K)], s.layout, s.rest, cfg, parts=s.parts).completed


def test_the_back_of_the_head_gets_the_hair_colour(haired):
    s, tex, head, r, nz, rgb, mask = haired
    back_of_head = head & (nz < -0.5) & (r > 0.4) & (r < 0.85)
    assert back_of_head.sum() > 50
    skin = torch.tensor(PART_COLOURS[Part.HEAD])
    res = _run(s, rgb, mask)
    assert res.hair is not None and res.hair.colour is not None
    assert float((torch.as_tensor(res.hair.colour).float() - HAIR_RGB).abs().max()) < 0.06  # the estimate
    got = res.texture[back_of_head]
    to_hair = float((got - HAIR_RGB).abs().mean())
    to_skin = float((got - skin).abs().mean())
    bald = _run(s, rgb, mask, hair=False).texture[back_of_head]
    bald_to_hair = float((bald - HAIR_RGB).abs().mean())
    print(f"back of the head: {to_hair:.3f} from hair, {to_skin:.3f} from skin; hair=False: {bald_to_hair:.3f} "
          f"from hair")
    assert to_hair < 0.09 and to_skin > 0.3  # (synthesised hair texture adds ~0.05 of texel noise)
    assert bald_to_hair > 0.15  # without the hair step the back of the head is skin-like (bald)
    # The face keeps its skin (nothing of the hair step paints the face).
    face = head & (nz > 0.7) & (r > 0.3) & (r < 0.6)
    assert float((res.texture[face] - skin).abs().mean()) < 0.05
    assert not (res.hair.parts[face] == HAIR).any()


def test_no_hair_is_found_on_a_bald_head(haired):
    s = haired[0]
    rgb, mask = photo_of(s, plain_texture(s))  # the head all skin
    res = _run(s, rgb, mask)
    assert res.hair is not None and res.hair.colour is None


def test_long_hair_seen_over_the_shoulders_continues_down_the_upper_back(haired):
    s, tex, head, r, nz, rgb, mask = haired
    x, y = s.points[..., 0], s.points[..., 1]
    half = 0.5 * float(x[head].max() - x[head].min())
    y_head = float(y[head].min())
    torso = s.texel_parts == int(Part.TORSO)
    length = 0.18  # hair falls 18 cm below the head
    locks = torso & (x.abs() < 1.4 * half) & (y > y_head - length)  # in front and behind
    long_tex = torch.where(locks[..., None], HAIR_RGB, tex)
    rgb2, mask2 = photo_of(s, long_tex)
    res = _run(s, rgb2, mask2)
    upper_back = locks & (s.normals[..., 2] < -0.5) & (y > y_head - 0.8 * length) & (x.abs() < 0.8 * half)
    assert upper_back.sum() > 30
    got = float((res.texture[upper_back] - HAIR_RGB).abs().mean())
    short = float((_run(s, rgb2, mask2, long_hair=False).texture[upper_back] - HAIR_RGB).abs().mean())
    print(f"upper back: {got:.3f} from hair (long_hair=False: {short:.3f}); reach {res.hair.reach:.3f}")
    assert got < 0.1 and short > got + 0.1


def _skin_shifted(skin_rgb, dL: float):
    """The RGB colour at Lab distance |dL| from `skin_rgb`, lighter (dL > 0) or darker, same a and b."""
    import numpy as np

    from dinar_core.texture.hair import rgb_to_lab

    lab = rgb_to_lab(np.asarray(skin_rgb, np.float64)[None])[0]
    lo, hi = 0.0, 1.0  # bisect a grey-scale factor: RGB * f changes mostly L
    for _ in range(40):
        f = 0.5 * (lo + hi)
        rgb = np.clip(np.asarray(skin_rgb) * (f * 2 if dL > 0 else f), 0, 1)
        dist = float(np.linalg.norm(rgb_to_lab(rgb[None])[0] - lab))
        if (dist < abs(dL)) == (dL > 0):
            lo = f
        else:
            hi = f
    return torch.tensor(rgb, dtype=torch.float32)


@pytest.mark.parametrize("dL, found", [(-12.0, True), (12.0, False)])
def test_dark_hair_close_to_the_skin_is_found_and_a_lit_crown_is_not(haired, dL, found):
    """Hair only 12 Lab units from the skin (below hair_delta_e = 15): found when darker than the face (dark hair
    in soft light, the demo's red ponytail), not when lighter (a lit bald crown)."""
    s, tex, head, r, nz, rgb, mask = haired
    y, nz = s.points[..., 1], s.normals[..., 2]
    scalp = head & ((r > 0.78) | ((nz < 0.1) & (r > 0.35)))
    near = _skin_shifted(PART_COLOURS[Part.HEAD], dL)
    rgb2, mask2 = photo_of(s, torch.where(scalp[..., None], near, plain_texture(s)))
    res = _run(s, rgb2, mask2)
    assert (res.hair.colour is not None) == found
    assert (_run(s, rgb2, mask2, hair_dark_delta_e=100.0).hair.colour is not None) is False  # the rule is what finds it
