"""CPU timing of the `classic` avatar texture: unwrap + inpaint per person, and the textured render per frame.

Scene: DINAR's SMPL-X UV layout (``/work/shared/reference/dinar-smplx-data`` or ``$DINAR_UV_ASSETS``) on the test
body with SMPL-X's connectivity (``tests.helpers.texture_meshes.smplx_uv_body``), a clothing-like texture, a 512^2
front "photo" at f = 5000 px. Figures (median of ``repeats``): unwrap, transfer maps (first build / cached),
inpaint, and their sum per person at 256^2 and 1024^2; textured render ms per 512^2 frame.

Run: ``.venv/bin/python -m bench.texture`` (prints JSON) or ``python -m bench.run texture`` where supported.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import torch


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(sizes: tuple[int, ...] = (256, 1024), repeats: int = 3, frames: int = 10, threads: int | None = None) -> dict:
    """The figures of the module docstring; ``threads`` sets torch's thread count for the run (restored after):
    on a loaded 2-core machine 1 thread is often faster than 2 (OpenMP threads wait for a busy core)."""
    default = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(sizes, repeats, frames)
    finally:
        torch.set_num_threads(default)


def _run(sizes: tuple[int, ...], repeats: int, frames: int) -> dict:
    from dinar_core.render import make_K
    from dinar_core.texture import (ClassicAvatarConfig, inpaint_texture, render_textured, transfer_maps, unwrap)
    from dinar_core.texture import mirror as mirror_mod
    from tests.helpers.texture_meshes import clothing_texture, smplx_uv_body, to_camera

    assets = Path(os.environ.get("DINAR_UV_ASSETS", "/work/shared/reference/dinar-smplx-data"))
    rest, layout = smplx_uv_body(assets)
    truth = clothing_texture(rest, layout, 512)
    H = 512
    K = make_K(H, H)
    extent = rest.amax(0) - rest.amin(0)
    front = to_camera(rest, 5000.0 * float(max(extent[0], extent[1])) / (0.85 * H))
    photo = render_textured(front, K, None, layout, truth, (H, H))
    rgb = (photo.rgba[0, :3].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()
    mask = (photo.rgba[0, 3] > 0.5).numpy()
    out: dict = {"threads": torch.get_num_threads(), "load_average_1min_at_start": round(os.getloadavg()[0], 2)}
    for T in sizes:
        cfg = ClassicAvatarConfig(texture_size=T)
        mirror_mod._CACHE.clear()
        t0 = time.perf_counter()
        maps = transfer_maps(rest, layout, cfg)
        maps_first = time.perf_counter() - t0
        maps_cached = _median(lambda: transfer_maps(rest, layout, cfg), repeats)
        un = unwrap(rgb, mask, front, K, layout, cfg)
        t_unwrap = _median(lambda: unwrap(rgb, mask, front, K, layout, cfg), repeats)
        t_inpaint = _median(lambda: inpaint_texture(un, layout, maps, cfg), repeats)
        out[f"texture_{T}"] = {"unwrap_s": round(t_unwrap, 3), "maps_first_build_s": round(maps_first, 3),
                               "maps_cached_s": round(maps_cached, 4), "inpaint_s": round(t_inpaint, 3),
                               "per_person_s_cached_maps": round(t_unwrap + t_inpaint + maps_cached, 3),
                               "per_person_s_first": round(t_unwrap + t_inpaint + maps_first, 3)}
    tex = inpaint_texture(unwrap(rgb, mask, front, K, layout, ClassicAvatarConfig()), layout,
                          transfer_maps(rest, layout, ClassicAvatarConfig()), ClassicAvatarConfig()).texture
    render_textured(front, K, None, layout, tex, (H, H))  # warm-up
    t = _median(lambda: render_textured(front, K, None, layout, tex, (H, H)), frames)
    out["render_512_ms_per_frame"] = round(1000 * t, 1)
    out["render_512_fps"] = round(1.0 / t, 1)
    out["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    return out


if __name__ == "__main__":
    import sys

    print(json.dumps(run(threads=int(sys.argv[1]) if len(sys.argv) > 1 else None), indent=1))
