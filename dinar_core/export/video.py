"""MP4 writing and reading: H.264 in yuv420p, the format every browser and player accepts.

:func:`write_mp4` takes frames as one (T, H, W, 3) uint8 array or any iterable of (H, W, 3) uint8 frames (so a
renderer can stream frames without holding the video in memory). yuv420p needs even width and height; odd sizes
are padded by one row/column (edge pixels repeated), never cropped. The file is written under a temporary name and
renamed into place, so an interrupted run never leaves a truncated ``video.mp4``.

Backends: PyAV (the default, ``av`` links FFmpeg's libx264 in-process) and imageio-ffmpeg (pipes raw frames to its
bundled ffmpeg binary), used when PyAV is missing or has no libx264 (``backend='auto'``).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Literal

import numpy as np

from dinar_core.fileio import atomic_target

VideoBackend = Literal["auto", "pyav", "imageio"]


@dataclass
class VideoConfig:
    """How videos are encoded.

    fps: frames per second (DINAR's videos: 30).
    crf: x264 constant rate factor, 0 (lossless) .. 51; 18 looks visually lossless, 23 is x264's default.
    preset: x264 speed/size trade-off ('ultrafast' .. 'veryslow'); 'veryfast' keeps a 10 s 512^2 video to a couple of
        seconds on a laptop CPU at a small size cost.
    backend: 'auto' (PyAV, else imageio-ffmpeg) | 'pyav' | 'imageio'.
    faststart: move the index to the front of the file so browsers start playing before the download ends.
    """

    fps: float = 30.0
    crf: int = 18
    preset: str = "veryfast"
    backend: VideoBackend = "auto"
    faststart: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in 0..51, got {self.crf}")
        if self.backend not in ("auto", "pyav", "imageio"):
            raise ValueError(f"backend must be 'auto', 'pyav' or 'imageio', got {self.backend!r}")


@dataclass
class VideoInfo:
    """What a video holds (as written, or as read back).

    path: the file. num_frames: frames. width, height: pixels (the encoded size, even). fps: frames per second.
    codec: e.g. 'h264'. pix_fmt: e.g. 'yuv420p'. seconds: encode time (written) or 0.0 (read back).
    backend: which writer produced it ('' when read back).
    """

    path: Path
    num_frames: int
    width: int
    height: int
    fps: float
    codec: str
    pix_fmt: str
    seconds: float = 0.0
    backend: str = ""


def pyav_has_h264() -> bool:
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


def _frames(frames: np.ndarray | Iterable) -> Iterator[np.ndarray]:
    """Yield validated (H, W, 3) uint8 frames, all the size of the first one."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[3] != 3:
            raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    size = None
    for i, frame in enumerate(frames):
        if hasattr(frame, "detach"):
            frame = frame.detach().cpu().numpy()
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame {i} must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if size is None:
            size = frame.shape[:2]
        elif frame.shape[:2] != size:
            raise ValueError(f"frame {i} is {frame.shape[1]}x{frame.shape[0]}, frame 0 is {size[1]}x{size[0]}")
        yield frame


def _even(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> even height and width by repeating the last row / column (yuv420p subsamples 2x2)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _to_video_frame(frame: np.ndarray):
    """(H, W, 3) uint8 RGB (even sizes) -> an av.VideoFrame in yuv420p.

    OpenCV's RGB -> I420 conversion (BT.601, limited range, as FFmpeg's default) is ~4x faster here than letting
    libswscale convert rgb24 inside the encoder call, and gives the same pixels within rounding.
    """
    import av
    import cv2

    return av.VideoFrame.from_ndarray(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420),
                                      format="yuv420p")


def _write_pyav(tmp: Path, frames: Iterator[np.ndarray], config: VideoConfig) -> tuple[int, int, int]:
    import av

    count, width, height = 0, 0, 0
    options = {"movflags": "+faststart"} if config.faststart else {}
    with av.open(str(tmp), mode="w", format="mp4", options=options) as container:
        stream = None
        for frame in frames:
            frame = _even(frame)
            if stream is None:
                height, width = frame.shape[:2]
                stream = container.add_stream("libx264", rate=Fraction(config.fps).limit_denominator(1001))
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.options = {"crf": str(config.crf), "preset": config.preset}
                stream.thread_type = "AUTO"  # x264 frame threads on every core
            for packet in stream.encode(_to_video_frame(frame)):
                container.mux(packet)
            count += 1
        if stream is not None:
            for packet in stream.encode():  # flush the encoder's delayed frames
                container.mux(packet)
    return count, width, height


def _write_imageio(tmp: Path, frames: Iterator[np.ndarray], config: VideoConfig) -> tuple[int, int, int]:
    import imageio_ffmpeg

    count, width, height, writer = 0, 0, 0, None
    params = ["-crf", str(config.crf), "-preset", config.preset]
    if config.faststart:
        params += ["-movflags", "+faststart"]
    try:
        for frame in frames:
            frame = _even(frame)
            if writer is None:
                height, width = frame.shape[:2]
                writer = imageio_ffmpeg.write_frames(str(tmp), (width, height), fps=config.fps, codec="libx264",
                                                     pix_fmt_in="rgb24", pix_fmt_out="yuv420p", quality=None,
                                                     macro_block_size=1, output_params=params,
                                                     ffmpeg_log_level="error")
                writer.send(None)  # start ffmpeg
            writer.send(np.ascontiguousarray(frame))
            count += 1
    finally:
        if writer is not None:
            writer.close()
    return count, width, height


def write_mp4(path: str | Path, frames: np.ndarray | Iterable, config: VideoConfig | None = None) -> VideoInfo:
    """Encode ``frames`` ((T, H, W, 3) uint8, or an iterable of (H, W, 3) uint8) to an H.264 MP4 at ``path``.

    Raises ValueError for malformed or zero frames (nothing is written then) and RuntimeError when no backend can
    encode H.264.
    """
    config = config or VideoConfig()
    backend = config.backend
    if backend == "auto":
        backend = "pyav" if pyav_has_h264() else "imageio"
    writer = {"pyav": _write_pyav, "imageio": _write_imageio}[backend]
    if backend == "pyav" and not pyav_has_h264():
        raise RuntimeError("PyAV is not installed or has no libx264 encoder; use backend='imageio'")
    path = Path(path)
    start = time.perf_counter()
    stream = _frames(frames)
    first = next(stream, None)  # fail before creating any file when there is nothing to write
    if first is None:
        raise ValueError(f"no frames to write to {path}")
    with atomic_target(path) as tmp:
        count, width, height = writer(tmp, itertools.chain([first], stream), config)
    return VideoInfo(path=path, num_frames=count, width=width, height=height, fps=config.fps, codec="h264",
                     pix_fmt="yuv420p", seconds=time.perf_counter() - start, backend=backend)


def read_video_info(path: str | Path, decode: bool = True) -> VideoInfo:
    """Frame count, size, fps, codec and pixel format of a video (PyAV). ``decode=True`` counts frames by decoding
    them (exact); False trusts the container's frame count."""
    import av

    path = Path(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        if decode:
            count = sum(1 for _ in container.decode(stream))
        else:
            count = int(stream.frames)
        return VideoInfo(path=path, num_frames=count, width=stream.codec_context.width,
                         height=stream.codec_context.height, fps=fps, codec=stream.codec_context.name,
                         pix_fmt=str(stream.codec_context.pix_fmt))


def read_video_frames(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """Decode a video to (T, H, W, 3) uint8 RGB (PyAV); at most ``max_frames`` frames."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    if not frames:
        return np.zeros((0, 0, 0, 3), np.uint8)
    return np.stack(frames)
