"""Stage `ingest`: the user's photos -> ``rgb/<frame>.png`` (8-bit RGB, EXIF-rotated, size-limited).

Decoding is `tasks.decode.decode_image`: JPEG, PNG, WebP, TIFF, BMP, GIF's first frame, JPEG 2000, AVIF, PNM
(16-bit, grayscale, RGBA, CMYK ...) through Pillow with every limit checked from the header before any pixel is
decoded, Radiance HDR through OpenCV in an isolated, resource-limited process. A person that is a folder keeps
the photos that decode; files that do not are listed as warnings, and the stage fails only if no photo at all
decodes.
"""

from __future__ import annotations

from pathlib import Path

from dinar_core.errors import DinarError, InvalidImageError
from dinar_core.image import fit_within, resize_rgb
from tasks.artifacts import write_png
from tasks.config import PipelineConfig
from tasks.decode import decode_image
from tasks.runner import Stage, StageOutput
from tasks.workspace import Workspace, unique_ids

# Extensions tried as photos when a folder is scanned; anything else is reported, never silently guessed at.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".jp2", ".ppm",
                  ".pgm", ".pnm", ".heic", ".heif", ".avif", ".exr", ".hdr"}


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
            decoded = decode_image(src, cfg.ingest)
        except DinarError as exc:
            if len(sources) == 1:
                raise
            errors.append(exc)
            warns.append(f"{type(exc).__name__}: {exc} (photo skipped)")
            continue
        h, w = decoded.rgb.shape[:2]
        size = fit_within(w, h, cfg.ingest.max_side)
        rgb = resize_rgb(decoded.rgb, size)
        outputs.append(write_png(ws.rgb(frame), rgb))
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
