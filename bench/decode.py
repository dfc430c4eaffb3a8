"""Photo decoding (`tasks.decode.decode_image`): time per sample photo, and peak memory of hostile and huge files.

Figures: median ms to decode each ``data/samples/*.png`` (in this process, warm, default limits); for a zTXt bomb
(~0.5 MB, its text chunk inflates to 500 MB) and a legal 13000 x 13000 RGB PNG (0.5 MB on disk): outcome, seconds
and peak RSS in MB of a fresh process that does only the decode and the final downscale (nothing subtracted).
Goal (issue 9): both under 1 GB; before tasks/decode.py they peaked at 0.66 GB and 8.2 GB (84 s).

Run: ``.venv/bin/python -m bench.decode`` (prints JSON) or ``python -m bench.run decode``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from tasks.decode import DecodeLimits, decode_image
from tests.helpers.images import constant_png, decode_in_fresh_process, ztxt_bomb_png

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def run(repeats: int = 15) -> dict:
    limits = DecodeLimits.of(None)
    figures: dict = {"sample_ms": {}}
    for path in sorted(SAMPLES.glob("*.png")):
        decode_image(path, limits)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            decode_image(path, limits)
            times.append(time.perf_counter() - t0)
        figures["sample_ms"][path.name] = round(1000 * statistics.median(times), 1)
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in (("ztxt_bomb", ztxt_bomb_png(Path(tmp) / "ztxt.png", text_mb=500)),
                           ("png_13000", constant_png(Path(tmp) / "big.png", 13000, 13000))):
            res = decode_in_fresh_process(path, limits)
            figures[name] = {"outcome": res.get("error", "ok"), "decoded": res.get("decoded"),
                             "seconds": round(res["seconds"], 2), "peak_mb": round(res["peak_bytes"] / 2**20)}
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
