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
from tasks.config import PipelineConfig
from tasks.runner import Stage, StageOutput
from tasks.workspace import TMP_MARK, Workspace, atomic_path

MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp")


# ----------------------------------------------------------------------------------------------------------------
# File helpers shared with tasks.keypoints
# ----------------------------------------------------------------------------------------------------------------
def read_rgb(path: Path) -> np.ndarray:
    """An ``rgb/<frame>.png`` written by ingest -> (H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"could not read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """A ``segm/<frame>.png`` -> (H, W) bool (channel 0 above half, as DINAR reads it above 0.2)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f"could not read {path}")
    return (img if img.ndim == 2 else img[:, :, 0]) > 127


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Write (H, W, 3) uint8 RGB (or (H, W) uint8) atomically as PNG."""
    with atomic_path(path) as tmp:
        data = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
        if not cv2.imwrite(str(tmp), data):
            raise OSError(f"could not write {path}")
    return Path(path)


def remove_stale(folder: Path, keep: set[str], pattern: str) -> list[Path]:
    """Delete files matching `pattern` in `folder` whose names are not in `keep` (frames no longer in rgb/)."""
    removed = []
    if folder.is_dir():
        for p in folder.glob(pattern):
            if p.name not in keep and TMP_MARK not in p.name and p.is_file():
                p.unlink()
                removed.append(p)
    return removed


def frame_source_stem(ws: Workspace, frame: str) -> str | None:
    """The stem of the user's photo a frame came from (recorded by ingest), if known."""
    info = ws.stage_record("ingest").get("info", {}).get("frames", {}).get(frame, {})
    source = info.get("source")
    return Path(source).stem if source else None


def find_user_file(folder: Path, names: list[str], suffixes: tuple[str, ...]) -> Path | None:
    """The first ``folder/<name><suffix>`` that exists."""
    for name in names:
        for suffix in suffixes:
            p = folder / f"{name}{suffix}"
            if p.is_file():
                return p
    return None


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
            out = np.repeat((seg.mask.astype(np.uint8) * 255)[:, :, None], 3, axis=2)  # (H, W, 3) 0/255
            outputs.append(write_png(ws.segm(frame), out))
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
