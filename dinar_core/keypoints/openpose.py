"""OpenPose keypoints: the `Keypoints2D` container and the JSON format (the layout itself: ``layout``).

Coordinates are pixels of the stored image (x right, y down); each joint is (x, y, confidence); a missing joint is
(0, 0, 0), as OpenPose writes it. The JSON layout is OpenPose's version 1.3 (what DINAR and SMPLify-X read).

Imported files are checked in the dtype the pipeline uses (float32): every value a number (not a bool, string or
list), coordinates finite with ``|x|, |y| <= MAX_COORD`` pixels, confidences in [0, 1] (a value outside is refused,
not clipped: OpenPose never writes one, so the file is from another tool or damaged). Any other shape or type is a
:class:`KeypointsError` naming the file; so is a file over ``MAX_JSON_BYTES`` or nested deeper than Python's JSON
parser allows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dinar_core.errors import KeypointsError
from dinar_core.keypoints.layout import BODY_25, KEYPOINT_SLICES, NUM_KEYPOINTS, PARTS
from dinar_core.safeload import MB, FileKind, check_file

MAX_COORD = 1e6
"""Largest |x| or |y| accepted, in pixels (far outside any photo; keeps drawing and fitting arithmetic sane)."""
MAX_JSON_BYTES = 16 * MB
"""OpenPose writes ~10 KB per person."""

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
        if not isinstance(person, dict):
            raise KeypointsError(f"{name}: a 'people' entry is a {type(person).__name__}, not a dict",
                                 fix="give the <frame>_keypoints.json files OpenPose writes with --write_json")
        parts = {}
        for part, n in PARTS:
            key = _JSON_KEYS[part]
            values = person.get(key)
            if values is not None and not isinstance(values, (list, tuple)):
                raise KeypointsError(f"{name}: {key} is a {type(values).__name__}, not a list of numbers",
                                     fix="give OpenPose JSON: flat lists x0, y0, c0, x1, ...")
            if values is None or (len(values) == 0 and part != "body"):
                parts[part] = np.zeros((n, 3), np.float32)
                continue
            if len(values) != 3 * n:
                raise KeypointsError(f"{name}: {key} has {len(values)} values, expected {3 * n}",
                                     fix="give OpenPose JSON written with the BODY_25 model (and 70-point face, "
                                         "21-point hands when present)")
            parts[part] = _checked_part(values, n, key, name)
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


def _checked_part(values, n: int, key: str, name: str) -> np.ndarray:
    """(n, 3) float32 from a flat list, after the checks of the module docstring."""
    if not all(type(v) in (int, float) for v in values):
        bad = next(v for v in values if type(v) not in (int, float))
        raise KeypointsError(f"{name}: {key} holds a {type(bad).__name__} ({str(bad)[:40]!r}), not a number",
                             fix="give OpenPose JSON: flat lists of numbers x0, y0, c0, x1, ...")
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            arr = np.asarray(values, dtype=np.float64).astype(np.float32).reshape(n, 3)
        except OverflowError:  # an integer beyond float64
            arr = np.full((n, 3), np.inf, np.float32)
    if not np.isfinite(arr).all():
        raise KeypointsError(f"{name}: {key} contains NaN or infinite values (or numbers beyond float32)",
                             fix="re-run OpenPose or fix the file")
    if np.abs(arr[:, :2]).max() > MAX_COORD:
        raise KeypointsError(f"{name}: {key} has a coordinate of {np.abs(arr[:, :2]).max():.3g} pixels "
                             f"(more than {MAX_COORD:g})", fix="give keypoints in pixels of the photo")
    conf = arr[:, 2]
    if conf.min() < 0 or conf.max() > 1:
        raise KeypointsError(f"{name}: {key} has confidences outside [0, 1] ({conf.min():.3g} .. {conf.max():.3g})",
                             fix="give OpenPose confidences (0 = missing joint, up to 1)")
    return arr


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


OPENPOSE_JSON = FileKind(label="OpenPose file", format="JSON file", error=KeypointsError,
                         max_file_bytes=MAX_JSON_BYTES,
                         fix="give the <frame>_keypoints.json files OpenPose writes with --write_json")


def load_openpose_json(path: str | Path, name: str | None = None, min_confidence: float = 0.3) -> OpenPoseImport:
    """:func:`read_openpose_json` of a file (size-limited, UTF-8 JSON); every failure is a KeypointsError naming
    the file (``name``, default the path)."""
    path = Path(path)
    name = str(path) if name is None else name
    check_file(path, OPENPOSE_JSON)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError, OSError) as exc:  # JSONDecodeError is a ValueError
        raise KeypointsError(f"{name} is not readable JSON ({type(exc).__name__}: {str(exc)[:120]})",
                             fix=OPENPOSE_JSON.fix) from None
    return read_openpose_json(data, name=name, min_confidence=min_confidence)
