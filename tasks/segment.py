"""Stage `segment`: ``rgb/<frame>.png`` -> ``segm/<frame>.png`` (the main person, 0/255 in all three channels).

Backends (``segment.backend``): ``mediapipe`` (bundled models, offline; pose segmentation by default),
``rembg`` (a local U2-Net ONNX file), ``precomputed`` (the user's masks ``segment.masks_dir/<frame>.png``: binary,
Graphonomy label maps or colour maps). Whatever the backend, only the largest person is kept; another person in
view gives a ``MultiplePeople`` warning, no person a `NoPersonError` naming the photo.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np

from dinar_core.errors import MaskError
from dinar_core.segmentation import binarize_user_mask, segment_person, select_person
from tasks.artifacts import find_user_file, frame_source_stem, read_rgb, remove_stale, write_mask
from tasks.config import PipelineConfig
from tasks.runner import Stage, StageOutput
from tasks.workspace import Workspace

MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp")


def _user_mask_path(ws: Workspace, cfg: PipelineConfig, frame: str) -> Path | None:
    folder = Path(cfg.segment.masks_dir).expanduser()
    names = [frame] + [s for s in [frame_source_stem(ws, frame)] if s and s != frame]
    return find_user_file(folder, names, MASK_SUFFIXES)


def load_user_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The user's mask at `path` -> (H, W) bool at `size` = (w, h) of the stored photo.

    A mask of another size but the same aspect ratio (the photo was downscaled by ingest) is resized with nearest
    neighbours; any other size is a `MaskError`."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise MaskError(f"the mask {path} cannot be read as an image", fix="save the mask as a PNG")
    if raw.ndim == 3 and raw.shape[2] >= 3:  # OpenCV's BGR(A) -> RGB(A), so colour maps read as they look
        raw = raw[:, :, [2, 1, 0] + ([3] if raw.shape[2] == 4 else [])]
    mask = binarize_user_mask(raw)
    w, h = size
    mh, mw = mask.shape
    if (mw, mh) != (w, h):
        if abs(mw / mh - w / h) > 0.01 * (w / h):
            raise MaskError(f"the mask {path} is {mw}x{mh} but its photo is stored as {w}x{h} (another shape)",
                            fix="give a mask computed on the same photo (same aspect ratio)")
        mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    return mask


# ----------------------------------------------------------------------------------------------------------------
# The stage
# ----------------------------------------------------------------------------------------------------------------
def segment_inputs(ws: Workspace, cfg: PipelineConfig) -> list[Path]:
    """The stored photos, plus the user's masks for the `precomputed` backend."""
    frames = ws.frames()
    inputs = [ws.rgb(f) for f in frames]
    if cfg.segment.backend == "precomputed" and cfg.segment.masks_dir:
        inputs += [p for f in frames if (p := _user_mask_path(ws, cfg, f)) is not None]
    return inputs


def _make_segmenter(cfg: PipelineConfig):
    c = cfg.segment
    if c.backend == "mediapipe":
        from dinar_core.segmentation.mediapipe import MediapipeSegmenter

        return MediapipeSegmenter(c.mediapipe_model)
    if c.backend == "rembg":
        from dinar_core.segmentation.rembg import RembgSegmenter

        return RembgSegmenter(c.rembg_model, device=c.device)
    return None


def segment(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    """Write ``segm/<frame>.png`` for every frame in ``rgb/``."""
    c = cfg.segment
    frames = ws.frames()
    if c.backend == "precomputed" and not c.masks_dir:
        raise MaskError("segment.backend=precomputed needs segment.masks_dir",
                        fix="set segment.masks_dir=/folder/with/<frame>.png masks")
    outputs, warns, info = [], [], {}
    t_all = time.perf_counter()
    with ExitStack() as stack:
        segmenter = _make_segmenter(cfg)
        if segmenter is not None:
            stack.callback(segmenter.close)  # one model per stage call, closed even when a frame fails
        for frame in frames:
            t0 = time.perf_counter()
            rgb_path = ws.rgb(frame)
            rgb = read_rgb(rgb_path)
            h, w = rgb.shape[:2]
            if segmenter is None:
                src = _user_mask_path(ws, cfg, frame)
                if src is None:
                    raise MaskError(f"no mask for frame {frame!r} in {c.masks_dir} (looked for {frame}.png)",
                                    fix=f"add {frame}.png to segment.masks_dir or use segment.backend=mediapipe")
                seg = select_person([load_user_mask(src, (w, h))], c.min_person_fraction, c.second_person_fraction,
                                    name=str(src))
            else:
                seg = segment_person(rgb, segmenter, c.threshold, c.min_person_fraction, c.second_person_fraction,
                                     name=f"{ws.person}/{ws.rel(rgb_path)}")
            outputs.append(write_mask(ws.segm(frame), seg.mask))
            warns.extend(seg.warnings)
            info[frame] = {"fraction": round(seg.fraction, 4), "box": list(seg.box), "people": seg.people,
                           "seconds": round(time.perf_counter() - t0, 3)}
    remove_stale(ws.segm_dir, {p.name for p in outputs}, "*.png")
    seconds = time.perf_counter() - t_all
    return StageOutput(outputs=outputs, warnings=warns,
                       info={"backend": c.backend, "frames": info,
                             "seconds_per_frame": round(seconds / max(1, len(frames)), 3)})


STAGE = Stage(name="segment", version="1", after=("ingest",), sections=("segment",), inputs=segment_inputs,
              run=segment, tools=("mediapipe", "opencv-python-headless"))
