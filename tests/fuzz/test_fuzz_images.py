"""Fuzzing `tasks.decode.decode_image` with mutated real images: byte flips, truncations, inserted chunks and
segments, huge declared sizes, on seeds of every format it reads (PNG in five modes, APNG, JPEG plain, progressive,
CMYK and EXIF-rotated, GIF animated, WebP lossy and animated lossless, TIFF deflate, 16-bit and multi-page, BMP,
PPM, Radiance HDR for the isolated OpenCV decoder), all made here with Pillow and OpenCV.

Property: a valid (H, W, 3) uint8 image within the limits, or a `DinarError` subclass naming the file and the fix;
never another exception. Each case has a 5 s deadline and may raise the peak RSS of this process by at most 1 GB
(the kernel's high-water mark is reset before each case through /proc/self/clear_refs). Seeded (derandomize, no
example database): every run draws the same cases. The number of cases comes from DINAR_FUZZ_EXAMPLES (default
300; the isolated OpenCV decoder, a process per case, gets a 50th of it).
"""

from __future__ import annotations

import io
import os
import re
import struct
import tempfile
import zlib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dinar_core.errors import DinarError
from tasks.decode import DecodeLimits, decode_image
from tests.fuzz.conftest import run_decoder

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on the corrupt metadata we make

EXAMPLES = int(os.environ.get("DINAR_FUZZ_EXAMPLES", "300"))
ISOLATED_EXAMPLES = EXAMPLES
LIMITS = replace(DecodeLimits.of(None), min_side=8, max_side=24, decode_timeout=5.0)
"""Seeds are 72 x 64: over twice max_side, so JPEG's draft and the strip-wise reduce run in every case."""
HUGE = [0, 1, 7, 65, 4096, 13000, 16383, 65535, 100_000, 2**31 - 1, 2**32 - 1]

