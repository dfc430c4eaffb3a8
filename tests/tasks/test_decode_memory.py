"""Peak memory of decoding a zTXt decompression bomb and a legal 13000 x 13000 PNG, each measured in a fresh
process that does only the decode (and the final downscale): its peak RSS (VmHWM) plus that of any process it waited
for, nothing subtracted. On the code before tasks/decode.py these peaked at 0.66 GB (of which the decoder's torch
import 0.59) and 8.2 GB."""

import zlib

from tasks.decode import DecodeLimits
from tests.helpers.images import constant_png, decode_in_fresh_process, ztxt_bomb_png

GB = 10**9


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
    res = decode_in_fresh_process(path, DecodeLimits.of(None))
    assert res.get("error") == "InvalidImageError" and "comment.png" in res["message"], res
    assert "MAX_TEXT_CHUNK" in res["message"]
    assert res["peak_bytes"] < GB, f"peak {res['peak_bytes'] / 2**20:.0f} MB"


def test_legal_13000_square_png_decodes_within_1_gb(tmp_path):
    limits = DecodeLimits.of(None)
    assert 13000 * 13000 <= limits.max_pixels  # a legal photo by the default limits, not refused
    path = constant_png(tmp_path / "scan.png", 13000, 13000, (200, 120, 40))
    res = decode_in_fresh_process(path, limits)
    assert "error" not in res, res
    assert res["decoded"] == [2167, 2167, 3]  # reduced by 6 while decoding, still over max_side
    assert res["final"] == [limits.max_side, limits.max_side, 3]
    assert res["colors"] == [[200, 120, 40], [200, 120, 40]]
    assert res["peak_bytes"] < GB, f"peak {res['peak_bytes'] / 2**20:.0f} MB"
