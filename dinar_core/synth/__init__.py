"""Synthetic people with full ground truth (``dinar synth``): Anny bodies of sampled phenotype and pose, clothing-like
UV textures with front-only prints (``appearance``, on the body parts of ``parts``), K calibrated ring cameras and
Lambert lighting (``scene``). torch/numpy only; ``tasks/synth.py`` writes the multi-view layout."""

from dinar_core.synth.appearance import Appearance, PaintedTexture, paint_texture, sample_appearance
from dinar_core.synth.parts import TexelParts, texel_parts
from dinar_core.synth.scene import (GENERATOR, Lighting, PoseSpec, SynthConfig, SynthPerson, ViewRender,
                                    generate_person, ring_cameras, render_view)

__all__ = ["Appearance", "PaintedTexture", "paint_texture", "sample_appearance", "TexelParts", "texel_parts",
           "GENERATOR", "Lighting", "PoseSpec", "SynthConfig", "SynthPerson", "ViewRender", "generate_person",
           "ring_cameras", "render_view"]
