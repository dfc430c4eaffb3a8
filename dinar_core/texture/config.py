"""Configuration of the `classic` avatar: texture size, UV assets, unwrap, transfer and inpainting weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

UnwrapMethod = Literal["gather", "splat"]
FillMethod = Literal["harmonic", "telea", "ns"]
BackMode = Literal["parts", "copy"]
MirrorScope = Literal["limbs", "all"]
WhiteBalance = Literal["grey_world", "none"]

MAX_TEXTURE_SIZE = 4096


@dataclass
class ClassicAvatarConfig:
    """How the photo becomes a complete UV texture (unwrap -> symmetry / front-back transfer -> fill).

    Lengths in metres are in the body model's units (SMPL-X and Anny: metres).
    """

    texture_size: int = 1024
    """Texture side T in texels (DINAR: 256; here 1024 by default, so a face gets ~16x the texels of DINAR's: the
    avatar stage reports the count as ``face_texels`` in ``avatar/avatar.json``). Tested from 8 to 2048."""
    uv_assets: Optional[str] = None
    """Folder with DINAR's SMPL-X UV layout (``uv.npy``, ``uv_faces.npy``, ``v_inds.npy``: DINAR's
    ``smplx_data/``). Only the SMPL-X body needs it; Anny ships its own UVs."""

    # --- unwrap ---------------------------------------------------------------------------------------------
    unwrap_method: UnwrapMethod = "gather"
    """`gather`: every texel finds its 3D point, projects it and samples the photo bilinearly if the depth buffer
    says it is visible (no holes at any texture size; measured better in the round trip, see
    ``docs/texture.md``). `splat`: DINAR's way, every visible body pixel writes its colour into the texel its UV
    falls in (holes where a texel is smaller than a pixel's footprint)."""
    mask_erode_px: int = 2
    """The person mask is eroded by at least this many pixels before sampling (DINAR: a 5x5 erosion = 2 px), so
    background at the silhouette never enters the texture."""
    erode_reference_px: int = 512
    """``mask_erode_px`` is meant for a photo whose shorter side is this many pixels; a larger photo is eroded
    proportionally more, ``round(mask_erode_px * min(H, W) / erode_reference_px)`` (a soft or misplaced mask edge is
    wider in a large photo: 2 px at 512, 8 px at 2048). 0 = a fixed ``mask_erode_px``."""
    rim_feather_px: float = 1.5
    """Confidence ramps from 0 at the eroded silhouette to full this many pixels inside it, so the last rim
    texels are blended with their mirror / the fill instead of carrying a half-background colour (0 = off)."""
    min_cos: float = 0.15
    """Texels whose surface normal makes cos(angle to the view ray) below this get zero confidence (grazing
    views smear a texel over a sub-pixel sliver)."""
    angle_power: float = 1.0
    """Confidence = ((cos - min_cos) / (1 - min_cos)) ** angle_power, in [0, 1]."""
    depth_tolerance: float = 0.02
    """`gather`: a texel is visible when its depth is at most the depth buffer's plus this (m); thinner than an
    arm or a hand, thicker than the depth change across a pixel at grazing angles."""
    occlusion_depth_jump: float = 0.05
    """A depth difference between neighbouring pixels above this (m) is a self-occlusion edge (an arm in front of
    the torso); pixels there mix two surfaces and are dropped."""
    occlusion_edge_px: int = 2
    """Width in pixels of the band dropped around self-occlusion edges (DINAR dilates its edge map 3x3 twice)."""

    # --- inpainting -------------------------------------------------------------------------------------------
    use_mirror: bool = True
    """Fill unseen texels from their left/right mirror texel when that one was seen."""
    mirror_weight: float = 0.8
    """Trust in a mirrored texel relative to an observed one of the same confidence."""
    use_front_back: bool = True
    """Fill unseen texels from the surface point straight through the body (front <-> back), for clothing. Only
    with ``back_mode='copy'`` (it copies prints and faces to the back; the default ``parts`` never does)."""
    front_back_weight: float = 0.5
    """Trust in a front<->back transferred texel relative to an observed one."""
    front_back_max_height: float = 0.84
    """Front<->back transfer only below this fraction of the body's height (feet 0, top of head 1): the head is
    excluded (a face must not be copied onto the back of the head)."""
    match_distance: float = 0.03
    """Mirror / front-back correspondences further than this (m, rest pose) from the wanted point are dropped."""
    back_mode: BackMode = "parts"
    """`parts` (default): no texel is copied through the body; the unseen back and sides of every body part get
    the part's colour profile by height, blended with the harmonic fill near the seen region, plus texture
    synthesised from the part's own observed patches (``texture.synth``), so a print, a nipple, a navel or a face
    never appears on the back. `copy`: the old front<->back pixel transfer (``use_front_back``) and mirror
    everywhere."""
    mirror_scope: MirrorScope = "limbs"
    """With ``back_mode='parts'``: `limbs` keeps the left/right mirror on arms, hands, legs and feet only (what is
    really symmetric; a print on the left chest is not copied to the right); `all` mirrors every part."""
    profile_bin: float = 0.006
    """Height bin of the part colour profiles, as a fraction of the body's height (0.6 % = 1 cm: stripes and hems
    survive)."""
    profile_sides: float = 0.5
    """A profile bin takes its colour from the part's sides (rest normal's lateral component >= this) where it has
    enough of them: the sides are shared by front and back, prints and faces are not on them."""
    profile_rare: float = 0.15
    """Optionally leave colours (4-means clusters) holding less than this share of a part's seen texels out of its
    profile (a print filling a whole band, sides included; 0 = off: measured +2 dB on the synthetic back whose
    back equals its front, but a chest print then reaches the back at 0.10 mean error instead of 0.02)."""
    profile_sigma: float = 0.7
    """Gaussian smoothing of the profiles along the height, in bins."""
    blend_px: float = 12.0
    """Texels (at 256^2; scaled with the texture) over which the harmonic fill at the seen region's edge blends
    into the part profile."""
    synth_strength: float = 1.0
    """Amplitude of the synthesised texture added to unseen texels (0 = a smooth fill)."""
    synth_patch: int = 8
    """Side of the synthesis patches in texels at 256^2 (scaled with the texture)."""
    synth_sigma: float = 2.0
    """Low-pass (texels at 256^2) separating a part's colour from the texture that is synthesised."""
    synth_outlier: float = 2.5
    """Patches with more residual energy than this times the part's median are never used as exemplars."""
    synth_min_known: float = 0.15
    """A part is given synthesised texture only when at least this share of its texels was seen (and at least 4
    patches' worth): from a sliver (legs cut at the photo's bottom edge, an arm seen edge-on) a handful of patches
    tiled over the whole part repeats as blotches, so such a part keeps its smooth profile colour. Measured on the
    demo photos at 1024^2: the astronaut's legs 11 % and 6 % seen (were blotched), the sports2d legs 23-42 %."""
    seed: int = 0
    """Random seed of the texture synthesis (the avatar is reproducible)."""
    hair: bool = True
    """Estimate the hair colour from the head's observed texels and paint the scalp and the back of the head
    with it (``texture.hair``); needs ``back_mode='parts'``."""
    hair_delta_e: float = 15.0
    """Smallest CIE Lab distance between hair and face skin clusters for hair to be found."""
    hair_dark_delta_e: float = 10.0
    """A smaller Lab distance that still means hair when the scalp cluster is at least ``hair_dark_l`` darker (L)
    than the face (dark hair in soft light; a bald crown is lit, so lighter)."""
    hair_dark_l: float = 6.0
    hair_min_fraction: float = 0.3
    """Share of the observed scalp texels that must be in the hair cluster."""
    long_hair: bool = True
    """Hair seen over the shoulders in front continues down the upper back to the same height."""
    hair_volume: bool = True
    """Give the head the hair's volume: an offset shell of the scalp whose thickness best matches the person mask
    around the head (``texture.hair_volume``; 0 for a bald head), used by the renders and the GLB."""
    hair_max_thickness: float = 0.08
    """Thickest scalp shell tried (m), in 5 mm steps."""
    delight: bool = True
    """Estimate the photo's second-order SH light from the observed texels and posed normals and divide it out
    (``texture.light``)."""
    light_min_gain: float = 0.25
    """De-light only when the SH light removes at least this share of the squared residual a flat light leaves
    (measured: 0.004 of the shading error when a real SH light is there, a flat photo's spurious fit below it)."""
    sh_ridge: float = 0.01
    """Ridge weight on the SH bands 1-2, relative to the normal matrix's mean diagonal."""
    shade_min: float = 0.5
    """De-lighting divides by the shading clamped to [shade_min, shade_max] (mean shading = 1)."""
    shade_max: float = 1.6
    white_balance: WhiteBalance = "none"
    """Grey-world gains on the de-lit albedo (partial, see ``white_balance_strength``), or `none`."""
    white_balance_strength: float = 0.25
    """Exponent of the grey-world gains (0 = none, 1 = full grey world)."""
    white_balance_max_gain: float = 1.04
    """The gains are clamped to [1 / max, max]."""
    fill_method: FillMethod = "harmonic"
    """What fills the texels no transfer reached. `harmonic`: a harmonic (Laplace) fill of vertex colours over
    the mesh, so it respects UV islands and seams (the default, measured best); `telea` / `ns`: OpenCV's image
    inpainting in texture space (crosses UV islands)."""
    full_confidence: float = 0.5
    """Fused weight at which a texel counts as fully known; below it the texel is blended with the fill."""
    feather_px: int = 3
    """Known texels within this many texels of an unknown region are blended towards the fill (no hard seam)."""
    gutter_px: int = 4
    """Texels outside the UV charts within this distance are padded with the nearest chart colour, so bilinear
    sampling at a chart border never reads background. (Everything further is padded too; this only documents
    the minimum.)"""

    def validate(self) -> None:
        """Raise ValueError naming the field when a value is out of range."""
        if not 8 <= int(self.texture_size) <= MAX_TEXTURE_SIZE:
            raise ValueError(f"texture_size must be in [8, {MAX_TEXTURE_SIZE}], got {self.texture_size}")
        if self.unwrap_method not in ("gather", "splat"):
            raise ValueError(f"unwrap_method must be 'gather' or 'splat', got {self.unwrap_method!r}")
        if self.fill_method not in ("harmonic", "telea", "ns"):
            raise ValueError(f"fill_method must be 'harmonic', 'telea' or 'ns', got {self.fill_method!r}")
        if self.back_mode not in ("parts", "copy"):
            raise ValueError(f"back_mode must be 'parts' or 'copy', got {self.back_mode!r}")
        if self.mirror_scope not in ("limbs", "all"):
            raise ValueError(f"mirror_scope must be 'limbs' or 'all', got {self.mirror_scope!r}")
        if self.white_balance not in ("grey_world", "none"):
            raise ValueError(f"white_balance must be 'grey_world' or 'none', got {self.white_balance!r}")
        if not 0 < self.profile_bin <= 0.5:
            raise ValueError(f"profile_bin must be in (0, 0.5], got {self.profile_bin}")
        if not 0 < self.shade_min <= 1.0 <= self.shade_max:
            raise ValueError(f"need 0 < shade_min <= 1 <= shade_max, got {self.shade_min}, {self.shade_max}")
        if not self.white_balance_max_gain >= 1.0:
            raise ValueError(f"white_balance_max_gain must be >= 1, got {self.white_balance_max_gain}")
        if int(self.synth_patch) < 2:
            raise ValueError(f"synth_patch must be >= 2, got {self.synth_patch}")
        for name in ("erode_reference_px", "rim_feather_px", "profile_rare", "profile_sides", "light_min_gain",
                     "profile_sigma", "blend_px", "synth_strength",
                     "sh_ridge", "white_balance_strength", "hair_delta_e", "hair_dark_delta_e", "hair_dark_l",
                     "hair_min_fraction", "synth_sigma", "synth_outlier", "synth_min_known"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.min_cos < 1.0:
            raise ValueError(f"min_cos must be in [0, 1), got {self.min_cos}")
        for name in ("mask_erode_px", "occlusion_edge_px", "feather_px", "gutter_px"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("depth_tolerance", "occlusion_depth_jump", "match_distance", "full_confidence",
                     "angle_power"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
