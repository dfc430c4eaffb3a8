"""Small image files made by the tests themselves."""

import struct
import zlib
from pathlib import Path

import numpy as np


def gradient_photo(h: int = 120, w: int = 80) -> np.ndarray:
    """(h, w, 3) uint8 smooth colour ramp: an image with no person in it."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], -1).astype(np.uint8)


def png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG whose header declares w x h pixels, with a tiny (invalid) body: a decompression bomb's signature."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path
