"""dinar_core.segmentation: user-mask conversion, main-person selection, the mediapipe and rembg backends."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from dinar_core.errors import MissingModelError, NoPersonError
from dinar_core.segmentation import (
    binarize_user_mask,
    check_rgb,
    mask_box,
    segment_person,
    select_person,
    split_regions,
)

# A few colours of Graphonomy's 20-class palette (hair, upper clothes, pants, face, left arm...).
GRAPHONOMY_COLOURS = [(255, 0, 0), (255, 85, 0), (0, 85, 85), (0, 0, 255), (51, 170, 221), (0, 0, 85)]


def _person_mask(h=120, w=90) -> np.ndarray:
    """A person-ish silhouette: head disc + body rectangle + two legs. (h, w) bool."""
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (w // 2, 20), 10, 1, -1)
    cv2.rectangle(m, (w // 2 - 15, 30), (w // 2 + 15, 75), 1, -1)
    cv2.rectangle(m, (w // 2 - 14, 75), (w // 2 - 4, 115), 1, -1)
    cv2.rectangle(m, (w // 2 + 4, 75), (w // 2 + 14, 115), 1, -1)
    return m.astype(bool)


def _read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------------------------------------ user masks
def test_binarize_gray_binary_and_soft_masks():
    ref = _person_mask()
    assert np.array_equal(binarize_user_mask(ref.astype(np.uint8) * 255), ref)
    soft = ref.astype(np.float32) * 0.9 + 0.05  # floats in 0..1: 0.05 background, 0.95 person
    assert np.array_equal(binarize_user_mask(soft), ref)
    three = np.repeat((ref.astype(np.uint8) * 255)[:, :, None], 3, axis=2)
    assert np.array_equal(binarize_user_mask(three), ref)
    assert np.array_equal(binarize_user_mask(ref), ref)  # bool in, bool out


def test_binarize_graphonomy_label_map():
    ref = _person_mask()
    rng = np.random.default_rng(0)
    labels = np.where(ref, rng.integers(1, 20, ref.shape), 0).astype(np.uint8)  # classes 1..19 on the person
    assert labels.max() == 19 and labels[ref].min() >= 1
    assert np.array_equal(binarize_user_mask(labels), ref)
    assert np.array_equal(binarize_user_mask(np.repeat(labels[:, :, None], 3, axis=2)), ref)
    # A 0/1 mask is a label map with one class.
    assert np.array_equal(binarize_user_mask(ref.astype(np.uint8)), ref)


def test_binarize_graphonomy_colour_map_with_noise():
    ref = _person_mask()
    rng = np.random.default_rng(1)
    colour = np.zeros(ref.shape + (3,), np.uint8)
    idx = rng.integers(0, len(GRAPHONOMY_COLOURS), ref.shape)
    colour[ref] = np.array(GRAPHONOMY_COLOURS, np.uint8)[idx[ref]]
    noisy = colour.copy()
    noisy[~ref] = rng.integers(0, 12, (int((~ref).sum()), 3))  # near-black compression noise
    assert np.array_equal(binarize_user_mask(colour), ref)
    assert np.array_equal(binarize_user_mask(noisy), ref)


def test_binarize_rgba_uses_alpha_and_rejects_bad_shapes():
    ref = _person_mask()
    rgba = np.full(ref.shape + (4,), 200, np.uint8)
    rgba[:, :, 3] = ref * 255
    assert np.array_equal(binarize_user_mask(rgba), ref)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        binarize_user_mask(np.zeros((4, 4, 2), np.uint8))


# ------------------------------------------------------------------------------------------------ regions
def test_split_regions_joins_close_pieces_and_orders_by_area():
    m = np.zeros((200, 300), bool)
    m[20:150, 20:60] = True  # person A (5200 px)
    m[20:150, 62:64] = True  # a sliver 2 px away: same person
    m[50:120, 200:240] = True  # person B (2800 px), far away
    regions = split_regions(m)
    assert regions.areas == [130 * 40 + 130 * 2, 70 * 40]
    assert regions.main[20:150, 62:64].all() and not regions.main[50:120, 200:240].any()
    assert not (regions.main & ~m).any()  # dilation only groups, it never adds pixels
    assert split_regions(np.zeros((5, 5), bool)).areas == []


def test_select_person_keeps_largest_and_warns_about_second():
    m = np.zeros((200, 300), bool)
    m[20:150, 20:60] = True
    m[50:120, 200:240] = True
    seg = select_person([m], min_person_fraction=0.01, second_person_fraction=0.25, name="two.png")
    assert seg.people == 2 and seg.box == (20, 20, 60, 150)
    assert seg.mask.sum() == 130 * 40
    assert len(seg.warnings) == 1 and seg.warnings[0].startswith("MultiplePeople:") and "two.png" in seg.warnings[0]
    assert seg.other_fractions == [pytest.approx(2800 / 5200)]
    # The same second region below second_person_fraction: dropped silently.
    quiet = select_person([m], 0.01, 0.6)
    assert quiet.people == 1 and quiet.warnings == [] and quiet.mask.sum() == 130 * 40


def test_select_person_raises_no_person_naming_the_file():
    m = np.zeros((100, 100), bool)
    m[0:5, 0:5] = True  # 0.25 % of the image
    with pytest.raises(NoPersonError, match=r"empty\.png.*min_person_fraction.*fix:"):
        select_person([m], min_person_fraction=0.01, name="empty.png")
    with pytest.raises(NoPersonError, match="nobody"):
        select_person([], name="x.png")


class _FakeOnePersonSegmenter:
    """Segments the bright blob with the largest area only (like a one-person detector)."""

    single_person = True

    def __init__(self):
        self.calls = 0

    def predict(self, rgb):
        self.calls += 1
        bright = rgb[:, :, 0] > 200
        regions = split_regions(bright, join_px=0)
        return regions.main.astype(np.float32) if regions.areas else None


def test_segment_person_asks_a_one_person_backend_twice():
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[10:90, 10:50] = 255  # larger person
    rgb[20:80, 140:170] = 255  # smaller person, 56 % of the larger
    fake = _FakeOnePersonSegmenter()
    seg = segment_person(rgb, fake, name="pair")
    assert fake.calls == 2
    assert seg.people == 2 and seg.box == (10, 10, 50, 90) and "MultiplePeople" in seg.warnings[0]
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        check_rgb(rgb.astype(np.float32))


def test_mask_box_is_exclusive():
    m = np.zeros((10, 10), bool)
    m[2:5, 3:7] = True
    assert mask_box(m) == (3, 2, 7, 5)


# ------------------------------------------------------------------------------------------------ mediapipe
@pytest.fixture(scope="module")
def pose_segmenter():
    from dinar_core.segmentation.mediapipe import MediapipeSegmenter

    seg = MediapipeSegmenter("pose")
    yield seg
    seg.close()


def _gradient(h=400, w=300) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 128)], -1).astype(np.uint8)


def _texture(h=400, w=300, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 3)


@pytest.mark.parametrize("make", [_gradient, _texture])
def test_mediapipe_no_person(pose_segmenter, make):
    with pytest.raises(NoPersonError, match="nothing.png"):
        segment_person(make(), pose_segmenter, name="nothing.png")


def test_mediapipe_two_people_keeps_the_largest(pose_segmenter, samples_dir):
    a = _read_rgb(samples_dir / "sports2d_2.png")
    b = _read_rgb(samples_dir / "sports2d_1.png")
    b = cv2.resize(b, (round(b.shape[1] * a.shape[0] / b.shape[0]), a.shape[0]), interpolation=cv2.INTER_AREA)
    alone = [segment_person(x, pose_segmenter).mask.sum() for x in (a, b)]
    pair = np.concatenate([a, b], axis=1)
    seg = segment_person(pair, pose_segmenter, name="pair.png")
    assert seg.people == 2 and any(w.startswith("MultiplePeople") for w in seg.warnings)
    larger = int(np.argmax(alone))
    split = a.shape[1]
    cx = (seg.box[0] + seg.box[2]) / 2
    assert (cx >= split) == (larger == 1), (seg.box, alone)
    assert abs(seg.mask.sum() - alone[larger]) < 0.15 * alone[larger]


def test_mediapipe_selfie_backend_runs(samples_dir):
    from dinar_core.segmentation.mediapipe import MediapipeSegmenter

    rgb = _read_rgb(samples_dir / "sports2d_2.png")
    with MediapipeSegmenter("selfie") as s:
        prob = s.predict(rgb)
    assert prob.shape == rgb.shape[:2] and prob.dtype == np.float32
    assert 0.02 < (prob > 0.5).mean() < 0.6


# ------------------------------------------------------------------------------------------------ rembg (ONNX)
def test_rembg_missing_model_names_path_and_fix(tmp_path):
    from dinar_core.segmentation.rembg import RembgSegmenter, resolve_u2net_model

    missing = tmp_path / "nope" / "u2net.onnx"
    with pytest.raises(MissingModelError, match=r"nope/u2net\.onnx.*fix: .*segment\.rembg_model"):
        RembgSegmenter(missing)
    with pytest.raises(MissingModelError, match=str(tmp_path / "home" / "u2net.onnx")):
        resolve_u2net_model(None, environ={"U2NET_HOME": str(tmp_path / "home")})


def test_rembg_without_onnxruntime(tmp_path, monkeypatch):
    from dinar_core.segmentation.rembg import RembgSegmenter

    model = tmp_path / "u2net.onnx"
    model.write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(MissingModelError, match="onnxruntime.*fix: pip install onnxruntime"):
        RembgSegmenter(model)


def test_rembg_real_path_with_tiny_onnx(tmp_path):
    """A tiny U2-Net stand-in (saliency = brightness) exported with torch.onnx, run through onnxruntime."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import torch

    from dinar_core.segmentation.rembg import RembgSegmenter

    class Brightness(torch.nn.Module):
        def forward(self, x):  # (1, 3, 64, 64) normalised -> (1, 1, 64, 64), plus a second output like U2-Net
            s = x.mean(dim=1, keepdim=True)
            return s, s * 0.5

    path = tmp_path / "tiny.onnx"
    torch.onnx.export(Brightness(), torch.zeros(1, 3, 64, 64), str(path), dynamo=False,
                      input_names=["input.1"], output_names=["d0", "d1"])
    rgb = np.full((120, 90, 3), 20, np.uint8)
    rgb[30:100, 20:70] = 230
    with RembgSegmenter(path) as seg:
        prob = seg.predict(rgb)
        assert prob.shape == (120, 90) and 0.0 <= prob.min() and prob.max() <= 1.0
        out = segment_person(rgb, seg, threshold=0.5)
    truth = np.zeros((120, 90), bool)
    truth[30:100, 20:70] = True
    iou = (out.mask & truth).sum() / (out.mask | truth).sum()
    assert iou > 0.9


def test_rembg_invalid_onnx_file(tmp_path):
    pytest.importorskip("onnxruntime")
    from dinar_core.segmentation.rembg import RembgSegmenter

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(MissingModelError, match="broken.onnx is not a loadable ONNX model"):
        RembgSegmenter(bad)
