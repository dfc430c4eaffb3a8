"""The multi-view dataset contract (issue 10): calibrated cameras and the folder layout, read and written here only.

```
DATA/
  dataset.json                   {"kind": "pose2sim"|"synth", "source": ..., "licence": ..., "persons": [...]}
  <person>/views/<camera>.png    RGB 8-bit, UNDISTORTED
  <person>/cameras.json          the cameras of those views (below)
  <person>/gt/...                optional ground truth (synthetic data only)
```

``cameras.json``::

    {"units": "m",
     "convention": "x_cam = R @ x_world + t; camera looks down +z, x right, y down (OpenCV)",
     "pixels": "pixel (i, j) has its centre at (j + 0.5, i + 0.5); ...",
     "cameras": {"cam01": {"K": 3x3, "R": 3x3, "t": [3], "dist": [k1, k2, p1, p2, k3], "size": [W, H]}, ...},
     "up": [0, 0, 1]}        # optional world up axis

Conventions (also in ``docs/conventions.md``):

- World -> camera: ``x_cam = R @ x_world + t`` in metres; the camera looks down +z, x right, y down (OpenCV).
- Pixels: the project's convention, pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)`` (as the rasterizer in
  ``dinar_core.render``), so ``K`` here = OpenCV's K with ``cx, cy`` + 0.5 (:meth:`Camera.K_opencv` gives OpenCV's
  back, for cv2 calls). With this convention a resize of the image by ``s`` is exactly ``diag(s, s, 1) @ K``.
- ``dist`` is the ORIGINAL lens distortion (OpenCV order k1, k2, p1, p2, k3) of the raw camera. The stored views are
  already undistorted with the same ``K`` (``cv2.undistort(img, K, dist, newCameraMatrix=K)``), so projecting into
  a stored view uses ``K`` alone (:meth:`Camera.project`); ``distort=True`` projects into the raw frames instead.

Pure numpy/json (+ OpenCV for image undistortion); no Prefect, no workspace knowledge.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from dinar_core.errors import CalibrationError, MissingCameraError, MultiViewDataError, NotARotationError
from dinar_core.fileio import atomic_target

CONVENTION = "x_cam = R @ x_world + t; camera looks down +z, x right, y down (OpenCV)"
PIXELS = ("pixel (i, j) has its centre at (j + 0.5, i + 0.5); K maps camera space to these coordinates "
          "(OpenCV's K has cx, cy smaller by 0.5); views are undistorted with this K, dist is the original lens'")
CAMERAS_FILE = "cameras.json"
DATASET_FILE = "dataset.json"
VIEWS_DIR = "views"
GT_DIR = "gt"
ROTATION_TOL = 1e-4
"""Largest ``|R^T R - I|`` entry (and ``|det R - 1|``) accepted for a rotation."""


def check_rotation(R: np.ndarray, where: str = "rotation", tol: float = ROTATION_TOL) -> np.ndarray:
    """``R`` as a float64 (3, 3) rotation; :class:`NotARotationError` (naming ``where``) unless orthonormal, det +1."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise NotARotationError(f"{where}: expected a finite 3x3 rotation matrix, got shape {R.shape}",
                                fix="write the camera's world-to-camera rotation as 3 rows of 3 numbers")
    err = float(np.abs(R.T @ R - np.eye(3)).max())
    det = float(np.linalg.det(R))
    if err > tol or abs(det - 1.0) > tol:
        raise NotARotationError(
            f"{where}: not a rotation matrix (max |R^T R - I| = {err:.2e}, det = {det:.6f}; tolerance {tol:g})",
            fix="re-export the calibration; a rotation must be orthonormal with determinant +1 (not a mirror)")
    return R


