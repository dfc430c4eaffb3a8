"""The 137-point layout is defined once (``dinar_core.keypoints.layout``) and the containers follow it."""

import numpy as np
import pytest

from dinar_core.keypoints import Keypoints2D
from dinar_core.keypoints import layout


def test_parts_tile_the_137_rows_in_order():
    stops = [layout.KEYPOINT_SLICES[part].stop for part, _n in layout.PARTS]
    starts = [layout.KEYPOINT_SLICES[part].start for part, _n in layout.PARTS]
    assert starts == [0] + stops[:-1] and stops[-1] == layout.NUM_KEYPOINTS == 137
    assert (layout.BODY, layout.HANDS, layout.FACE) == (slice(0, 25), slice(25, 67), slice(67, 137))


def test_keypoints2d_array_round_trip_follows_the_layout():
    arr = np.random.default_rng(0).random((137, 3)).astype(np.float32)
    kp = Keypoints2D.from_array(arr)
    assert np.array_equal(kp.right_hand, arr[layout.KEYPOINT_SLICES["right_hand"]])
    assert np.array_equal(kp.to_array(), arr)
    with pytest.raises(ValueError, match="137"):
        Keypoints2D.from_array(arr[:136])


def test_every_user_imports_the_one_layout():
    from dinar_core.body import joint_maps
    from dinar_core.body.base import KEYPOINT_SLICES
    from dinar_core.fitting import init, targets

    assert KEYPOINT_SLICES is layout.KEYPOINT_SLICES
    assert joint_maps.BODY_25_NAMES is layout.BODY_25_NAMES
    assert (init.NECK, init.MIDHIP, targets.RKNEE, targets.LANKLE) == tuple(
        layout.BODY_25[n] for n in ("Neck", "MidHip", "RKnee", "LAnkle"))
