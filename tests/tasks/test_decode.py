"""`tasks.decode`: limits before decoding, reduction while decoding, EXIF orientation, first frames, the format
allow-list and the isolated OpenCV decoder (its crash, timeout and memory limit are named errors)."""

from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

import dinar_core.image as image_mod
import tasks.decode as decode_mod
from dinar_core.errors import DecoderCrashedError, DecodeTimeoutError, ImageTooLargeError, InvalidImageError
from dinar_core.image import fit_within, reduction_factor, to_rgb8
from tasks.decode import FAULT_ENV, DecodeLimits, decode_image
from tasks.decode_child import FAULT_MARKER
from tests.helpers.images import gradient_photo, png_header_only

DEFAULTS = DecodeLimits.of(None)


def _noise(h, w, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


def _palette_image(indices, colors):
    """A "P" image of `indices` (H, W) uint8 over a random palette, index 5 transparent."""
    im = Image.fromarray(indices.astype(np.uint8), "L").convert("P")
    im.putpalette(np.random.default_rng(3).integers(0, 256, 3 * colors, dtype=np.uint8).tobytes())
    im.info["transparency"] = 5
    return im


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    im = Image.fromarray(_noise(70, 90))
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.png", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")).convert("RGB"))
    out = decode_image(tmp_path / "o.png")
    assert np.array_equal(out.rgb, expected) and out.exif_rotated == (orientation != 1)
    assert out.original_size == (90, 70)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "I;16"])
