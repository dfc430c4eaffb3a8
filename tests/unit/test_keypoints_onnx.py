"""dinar_core.keypoints.onnx: SimCC decoding, COCO -> BODY_25, the crop, and the model path (tiny ONNX)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from dinar_core.errors import MissingModelError
from dinar_core.keypoints import BODY_25
from dinar_core.keypoints.onnx import OnnxPoseDetector, coco_to_keypoints, crop_transform, decode_simcc


def test_decode_simcc_argmax_and_score():
    sx = np.zeros((2, 20), np.float32)
    sy = np.zeros((2, 30), np.float32)
    sx[0, 7], sy[0, 11] = 0.8, 0.6
    sx[1, 19], sy[1, 0] = 0.2, 0.4
    dec = decode_simcc(sx, sy, split_ratio=2.0)
    np.testing.assert_allclose(dec.xy, [[3.5, 5.5], [9.5, 0.0]])
    np.testing.assert_allclose(dec.score, [0.7, 0.3])
    with pytest.raises(ValueError, match="simcc_x"):
        decode_simcc(sx, sy[:1])


def test_coco17_to_body25():
    xy = np.arange(34, dtype=np.float32).reshape(17, 2)
    score = np.linspace(0.1, 0.9, 17).astype(np.float32)
    kp = coco_to_keypoints(xy, score)
    assert tuple(kp.body[BODY_25["RShoulder"], :2]) == tuple(xy[6])
    assert tuple(kp.body[BODY_25["LAnkle"], :2]) == tuple(xy[15])
    assert tuple(kp.body[BODY_25["REye"], :2]) == tuple(xy[2])
    np.testing.assert_allclose(kp.body[BODY_25["Neck"], :2], (xy[5] + xy[6]) / 2)
    assert kp.body[BODY_25["MidHip"], 2] == min(score[11], score[12])
    assert not kp.body[19:].any()  # no feet in COCO-17
    assert not kp.face.any() and not kp.left_hand.any()


def test_wholebody133_to_openpose():
    xy = np.random.default_rng(0).random((133, 2)).astype(np.float32) * 100
    kp = coco_to_keypoints(xy, np.full(133, 0.5, np.float32))
    assert tuple(kp.body[BODY_25["LBigToe"], :2]) == tuple(xy[17])
    assert tuple(kp.body[BODY_25["RHeel"], :2]) == tuple(xy[22])
    assert np.array_equal(kp.face[:68, :2], xy[23:91])
    assert np.array_equal(kp.left_hand[:, :2], xy[91:112]) and np.array_equal(kp.right_hand[:, :2], xy[112:133])
    np.testing.assert_allclose(kp.face[68, :2], xy[23 + 36:23 + 42].mean(axis=0), rtol=1e-6)


def test_crop_transform_centres_box_with_model_aspect():
    a = crop_transform((100, 50, 200, 450), (192, 256))
    centre = a @ np.array([150, 250, 1.0])
    np.testing.assert_allclose(centre, [96, 128])
    top = a @ np.array([150, 50, 1.0])
    # tall box: its height (x1.25 padding) fills the input height
    np.testing.assert_allclose(top[1], 128 - 128 / 1.25, rtol=1e-5)


def test_missing_model_and_missing_runtime(tmp_path, monkeypatch):
    with pytest.raises(MissingModelError, match=r"keypoints\.onnx_model not set.*fix:"):
        OnnxPoseDetector(None)
    with pytest.raises(MissingModelError, match="rtm.onnx does not exist"):
        OnnxPoseDetector(tmp_path / "rtm.onnx")
    (tmp_path / "rtm.onnx").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingModelError, match="onnxruntime"):
        OnnxPoseDetector(tmp_path / "rtm.onnx")


def test_tiny_simcc_model_round_trip(tmp_path):
    """A constant SimCC 'model' exported with torch.onnx: the decoded joints must land where its peaks say,
    mapped back through the crop."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import torch

    rng = np.random.default_rng(0)
    w_in, h_in, k = 48, 64, 17
    peaks_x = rng.integers(0, 2 * w_in, k)
    peaks_y = rng.integers(0, 2 * h_in, k)

    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            sx = torch.zeros(1, k, 2 * w_in)
            sy = torch.zeros(1, k, 2 * h_in)
            sx[0, torch.arange(k), torch.as_tensor(peaks_x)] = 0.9
            sy[0, torch.arange(k), torch.as_tensor(peaks_y)] = 0.9
            self.register_buffer("sx", sx)
            self.register_buffer("sy", sy)

        def forward(self, x):
            zero = x.mean() * 0.0  # keep the input in the graph
            return self.sx + zero, self.sy + zero

    path = tmp_path / "tiny_rtm.onnx"
    torch.onnx.export(Constant(), torch.zeros(1, 3, h_in, w_in), str(path), dynamo=False,
                      input_names=["input"], output_names=["simcc_x", "simcc_y"])
    box = (40.0, 30.0, 100.0, 190.0)
    with OnnxPoseDetector(path) as det:
        assert det.input_size == (w_in, h_in)
        kp = det.detect(np.zeros((240, 160, 3), np.uint8), box)
    a = crop_transform(box, (w_in, h_in))
    rs = kp.body[BODY_25["RShoulder"]]
    np.testing.assert_allclose(a @ np.array([rs[0], rs[1], 1.0]), [peaks_x[6] / 2, peaks_y[6] / 2], atol=1e-3)
    assert rs[2] == pytest.approx(0.9)