@dataclass(frozen=True)
class Camera:
    """One calibrated pinhole camera (see the module docstring for the conventions).

    K: (3, 3) intrinsics in the project's pixel convention; R: (3, 3) world -> camera rotation; t: (3,) metres;
    dist: (5,) the original lens distortion k1, k2, p1, p2, k3 (OpenCV); size: (W, H) pixels of the view.
    """

    name: str
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    dist: np.ndarray = field(default_factory=lambda: np.zeros(5))
    size: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        where = f"camera {self.name!r}"
        K = np.asarray(self.K, dtype=np.float64)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1.0:
            raise CalibrationError(f"{where}: K must be a finite 3x3 [[fx,s,cx],[0,fy,cy],[0,0,1]] with fx, fy > 0, "
                                   f"got {K.tolist() if K.size == 9 else K.shape}",
                                   fix="check the intrinsics of this camera in the calibration file")
        t = np.asarray(self.t, dtype=np.float64).reshape(-1)
        if t.shape != (3,) or not np.all(np.isfinite(t)):
            raise CalibrationError(f"{where}: t must be 3 finite numbers (metres), got {t.tolist()}",
                                   fix="check the translation of this camera in the calibration file")
        dist = np.zeros(5)
        d = np.asarray(self.dist, dtype=np.float64).reshape(-1)
        if d.size > 5 or not np.all(np.isfinite(d)):
            raise CalibrationError(f"{where}: dist must be up to 5 finite numbers k1, k2, p1, p2, k3, got "
                                   f"{d.tolist()}", fix="check the distortion of this camera in the calibration file")
        dist[: d.size] = d
        size = tuple(int(v) for v in self.size)
        if len(size) != 2 or min(size) <= 0:
            raise CalibrationError(f"{where}: size must be [W, H] > 0, got {list(self.size)}",
                                   fix="give each camera its image size in pixels")
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "R", check_rotation(self.R, f"{where} R"))
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "size", size)

    # -- geometry -------------------------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def centre(self) -> np.ndarray:
        """Camera centre in world coordinates, (3,) metres: ``-R^T t``."""
        return -self.R.T @ self.t

    @property
    def direction(self) -> np.ndarray:
        """Unit viewing direction (the camera's +z axis) in world coordinates, (3,)."""
        return self.R[2].copy()

    @property
    def P(self) -> np.ndarray:
        """(3, 4) projection matrix ``K [R | t]`` (project's pixel convention) for the undistorted views."""
        return self.K @ np.hstack([self.R, self.t[:, None]])

    @property
    def K_opencv(self) -> np.ndarray:
        """K in OpenCV's pixel convention (pixel centres at integers): cx, cy - 0.5. For cv2 calls."""
        return shift_principal_point(self.K, -0.5)

    def world_to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 3) camera-space points (metres, z = depth)."""
        pts = _points(points_world)
        return pts @ self.R.T + self.t

    def project(self, points_world: np.ndarray, distort: bool = False) -> np.ndarray:
        """(N, 3) world points -> (N, 2) pixels of the undistorted view (``distort=True``: of the raw frame).

        Points behind the camera (z <= 0) come out as NaN.
        """
        cam = self.world_to_camera(points_world)  # (N, 3)
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = cam[:, :2] / z[:, None]  # (N, 2) normalised image coordinates
        if distort:
            xn = distort_normalised(xn, self.dist)
        px = xn @ self.K[:2, :2].T + self.K[:2, 2]  # (N, 2)
        px[~(z > 0)] = np.nan
        return px

    def scaled(self, factor: float, size: tuple[int, int] | None = None) -> "Camera":
        """The camera of this view resized by ``factor`` (K's first two rows times factor; size rounded, or given)."""
        if not factor > 0:
            raise ValueError(f"scale factor must be > 0, got {factor}")
        K = self.K.copy()
        K[:2] *= factor
        if size is None:
            size = (max(1, round(self.width * factor)), max(1, round(self.height * factor)))
        return Camera(self.name, K, self.R, self.t, self.dist, size)

    def undistort_image(self, image: np.ndarray) -> np.ndarray:
        """(H, W[, C]) raw frame of this camera -> the same size, undistorted, with the SAME K (see module doc).

        Pixels whose source falls outside the frame are black (0).
        """
        import cv2

        image = np.asarray(image)
        if image.shape[:2] != (self.height, self.width):
            raise CalibrationError(f"camera {self.name!r}: image is {image.shape[1]}x{image.shape[0]} but the "
                                   f"calibration says {self.width}x{self.height}",
                                   fix="use the frames this calibration was made for, or rescale the camera")
        if not np.any(self.dist):
            return image.copy()
        Kcv = self.K_opencv
        return cv2.undistort(image, Kcv, self.dist, None, Kcv)

    def to_json(self) -> dict[str, Any]:
        return {"K": self.K.tolist(), "R": self.R.tolist(), "t": self.t.tolist(), "dist": self.dist.tolist(),
                "size": [int(self.width), int(self.height)]}


@dataclass(frozen=True)
class CameraSet:
    """The cameras of one person-instant, by name (insertion order kept), and the world's up axis when known."""

    cameras: dict[str, Camera]
    up: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        for name, cam in self.cameras.items():
            if cam.name != name:
                raise CalibrationError(f"camera stored as {name!r} is named {cam.name!r}",
                                       fix="key each camera by its own name")
            check_camera_name(name)
        if self.up is not None:
            up = tuple(float(v) for v in self.up)
            if len(up) != 3 or not all(math.isfinite(v) for v in up) or not any(up):
                raise CalibrationError(f"up must be 3 finite numbers, not all 0, got {list(self.up)}",
                                       fix='write e.g. "up": [0, 0, 1]')
            object.__setattr__(self, "up", up)

    @property
    def names(self) -> list[str]:
        return list(self.cameras)

    def __getitem__(self, name: str) -> Camera:
        try:
            return self.cameras[name]
        except KeyError:
            raise MissingCameraError(f"no camera named {name!r} (cameras: {', '.join(self.cameras) or 'none'})",
                                     fix="use one of the calibrated camera names") from None

    def __iter__(self):
        return iter(self.cameras.values())

    def __len__(self) -> int:
        return len(self.cameras)

    def select(self, names: Iterable[str]) -> "CameraSet":
        """The cameras named (in that order); :class:`MissingCameraError` for an unknown name."""
        return CameraSet({n: self[n] for n in names}, self.up)

    def scaled(self, factor: float) -> "CameraSet":
        return CameraSet({n: c.scaled(factor) for n, c in self.cameras.items()}, self.up)


def check_camera_name(name: str) -> str:
    """A camera name must be a file-system safe file stem (it names ``views/<camera>.png``)."""
    ok = (isinstance(name, str) and 0 < len(name) <= 100 and name not in (".", "..")
          and all(ch.isalnum() or ch in "-_." for ch in name) and not name.startswith("."))
    if not ok:
        raise CalibrationError(f"camera name {name!r} is not file-system safe",
                               fix="use letters, digits, '-', '_' or '.' (e.g. cam01)")
    return name


def shift_principal_point(K: np.ndarray, delta: float) -> np.ndarray:
    """A copy of K with cx, cy + delta: OpenCV -> project pixel convention is +0.5, the reverse -0.5."""
    K = np.array(K, dtype=np.float64)
    K[0, 2] += delta
    K[1, 2] += delta
    return K


def distort_normalised(xn: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """OpenCV's Brown-Conrady model on normalised coordinates: (N, 2) undistorted -> (N, 2) distorted."""
    k1, k2, p1, p2, k3 = np.asarray(dist, dtype=np.float64)
    x, y = xn[:, 0], xn[:, 1]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd, yd], axis=1)


