"""Configuration of the `classic` avatar: texture size, UV assets, unwrap, transfer and inpainting weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

UnwrapMethod = Literal["gather", "splat"]
FillMethod = Literal["harmonic", "telea", "ns"]

MAX_TEXTURE_SIZE = 4096


@dataclass
class ClassicAvatarConfig:
    """How the photo becomes a complete UV texture (unwrap -> symmetry / front-back transfer -> fill).

    Lengths in metres are in the body model's units (SMPL-X and Anny: metres).
    """

    texture_size: int = 256
    """Texture side T in texels (DINAR: 256). Tested up to 1024."""
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
    """The person mask is eroded by this many pixels before sampling (DINAR: a 5x5 erosion = 2 px), so
    background at the silhouette never enters the texture."""
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
    """Fill unseen texels from the surface point straight through the body (front <-> back), for clothing."""
    front_back_weight: float = 0.5
    """Trust in a front<->back transferred texel relative to an observed one."""
    front_back_max_height: float = 0.84
    """Front<->back transfer only below this fraction of the body's height (feet 0, top of head 1): the head is
    excluded (a face must not be copied onto the back of the head)."""
    match_distance: float = 0.03
    """Mirror / front-back correspondences further than this (m, rest pose) from the wanted point are dropped."""
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
        if not 0.0 <= self.min_cos < 1.0:
            raise ValueError(f"min_cos must be in [0, 1), got {self.min_cos}")
        for name in ("mask_erode_px", "occlusion_edge_px", "feather_px", "gutter_px"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("depth_tolerance", "occlusion_depth_jump", "match_distance", "full_confidence",
                     "angle_power"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
