"""dinar_core.keypoints.openpose: the Keypoints2D container and OpenPose JSON (layout, lossless round trip)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dinar_core.errors import KeypointsError
from dinar_core.keypoints import (
    BODY_25,
    BODY_25_EDGES,
    BODY_25_NAMES,
    HAND_EDGES,
    HAND_NAMES,
    Keypoints2D,
    crop_box,
    detect_in_box,
    load_openpose_json,
    read_openpose_json,
)


def _random_kp(seed=0, scale=500.0) -> Keypoints2D:
    rng = np.random.default_rng(seed)

    def part(n):
        a = rng.random((n, 3)).astype(np.float32)
        a[:, :2] *= scale
        return a

    return Keypoints2D(body=part(25), left_hand=part(21), right_hand=part(21), face=part(70))


def test_names_and_edges():
    assert len(BODY_25_NAMES) == 25 and len(set(BODY_25_NAMES)) == 25
    assert [BODY_25[n] for n in ("Nose", "Neck", "MidHip", "LAnkle", "RHeel")] == [0, 1, 8, 14, 24]
    assert len(HAND_NAMES) == 21 and HAND_NAMES[4] == "Thumb4" and HAND_NAMES[20] == "Pinky4"
    assert len(BODY_25_EDGES) == 24  # a tree over 25 joints
    # Every hand joint but the wrist has exactly one parent, and fingers start at the wrist.
    assert sorted(b for _a, b in HAND_EDGES) == list(range(1, 21))
    assert {a for a, b in HAND_EDGES if b in (1, 5, 9, 13, 17)} == {0}


def test_shapes_are_checked():
    kp = Keypoints2D.empty()
    with pytest.raises(ValueError, match=r"body: expected shape \(25, 3\), got \(24, 3\)"):
        Keypoints2D(np.zeros((24, 3)), kp.left_hand, kp.right_hand, kp.face)
    assert Keypoints2D(np.zeros((25, 3), np.float64), kp.left_hand, kp.right_hand, kp.face).body.dtype == np.float32


def test_openpose_json_layout():
    doc = _random_kp().to_openpose_json()
    assert doc["version"] == 1.3 and len(doc["people"]) == 1
    person = doc["people"][0]
    assert person["person_id"] == [-1]
    assert list(person) == ["person_id", "pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d",
                            "hand_right_keypoints_2d", "pose_keypoints_3d", "face_keypoints_3d",
                            "hand_left_keypoints_3d", "hand_right_keypoints_3d"]
    lengths = {k: len(v) for k, v in person.items() if k.endswith("_2d")}
    assert lengths == {"pose_keypoints_2d": 75, "face_keypoints_2d": 210, "hand_left_keypoints_2d": 63,
                       "hand_right_keypoints_2d": 63}
    assert all(person[k] == [] for k in person if k.endswith("_3d"))
    kp = _random_kp()
    # x, y, c interleaved per joint, in joint order
    assert person["pose_keypoints_2d"][3 * 4:3 * 5] == [float(v) for v in kp.body[4]]


def test_json_round_trip_is_lossless():
    kp = _random_kp(seed=3, scale=1234.567)
    text = json.dumps(kp.to_openpose_json())
    back = read_openpose_json(json.loads(text)).keypoints
    for part in ("body", "left_hand", "right_hand", "face"):
        assert np.array_equal(getattr(back, part), getattr(kp, part)), part
        assert getattr(back, part).dtype == np.float32


def test_read_picks_the_largest_person_and_fills_missing_parts():
    small = _random_kp(seed=1, scale=50.0)
    big = _random_kp(seed=2, scale=900.0)
    big.body[:, 2] = 1.0
    small.body[:, 2] = 1.0
    p_small = small.to_openpose_person()
    p_big = {"person_id": [-1], "pose_keypoints_2d": big.to_openpose_person()["pose_keypoints_2d"]}  # body only
    got = read_openpose_json({"version": 1.3, "people": [p_small, p_big]}, name="two.json")
    assert got.people == 2
    assert np.array_equal(got.keypoints.body, big.body)
    assert not got.keypoints.face.any() and not got.keypoints.left_hand.any()


@pytest.mark.parametrize("doc, message", [
    ({"people": []}, "lists no people"),
    ({"nobody": 1}, "not OpenPose JSON"),
    ({"people": [{"pose_keypoints_2d": [0.0] * 54}]}, "pose_keypoints_2d has 54 values, expected 75"),
    ({"people": [{"pose_keypoints_2d": [0.0] * 75, "face_keypoints_2d": [1.0] * 204}]}, "expected 210"),
    ({"people": [{"pose_keypoints_2d": [float("nan")] * 75}]}, "NaN"),
])
def test_read_rejects_bad_documents(doc, message):
    with pytest.raises(KeypointsError, match=message):
        read_openpose_json(doc, name="f.json")


def test_has_torso_and_size():
    kp = Keypoints2D.empty()
    assert not kp.has_torso() and kp.size() == 0.0 and kp.body_box() is None
    kp.body[BODY_25["RHip"]] = (10, 50, 0.9)
    kp.body[BODY_25["LHip"]] = (30, 50, 0.9)
    assert not kp.has_torso()  # hips alone: no shoulder
    kp.body[BODY_25["LShoulder"]] = (30, 10, 0.9)
    assert kp.has_torso()
    assert kp.body_box() == (10.0, 10.0, 30.0, 50.0) and kp.size() == 800.0


def test_scaled_keeps_missing_joints_at_zero():
    kp = Keypoints2D.empty()
    kp.body[0] = (10, 20, 0.8)
    out = kp.scaled(2.0, 3.0, 5.0, 7.0)
    assert tuple(out.body[0]) == (25.0, 67.0, pytest.approx(0.8))
    assert not out.body[1:].any()


def test_crop_box_and_detect_in_box_map_back():
    assert crop_box((100, 100, 200, 300), 250, 1000, 0.1) == crop_box((100, 100, 200, 300), 250, 1000, 0.1)
    c = crop_box((100, 100, 200, 300), 250, 1000, 0.1)
    assert (c.x0, c.y0, c.x1, c.y1) == (90, 80, 210, 320)
    assert crop_box((0, 0, 240, 990), 250, 1000, 0.5).x1 == 250  # clipped

    class Centre:
        """Puts the nose at the centre of whatever it is shown; remembers the crop size."""

        def detect(self, rgb):
            self.seen = rgb.shape
            kp = Keypoints2D.empty()
            kp.body[0] = (rgb.shape[1] / 2, rgb.shape[0] / 2, 1.0)
            return kp

    det = Centre()
    rgb = np.zeros((1000, 250, 3), np.uint8)
    kp = detect_in_box(det, rgb, (100, 100, 200, 300), 0.1)
    assert det.seen == (240, 120, 3)
    assert tuple(kp.body[0, :2]) == (150.0, 200.0)


@pytest.mark.parametrize("values, message", [
    ([1e39, 10.0, 0.5] + [0.0] * 72, "beyond float32"),
    ([2e9, 10.0, 0.5] + [0.0] * 72, "coordinate of 2e"),
    ([10.0, 10.0, 1.5] + [0.0] * 72, r"confidences outside \[0, 1\]"),
    ([10.0, "10", 0.5] + [0.0] * 72, "holds a str"),
    ([10.0, [10.0], 0.5] + [0.0] * 72, "holds a list"),
    ([True] * 75, "holds a bool"),
    ([10 ** 400] + [0.0] * 74, "beyond float32"),
])
def test_values_are_checked_in_float32(values, message):
    with pytest.raises(KeypointsError, match=message):
        read_openpose_json({"people": [{"pose_keypoints_2d": values}]}, name="f.json")


def test_wrong_nesting_and_files_are_named(tmp_path):
    with pytest.raises(KeypointsError, match="f.json: a 'people' entry is a list"):
        read_openpose_json({"people": [[1, 2]]}, name="f.json")
    with pytest.raises(KeypointsError, match="pose_keypoints_2d is a dict"):
        read_openpose_json({"people": [{"pose_keypoints_2d": {"x": 1}}]}, name="f.json")
    deep = tmp_path / "deep_keypoints.json"
    deep.write_text('{"people": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(KeypointsError, match="deep_keypoints.json is not readable JSON"):
        load_openpose_json(deep)
    binary = tmp_path / "bin_keypoints.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(KeypointsError, match="bin_keypoints.json"):
        load_openpose_json(binary)
    good = tmp_path / "good_keypoints.json"
    good.write_text(json.dumps(_random_kp().to_openpose_json()))
    assert load_openpose_json(good).people == 1