def test_reduction_while_decoding_equals_a_whole_image_reduce(tmp_path, mode):
    """A photo over twice max_side is box-reduced strip by strip (several strips here); the strips join into
    exactly the whole-image reduce, and the result keeps its longer side in (max_side, 2 * max_side]."""
    rgba = _noise(300, 4100, 4)
    rgba[..., 3] = np.where(rgba[..., 3] > 60, 255, rgba[..., 3])
    im = {"RGB": lambda: Image.fromarray(rgba[..., :3]), "RGBA": lambda: Image.fromarray(rgba),
          "P": lambda: _palette_image(rgba[..., 0] // 4, colors=64),
          "L": lambda: Image.fromarray(rgba[..., 0]),
          "I;16": lambda: Image.fromarray(rgba[..., 0].astype(np.uint16) * 257)}[mode]()
    im.save(tmp_path / "wide.png")
    limits = replace(DEFAULTS, max_side=1000)
    factor = reduction_factor(4100, 300, 1000)
    assert factor == 4 and decode_mod.CHUNK_PIXELS // (4100 * factor) < 300 // factor  # more than one strip
    work = {"P": "RGBA", "I;16": "I"}.get(mode, mode)
    expected = to_rgb8(np.asarray(Image.open(tmp_path / "wide.png").convert(work).reduce(factor)))
    out = decode_image(tmp_path / "wide.png", limits)
    assert out.rgb.shape == (75, 1025, 3) and np.array_equal(out.rgb, expected)
    assert out.original_size == (4100, 300) and 1000 < out.rgb.shape[1] <= 2000


def test_large_jpeg_is_scaled_by_libjpeg_while_decoding(tmp_path):
    Image.fromarray(cv2.resize(gradient_photo(30, 40), (4000, 3000))).save(tmp_path / "big.jpg", quality=95)
    out = decode_image(tmp_path / "big.jpg", replace(DEFAULTS, max_side=500))
    # draft at 1/4 (4000 // 501 = 7 -> 4): 1000 x 750; a full decode + reduce would give 572 x 429
    assert out.rgb.shape == (750, 1000, 3) and out.original_size == (4000, 3000)
    full = np.asarray(Image.open(tmp_path / "big.jpg").convert("RGB"))
    assert np.abs(out.rgb.astype(int) - cv2.resize(full, (1000, 750), interpolation=cv2.INTER_AREA)).mean() < 2


def test_float_image_is_normalised_by_its_global_peak_across_strips(tmp_path, monkeypatch):
    values = np.linspace(0.0, 1.0, 200 * 100, dtype=np.float32).reshape(200, 100)
    values[190, 5] = 8.0  # the peak, in the last strip only
    Image.fromarray(values, mode="F").save(tmp_path / "f.tiff")
    monkeypatch.setattr(decode_mod, "CHUNK_PIXELS", 1000)  # 10 rows per strip
    out = decode_image(tmp_path / "f.tiff")
    assert np.array_equal(out.rgb, to_rgb8(values))
    assert out.rgb[199, 99, 0] == round(255 / 8)


def test_to_rgb8_in_row_blocks_equals_one_block(monkeypatch):
    rng = np.random.default_rng(1)
    cases = [rng.integers(0, 65536, (50, 40, 3)).astype(np.uint16), rng.integers(0, 256, (50, 40, 4), np.uint8),
             rng.integers(0, 256, (50, 40, 2), np.uint8), (rng.random((50, 40)) * 3).astype(np.float32)]
    cases[3][45, 3] = np.nan
    whole = [to_rgb8(c) for c in cases]
    monkeypatch.setattr(image_mod, "CHUNK_PIXELS", 7 * 40)  # blocks of 7 rows
    for case, expected in zip(cases, whole):
        assert np.array_equal(to_rgb8(case), expected)


def test_limits_apply_before_any_pixel_is_decoded(tmp_path):
    """A header-only PNG (its pixel data is 64 bytes: decoding it fails) is refused for its declared memory,
    not for its broken data, so the check came first; an over-size file is refused before it is opened."""
    png_header_only(tmp_path / "wide.png", 9000, 9000)
    with pytest.raises(ImageTooLargeError, match=r"wide.png .*needs about 309 MB.*decode_memory = 100 MB"):
        decode_image(tmp_path / "wide.png", replace(DEFAULTS, decode_memory=100 * 2**20))
    with pytest.raises(InvalidImageError):
        decode_image(tmp_path / "wide.png")  # within the limits, the broken data then fails
    Image.fromarray(_noise(100, 100)).save(tmp_path / "photo.png")
    with pytest.raises(ImageTooLargeError, match="photo.png is 30,.* bytes, over ingest.max_file_bytes = 1,000"):
        decode_image(tmp_path / "photo.png", replace(DEFAULTS, max_file_bytes=1000))


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "TIFF"])
def test_animated_files_give_their_first_frame(tmp_path, fmt):
    frames = [Image.new("RGB", (80, 80), color) for color in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    path = tmp_path / f"anim.{fmt.lower()}"
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], **({"lossless": True} if fmt == "WEBP"
                                                                          else {}))
    assert getattr(Image.open(path), "n_frames", 1) == 3
    out = decode_image(path)
    assert out.rgb.shape == (80, 80, 3) and np.abs(out.rgb.astype(int) - [250, 0, 0]).max() <= 2


@pytest.mark.parametrize("fmt", ["TGA", "ICO", "PCX"])
def test_formats_outside_the_allow_list_are_not_parsed(tmp_path, fmt):
    path = tmp_path / "photo.png"  # whatever the name says
    Image.fromarray(_noise(64, 64)).save(path, fmt)
    assert Image.open(path).format == fmt  # Pillow itself would read it
    with pytest.raises(InvalidImageError, match="photo.png is not a readable image"):
        decode_image(path)


def test_radiance_hdr_is_decoded_by_the_isolated_opencv(tmp_path):
    rgb = np.random.default_rng(2).random((90, 70, 3)).astype(np.float32) * 2
    cv2.imwrite(str(tmp_path / "x.hdr"), rgb[..., ::-1])
    out = decode_image(tmp_path / "x.hdr")
    here = cv2.imread(str(tmp_path / "x.hdr"), cv2.IMREAD_UNCHANGED)[..., ::-1]  # our own file, in this process
    assert out.decoder == "opencv" and out.original_size == (70, 90)
    assert np.array_equal(out.rgb, to_rgb8(here))


