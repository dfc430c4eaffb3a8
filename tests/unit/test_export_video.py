"""MP4 writing: read back with the stated frame count, size and fps; even sizes; atomic; both backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dinar_core.export.video import VideoConfig, pyav_has_h264, read_video_frames, read_video_info, write_mp4


def _frames(t: int, h: int, w: int) -> np.ndarray:
    """Smooth moving gradients (H.264 keeps them close, so pixel checks are meaningful)."""
    y, x = np.mgrid[0:h, 0:w]
    out = np.empty((t, h, w, 3), np.uint8)
    for k in range(t):
        out[k, ..., 0] = (x * 255 // max(w - 1, 1) + 8 * k) % 256
        out[k, ..., 1] = y * 255 // max(h - 1, 1)
        out[k, ..., 2] = 128
    return out


@pytest.mark.parametrize("backend", ["pyav", "imageio"])
def test_mp4_reads_back_with_stated_count_size_fps(tmp_path, backend):
    if backend == "pyav" and not pyav_has_h264():
        pytest.skip("PyAV without libx264")
    frames = _frames(9, 48, 64)
    info = write_mp4(tmp_path / "video.mp4", frames, VideoConfig(fps=25.0, backend=backend))
    assert (info.num_frames, info.width, info.height, info.backend) == (9, 64, 48, backend)
    back = read_video_info(tmp_path / "video.mp4")
    assert (back.num_frames, back.width, back.height) == (9, 64, 48)
    assert back.fps == pytest.approx(25.0)
    assert (back.codec, back.pix_fmt) == ("h264", "yuv420p")
    decoded = read_video_frames(tmp_path / "video.mp4")
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 4.0  # the right frames, in order
    assert not list(tmp_path.glob("*.tmp-*"))


def test_odd_sizes_are_padded_and_iterators_stream(tmp_path):
    frames = _frames(5, 33, 47)

    def gen():
        for f in frames:
            yield torch.from_numpy(f)  # tensors are accepted too

    info = write_mp4(tmp_path / "odd.mp4", gen(), VideoConfig(fps=12.0))
    assert (info.width, info.height, info.num_frames) == (48, 34, 5)
    decoded = read_video_frames(tmp_path / "odd.mp4")
    assert decoded.shape == (5, 34, 48, 3)
    assert np.abs(decoded[:, :33, :47].astype(int) - frames).mean() < 4.0
    # the padding repeats the edge instead of adding a black line
    assert np.abs(decoded[:, 33, :47].astype(int) - frames[:, 32]).mean() < 6.0


def test_bad_input_leaves_nothing_behind(tmp_path):
    target = tmp_path / "video.mp4"
    with pytest.raises(ValueError, match="no frames"):
        write_mp4(target, iter(()))
    assert not target.exists()
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        write_mp4(target, np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(target, np.zeros((2, 8, 8, 3), np.float32))
    write_mp4(target, _frames(3, 16, 16))  # a finished video ...
    before = target.read_bytes()

    def broken():
        yield from _frames(4, 16, 16)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_mp4(target, broken())  # ... is not replaced by a half-written one
    assert target.read_bytes() == before
    with pytest.raises(ValueError, match="frame 2 is"):
        write_mp4(tmp_path / "sizes.mp4", [np.zeros((8, 8, 3), np.uint8)] * 2 + [np.zeros((8, 10, 3), np.uint8)])
    assert not (tmp_path / "sizes.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video.mp4"]
