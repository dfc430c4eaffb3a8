"""Fuzz: OpenPose JSON files (mutated JSON trees and text) -> load_openpose_json + the overlay drawn from them."""

from __future__ import annotations

import numpy as np
from hypothesis import given

from dinar_core.keypoints import Keypoints2D, load_openpose_json
from dinar_core.overlay import draw_overlay
from tests.fuzz.conftest import decode_file, fuzz_settings
from tests.fuzz.mutators import mutated_json


def _seed() -> dict:
    rng = np.random.default_rng(0)
    parts = []
    for n in (25, 21, 21, 70):
        a = rng.random((n, 3)).astype(np.float32)
        a[:, 0] *= 64
        a[:, 1] *= 48
        parts.append(a)
    doc = Keypoints2D(*parts).to_openpose_json()
    doc["people"].append(Keypoints2D(*parts).to_openpose_person())
    return doc


SEED = _seed()


def _decode_and_draw(path):
    imported = load_openpose_json(path)
    canvas = np.zeros((48, 64, 3), np.uint8)
    out = draw_overlay(canvas, np.ones((48, 64), bool), imported.keypoints, min_confidence=0.0)
    assert out.shape == canvas.shape
    return imported


@fuzz_settings
@given(data=mutated_json(SEED))
def test_fuzz_openpose_json(data):
    result = decode_file(_decode_and_draw, data, "frame_keypoints.json")
    if result is not None:
        for part in ("body", "left_hand", "right_hand", "face"):
            arr = getattr(result.keypoints, part)
            assert arr.dtype == np.float32 and np.isfinite(arr).all()
            assert ((arr[:, 2] >= 0) & (arr[:, 2] <= 1)).all()
