"""Stage `ingest`: the user's photos -> ``rgb/<frame>.png`` (8-bit RGB, EXIF-rotated, size-limited).

Decodes anything Pillow can read (JPEG, PNG, WebP, TIFF, BMP, GIF's first frame, 16-bit, grayscale, RGBA, CMYK)
and falls back to OpenCV for what Pillow cannot. The decompression-bomb check reads only the header, before any
pixel is decoded. A person that is a folder keeps the photos that decode; files that do not are listed as
warnings, and the stage fails only if no photo at all decodes.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from dinar_core.errors import DinarError, ImageTooLargeError, ImageTooSmallError, InvalidImageError
from dinar_core.image import fit_within, resize_rgb, to_rgb8
from tasks.config import PipelineConfig
from tasks.runner import Stage, StageOutput
from tasks.workspace import Workspace, atomic_path, unique_ids

# Extensions tried as photos when a folder is scanned; anything else is reported, never silently guessed at.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".jp2", ".ppm",
                  ".pgm", ".pnm", ".heic", ".heif", ".avif", ".exr", ".hdr"}


@dataclass
class DecodedImage:
    """A decoded photo. rgb: (H, W, 3) uint8."""

    rgb: np.ndarray
    original_size: tuple[int, int]
    """(w, h) of the stored pixels before EXIF rotation and downscaling."""
    exif_rotated: bool
    decoder: str


def _check_size(path: Path, width: int, height: int, cfg_min: int, cfg_max_pixels: int) -> None:
    if width * height > cfg_max_pixels:
        raise ImageTooLargeError(
            f"{path.name} declares {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{cfg_max_pixels:,} (a decompression bomb or a scan far larger than a body needs)",
            fix="downscale the photo, or raise ingest.max_pixels if you trust the file",
        )
    if min(width, height) < cfg_min:
        raise ImageTooSmallError(
            f"{path.name} is {width}x{height} pixels; the shorter side must be at least {cfg_min}",
            fix="use a larger photo of the person (a full body needs a few hundred pixels of height)",
        )


def decode_image(path: Path, min_side: int = 64, max_pixels: int = 178_956_970) -> DecodedImage:
    """Decode the photo at `path` (any supported format) into 8-bit RGB with EXIF orientation applied."""
    path = Path(path)
    if not path.is_file():
        raise InvalidImageError(f"{path} does not exist or is not a file", fix="check the path")
    if path.stat().st_size == 0:
        raise InvalidImageError(f"{path.name} is empty (0 bytes)", fix="copy the photo again; the file is empty")
    pil_error: Exception | None = None
    try:
        with warnings.catch_warnings():
            # We apply our own limit from the header below; silence Pillow's generic bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                _check_size(path, im.width, im.height, 1, max_pixels)
                original = (im.width, im.height)
                im.seek(0)
                oriented = ImageOps.exif_transpose(im)
                rotated = oriented.size != im.size or (im.getexif().get(0x0112, 1) not in (None, 1))
                mode = oriented.mode
                if mode == "CMYK" or mode == "YCbCr" or mode == "LAB" or mode == "HSV":
                    oriented = oriented.convert("RGB")
                elif mode == "P" or mode == "PA":
                    oriented = oriented.convert("RGBA")
                elif mode == "1":
                    oriented = oriented.convert("L")
                elif mode.startswith("I;16"):
                    oriented = oriented.convert("I")
                oriented.load()
                pixels = np.asarray(oriented)  # mode "I" (16/32-bit) arrives as int32, read as 16-bit
                rgb = to_rgb8(pixels)
                decoder = f"pillow:{im.format}"
    except (ImageTooLargeError, ImageTooSmallError):
        raise
    except Image.DecompressionBombError as exc:  # Pillow refuses headers over twice its own limit itself
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(pixels.group(1)):,}" if pixels else "too many"
        raise ImageTooLargeError(
            f"{path.name} declares {count} pixels, over the limit of {max_pixels:,} (a decompression bomb or a "
            f"scan far larger than a body needs)",
            fix="downscale the photo, or raise ingest.max_pixels if you trust the file") from exc
    except Exception as exc:  # not a format Pillow reads, or a broken file: try OpenCV before giving up
        pil_error = exc
        data = np.fromfile(str(path), dtype=np.uint8)
        try:
            pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
        except cv2.error:
            pixels = None
        if pixels is None:
            raise InvalidImageError(
                f"{path.name} is not a readable image ({type(pil_error).__name__}: {pil_error})",
                fix="re-export the photo as JPEG or PNG; the file may be truncated or not an image at all",
            ) from pil_error
        original = (pixels.shape[1], pixels.shape[0])
        _check_size(path, *original, 1, max_pixels)
        if pixels.ndim == 3 and pixels.shape[2] >= 3:  # OpenCV gives BGR(A)
            pixels = pixels[:, :, [2, 1, 0] + ([3] if pixels.shape[2] == 4 else [])]
        rgb = to_rgb8(pixels)
        rotated = False
        decoder = "opencv"
    _check_size(path, rgb.shape[1], rgb.shape[0], min_side, max_pixels)
    return DecodedImage(rgb=rgb, original_size=original, exif_rotated=bool(rotated), decoder=decoder)


# ----------------------------------------------------------------------------------------------------------------
# The stage
# ----------------------------------------------------------------------------------------------------------------
def ingest_inputs(ws: Workspace, cfg: PipelineConfig) -> list[Path]:
    return ws.sources()


def ingest(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    """Decode the person's source photos (from the manifest) into ``rgb/<frame>.png``."""
    sources = ws.sources()
    if not sources:
        raise InvalidImageError(f"person {ws.person} has no photos", fix="put at least one photo in its folder")
    # A single photo keeps the person id as its frame id (DINAR's person_id = frame name); a folder names frames
    # after its files.
    frames = [ws.person] if len(sources) == 1 else unique_ids([s.stem for s in sources])
    outputs, warns, info, errors = [], [], {}, []
    for frame, src in zip(frames, sources):
        try:
            decoded = decode_image(src, cfg.ingest.min_side, cfg.ingest.max_pixels)
        except DinarError as exc:
            if len(sources) == 1:
                raise
            errors.append(exc)
            warns.append(f"{type(exc).__name__}: {exc} (photo skipped)")
            continue
        h, w = decoded.rgb.shape[:2]
        size = fit_within(w, h, cfg.ingest.max_side)
        rgb = resize_rgb(decoded.rgb, size)
        out = ws.rgb(frame)
        with atomic_path(out) as tmp:
            if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {out}")
        outputs.append(out)
        info[frame] = {"source": src.name, "decoder": decoded.decoder, "original_size": list(decoded.original_size),
                       "size": list(size), "downscaled": size != (w, h), "exif_rotated": decoded.exif_rotated}
    if not outputs:
        first = errors[0]
        raise type(first)(f"none of the {len(sources)} photos of {ws.person} could be read; first: {first}")
    # Frames whose photo is gone (or no longer decodes) must not linger for the next stages.
    ws.remove_stale(ws.rgb_dir, "*.png", keep={p.name for p in outputs})  # never through a symbolic link
    return StageOutput(outputs=outputs, warnings=warns, info={"frames": info})


STAGE = Stage(name="ingest", version="1", after=(), sections=("ingest",), inputs=ingest_inputs, run=ingest,
              tools=("pillow", "opencv-python-headless"))
