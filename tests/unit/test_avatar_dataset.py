"""DINAR's sample preparation: crop box, K update, crop mask (hand-computed examples)."""

import numpy as np
import pytest
import torch

from dinar_core.avatar.dataset import (Box, crop_box, crop_pad, crop_transform, extend_crop_mask, mask_box,
                                       prepare_sample, scale_box, square_box, vertex_box)


def _verts(points_xy, z=2.0):
    p = np.asarray(points_xy, dtype=np.float64)
    return np.concatenate([p * z, np.full((len(p), 1), z)], 1)  # (x z, y z, z)


def test_box_steps_by_hand():
    v = _verts([(10.5, 20.2), (30.9, 60.7)])
    assert vertex_box(v) == Box(10, 20, 30, 60)  # int() truncation
    assert square_box(Box(10, 20, 30, 60)) == Box(0, 20, 40, 60)  # width stretched to the height around x = 20
    assert scale_box(Box(0, 20, 40, 60), 1.5) == Box(-10, 10, 50, 70)
    mask = np.zeros((80, 100), np.uint8)
    mask[30:50, 40:70] = 255
    assert mask_box(mask) == Box(40, 30, 69, 49)  # inclusive last row / column
    # mask box 29 x 19 -> 43 x 28 around (54, 39) -> (33, 25, 76, 53); union with the body box
    assert crop_box(v, mask, 1.5) == Box(-10, 10, 76, 70)


def test_negative_coordinates_truncate_towards_zero():
    assert vertex_box(_verts([(-3.7, -0.5), (4.2, 9.9)])) == Box(-3, 0, 4, 9)


def test_prepare_sample_crop_and_K():
    H, W, S = 80, 100, 43
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[30:50, 40:70] = (200, 100, 50)
    segm = np.zeros((H, W), np.uint8)
    segm[30:50, 40:70] = 255
    K = np.array([[5000.0, 0, W // 2], [0, 5000.0, H // 2], [0, 0, 1]])
    v = _verts([(10.5, 20.2), (30.9, 60.7)])
    s = prepare_sample("p", rgb, segm, v, K, image_size=S, scale=1.5)
    assert s.box == Box(-10, 10, 76, 70)  # side 86 -> scale 0.5
    T = np.array([[0.5, 0, 5.0], [0, 0.5, -5.0], [0, 0, 1]])
    np.testing.assert_allclose(s.K.numpy(), T @ K, rtol=1e-6)
    xy = (s.verts[:, :2] / s.verts[:, 2:]).numpy()
    np.testing.assert_allclose(xy, [[10.25, 5.1], [20.45, 25.35]], atol=1e-4)
    # the person (photo rows 30..49, cols 40..69) lands at crop rows 10..19.5, cols 25..39.5
    assert s.real_segm.shape == (1, S, S) and s.real_segm[0, 14, 30] == 1 and s.real_segm[0, 2, 2] == 0
    assert torch.allclose(s.input_rgb[:, 14, 30], torch.tensor([200, 100, 50]) / 255 * 2 - 1, atol=0.02)
    assert torch.all(s.input_rgb[:, 2, 2] == -1) and torch.all(s.real_rgb[:, 2, 2] == 1)  # black / white bg
    # no vertex lies beyond the padded borders, so DINAR marks them valid too
    assert s.crop_mask.min() == 1


def test_extend_crop_mask_keeps_padding_where_the_body_reaches():
    m = np.ones((10, 10), np.float32)
    m[:, :3] = 0  # left 3 columns padded
    inside = extend_crop_mask(m, _verts([(1.0, 5.0), (8.0, 8.0)]))  # a vertex at x = 1 < 3
    assert inside[:, :3].max() == 0
    filled = extend_crop_mask(m, _verts([(5.0, 5.0), (8.0, 8.0)]))
    assert filled.min() == 1


def test_crop_pad_zero_outside():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = crop_pad(img, Box(-1, 1, 2, 4))
    np.testing.assert_array_equal(out, [[0, 4, 5], [0, 8, 9], [0, 0, 0]])


def test_prepare_sample_rejects_bad_shapes():
    with pytest.raises(ValueError, match="rgb"):
        prepare_sample("p", np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), _verts([(1, 1)]), np.eye(3))
    assert crop_transform(Box(0, 0, 10, 10), 20)[0, 0] == 2.0