_settings = dict(derandomize=True, database=None, deadline=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _photo(h: int = 64, w: int = 72) -> np.ndarray:
    """(h, w, 3) uint8: a gradient with noise (compresses like a photo, not like a flat colour)."""
    y, x = np.mgrid[0:h, 0:w]
    noise = np.random.default_rng(7).integers(0, 40, (h, w, 3))
    return (np.stack([x * 200 // w, y * 200 // h, (x + y) % 200], -1) + noise).astype(np.uint8)


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _seeds() -> dict[str, tuple[str, bytes]]:
    """name -> (format, bytes) of the valid files the mutations start from."""
    rgb = Image.fromarray(_photo())
    rgba = Image.fromarray(np.dstack([_photo(), np.linspace(0, 255, 72 * 64).reshape(64, 72).astype(np.uint8)]))
    frames = [Image.fromarray(np.roll(_photo(), 9 * i, axis=1)) for i in range(3)]
    exif = rgb.getexif()
    exif[0x0112] = 6
    hdr = cv2.imencode(".hdr", _photo().astype(np.float32) / 100.0)[1].tobytes()
    return {
        "png_rgb": ("PNG", _save(rgb, "PNG")), "png_rgba": ("PNG", _save(rgba, "PNG")),
        "png_p": ("PNG", _save(rgb.quantize(16), "PNG", transparency=3)),
        "png_l": ("PNG", _save(rgb.convert("L"), "PNG")),
        "png_16": ("PNG", _save(Image.fromarray(_photo()[..., 0].astype(np.uint16) * 257), "PNG")),
        "apng": ("PNG", _save(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50)),
        "jpeg": ("JPEG", _save(rgb, "JPEG", quality=90)),
        "jpeg_progressive": ("JPEG", _save(rgb, "JPEG", progressive=True, quality=80)),
        "jpeg_cmyk": ("JPEG", _save(rgb.convert("CMYK"), "JPEG")),
        "jpeg_exif": ("JPEG", _save(rgb, "JPEG", exif=exif.tobytes())),
        "gif": ("GIF", _save(frames[0], "GIF", save_all=True, append_images=frames[1:])),
        "webp": ("WEBP", _save(rgb, "WEBP", quality=80)),
        "webp_anim": ("WEBP", _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)),
        "tiff": ("TIFF", _save(rgb, "TIFF", compression="tiff_adobe_deflate")),
        "tiff_16": ("TIFF", _save(Image.fromarray(_photo()[..., 1].astype(np.uint16) * 257), "TIFF")),
        "tiff_pages": ("TIFF", _save(frames[0], "TIFF", save_all=True, append_images=frames[1:])),
        "bmp": ("BMP", _save(rgb, "BMP")), "ppm": ("PPM", _save(rgb, "PPM")),
        "hdr": ("HDR", hdr),
    }


SEEDS = _seeds()
PILLOW_SEEDS = sorted(n for n, (fmt, _) in SEEDS.items() if fmt != "HDR")


# ----------------------------------------------------------------------------------------------------------------
# Mutations
# ----------------------------------------------------------------------------------------------------------------
def _png_chunks(data: bytes) -> list[int]:
    """Offsets at which a PNG's chunks start (and the end of the last whole one)."""
    pos, starts = 8, []
    while pos + 12 <= len(data):
        starts.append(pos)
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")
    return starts + [min(pos, len(data))]


def _png_chunk(draw) -> bytes:
    kind = draw(st.sampled_from([b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"tEXt", b"zTXt", b"iTXt", b"iCCP",
                                 b"acTL", b"fcTL", b"fdAT", b"eXIf", b"pHYs", b"sBIT", b"gAMA", b"bKGD"]))
    if kind in (b"zTXt", b"iCCP") and draw(st.booleans()):  # a compressed payload, up to 4 MB inflated
        body = b"k\x00\x00" + zlib.compress(bytes(draw(st.integers(0, 4 << 20))), 1)
    elif kind in (b"acTL", b"fcTL", b"IHDR"):
        body = b"".join(struct.pack(">I", draw(st.sampled_from(HUGE))) for _ in range(draw(st.integers(1, 7))))
    else:
        body = draw(st.binary(max_size=64))
    crc = zlib.crc32(kind + body) if draw(st.booleans()) else draw(st.integers(0, 2**32 - 1))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _declare(fmt: str, data: bytearray, w: int, h: int) -> None:
    """Write a declared width x height into the header of `data` (in place) where the format keeps it."""
    if fmt == "PNG" and len(data) >= 33:
        data[16:24] = struct.pack(">II", w, h)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # a valid CRC: the size is believed
    elif fmt == "GIF" and len(data) >= 10:
        data[6:10] = struct.pack("<HH", w & 0xFFFF, h & 0xFFFF)
        desc = data.find(b"\x2c", 13)
        if 0 < desc and desc + 9 <= len(data):
            data[desc + 5:desc + 9] = struct.pack("<HH", w & 0xFFFF, h & 0xFFFF)
    elif fmt == "BMP" and len(data) >= 26:
        data[18:26] = struct.pack("<ii", w & 0x7FFFFFFF, h & 0x7FFFFFFF)
    elif fmt == "JPEG":
        sof = next((m.start() for m in re.finditer(rb"\xff[\xc0\xc1\xc2]", bytes(data))), -1)
        if sof > 0 and sof + 9 <= len(data):
            data[sof + 5:sof + 9] = struct.pack(">HH", h & 0xFFFF, w & 0xFFFF)
    elif fmt == "WEBP" and len(data) >= 30:
        if data[12:16] == b"VP8X":
            data[24:30] = ((w - 1) & 0xFFFFFF).to_bytes(3, "little") + ((h - 1) & 0xFFFFFF).to_bytes(3, "little")
        elif data[12:16] == b"VP8L":
            bits = int.from_bytes(data[21:25], "little") & ~0xFFFFFFF
            data[21:25] = (bits | ((w - 1) & 0x3FFF) | (((h - 1) & 0x3FFF) << 14)).to_bytes(4, "little")
        elif data[12:16] == b"VP8 ":
            data[26:30] = struct.pack("<HH", w & 0x3FFF, h & 0x3FFF)
    elif fmt == "TIFF" and data[:2] == b"II" and len(data) >= 8:
        ifd = struct.unpack("<I", data[4:8])[0]
        if ifd + 2 > len(data):
            return
        for i in range(struct.unpack("<H", data[ifd:ifd + 2])[0]):
            entry = ifd + 2 + 12 * i
            if entry + 12 > len(data):
                return
            tag, kind = struct.unpack("<HH", data[entry:entry + 4])
            if tag in (256, 257):
                value = w if tag == 256 else h
                data[entry + 8:entry + 12] = (struct.pack("<HH", value & 0xFFFF, 0) if kind == 3
                                              else struct.pack("<I", value & 0xFFFFFFFF))
    elif fmt == "PPM":
        data[:] = re.sub(rb"^P6\s+\d+\s+\d+", b"P6 %d %d" % (w, h), bytes(data))
    elif fmt == "HDR":
        data[:] = re.sub(rb"-Y \d+ \+X \d+", b"-Y %d +X %d" % (h, w), bytes(data))


@st.composite
def mutated(draw, names: list[str]) -> tuple[str, str, bytes]:
    """(seed name, mutation summary, bytes): a seed with 1-4 mutations."""
    name = draw(st.sampled_from(names))
    fmt, seed = SEEDS[name]
    data, done = bytearray(seed), []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "flips", "truncate", "insert", "chunk", "declare", "repeat"]))
        done.append(op)
        if op in ("flip", "flips") and data:
            for _ in range(1 if op == "flip" else draw(st.integers(2, 20))):
                pos = draw(st.integers(0, len(data) - 1))
                data[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif op == "insert":
            pos = draw(st.integers(0, len(data)))
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "chunk" and fmt == "PNG":
            pos = draw(st.sampled_from(_png_chunks(bytes(data)) or [8]))
            data[pos:pos] = _png_chunk(draw)
        elif op == "chunk":  # a marker segment / block of random content at a random place
            pos = draw(st.integers(0, len(data)))
            data[pos:pos] = b"\xff" + bytes([draw(st.integers(0xC0, 0xFE))]) + draw(st.binary(max_size=40))
        elif op == "declare":
            _declare(fmt, data, draw(st.sampled_from(HUGE)), draw(st.sampled_from(HUGE)))
        elif op == "repeat" and data:  # a slice repeated: long runs, duplicated frames/segments
            a = draw(st.integers(0, len(data) - 1))
            b = draw(st.integers(a, min(len(data), a + 256)))
            data[b:b] = data[a:b] * draw(st.integers(1, 50))
    return name, "+".join(done), bytes(data)


# ----------------------------------------------------------------------------------------------------------------
# The property
# ----------------------------------------------------------------------------------------------------------------
def _check(path: Path, outcomes: Counter) -> None:
    """decode_image(path) gives a valid image within the limits or a named DinarError; anything else fails (the
    memory bound, the CPU deadline and the figures of ``make fuzz`` are conftest's :func:`run_decoder`)."""
    errors: list[DinarError] = []

    def decode(p: Path):
        try:
            return decode_image(p, LIMITS)
        except DinarError as exc:
            errors.append(exc)
            raise

    out = run_decoder(decode, path)
    if out is None:
        exc = errors[0]
        assert path.name in str(exc) and "fix:" in str(exc), str(exc)
        outcomes[type(exc).__name__] += 1
        return
    rgb, (w, h) = out.rgb, out.original_size
    assert isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.flags.c_contiguous and rgb.size > 0
    assert min(w, h) >= LIMITS.min_side and w * h <= LIMITS.max_pixels
    assert max(rgb.shape[:2]) <= 2 * LIMITS.max_side
    outcomes["ok"] += 1


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory(prefix="dinar-fuzz-images-") as tmp:
        yield Path(tmp)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_decodes(name, scratch):
    fmt, data = SEEDS[name]
    path = scratch / f"seed-{name}"
    path.write_bytes(data)
    out = decode_image(path, LIMITS)
    assert out.original_size == (72, 64) and out.rgb.shape[2] == 3
    assert out.exif_rotated == (name == "jpeg_exif")
    assert out.decoder == ("opencv" if fmt == "HDR" else f"pillow:{fmt}")


def _fuzz(names: list[str], examples: int, scratch: Path) -> Counter:
    outcomes: Counter = Counter()

    @settings(max_examples=examples, **_settings)
    @given(case=mutated(names))
    def run(case):
        name, _, data = case
        path = scratch / f"case-{name}"
        path.write_bytes(data)
        _check(path, outcomes)

    run()
    print(f"\n{sum(outcomes.values())} decodes of mutated {', '.join(names)}: {dict(outcomes.most_common())}")
    return outcomes


def test_fuzz_pillow_formats(scratch):
    outcomes = _fuzz(PILLOW_SEEDS, EXAMPLES, scratch)
    if EXAMPLES >= 100:  # the mutations reach both sides of the property (0 ok would mean a broken decoder)
        assert outcomes["ok"] > 0 and outcomes["InvalidImageError"] > 0


def test_fuzz_isolated_opencv_decoder(scratch):
    outcomes = _fuzz(["hdr"], ISOLATED_EXAMPLES, scratch)
    assert sum(outcomes.values()) >= ISOLATED_EXAMPLES
