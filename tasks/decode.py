"""Untrusted photo files -> 8-bit RGB, within limits checked before any pixel is decoded.

Checked before decoding, in this order: the file size (``ingest.max_file_bytes``); the format, by content (Pillow
opens only `PILLOW_FORMATS`, OpenCV is asked only about `OPENCV_SIGNATURES`, formats Pillow lacks); the width x
height the header declares (``ingest.max_pixels``, ``ingest.min_side``); the memory the decoded pixels will take
(``ingest.decode_memory``). Only the first frame of an animated or multi-page file is read. Pillow's PNG text-chunk
limits are kept tight (`MAX_TEXT_CHUNK`, `MAX_TEXT_MEMORY` below): a zTXt chunk that inflates to hundreds of MB is
refused after 1 MB.

While decoding, an image far larger than ``ingest.max_side`` is reduced by a whole factor (JPEG by libjpeg's DCT
scaling, `draft`; other formats by a box `reduce`, one strip at a time), so the full-resolution image exists once,
in its stored mode, and no full-resolution float or RGB copy is made. The reduced image keeps its longer side above
``max_side`` (`dinar_core.image.reduction_factor`); ingest's area filter makes the final size.

OpenCV, which a crafted file can crash (a mutated animated PNG segfaults OpenCV 4.11), never runs in this process:
`decode_isolated` runs it in a throw-away process (forked by the `tasks.decode_child` server) under an address-space
limit and CPU and wall-clock limits; its death or timeout is a `DecoderCrashedError` / `DecodeTimeoutError` for
that photo only.
This module imports neither torch nor the workspace: decoding costs what the photo costs.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from dinar_core.errors import (DecoderCrashedError, DecodeTimeoutError, DinarError, ImageTooLargeError,
                               ImageTooSmallError, InvalidImageError)
from dinar_core.image import CHUNK_PIXELS, float_peak, reduction_factor, to_rgb8

PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "JPEG2000", "PPM", "AVIF")
"""The formats Pillow may parse (JPEG includes MPO, PPM includes PGM, PBM and grayscale PFM). Pillow's other plugins (EPS runs
Ghostscript, PSD, TGA, ICO, ...) are never offered untrusted bytes, whatever the file is called."""
OPENCV_SIGNATURES = (b"#?RADIANCE", b"#?RGBE", b"v/1\x01")
"""File starts (Radiance HDR, OpenEXR) for which the isolated OpenCV decoder is tried; nothing else reaches it.
(opencv-python ships OpenEXR disabled unless OPENCV_IO_ENABLE_OPENEXR=1: an EXR then gets OpenCV's refusal.)"""

MAX_TEXT_CHUNK = 1 << 20
"""Largest decompressed PNG text or ICC chunk Pillow accepts (Pillow's default; ICC profiles reach ~0.5 MB)."""
MAX_TEXT_MEMORY = 8 << 20
"""Largest total of decompressed PNG text chunks in one file (Pillow's default is 64 MB)."""
PngImagePlugin.MAX_TEXT_CHUNK = MAX_TEXT_CHUNK
PngImagePlugin.MAX_TEXT_MEMORY = MAX_TEXT_MEMORY

# Bytes per pixel of Pillow's pixel buffer by mode (every mode not listed takes 4), and how many full-size copies
# a format's decoder holds at once (libwebp and libavif decode into their own buffer first, libtiff a strip or the
# whole image, OpenJPEG 4 bytes per sample).
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_DECODER_COPIES = {"WEBP": 2, "AVIF": 2, "TIFF": 2, "JPEG2000": 4}

# EXIF orientation -> the numpy view that shows the stored pixels upright (as PIL.ImageOps.exif_transpose).
_ORIENTATIONS = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
                 5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
                 7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}

_ROOT = Path(__file__).resolve().parents[1]
_UNREADABLE_FIX = "re-export the photo as JPEG or PNG; the file may be truncated or not an image at all"
_BOMB_FIX = "downscale the photo, or raise ingest.max_pixels if you trust the file"


@dataclass(frozen=True)
class DecodeLimits:
    """What decoding one untrusted photo may cost. The fields, their meaning and defaults are those of
    `tasks.config.IngestConfig`."""

    min_side: int
    max_side: int
    max_pixels: int
    max_file_bytes: int
    decode_memory: int
    decode_timeout: float

    @classmethod
    def of(cls, cfg: object | None = None) -> DecodeLimits:
        """The limits of an `IngestConfig` (or of anything with the same fields; None: the defaults)."""
        if isinstance(cfg, cls):
            return cfg
        if cfg is None:
            from tasks.config import IngestConfig  # here, not at the top: the config imports torch

            cfg = IngestConfig()
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})


