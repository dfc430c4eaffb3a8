"""Clothing-like UV textures painted on Anny's layout: skin, a top and bottoms, a front-only print, shoes, hair.

Every colour is decided per texel from :class:`~dinar_core.synth.parts.TexelParts` (body part, rest-pose point and
normal of the average body), so the clothes follow the body, not the UV charts, and cross seams without a jump:

1. skin everywhere (a tone from a palette, mild 3D noise), with darker eyebrows, lips, eyes (white eyeball, iris,
   pupil);
2. the top: torso texels above the waist and the arms down to the sleeve length (fraction along shoulder->wrist);
   a crew or V neckline leaves the base of the neck as skin;
3. the bottoms: torso texels below the waist and the legs down to the trouser length (fraction along hip->ankle);
4. shoes on the feet (and the ankle);
5. hair on the scalp: above the hairline in front, down to the hair length behind;
6. fabric noise: a few smooth 3D sinusoids of the rest point plus fine per-texel noise (a few per cent);
7. the print: a logo-like design on the chest, only where the top faces forward (rest normal z > 0.45), in a box
   centred on the chest. Its footprint is the ``prints`` mask; ``back`` is where the rest normal points backwards
   (z < -0.3), where a print must not show. The back of the top is plain (its colour and the fabric noise only).

Texels outside the UV charts are filled by dilating the charts' colours a few texels, so bilinear sampling at a
chart's border does not bleed in black.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from dinar_core.synth.parts import TexelParts

SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 138), (198, 134, 98), (160, 102, 70), (111, 72, 50),
              (84, 56, 40))
HAIR_COLOURS = ((20, 16, 14), (52, 36, 26), (96, 64, 38), (150, 110, 64), (196, 160, 104), (120, 44, 24),
                (150, 150, 150))
CLOTH_COLOURS = ((200, 30, 40), (30, 60, 150), (20, 110, 60), (235, 235, 230), (30, 30, 34), (230, 180, 40),
                 (120, 40, 120), (240, 120, 40), (90, 140, 200), (110, 80, 60), (160, 160, 165), (40, 120, 130),
                 (230, 140, 160), (70, 90, 50))
BOTTOM_COLOURS = ((40, 60, 110), (30, 30, 34), (110, 90, 70), (70, 75, 80), (170, 150, 120), (60, 80, 60),
                  (140, 30, 40), (200, 200, 195))
SHOE_COLOURS = ((20, 20, 20), (240, 240, 240), (90, 60, 40), (150, 30, 30), (40, 50, 90))
PRINT_DESIGNS = ("disc", "stripes", "diamond", "text", "star")


@dataclass(frozen=True)
class Appearance:
    """One person's look (colours 0-255 RGB; lengths as fractions along the limb segments)."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    shoes: tuple[int, int, int]
    print_colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    print_design: str
    print_size: tuple[float, float]
    """Half width and half height of the print's box, metres (on the average body)."""
    print_height: float
    """Centre of the print between the waist (0) and the neck (1)."""
    sleeve: float
    trousers: float
    waist: float
    """Waist height offset (metres) from the average body's spine04 joint."""
    neckline: Literal["crew", "v"]
    hair_length: float
    """How far below the eyes the hair reaches at the back of the head, metres."""

    def to_dict(self) -> dict:
        return asdict(self)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _contrast(a, b) -> float:
    return float(np.abs(np.asarray(a, float) - np.asarray(b, float)).sum())


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """A random look; the top, bottoms and print colours are chosen to differ clearly from one another."""
    skin = _pick(rng, SKIN_TONES)
    top = _pick(rng, CLOTH_COLOURS)
    bottom = _pick(rng, BOTTOM_COLOURS)
    while _contrast(top, bottom) < 120:
        bottom = _pick(rng, BOTTOM_COLOURS)
    ink = _pick(rng, CLOTH_COLOURS)
    while _contrast(ink, top) < 200:
        ink = _pick(rng, CLOTH_COLOURS)
    ink2 = _pick(rng, CLOTH_COLOURS + ((255, 255, 255), (0, 0, 0)))
    while _contrast(ink2, ink) < 150:
        ink2 = _pick(rng, CLOTH_COLOURS + ((255, 255, 255), (0, 0, 0)))
    sleeve = float(_pick(rng, (0.3, 0.38, 0.55, 1.0)) + rng.uniform(-0.03, 0.03))
    trousers = float(_pick(rng, (0.45, 0.55, 1.0, 1.0, 1.0)) + rng.uniform(-0.02, 0.0))
    return Appearance(
        skin=skin, hair=_pick(rng, HAIR_COLOURS), iris=_pick(rng, ((60, 40, 25), (90, 60, 30), (60, 90, 130),
                                                                 (70, 100, 70))),
        top=top, bottom=bottom, shoes=_pick(rng, SHOE_COLOURS), print_colours=(ink, ink2),
        print_design=_pick(rng, PRINT_DESIGNS),
        print_size=(float(rng.uniform(0.06, 0.09)), float(rng.uniform(0.05, 0.08))),
        print_height=float(rng.uniform(0.45, 0.6)), sleeve=min(sleeve, 1.0), trousers=min(trousers, 1.0),
        waist=float(rng.uniform(-0.05, 0.0)), neckline=_pick(rng, ("crew", "v")),
        hair_length=float(rng.uniform(0.02, 0.1)))


