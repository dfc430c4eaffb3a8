"""dinar_core.synth without the body model: the camera ring, the lighting, the looks, the backgrounds."""

import math

import numpy as np
import pytest
import torch

from dinar_core.synth.appearance import sample_appearance
from dinar_core.cameras.multiview import look_at
from dinar_core.synth.scene import Lighting, SynthConfig, background, ring_cameras


def test_ring_cameras_surround_the_person_and_frame_it():
    cfg = SynthConfig(image_size=(480, 360))
    height = 1.8
    cams = ring_cameras(np.random.default_rng(1), 8, height, cfg)
    assert [c.name for c in cams] == [f"cam{k:02d}" for k in range(1, 9)]
    for k, cam in enumerate(cams):
        c = cam.centre
        azimuth = math.degrees(math.atan2(c[0], -c[1])) % 360  # 0 = in front (the person faces -y), 90 = its left
        assert abs((azimuth - 45 * k + 180) % 360 - 180) <= cfg.azimuth_jitter_deg + 1e-6
        assert 2.9 <= math.hypot(c[0], c[1]) <= 4.1
        assert abs(c[2] - 0.72 * height) <= cfg.height_jitter_m + 1e-9
        assert cam.size == (360, 480) and np.allclose(cam.K[:2, 2], [180, 240])
        # the body's middle projects near the image centre, and a standing 1.8 m segment fills ~70 % of the height
        mid, feet, top = cam.project(np.array([[0, 0, height / 2], [0, 0, 0], [0, 0, height]]))
        assert np.abs(mid - [180, 240]).max() < 0.06 * 480
        assert 0.6 < (feet[1] - top[1]) / 480 < 0.8
    again = ring_cameras(np.random.default_rng(1), 8, height, cfg)
    assert all(np.array_equal(a.R, b.R) and np.array_equal(a.t, b.t) for a, b in zip(cams, again))
    with pytest.raises(ValueError):
        ring_cameras(np.random.default_rng(1), 0, height, cfg)


def test_look_at_is_an_opencv_rotation():
    R, t = look_at(np.array([0.0, -3.0, 1.3]), np.array([0.0, 0.0, 0.9]))
    assert np.allclose(R @ R.T, np.eye(3)) and math.isclose(np.linalg.det(R), 1.0)
    assert R[0] @ [1, 0, 0] > 0.99  # image right = world +x (the person's left) seen from the front
    assert R[1] @ [0, 0, -1] > 0.99  # image down = world down
    assert np.allclose(R @ [0.0, -3.0, 1.3] + t, 0)


def test_lighting_is_lambert_plus_ambient():
    light = Lighting(0.7, 0.35, (0.0, 0.0, 2.0))
    n = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 3)
    shade = light.shade(n).flatten().tolist()
    assert shade == pytest.approx([1.0, 0.7, 0.7])
    assert Lighting(0.5, 0.3, (0.0, 0.0, 1.0)).shade(n).flatten()[0].item() == pytest.approx(0.8)


def test_looks_are_seeded_and_keep_the_clothes_apart():
    looks = [sample_appearance(np.random.default_rng(s)) for s in range(40)]
    assert looks[3] == sample_appearance(np.random.default_rng(3))
    assert len({(lk.top, lk.bottom, lk.print_design) for lk in looks}) > 20
    for lk in looks:
        assert np.abs(np.subtract(lk.top, lk.bottom)).sum() >= 120
        assert np.abs(np.subtract(lk.print_colours[0], lk.top)).sum() >= 200
        assert 0.25 <= lk.sleeve <= 1.0 and 0.4 <= lk.trousers <= 1.0


def test_backgrounds_plain_or_noisy():
    plain = background(np.random.default_rng(0), (20, 30), noisy=False)
    noisy = background(np.random.default_rng(0), (20, 30), noisy=True)
    assert plain.shape == noisy.shape == (20, 30, 3) and plain.dtype == np.float32
    assert np.ptp(plain.reshape(-1, 3), 0).max() == 0 and noisy.std() > 0.01
    assert 0 <= noisy.min() and noisy.max() <= 1