@dataclass
class DecodedImage:
    """A decoded photo. rgb: (H, W, 3) uint8, upright; reduced by a whole factor when the photo is over twice
    ``max_side`` (its longer side then stays above ``max_side`` and at most twice it)."""

    rgb: np.ndarray
    original_size: tuple[int, int]
    """(w, h) of the stored pixels before EXIF rotation and downscaling."""
    exif_rotated: bool
    decoder: str


def decode_image(path: str | os.PathLike, limits: object | None = None) -> DecodedImage:
    """Decode the photo at `path` (any supported format) into 8-bit RGB with EXIF orientation applied.

    limits: the `IngestConfig` (or `DecodeLimits`) whose limits apply; None: the defaults.
    Raises `InvalidImageError` (or its `DecoderCrashedError`, `DecodeTimeoutError`), `ImageTooLargeError` or
    `ImageTooSmallError`, each naming the file and the fix; never another exception for bad bytes.
    """
    limits = DecodeLimits.of(limits)
    path = Path(path)
    head = _check_file(path, limits)
    try:
        with warnings.catch_warnings():
            # Our own limit applies from the header; silence Pillow's generic bomb warning (open, GIF frames).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=PILLOW_FORMATS) as im:
                return _decode_pillow(path, im, limits)
    except UnidentifiedImageError as exc:
        if not head.startswith(OPENCV_SIGNATURES):
            raise _unreadable(path, exc) from exc
    except DinarError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow refuses sizes over twice its own limit itself
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(pixels.group(1)):,}" if pixels else "too many"
        raise ImageTooLargeError(f"{path.name} declares {count} pixels, over the limit of {limits.max_pixels:,} (a "
                                 f"decompression bomb or a scan far larger than a body needs)", fix=_BOMB_FIX) from exc
    except MemoryError as exc:
        raise ImageTooLargeError(f"{path.name} ran out of memory while decoding",
                                 fix="downscale the photo, or lower ingest.decode_memory so that such photos are "
                                     "refused before decoding") from exc
    except Exception as exc:  # Pillow found the header or the data broken (truncated, bad checksum, bad palette ...)
        raise _unreadable(path, exc) from exc
    return decode_isolated(path, limits)


def _check_file(path: Path, limits: DecodeLimits) -> bytes:
    """The file's first 16 bytes, after checking that it is a regular file of a size within the limits."""
    if not path.is_file():
        raise InvalidImageError(f"{path} does not exist or is not a file", fix="check the path")
    size = path.stat().st_size
    if size == 0:
        raise InvalidImageError(f"{path.name} is empty (0 bytes)", fix="copy the photo again; the file is empty")
    if size > limits.max_file_bytes:
        raise ImageTooLargeError(f"{path.name} is {size:,} bytes, over ingest.max_file_bytes = "
                                 f"{limits.max_file_bytes:,}",
                                 fix="re-export the photo smaller (e.g. as JPEG), or raise ingest.max_file_bytes")
    with open(path, "rb") as fh:
        return fh.read(16)


def _check_size(path: Path, width: int, height: int, limits: DecodeLimits) -> None:
    """The declared size against ``max_pixels`` and ``min_side``, before any pixel is decoded."""
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"{path.name} declares {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{limits.max_pixels:,} (a decompression bomb or a scan far larger than a body needs)", fix=_BOMB_FIX)
    if min(width, height) < limits.min_side:
        raise ImageTooSmallError(
            f"{path.name} is {width}x{height} pixels; the shorter side must be at least {limits.min_side}",
            fix="use a larger photo of the person (a full body needs a few hundred pixels of height)")


def _unreadable(path: Path, exc: BaseException) -> InvalidImageError:
    return InvalidImageError(f"{path.name} is not a readable image ({type(exc).__name__}: {exc})",
                             fix=_UNREADABLE_FIX)