def _points(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 1 and pts.shape == (3,):
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {pts.shape}")
    return pts


# -- cameras.json ---------------------------------------------------------------------------------------------------
def cameras_to_json(cameras: CameraSet) -> dict[str, Any]:
    doc: dict[str, Any] = {"units": "m", "convention": CONVENTION, "pixels": PIXELS,
                           "cameras": {n: c.to_json() for n, c in cameras.cameras.items()}}
    if cameras.up is not None:
        doc["up"] = list(cameras.up)
    return doc


def write_cameras(path: str | os.PathLike, cameras: CameraSet) -> Path:
    """Write ``cameras.json`` (atomically). ``path`` is the file or the person folder holding it."""
    path = Path(path)
    if path.suffix != ".json":
        path = path / CAMERAS_FILE
    _write_json(path, cameras_to_json(cameras))
    return path


def cameras_from_json(doc: Any, source: str = CAMERAS_FILE) -> CameraSet:
    """Parse a cameras.json document; :class:`CalibrationError` naming ``source`` and the camera for bad values."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("cameras"), Mapping) or not doc["cameras"]:
        raise CalibrationError(f"{source}: no 'cameras' object with at least one camera",
                               fix='write {"units": "m", "cameras": {"cam01": {"K": ..., "R": ..., "t": ..., '
                                   '"dist": ..., "size": [W, H]}}}')
    units = doc.get("units", "m")
    if units != "m":
        raise CalibrationError(f"{source}: units {units!r} are not supported", fix='write translations in metres, '
                                                                                  '"units": "m"')
    cams = {}
    for name, c in doc["cameras"].items():
        where = f"{source}: camera {name!r}"
        if not isinstance(c, Mapping):
            raise CalibrationError(f"{where} is not an object", fix="give K, R, t, dist, size for each camera")
        missing = [k for k in ("K", "R", "t", "size") if k not in c]
        if missing:
            raise CalibrationError(f"{where} lacks {', '.join(missing)}", fix="give K, R, t, dist, size")
        try:
            arrays = {k: np.asarray(c[k], dtype=np.float64) for k in ("K", "R", "t")}
            dist = np.asarray(c.get("dist", [0.0] * 5), dtype=np.float64)
            size = tuple(int(v) for v in c["size"])
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{where}: a value is not a number ({exc})",
                                   fix="K, R: 3 rows of 3 numbers; t: 3 numbers; dist: up to 5; size: [W, H]") from exc
        try:
            cams[name] = Camera(str(name), arrays["K"], arrays["R"], arrays["t"], dist, size)  # type: ignore[arg-type]
        except CalibrationError as exc:
            raise type(exc)(f"{source}: {exc}") from None
    return CameraSet(cams, tuple(doc["up"]) if doc.get("up") is not None else None)


def read_cameras(path: str | os.PathLike) -> CameraSet:
    """Read ``cameras.json`` (the file, or the person folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / CAMERAS_FILE
    return cameras_from_json(_read_json(path, CalibrationError), str(path))


# -- dataset.json and the person folders ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetInfo:
    """``dataset.json``: what made the dataset and which person folders it holds (``extra`` keeps other keys)."""

    kind: str
    source: str
    licence: str
    persons: list[str]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "licence": self.licence, "persons": list(self.persons),
                **self.extra}


def write_dataset(data_dir: str | os.PathLike, info: DatasetInfo) -> Path:
    path = Path(data_dir) / DATASET_FILE
    _write_json(path, info.to_json())
    return path


def read_dataset(data_dir: str | os.PathLike) -> DatasetInfo:
    """Read ``DATA/dataset.json``; :class:`MultiViewDataError` when absent or malformed."""
    path = Path(data_dir) / DATASET_FILE
    doc = _read_json(path, MultiViewDataError)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("persons"), list):
        raise MultiViewDataError(f"{path}: expected an object with a 'persons' list",
                                 fix='write {"kind": ..., "source": ..., "licence": ..., "persons": [...]}')
    extra = {k: v for k, v in doc.items() if k not in ("kind", "source", "licence", "persons")}
    return DatasetInfo(str(doc.get("kind", "")), str(doc.get("source", "")), str(doc.get("licence", "")),
                       [str(p) for p in doc["persons"]], extra)


