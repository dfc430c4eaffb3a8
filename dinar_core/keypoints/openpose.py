"""OpenPose keypoints: the `Keypoints2D` container and the JSON format (the layout itself: ``layout``).

Coordinates are pixels of the stored image (x right, y down); each joint is (x, y, confidence); a missing joint is
(0, 0, 0), as OpenPose writes it. The JSON layout is OpenPose's version 1.3 (what DINAR and SMPLify-X read).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dinar_core.errors import KeypointsError
from dinar_core.keypoints.layout import BODY_25, KEYPOINT_SLICES, NUM_KEYPOINTS, PARTS

_JSON_KEYS = {"body": "pose_keypoints_2d", "face": "face_keypoints_2d",
              "left_hand": "hand_left_keypoints_2d", "right_hand": "hand_right_keypoints_2d"}


@dataclass
class Keypoints2D:
    """One person's 2D keypoints in OpenPose order, float32 (x, y, confidence) rows, pixels of the image."""

    body: np.ndarray
    """(25, 3) BODY_25."""
    left_hand: np.ndarray
    """(21, 3) the person's left hand."""
    right_hand: np.ndarray
    """(21, 3) the person's right hand."""
    face: np.ndarray
    """(70, 3) 68 iBUG landmarks + right, left pupil."""

    def __post_init__(self):
        for part, n in PARTS:
            arr = np.asarray(getattr(self, part), dtype=np.float32)
            if arr.shape != (n, 3):
                raise ValueError(f"Keypoints2D.{part}: expected shape ({n}, 3), got {arr.shape}")
            setattr(self, part, arr)

    @classmethod
    def empty(cls) -> "Keypoints2D":
        return cls(*(np.zeros((n, 3), np.float32) for _p, n in PARTS))

    @classmethod
    def from_array(cls, array: np.ndarray) -> "Keypoints2D":
        """(137, 3) rows in the layout's order (body, left hand, right hand, face) -> Keypoints2D."""
        array = np.asarray(array)
        if array.shape != (NUM_KEYPOINTS, 3):
            raise ValueError(f"Keypoints2D.from_array: expected ({NUM_KEYPOINTS}, 3), got {array.shape}")
        return cls(**{part: array[KEYPOINT_SLICES[part]] for part, _n in PARTS})

    def to_array(self) -> np.ndarray:
        """(137, 3) float32, the parts concatenated in the layout's order (the inverse of :meth:`from_array`)."""
        return np.concatenate([getattr(self, part) for part, _n in PARTS])

    def to_openpose_person(self) -> dict:
        """The ``people[i]`` entry of OpenPose JSON (2D arrays flattened, 3D arrays empty)."""
        person: dict = {"person_id": [-1]}
        for part in ("body", "face", "left_hand", "right_hand"):
            # float() of a float32 is exact in a double, and json writes the shortest repr that reads back to
            # that double, so the round trip through JSON is lossless.
            person[_JSON_KEYS[part]] = [float(v) for v in getattr(self, part).reshape(-1)]
        for key in ("pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d"):
            person[key] = []
        return person

    def to_openpose_json(self) -> dict:
        """A full OpenPose version-1.3 document with this one person."""
        return {"version": 1.3, "people": [self.to_openpose_person()]}

    @classmethod
    def from_openpose_person(cls, person: dict, name: str = "keypoints") -> "Keypoints2D":
        """Parse one ``people[i]`` entry; missing face/hand arrays (OpenPose run without them) become zeros."""
        parts = {}
        for part, n in PARTS:
            key = _JSON_KEYS[part]
            values = person.get(key)
            if values is None or (len(values) == 0 and part != "body"):
                parts[part] = np.zeros((n, 3), np.float32)
                continue
            if len(values) != 3 * n:
                raise KeypointsError(f"{name}: {key} has {len(values)} values, expected {3 * n}",
                                     fix="give OpenPose JSON written with the BODY_25 model (and 70-point face, "
                                         "21-point hands when present)")
            arr = np.asarray(values, dtype=np.float64).reshape(n, 3)
            if not np.isfinite(arr).all():
                raise KeypointsError(f"{name}: {key} contains NaN or infinite values",
                                     fix="re-run OpenPose or fix the file")
            parts[part] = arr.astype(np.float32)
        return cls(**parts)

    def body_box(self, min_confidence: float = 0.3) -> tuple[float, float, float, float] | None:
        """(x0, y0, x1, y1) of the body joints with confidence > `min_confidence`, None if there are none."""
        ok = self.body[:, 2] > min_confidence
        if not ok.any():
            return None
        xy = self.body[ok, :2]
        return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())

    def size(self, min_confidence: float = 0.3) -> float:
        """Area of `body_box` in pixels (0 without confident joints): how large this person appears."""
        box = self.body_box(min_confidence)
        return 0.0 if box is None else (box[2] - box[0]) * (box[3] - box[1])

    def has_torso(self, min_confidence: float = 0.3) -> bool:
        """True when at least two of the shoulders and hips, one of them a shoulder, have confidence above
        `min_confidence` (enough to place and orient a body; an upper-body photo passes on its shoulders)."""
        torso = self.body[[BODY_25["RShoulder"], BODY_25["LShoulder"], BODY_25["RHip"], BODY_25["LHip"]], 2]
        ok = torso > min_confidence
        return bool(ok.sum() >= 2 and ok[:2].any())

    def scaled(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> "Keypoints2D":
        """Joints mapped by x' = x * sx + dx, y' = y * sy + dy; missing joints (confidence 0) stay (0, 0, 0)."""
        out = []
        for part, _n in PARTS:
            arr = getattr(self, part).copy()
            present = arr[:, 2] > 0
            arr[present, 0] = arr[present, 0] * sx + dx
            arr[present, 1] = arr[present, 1] * sy + dy
            arr[~present] = 0.0
            out.append(arr)
        return Keypoints2D(*out)


@dataclass
class OpenPoseImport:
    """The person chosen from an OpenPose JSON document."""

    keypoints: Keypoints2D
    people: int
    """How many people the document holds."""


def read_openpose_json(data: dict, name: str = "keypoints", min_confidence: float = 0.3) -> OpenPoseImport:
    """Pick the largest person (area of the confident body joints' box) of an OpenPose JSON document.

    Raises `KeypointsError` naming `name` for a document without people or with arrays of the wrong length.
    """
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise KeypointsError(f"{name} is not OpenPose JSON (no 'people' list)",
                             fix="give the <frame>_keypoints.json files OpenPose writes with --write_json")
    people = [Keypoints2D.from_openpose_person(p, name) for p in data["people"]]
    if not people:
        raise KeypointsError(f"{name} lists no people", fix="check that OpenPose found the person in this frame")
    best = max(people, key=lambda k: k.size(min_confidence))
    return OpenPoseImport(keypoints=best, people=len(people))
