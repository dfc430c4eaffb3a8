"""Small image files made by the tests themselves, and large ones written by hand in little time and memory."""

import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def gradient_photo(h: int = 120, w: int = 80) -> np.ndarray:
    """(h, w, 3) uint8 smooth colour ramp: an image with no person in it."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], -1).astype(np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG whose header declares w x h pixels, with a tiny (invalid) body: a decompression bomb's signature."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + png_chunk(b"IEND", b""))
    return path


def zlib_repeated(block: bytes, times: int) -> bytes:
    """The zlib stream of `block` repeated `times` times, compressed once: each copy is a raw deflate run ended by a
    full flush (which resets the compressor, so every copy compresses to the same bytes), then an empty final
    block and the Adler-32 of the whole uncompressed data. Seconds and megabytes instead of minutes and gigabytes
    for hundreds of MB of repetitive data."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(times):
        adler = zlib.adler32(block, adler)
    return b"\x78\xda" + piece * times + b"\x03\x00" + struct.pack(">I", adler)


def constant_png(path: Path, w: int, h: int, color: tuple[int, int, int] = (200, 120, 40)) -> Path:
    """A legal w x h 8-bit RGB PNG of one colour (13000 x 13000 is ~2 MB on disk, 507 MB of pixels)."""
    row = b"\x00" + bytes(color) * w  # filter type 0, then the pixels
    rows_per_block = max(1, min(h, (4 << 20) // len(row)))
    while h % rows_per_block:
        rows_per_block -= 1
    idat = zlib_repeated(row * rows_per_block, h // rows_per_block)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))
    return path


def ztxt_bomb_png(path: Path, text_mb: int = 500, size: int = 96) -> Path:
    """A small valid PNG (size x size gradient) with a zTXt chunk that decompresses to `text_mb` MB (~1 KB of file
    per MB of text): the zTXt decompression bomb."""
    rgb = gradient_photo(size, size)
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(size))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    ztxt = b"Comment\x00\x00" + zlib_repeated(bytes(1 << 20), text_mb)
    path.write_bytes(PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"zTXt", ztxt)
                     + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))
    return path


_DECODE_PROBE = """
import json, re, resource, sys, time
from dinar_core.image import fit_within, resize_rgb
from tasks.decode import DecodeLimits, decode_image
limits = DecodeLimits(**json.loads(sys.argv[2]))
start = time.perf_counter()
try:
    out = decode_image(sys.argv[1], limits)
    final = resize_rgb(out.rgb, fit_within(out.rgb.shape[1], out.rgb.shape[0], limits.max_side))
    flat = final.reshape(-1, 3)
    res = {"decoded": list(out.rgb.shape), "final": list(final.shape),
           "colors": [flat.min(0).tolist(), flat.max(0).tolist()]}
except Exception as exc:
    res = {"error": type(exc).__name__, "message": str(exc)}
res["seconds"] = time.perf_counter() - start
# VmHWM: the peak RSS of this process's own memory since its exec (ru_maxrss of RUSAGE_SELF would start from the
# RSS of the process that spawned it); plus the largest child it waited for (an over-estimate: the same inheritance).
hwm = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
res["peak_bytes"] = 1024 * (hwm + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps(res))
"""


def decode_in_fresh_process(path: Path, limits) -> dict:
    """`tasks.decode.decode_image(path, limits)` and the final downscale to ``limits.max_side``, in a fresh Python
    process that does nothing else: {"decoded": [H, W, 3], "final": [h, w, 3], "colors": [min, max]} or {"error",
    "message"}, with "seconds" and "peak_bytes" (its peak RSS plus its children's, nothing subtracted)."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _DECODE_PROBE, str(path), json.dumps(asdict(limits))], cwd=root,
                          env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"the decode probe failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