@dataclass(frozen=True)
class PaintedTexture:
    """texture: (T, T, 3) uint8 RGB; prints: (T, T) bool, the front-only print's texels; back: (T, T) bool, the
    texels of the back of the body; material: (T, T) int8 index into ``MATERIALS`` (-1 outside the charts)."""

    texture: np.ndarray
    prints: np.ndarray
    back: np.ndarray
    material: np.ndarray


MATERIALS = ("skin", "top", "bottom", "shoes", "hair", "lips", "brows", "eye_white", "iris", "pupil", "mouth", "print")


def _smooth_noise(rng: np.random.Generator, points: np.ndarray, components: int = 8, freq=(6.0, 40.0)) -> np.ndarray:
    """(..., 3) points -> (...) zero-mean noise of unit-ish amplitude: random 3D sinusoids (seamless on the body)."""
    out = np.zeros(points.shape[:-1], np.float32)
    for _ in range(components):
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        f = rng.uniform(*freq)
        out += np.sin(2 * np.pi * f * (points @ d) + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    return out / np.sqrt(components / 2.0)


def _design(name: str, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Print design in box coordinates u, v in [-1, 1] (u = the body's right -> left as seen from the front is
    flipped so text-like designs read left to right for a viewer; v up). Returns int8: 0 none, 1 ink, 2 ink2."""
    out = np.zeros(u.shape, np.int8)
    r = np.hypot(u, v)
    if name == "disc":
        out[r < 0.95] = 1
        out[r < 0.55] = 2
        out[r < 0.3] = 1
    elif name == "stripes":
        out[(np.abs(u) < 0.95) & (np.abs(v) < 0.9)] = 1
        out[(np.abs(u) < 0.95) & (np.abs(v) < 0.9) & (np.floor((v + 0.9) / 0.36).astype(int) % 2 == 1)] = 2
    elif name == "diamond":
        out[np.abs(u) + np.abs(v) < 0.95] = 1
        out[np.abs(u) + np.abs(v) < 0.45] = 2
    elif name == "star":
        angle = np.arctan2(v, u)
        radius = 0.45 + 0.5 * (0.5 + 0.5 * np.cos(5 * angle + np.pi / 2)) ** 3
        out[r < radius] = 1
        out[r < 0.25] = 2
    else:  # text: a plate with rows of blocky "letters"
        out[(np.abs(u) < 0.95) & (np.abs(v) < 0.85)] = 1
        for row, (y0, y1) in enumerate(((0.25, 0.65), (-0.6, -0.15))):
            x = -0.8
            while x < 0.75:
                w = rng.uniform(0.1, 0.25)
                out[(u > x) & (u < min(x + w, 0.8)) & (v > y0) & (v < y1)] = 2
                x += w + rng.uniform(0.06, 0.12)
    return out


def paint_texture(parts: TexelParts, look: Appearance, rng: np.random.Generator) -> PaintedTexture:
    """The person's UV texture (the steps of the module docstring). ``rng`` draws the noise."""
    T = parts.size
    inside = parts.inside
    p, n, lm = parts.point, parts.normal, parts.landmarks
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    mat = np.full((T, T), -1, np.int8)
    M = {name: i for i, name in enumerate(MATERIALS)}

    # 1. skin, face details
    mat[inside] = M["skin"]
    head = parts.seg("head")
    eye_y = float(lm.eyes[:, 1].mean())
    eye_z = float(lm.eyes[:, 2].mean())
    front_face = head & (n[..., 2] > 0.2) & (z > eye_z - 0.05)
    for ex in lm.eyes[:, 0]:
        brow = front_face & (np.abs(x - ex) < 0.022) & (y > eye_y + 0.014) & (y < eye_y + 0.022)
        mat[brow] = M["brows"]
    mouth_y = float(lm.nose[1]) - 0.036
    lips = front_face & (np.abs(x) < 0.024 - 0.6 * np.abs(y - mouth_y)) & (np.abs(y - mouth_y) < 0.009)
    mat[lips] = M["lips"]
    eyeball = parts.seg("eye_back") | parts.seg("eye_front")
    mat[eyeball] = M["eye_white"]
    for ex, ey in lm.eyeballs[:, :2]:  # iris (6 mm) and pupil (2.2 mm) around the eye's axis, on the front
        r = np.hypot(x - ex, y - ey)
        mat[eyeball & (r < 0.006) & (n[..., 2] > 0.3)] = M["iris"]
        mat[eyeball & (r < 0.0022) & (n[..., 2] > 0.3)] = M["pupil"]
    mat[parts.seg("eye_cavity") | parts.seg("mouth_cavity") | parts.seg("tongue")] = M["mouth"]

    # 2.-3. top and bottoms
    body = parts.seg("body")
    waist_y = float(lm.waist[1]) + look.waist
    torso_only = body & parts.grp("torso")
    neck_y = float(lm.neck[1])
    if look.neckline == "v":
        open_neck = (y > neck_y - 0.09 + 1.5 * np.abs(x)) & (z > 0)
    else:
        open_neck = (y > neck_y - 0.035 + 0.8 * np.maximum(np.abs(x) - 0.05, 0)) & (z > -0.02)
    top = torso_only & (y >= waist_y) & ~(open_neck & (np.abs(x) < 0.1))
    top |= body & parts.grp("arm") & (parts.arm_t <= look.sleeve)
    bottom = (torso_only & (y < waist_y)) | (body & parts.grp("leg") & (parts.leg_t <= look.trousers))
    mat[top] = M["top"]
    mat[bottom] = M["bottom"]

    # 4. shoes
    shoes = parts.seg("foot") | (body & parts.grp("foot")) | (body & parts.grp("leg") & (parts.leg_t > 0.985))
    mat[shoes] = M["shoes"]

    # 5. hair
    behind = z < eye_z - 0.085
    hair = head & ((y > eye_y + 0.045 + 0.25 * np.maximum(z - eye_z, 0)) |
                   (behind & (y > eye_y - look.hair_length)) |
                   ((z < eye_z - 0.05) & (y > eye_y + 0.005)))
    mat[hair] = M["hair"]

    # 7. the print (front of the top only)
    chest_y = waist_y + look.print_height * (neck_y - waist_y)
    hw, hh = look.print_size
    u, v = -x / hw, (y - chest_y) / hh  # -x: the viewer's left is the body's right
    in_box = (mat == M["top"]) & torso_only & (np.abs(u) <= 1) & (np.abs(v) <= 1) & (n[..., 2] > 0.45) & (z > 0)
    design = _design(look.print_design, u, v, rng)
    prints = in_box & (design > 0)

    # colours
    colour = np.zeros((T, T, 3), np.float32)
    base = {"skin": look.skin, "top": look.top, "bottom": look.bottom, "shoes": look.shoes, "hair": look.hair,
            "eye_white": (235, 232, 225), "iris": look.iris, "pupil": (12, 10, 10), "mouth": (110, 40, 45)}
    darker = np.asarray(look.skin, np.float32)
    base["lips"] = tuple(darker * np.array([0.82, 0.55, 0.55]))
    base["brows"] = tuple(np.asarray(look.hair, np.float32) * 0.7)
    for name, rgb in base.items():
        colour[mat == M[name]] = np.asarray(rgb, np.float32)
    ink = np.asarray(look.print_colours, np.float32)  # (2, 3)
    colour[prints] = ink[design[prints] - 1]
    mat[prints] = M["print"]

    # 6. fabric and skin noise (multiplicative, seamless in 3D)
    fabric = np.isin(mat, [M["top"], M["bottom"], M["print"]])
    weave = _smooth_noise(rng, p, 6, (30.0, 90.0)) * 0.025 + _smooth_noise(rng, p, 4, (4.0, 12.0)) * 0.03
    grain = rng.normal(0.0, 0.018, size=(T, T)).astype(np.float32)
    skin_noise = _smooth_noise(rng, p, 6, (8.0, 40.0)) * 0.015
    factor = np.ones((T, T), np.float32)
    factor[fabric] += weave[fabric] + grain[fabric]
    skin_like = np.isin(mat, [M["skin"], M["lips"]])
    factor[skin_like] += skin_noise[skin_like]
    hair_m = mat == M["hair"]
    factor[hair_m] += _smooth_noise(rng, p, 8, (60.0, 200.0))[hair_m] * 0.06
    colour *= factor[..., None]
    colour[~inside] = 0.0
    texture = _dilate(np.clip(colour, 0, 255), inside, 4)
    back = inside & (n[..., 2] < -0.3) & ~parts.seg("eye_back") & ~parts.seg("eye_front")
    return PaintedTexture(np.round(texture).astype(np.uint8), prints, back, mat)


def _dilate(colour: np.ndarray, inside: np.ndarray, steps: int) -> np.ndarray:
    """Fill texels outside the charts with the mean of their filled 4-neighbours, ``steps`` rings deep."""
    colour = colour.copy()
    filled = inside.copy()
    for _ in range(steps):
        acc = np.zeros_like(colour)
        cnt = np.zeros(filled.shape, np.float32)
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            c = np.roll(colour * filled[..., None], (dy, dx), (0, 1))
            f = np.roll(filled, (dy, dx), (0, 1))
            acc += c
            cnt += f
        grow = ~filled & (cnt > 0)
        colour[grow] = acc[grow] / cnt[grow, None]
        filled |= grow
    return colour