@pytest.mark.parametrize("fault, error, words", [
    ("segv", DecoderCrashedError, "killed by signal 11 (SIGSEGV) on crash.hdr"),
    ("oom", ImageTooLargeError, "crash.hdr: decoding needs more than ingest.decode_memory = 64 MB"),
    ("hang", DecodeTimeoutError, "decoding crash.hdr with OpenCV took over ingest.decode_timeout = 3 s"),
    ("lie", DecoderCrashedError, "gave pixels of shape (5, 5, 3) uint8 for crash.hdr, expected (480, 640, 3)"),
])
def test_isolated_decoder_faults_are_named_errors(tmp_path, monkeypatch, fault, error, words):
    """The child really dies by SIGSEGV, really hits its RLIMIT_AS (allocating twice decode_memory fails only
    under the limit), really hangs until it is killed, or answers with pixels that do not match what it declared
    (checked before they are used); this process goes on."""
    monkeypatch.setenv(FAULT_ENV, fault)
    (tmp_path / "crash.hdr").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" + FAULT_MARKER)
    with pytest.raises(error) as info:
        decode_image(tmp_path / "crash.hdr", replace(DEFAULTS, decode_timeout=3.0, decode_memory=64 * 2**20))
    assert words in str(info.value) and "fix:" in str(info.value)


def test_decoder_server_outlives_its_children_and_is_restarted(tmp_path, monkeypatch):
    """One server per process forks a child per photo: a child's SIGSEGV leaves the server (and the next decode)
    intact; a server that is gone (killed from outside) is started again at the next decode."""
    rgb = np.random.default_rng(3).random((90, 70, 3)).astype(np.float32)
    cv2.imwrite(str(tmp_path / "ok.hdr"), rgb)
    (tmp_path / "crash.hdr").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" + FAULT_MARKER)
    first = decode_image(tmp_path / "ok.hdr")
    server = decode_mod._SERVER._proc.pid
    monkeypatch.setenv(FAULT_ENV, "segv")
    with pytest.raises(DecoderCrashedError, match="SIGSEGV"):
        decode_image(tmp_path / "crash.hdr")
    monkeypatch.delenv(FAULT_ENV)
    assert np.array_equal(decode_image(tmp_path / "ok.hdr").rgb, first.rgb)
    assert decode_mod._SERVER._proc.pid == server
    decode_mod._SERVER._proc.kill()
    decode_mod._SERVER._proc.wait()
    assert np.array_equal(decode_image(tmp_path / "ok.hdr").rgb, first.rgb)
    assert decode_mod._SERVER._proc.pid != server


def test_only_hdr_and_exr_reach_opencv(tmp_path, monkeypatch):
    """With the crash armed, a marked file that Pillow does not identify, or identifies and refuses (a broken
    PNG, as the mutated APNG that crashed OpenCV 4.11), is refused in this process: OpenCV never sees it."""
    monkeypatch.setenv(FAULT_ENV, "segv")
    (tmp_path / "junk.png").write_bytes(b"\x00\x01junk" + FAULT_MARKER)
    Image.fromarray(_noise(80, 80)).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:400] + FAULT_MARKER)
    for name in ("junk.png", "cut.png"):
        with pytest.raises(InvalidImageError) as info:
            decode_image(tmp_path / name)
        assert type(info.value) is InvalidImageError and name in str(info.value)


def test_stage_downscales_a_reduced_photo_to_max_side(tmp_path):
    from tasks.config import PipelineConfig, override
    from tasks.ingest import ingest
    from tasks.runner import prepare_person

    Image.fromarray(_noise(300, 4100)).save(tmp_path / "wide.png")
    cfg = override(PipelineConfig(), {"ingest": {"max_side": 1000}})
    ws = prepare_person(tmp_path / "runs" / "wide", [tmp_path / "wide.png"], cfg)
    out = ingest(ws, cfg)
    assert Image.open(ws.rgb("wide")).size == fit_within(4100, 300, 1000) == (1000, 73)
    assert out.info["frames"]["wide"]["downscaled"] is True
    assert out.info["frames"]["wide"]["original_size"] == [4100, 300]
