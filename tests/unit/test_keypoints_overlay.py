"""dinar_core.overlay: the mask tint and the skeleton are drawn where they belong."""

from __future__ import annotations

import numpy as np
import pytest

from dinar_core.keypoints import BODY_25, Keypoints2D
from dinar_core.overlay import draw_overlay


def test_overlay_tints_mask_and_draws_limbs():
    rgb = np.full((200, 100, 3), 60, np.uint8)
    mask = np.zeros((200, 100), bool)
    mask[:, :30] = True
    kp = Keypoints2D.empty()
    kp.body[BODY_25["Neck"]] = (60, 40, 0.9)
    kp.body[BODY_25["MidHip"]] = (60, 160, 0.9)
    kp.body[BODY_25["RHip"]] = (80, 170, 0.9)
    kp.body[BODY_25["RKnee"]] = (90, 190, 0.05)  # below min_confidence: not drawn
    out = draw_overlay(rgb, mask, kp, min_confidence=0.1)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert (out[100, 5] != rgb[100, 5]).any()  # tinted
    assert (out[100, 60] != rgb[100, 60]).any()  # on the Neck-MidHip line
    assert np.array_equal(out[100, 45], rgb[100, 45])  # neither mask nor line
    assert (out[165, 70] != rgb[165, 70]).any()  # MidHip-RHip drawn
    assert np.array_equal(out[180, 85], rgb[180, 85])  # RHip-RKnee not: the knee is below min_confidence
    assert np.array_equal(draw_overlay(rgb, None, None), rgb)
    with pytest.raises(ValueError, match="mask shape"):
        draw_overlay(rgb, mask[:10], kp)


def test_far_and_non_finite_joints_are_clipped_not_drawn_slowly():
    """A limb to a joint 2e9 px away is drawn to the image edge, like one to a joint just outside; a non-finite
    joint (only possible in memory) is skipped."""
    rgb = np.zeros((40, 60, 3), np.uint8)
    far, near = Keypoints2D.empty(), Keypoints2D.empty()
    for kp, x in ((far, 2e9), (near, 300.0)):
        kp.body[BODY_25["Neck"]] = (10, 20, 1)
        kp.body[BODY_25["RShoulder"]] = (x, 20, 1)
    got = draw_overlay(rgb, None, far, 0.1)
    assert got[20, 30:].any(axis=-1).all()  # the limb reaches the right edge
    np.testing.assert_array_equal(got, draw_overlay(rgb, None, near, 0.1))
    far.body[BODY_25["RShoulder"]] = (np.inf, np.nan, 1)
    out = draw_overlay(rgb, None, far, 0.1)
    assert out[20, 30:].sum() == 0
