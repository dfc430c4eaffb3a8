"""CPU cost of issue 11's classic-avatar changes, step by step, at 256^2 and 1024^2 (indicative: shared machine).

Scene: the synthetic SMPL-X body (``tests.helpers.texture_people``: tube topology, skinning-weight parts, a tube
atlas) in a plain shirt with a chest print, a 512^2 front photo. Per texture size, the median of ``repeats`` runs:

- ``unwrap``: the photo into the texture (now with the rim feather);
- ``delight``: the SH light estimate + division (``texture.light``);
- ``maps``: transfer maps + part maps (cached after the first build; the cached figure);
- ``inpaint_copy``: the old completion (front<->back copy, mirror everywhere);
- ``inpaint_parts``: the new one (hair, part profiles, synthesis);
- render of one 512^2 frame: ``unlit``, ``lit``, ``lit_ss2`` (lit + 2x supersampling).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m bench.texture_back`` (prints JSON).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.texture import _median


def run(sizes=(256, 1024), repeats: int = 3) -> dict:
    from dinar_core.texture import ClassicAvatarConfig, inpaint_texture, render_textured, texel_map, transfer_maps
    from dinar_core.texture.classic import posed_texel_normals
    from dinar_core.texture.light import delight_unwrap
    from dinar_core.texture.unwrap import unwrap
    from tests.helpers.synthetic_smplx import write_synthetic_smplx
    from tests.unit.test_texture_back import printed_scene

    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="bench-texture-back-"))
    write_synthetic_smplx(folder, gender="neutral", seed=0, kind="pkl")
    s, plain, tex, region, rgb, mask = printed_scene(folder)
    out: dict = {}
    for T in sizes:
        cfg = ClassicAvatarConfig(texture_size=T)
        old = dataclasses.replace(cfg, back_mode="copy", delight=False)
        t0 = time.perf_counter()
        maps = transfer_maps(s.rest, s.layout, cfg, vertex_parts=s.parts)
        maps_old = transfer_maps(s.rest, s.layout, old, vertex_parts=s.parts)
        first = round(time.perf_counter() - t0, 3)
        u = unwrap(rgb, mask, s.front, s.K, s.layout, cfg)
        flat = texel_map(s.layout, T).flat
        normals = posed_texel_normals(s.front, s.layout, T)
        out[T] = {
            "maps_first_build": first,
            "maps": _median(lambda: transfer_maps(s.rest, s.layout, cfg, vertex_parts=s.parts), repeats),
            "unwrap": _median(lambda: unwrap(rgb, mask, s.front, s.K, s.layout, cfg), repeats),
            "delight": _median(lambda: delight_unwrap(u, normals, maps.parts, flat, cfg), repeats),
            "inpaint_copy": _median(lambda: inpaint_texture(u, s.layout, maps_old, old), repeats),
            "inpaint_parts": _median(lambda: inpaint_texture(u, s.layout, maps, cfg), repeats),
        }
    texture = tex
    for name, kw in (("unlit", {}), ("lit", {"shading": "lit"}), ("lit_ss2", {"shading": "lit", "supersample": 2})):
        render_textured(s.front, s.K, None, s.layout, texture, (512, 512), **kw)
        out[f"render_{name}_512"] = _median(
            lambda: render_textured(s.front, s.K, None, s.layout, texture, (512, 512), **kw), repeats)
    return out


if __name__ == "__main__":
    sizes = tuple(int(a) for a in sys.argv[1:]) or (256, 1024)
    print(json.dumps(run(sizes), indent=1))