# ----------------------------------------------------------------------------------------------------------------
# Pillow, in this process: header checks, reduction while decoding, strip-wise conversion
# ----------------------------------------------------------------------------------------------------------------
def _decode_pillow(path: Path, im: Image.Image, limits: DecodeLimits) -> DecodedImage:
    original = im.size
    _check_size(path, *original, limits)
    orientation = _orientation(im)
    if max(original) > 2 * limits.max_side:  # JPEG: let libjpeg decode at 1/2, 1/4 or 1/8 (a no-op elsewhere)
        im.draft(im.mode, (limits.max_side + 1, 1) if original[0] >= original[1] else (1, limits.max_side + 1))
    need = im.width * im.height * _MODE_BYTES.get(im.mode, 4) * _DECODER_COPIES.get(im.format, 1)
    if need > limits.decode_memory:
        raise ImageTooLargeError(
            f"{path.name} ({im.width}x{im.height} {im.format} {im.mode}) needs about {need / 2**20:,.0f} MB to "
            f"decode, over ingest.decode_memory = {limits.decode_memory / 2**20:,.0f} MB",
            fix="downscale the photo, or raise ingest.decode_memory if the machine has the memory")
    im.load()  # the first frame only
    rgb = _pillow_rgb8(im, reduction_factor(*im.size, limits.max_side))
    upright = _ORIENTATIONS[orientation](rgb) if orientation in _ORIENTATIONS else rgb
    return DecodedImage(rgb=np.ascontiguousarray(upright), original_size=original,
                        exif_rotated=orientation in _ORIENTATIONS, decoder=f"pillow:{im.format}")


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1..8; 1 when absent or unreadable: a broken EXIF block does not cost the photo)."""
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) else 1


def _working_mode(mode: str) -> str:
    """The Pillow mode a stored mode is converted to before numpy: L, LA, RGB, RGBA, I (16-bit) or F."""
    if mode in ("L", "LA", "RGB", "RGBA", "I", "F"):
        return mode
    if mode.startswith("I;16"):
        return "I"
    if mode == "1":
        return "L"
    if mode in ("P", "PA") or mode.endswith(("A", "a")):  # palette (maybe transparent), premultiplied alpha
        return "RGBA"
    return "RGB"  # CMYK, YCbCr, LAB, HSV, RGBX


def _pillow_rgb8(im: Image.Image, factor: int) -> np.ndarray:
    """The loaded image as (ceil(h / factor), ceil(w / factor), 3) uint8, converted and box-reduced one strip of
    rows at a time (strips a multiple of `factor` rows high, so they join exactly as a whole-image reduce)."""
    w, h = im.size
    mode = _working_mode(im.mode)
    rows = max(1, CHUNK_PIXELS // (w * factor)) * factor
    boxes = [(0, y, w, min(h, y + rows)) for y in range(0, h, rows)]
    peak = max(float_peak(np.asarray(im.crop(box))) for box in boxes) if mode == "F" else None
    out = np.empty((math.ceil(h / factor), math.ceil(w / factor), 3), np.uint8)  # (H', W', 3)
    for box in boxes:
        strip = im.crop(box)
        if strip.mode != mode:
            strip = strip.convert(mode)
        if factor > 1:
            strip = strip.reduce(factor)
        y = box[1] // factor
        out[y:y + strip.height] = to_rgb8(np.asarray(strip), peak=peak)
    return out


# ----------------------------------------------------------------------------------------------------------------
# OpenCV, isolated in a child process
# ----------------------------------------------------------------------------------------------------------------
def decode_isolated(path: Path, limits: DecodeLimits) -> DecodedImage:
    """Decode `path` with OpenCV in a throw-away process (forked by `tasks.decode_child`'s server) limited to
    ``decode_memory`` bytes of address space beyond its own code and to ``decode_timeout`` seconds; its answer comes
    back as JSON and a ``.npy`` file (no pickle), checked before use. No EXIF rotation (as OpenCV's
    IMREAD_IGNORE_ORIENTATION)."""
    path = Path(path).resolve()
    with tempfile.TemporaryDirectory(prefix="dinar-decode-") as tmp:
        result, report, log = Path(tmp) / "rgb.npy", Path(tmp) / "answer.json", Path(tmp) / "stderr.txt"
        code = _SERVER.decode({"path": str(path), "out": str(result), "answer": str(report), "log": str(log),
                               "limits": asdict(limits), "fault": os.environ.get(FAULT_ENV)},
                              limits.decode_timeout)
        if code is None or code == -signal.SIGXCPU:
            raise DecodeTimeoutError(
                f"decoding {path.name} with OpenCV took over ingest.decode_timeout = {limits.decode_timeout:g} s "
                f"and was stopped", fix="re-export the photo as JPEG or PNG, or raise ingest.decode_timeout")
        answer = _read_answer(report)
        if code < 0 or answer is None:
            how = (f"was killed by signal {-code} ({signal.Signals(-code).name})" if -code in signal.valid_signals()
                   else f"exited with status {code} without an answer")
            stderr = _tail(log)
            raise DecoderCrashedError(
                f"OpenCV's decoder {how} on {path.name}: the file is damaged or crafted"
                + (f" (it said: {stderr})" if stderr else ""),
                fix="re-export the photo as JPEG or PNG with an image editor; the other photos are unaffected")
        if answer["status"] == "too_large":
            raise ImageTooLargeError(f"{path.name}: {answer['message']}",
                                     fix="downscale the photo, or raise ingest.decode_memory (memory) or "
                                         "ingest.max_pixels (size) if you trust the file")
        if answer["status"] != "ok":
            raise InvalidImageError(f"{path.name} is not a readable image (OpenCV: {answer['message']})",
                                    fix=_UNREADABLE_FIX)
        original = answer["original"]
        _check_size(path, *original, limits)
        rgb = _read_pixels(path, result, original, limits)
    return DecodedImage(rgb=rgb, original_size=tuple(original), exif_rotated=False, decoder="opencv")


class _DecoderServer:
    """This process's `tasks.decode_child` server, started at the first decode and restarted if it is gone; it ends
    when this process closes its stdin (at exit). Requests are serialised (a lock): each waits for its child."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def decode(self, request: dict, timeout: float) -> int | None:
        """The child's exit code for `request` (negative: killed by that signal; None: timed out)."""
        with self._lock:
            proc = self._running()
            try:
                proc.stdin.write((json.dumps(request) + "\n").encode())
                proc.stdin.flush()
                # the server kills a child at `timeout`; a server that does not answer well after it is stopped too
                ready = select.select([proc.stdout], [], [], timeout + 30)[0]
                line = proc.stdout.readline() if ready else b""
                return json.loads(line)["code"]
            except (OSError, ValueError, KeyError, TypeError):
                self.stop()
                raise DecoderCrashedError(
                    f"the OpenCV decoder server ({sys.executable} -m tasks.decode_child) stopped answering on "
                    f"{Path(request['path']).name}", fix="rerun; if it recurs, re-export the photo as JPEG or PNG")

    def _running(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            python_path = os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH")) if p)
            env = dict(os.environ, PYTHONPATH=python_path, OMP_NUM_THREADS="1")
            self._proc = subprocess.Popen([sys.executable, "-m", "tasks.decode_child"], cwd=_ROOT, env=env,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return self._proc

    def forget(self) -> None:
        """In a forked copy of this process: leave the parent's server to the parent (a new one starts on use)."""
        self._proc, self._lock = None, threading.Lock()

    def stop(self) -> None:
        """End the server (its stdin closed; killed if it does not go)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


_SERVER = _DecoderServer()
atexit.register(_SERVER.stop)
os.register_at_fork(after_in_child=_SERVER.forget)
FAULT_ENV = "DINAR_TEST_DECODER_FAULT"
"""Test-only: its value, read at each decode, is passed to the decoder child as the fault to feign (see
`tasks.decode_child`)."""


def _read_answer(report: Path) -> dict | None:
    """The child's JSON answer, or None when it wrote none (or something that is not one)."""
    try:
        with open(report, "rb") as fh:
            text = fh.read(1 << 16)
    except FileNotFoundError:
        return None
    try:
        answer = json.loads(text)
    except ValueError:
        return None
    ok = isinstance(answer, dict) and answer.get("status") in ("ok", "invalid", "too_large")
    if ok and answer["status"] == "ok":
        original = answer.get("original")
        ok = (isinstance(original, list) and len(original) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in original))
    elif ok:
        ok = isinstance(answer.get("message"), str)
    return answer if ok else None


def _read_pixels(path: Path, result: Path, original: list[int], limits: DecodeLimits) -> np.ndarray:
    """The child's (H, W, 3) uint8 pixels, checked against what it declared before they are trusted."""
    factor = reduction_factor(original[0], original[1], limits.max_side)
    shape = (math.ceil(original[1] / factor), math.ceil(original[0] / factor), 3)
    if not result.is_file() or result.stat().st_size > math.prod(shape) + 4096:
        raise DecoderCrashedError(f"OpenCV's decoder gave no usable pixels for {path.name}", fix=_UNREADABLE_FIX)
    try:
        rgb = np.load(result, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:  # a header that does not match its data
        raise DecoderCrashedError(f"OpenCV's decoder gave unreadable pixels for {path.name} ({exc})",
                                  fix=_UNREADABLE_FIX) from exc
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.shape != shape:
        got = f"{rgb.shape} {rgb.dtype}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise DecoderCrashedError(f"OpenCV's decoder gave pixels of shape {got} for {path.name}, expected {shape} "
                                  f"uint8", fix=_UNREADABLE_FIX)
    return rgb


def _tail(log: Path, size: int = 400) -> str:
    """The last `size` characters the child wrote to stderr, on one line."""
    if not log.is_file():
        return ""
    with open(log, "rb") as fh:
        fh.seek(max(0, log.stat().st_size - size))
        return " ".join(fh.read().decode("utf-8", "replace").split())
