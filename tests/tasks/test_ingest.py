"""Stage `ingest`: formats, EXIF, size limits and every kind of bad file, paths in and paths out."""

import numpy as np
import pytest
from PIL import Image

from dinar_core.errors import ImageTooLargeError, ImageTooSmallError, InvalidImageError
from tasks.config import PipelineConfig, override
from tasks.ingest import decode_image, ingest
from tasks.runner import prepare_person, run_stage
from tasks.ingest import STAGE as INGEST
from tasks.workspace import Workspace
from tests.helpers.images import gradient_photo, png_header_only


_photo = gradient_photo
_png_header_only = png_header_only


@pytest.mark.parametrize("fmt, mode", [("JPEG", "RGB"), ("PNG", "RGBA"), ("WEBP", "RGB"), ("TIFF", "RGB"),
                                       ("PNG", "L"), ("JPEG", "CMYK"), ("PNG", "P"), ("TIFF", "I;16"),
                                       ("BMP", "RGB")])
def test_decodes_common_formats_to_rgb8(tmp_path, fmt, mode):
    rgb = _photo()
    im = Image.fromarray(rgb)
    if mode == "I;16":
        im = Image.fromarray((rgb[:, :, 0].astype(np.uint16) * 257))
    elif mode != "RGB":
        im = im.convert(mode)
    path = tmp_path / f"p.{fmt.lower()}"
    im.save(path, fmt)
    out = decode_image(path)
    assert out.rgb.shape == (120, 80, 3) and out.rgb.dtype == np.uint8
    if mode == "I;16":  # 16-bit is scaled, not clipped: 257*v / 65535 = v / 255
        assert np.abs(out.rgb[:, :, 0].astype(int) - rgb[:, :, 0]).max() <= 1
    elif fmt in ("PNG", "TIFF", "BMP") and mode in ("RGB", "RGBA"):
        assert np.array_equal(out.rgb, rgb)


def test_rgba_composites_over_white(tmp_path):
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:50, :, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    out = decode_image(tmp_path / "a.png").rgb
    assert tuple(out[10, 10]) == (200, 0, 0) and tuple(out[90, 10]) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    rgb = _photo(120, 80)
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    im.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = decode_image(tmp_path / "r.jpg")
    assert out.rgb.shape == (80, 120, 3) and out.exif_rotated


@pytest.mark.parametrize("make, error, words", [
    (lambda p: p.write_bytes(b""), InvalidImageError, "empty"),
    (lambda p: p.write_text("this is not a picture\n"), InvalidImageError, "not a readable image"),
    (lambda p: _png_header_only(p, 20000, 20000), ImageTooLargeError, "400,000,000 pixels, over the limit"),
    (lambda p: Image.fromarray(_photo(10, 10)).save(p), ImageTooSmallError, "10x10"),
])
def test_bad_files_get_named_errors(tmp_path, make, error, words):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(error) as info:
        decode_image(path)
    assert "bad.png" in str(info.value) and words in str(info.value) and "fix:" in str(info.value)


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(_photo(300, 200)).save(path, quality=95)
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(InvalidImageError, match="cut.jpg"):
        decode_image(path)


def test_stage_downscales_and_records(tmp_path):
    Image.fromarray(_photo(400, 300)).save(tmp_path / "big.png")
    cfg = override(PipelineConfig(), {"ingest": {"max_side": 200}})
    ws = prepare_person(tmp_path / "runs" / "big", [tmp_path / "big.png"], cfg)
    out = ingest(ws, cfg)
    assert out.outputs == [ws.rgb("big")]
    assert Image.open(ws.rgb("big")).size == (150, 200)
    assert out.info["frames"]["big"]["downscaled"] is True


def test_folder_person_keeps_good_photos_and_names_the_bad(tmp_path):
    folder = tmp_path / "bob"
    folder.mkdir()
    Image.fromarray(_photo()).save(folder / "front.png")
    Image.fromarray(_photo()).save(folder / "side.jpg")
    (folder / "notes.png").write_text("not an image")
    cfg = PipelineConfig()
    ws = prepare_person(tmp_path / "runs" / "bob", sorted(folder.iterdir()), cfg)
    outcome = run_stage(INGEST, ws.root, cfg)
    assert outcome.status == "done"
    assert ws.frames() == ["front", "side"]
    assert any("notes.png" in w and "InvalidImageError" in w for w in outcome.warnings)


def test_stage_failure_is_recorded_with_type_and_message(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    cfg = PipelineConfig()
    ws = prepare_person(tmp_path / "runs" / "x", [tmp_path / "x.png"], cfg)
    outcome = run_stage(INGEST, ws.root, cfg)
    assert outcome.status == "failed"
    err = Workspace(ws.root).stage_record("ingest")["error"]
    assert err["type"] == "InvalidImageError" and "x.png" in err["message"]