def list_persons(data_dir: str | os.PathLike) -> list[Path]:
    """The person folders of a dataset: those listed in dataset.json (each must exist), else every sub-folder that
    holds a cameras.json, sorted."""
    data_dir = Path(data_dir)
    if (data_dir / DATASET_FILE).exists():
        persons = [data_dir / p for p in read_dataset(data_dir).persons]
        missing = [p.name for p in persons if not (p / CAMERAS_FILE).is_file()]
        if missing:
            raise MultiViewDataError(f"{data_dir / DATASET_FILE} lists persons without {CAMERAS_FILE}: "
                                     f"{', '.join(missing)}", fix="re-run the import, or remove them from the list")
        return persons
    persons = sorted(p for p in data_dir.iterdir() if p.is_dir() and (p / CAMERAS_FILE).is_file()) \
        if data_dir.is_dir() else []
    if not persons:
        raise MultiViewDataError(f"{data_dir}: no person folder with a {CAMERAS_FILE}",
                                 fix="point at a folder made by `dinar import pose2sim` or `dinar synth`")
    return persons


def view_paths(person_dir: str | os.PathLike) -> dict[str, Path]:
    """``{camera: views/<camera>.png}`` of the PNGs present in a person folder (sorted by camera name)."""
    views = Path(person_dir) / VIEWS_DIR
    return {p.stem: p for p in sorted(views.glob("*.png")) if not p.name.startswith(".")} if views.is_dir() else {}


# -- helpers --------------------------------------------------------------------------------------------------------
def _write_json(path: Path, doc: Any) -> None:
    with atomic_target(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")


def _read_json(path: Path, error: type[Exception]) -> Any:
    if not path.is_file():
        raise error(f"{path} does not exist", fix="point at a folder made by `dinar import pose2sim` or `dinar synth`")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path} is not valid JSON ({exc})", fix="re-create it (a truncated or hand-edited file?)") from exc
