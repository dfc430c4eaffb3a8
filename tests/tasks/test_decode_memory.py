"""Peak memory of decoding a zTXt decompression bomb and a legal 13000 x 13000 PNG, each measured in a fresh
process that does only the decode (and the final downscale): its peak RSS (VmHWM) plus that of any process it waited
for, nothing subtracted. On the code before tasks/decode.py these peaked at 0.66 GB (of which the decoder's torch
import 0.59) and 8.2 GB."""

import json
import os
import subprocess
import sys
import zlib
from dataclasses import asdict
from pathlib import Path

from tasks.decode import DecodeLimits
from tests.helpers.images import constant_png, ztxt_bomb_png

ROOT = Path(__file__).resolve().parents[2]
GB = 10**9
_SCRIPT = """
import json, re, resource, sys
from dinar_core.image import fit_within, resize_rgb
from tasks.decode import DecodeLimits, decode_image
limits = DecodeLimits(**json.loads(sys.argv[2]))
try:
    out = decode_image(sys.argv[1], limits)
    final = resize_rgb(out.rgb, fit_within(out.rgb.shape[1], out.rgb.shape[0], limits.max_side))
    flat = final.reshape(-1, 3)
    res = {"decoded": list(out.rgb.shape), "final": list(final.shape),
           "colors": [flat.min(0).tolist(), flat.max(0).tolist()]}
except Exception as exc:
    res = {"error": type(exc).__name__, "message": str(exc)}
# VmHWM: the peak RSS of this process's own memory since its exec (ru_maxrss of RUSAGE_SELF would start from
# the RSS of the pytest process that spawned it); plus the largest child it waited for (an over-estimate).
hwm = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1))
res["peak_bytes"] = 1024 * (hwm + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps(res))
"""


def _decode_in_fresh_process(path: Path, limits: DecodeLimits) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(path), json.dumps(asdict(limits))], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_ztxt_bomb_is_refused_within_1_gb(tmp_path):
    path = ztxt_bomb_png(tmp_path / "comment.png", text_mb=500)
    assert path.stat().st_size < 600_000
    chunk = path.read_bytes()
    start = chunk.index(b"zTXt") + len(b"zTXt") + len(b"Comment\x00\x00")
    inflate, inflated, data = zlib.decompressobj(), 0, chunk[start:]
    while data and not inflate.eof:  # the premise: it really inflates to 500 MB (64 MB at a time)
        inflated += len(inflate.decompress(data, 64 << 20))
        data = inflate.unconsumed_tail
    assert inflate.eof and inflated == 500 * 2**20
    res = _decode_in_fresh_process(path, DecodeLimits.of(None))
    assert res.get("error") == "InvalidImageError" and "comment.png" in res["message"], res
    assert "MAX_TEXT_CHUNK" in res["message"]
    assert res["peak_bytes"] < GB, f"peak {res['peak_bytes'] / 2**20:.0f} MB"


def test_legal_13000_square_png_decodes_within_1_gb(tmp_path):
    limits = DecodeLimits.of(None)
    assert 13000 * 13000 <= limits.max_pixels  # a legal photo by the default limits, not refused
    path = constant_png(tmp_path / "scan.png", 13000, 13000, (200, 120, 40))
    res = _decode_in_fresh_process(path, limits)
    assert "error" not in res, res
    assert res["decoded"] == [2167, 2167, 3]  # reduced by 6 while decoding, still over max_side
    assert res["final"] == [limits.max_side, limits.max_side, 3]
    assert res["colors"] == [[200, 120, 40], [200, 120, 40]]
    assert res["peak_bytes"] < GB, f"peak {res['peak_bytes'] / 2**20:.0f} MB"
