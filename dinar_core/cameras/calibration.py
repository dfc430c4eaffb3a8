"""Calibration readers: Qualisys ``.qca.txt`` (XML), OpenCV/Pose2Sim ``Calib*.toml`` (reader and writer), and the
project's ``cameras.json``, all into :class:`~dinar_core.cameras.multiview.CameraSet` (world -> camera in metres,
OpenCV axes, K in the project's pixel convention: see ``multiview``).

Qualisys (``.qca.txt``), as Pose2Sim's converter reads it (``Pose2Sim/calibration.py: read_qca, calib_qca_fun``):

- per ``<camera serial=...>``: ``<fov_video left top right bottom>`` gives the image size
  ``(right - left + 1, bottom - top + 1)``; ``<intrinsic>`` gives ``focalLengthU/V`` and ``centerPointU/V`` in sensor
  sub-pixel units, 64 per pixel (``sensorMaxU/V`` = 64 x the sensor size), the principal point counted from the
  sensor's corner, so ``cx = centerPointU / 64 - fov_video.left`` (an OpenCV-convention pixel coordinate);
  ``radialDistortion1..3``, ``tangentalDistortion1..2`` are divided by 64 as well (Pose2Sim's convention, kept so the
  same file gives the same cameras in both tools; on Pose2Sim's demo both readings leave the checkerboard rows of its
  intrinsics images straight within 0.32 px rms, the lenses being nearly distortion-free, so the data cannot tell);
- ``<transform x y z r11..r33>`` is the camera's POSE in the world: position in mm, ``[[r11, r12, r13], ...]`` the
  rotation whose rows are the world -> Qualisys-camera axes; a Qualisys camera looks down -z with y up, so the
  OpenCV camera is that one turned by pi about x: ``R = diag(1, -1, -1) @ M``, ``t = -R @ position / 1000``.
- ``binning`` (Pose2Sim's ``binning_factor``): frames recorded with 2x2 binning have half the sensor's pixels.

TOML (Pose2Sim's and OpenCV-style ``Calib*.toml``): one table per camera with ``name``, ``size = [W, H]``,
``matrix`` (3x3, OpenCV pixel convention), ``distortions`` (k1, k2, p1, p2[, k3]), ``rotation`` (Rodrigues vector,
world -> camera), ``translation`` (metres), ``fisheye``; other tables (``metadata`` ...) are skipped.
"""

from __future__ import annotations

import math
import os
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable

import numpy as np

from dinar_core.cameras.multiview import (
    Camera,
    CameraSet,
    check_camera_name,
    check_rotation,
    prefixed,
    read_cameras,
    shift_principal_point,
)
from dinar_core.errors import CalibrationError, MissingCameraError
from dinar_core.fileio import atomic_target

QUALISYS_SUBPIXELS = 64.0
"""Qualisys intrinsics are in sensor sub-pixel units: 64 per pixel."""
FLIP_YZ = np.diag([1.0, -1.0, -1.0])
"""A Qualisys camera (looks down -z, y up) -> an OpenCV camera (looks down +z, y down): a turn by pi about x."""
_TOML_SKIP = {"metadata", "capture_volume", "charuco", "checkerboard"}


# -- Qualisys ---------------------------------------------------------------------------------------------------------
def read_qca(path: str | os.PathLike, binning: int = 1) -> CameraSet:
    """Read a Qualisys ``.qca.txt`` calibration (see the module docstring for the conversion). The world's up axis
    is Qualisys' +z."""
    path = Path(path)
    root = _parse_xml(path)
    tags = root.findall("cameras/camera")
    if not tags:
        raise CalibrationError(f"{path}: no <cameras><camera> element", fix="export the calibration from QTM again "
                                                                            "(File > Export > calibration)")
    if binning < 1:
        raise CalibrationError(f"binning must be >= 1, got {binning}", fix="pass 1 (full frames) or 2 (540p)")
    cams: dict[str, Camera] = {}
    for i, tag in enumerate(tags):
        name = tag.get("serial") or f"cam{i + 1:02d}"
        where = f"{path}: camera {name!r}"
        _check_name(name, path)
        if name in cams:
            raise CalibrationError(f"{where} appears twice", fix="give each camera a unique serial")
        if tag.get("active", "1") == "0":
            continue
        rot = _num(tag, "viewrotation", where, default=0.0)
        if rot != 0:
            raise CalibrationError(f"{where}: viewrotation={rot:g} is not supported",
                                   fix="export the calibration with the cameras' view rotation at 0")
        fov = _child(tag, "fov_video", where)
        intr = _child(tag, "intrinsic", where)
        tr = _child(tag, "transform", where)
        left, top = _num(fov, "left", where), _num(fov, "top", where)
        size = (int(round((_num(fov, "right", where) - left + 1) / binning)),
                int(round((_num(fov, "bottom", where) - top + 1) / binning)))
        s = QUALISYS_SUBPIXELS * binning
        fx, fy = _num(intr, "focalLengthU", where) / s, _num(intr, "focalLengthV", where) / s
        cx = _num(intr, "centerPointU", where) / s - left
        cy = _num(intr, "centerPointV", where) / s - top
        skew = _num(intr, "skew", where, default=0.0)
        K_cv = np.array([[fx, skew, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        dist = np.array([_num(intr, "radialDistortion1", where, 0.0), _num(intr, "radialDistortion2", where, 0.0),
                         _num(intr, "tangentalDistortion1", where, 0.0), _num(intr, "tangentalDistortion2", where, 0.0),
                         _num(intr, "radialDistortion3", where, 0.0)]) / s
        M = np.array([[_num(tr, f"r{r}{c}", where) for c in (1, 2, 3)] for r in (1, 2, 3)])
        M = check_rotation(M, f"{where} <transform> r11..r33")
        position = np.array([_num(tr, k, where) for k in "xyz"]) / 1000.0  # mm -> m
        R = FLIP_YZ @ M
        cams[name] = Camera(name, shift_principal_point(K_cv, 0.5), R, -R @ position, dist, size)
    if not cams:
        raise CalibrationError(f"{path}: every camera is inactive", fix="activate the cameras in QTM and re-export")
    return CameraSet(cams, up=(0.0, 0.0, 1.0))


def _check_name(name: str, path: Path) -> None:
    try:
        check_camera_name(name)
    except CalibrationError as exc:
        raise prefixed(exc, str(path)) from None


def _parse_xml(path: Path) -> ET.Element:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise CalibrationError(f"cannot read {path} ({exc})", fix="check the path of the calibration file") from exc
    if b"<!ENTITY" in text or b"<!DOCTYPE" in text:
        raise CalibrationError(f"{path}: XML with a DOCTYPE/ENTITY declaration is refused",
                               fix="give the calibration file exactly as QTM exported it")
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise CalibrationError(f"{path} is not valid XML ({exc}): truncated or not a Qualisys calibration",
                               fix="export the calibration from QTM again; do not edit the .qca.txt by hand") from exc


def _child(tag: ET.Element, child: str, where: str) -> ET.Element:
    el = tag.find(child)
    if el is None:
        raise CalibrationError(f"{where}: no <{child}> element", fix="export the calibration from QTM again")
    return el


def _num(tag: ET.Element, key: str, where: str, default: float | None = None) -> float:
    raw = tag.get(key)
    if raw is None:
        if default is not None:
            return default
        raise CalibrationError(f"{where}: <{tag.tag}> has no {key!r} attribute",
                               fix="export the calibration from QTM again")
    try:
        value = float(raw)
    except ValueError:
        raise CalibrationError(f"{where}: <{tag.tag} {key}={raw!r}> is not a number",
                               fix="export the calibration from QTM again") from None
    if not math.isfinite(value):
        raise CalibrationError(f"{where}: <{tag.tag} {key}={raw!r}> is not finite", fix="re-run the calibration")
    return value


# -- TOML (Pose2Sim / OpenCV) -----------------------------------------------------------------------------------------
def read_toml(path: str | os.PathLike, up: tuple[float, float, float] | None = None) -> CameraSet:
    """Read a Pose2Sim/OpenCV ``Calib*.toml`` (see the module docstring)."""
    import cv2

    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CalibrationError(f"{path} is not a readable TOML file ({exc})",
                               fix="give a Pose2Sim/OpenCV calibration TOML (one table per camera)") from exc
    cams: dict[str, Camera] = {}
    for key, table in doc.items():
        if key in _TOML_SKIP or not isinstance(table, dict):
            continue
        name = str(table.get("name", key))
        where = f"{path}: camera [{key}]"
        _check_name(name, path)
        missing = [k for k in ("size", "matrix", "rotation", "translation") if k not in table]
        if missing:
            raise CalibrationError(f"{where} lacks {', '.join(missing)}",
                                   fix="each camera table needs size, matrix, distortions, rotation, translation")
        if table.get("fisheye", False):
            raise CalibrationError(f"{where}: fisheye cameras are not supported", fix="calibrate a pinhole model")
        try:
            K_cv = np.asarray(table["matrix"], dtype=np.float64)
            dist = np.asarray(table.get("distortions", [0.0] * 4), dtype=np.float64)
            rvec = np.asarray(table["rotation"], dtype=np.float64)
            t = np.asarray(table["translation"], dtype=np.float64)
            size = tuple(int(round(float(v))) for v in table["size"])
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{where}: a value is not a number ({exc})",
                                   fix="matrix: 3 rows of 3 numbers; rotation, translation: 3 numbers") from exc
        if K_cv.shape != (3, 3):
            raise CalibrationError(f"{where}: matrix must be 3x3, got {K_cv.shape}", fix="write the 3x3 intrinsics")
        if rvec.shape == (3, 3):
            R = check_rotation(rvec, f"{where} rotation")
        elif rvec.shape == (3,) and np.all(np.isfinite(rvec)):
            R = cv2.Rodrigues(rvec)[0]
        else:
            raise CalibrationError(f"{where}: rotation must be a Rodrigues vector (3) or a 3x3 matrix, got "
                                   f"{rvec.shape}", fix="write the world -> camera rotation")
        try:
            cams[name] = Camera(name, shift_principal_point(K_cv, 0.5), R, t, dist, size)  # type: ignore[arg-type]
        except CalibrationError as exc:
            raise prefixed(exc, str(path)) from None
    if not cams:
        raise CalibrationError(f"{path}: no camera table", fix="give a Pose2Sim/OpenCV calibration TOML "
                                                               "([cam01] name = ..., size = ..., matrix = ...)")
    return CameraSet(cams, up)


def write_toml(path: str | os.PathLike, cameras: CameraSet) -> Path:
    """Write a Pose2Sim-style ``Calib.toml`` (OpenCV pixel convention, Rodrigues rotation, metres)."""
    import cv2

    lines = []
    for cam in cameras:
        K = cam.K_opencv
        rvec = cv2.Rodrigues(cam.R)[0].reshape(3)
        lines += [f"[{cam.name}]", f'name = "{cam.name}"', f"size = [ {cam.width:.1f}, {cam.height:.1f}]",
                  "matrix = [ " + ", ".join("[ " + ", ".join(_f(v) for v in row) + "]" for row in K) + "]",
                  "distortions = [ " + ", ".join(_f(v) for v in cam.dist[:4]) + "]"
                  if cam.dist[4] == 0 else "distortions = [ " + ", ".join(_f(v) for v in cam.dist) + "]",
                  "rotation = [ " + ", ".join(_f(v) for v in rvec) + "]",
                  "translation = [ " + ", ".join(_f(v) for v in cam.t) + "]", "fisheye = false", ""]
    lines += ["[metadata]", "adjusted = false", "error = 0.0", ""]
    path = Path(path)
    with atomic_target(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path


def _f(v: float) -> str:
    return repr(float(v))


# -- any calibration ------------------------------------------------------------------------------------------------
def read_calibration(path: str | os.PathLike, binning: int = 1) -> CameraSet:
    """Read a ``.qca.txt``, ``.toml`` or ``cameras.json`` calibration, by its name."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} does not exist",
                               fix="give a Calib.qca.txt, Calib*.toml or cameras.json")
    name = path.name.lower()
    if name.endswith(".qca.txt") or name.endswith(".qca"):
        return read_qca(path, binning)
    if name.endswith(".toml"):
        return read_toml(path)
    if name.endswith(".json"):
        return read_cameras(path)
    raise CalibrationError(f"{path}: unknown calibration format", fix="give a .qca.txt, .toml or cameras.json file")


def find_calibration(calibration_dir: str | os.PathLike) -> Path:
    """The calibration file of a Pose2Sim project's ``calibration/`` folder: ``Calib*.toml`` first (Pose2Sim's own
    result), else ``*.qca.txt``; :class:`CalibrationError` when there is none or several of the same kind."""
    d = Path(calibration_dir)
    for pattern in ("Calib*.toml", "*.qca.txt"):
        found = sorted(p for p in d.glob(pattern) if p.is_file()) if d.is_dir() else []
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise CalibrationError(f"{d}: several calibrations ({', '.join(p.name for p in found)})",
                                   fix="keep one, or pass the file with --calibration")
    raise CalibrationError(f"{d}: no Calib*.toml or *.qca.txt calibration", fix="put the calibration file there, or "
                                                                               "pass it with --calibration")


def match_cameras(cameras: CameraSet, view_names: Iterable[str], source: str = "calibration",
                  allow_unused: bool = False) -> dict[str, str]:
    """``{view name: calibration camera name}``: the same name, else the one camera whose name contains the view's
    (Pose2Sim's ``int_cam01_img`` for ``cam01``), else the one whose name the view's contains (``cam01`` for an
    image folder ``cam01_img``). :class:`MissingCameraError` listing what has no partner on either
    side (views without a camera, cameras without a view; the latter allowed with ``allow_unused``, when the views
    were chosen)."""
    views = list(view_names)
    mapping: dict[str, str] = {}
    for v in views:
        if v in cameras.cameras:
            mapping[v] = v
            continue
        for hits in ([c for c in cameras.names if v in c], [c for c in cameras.names if c in v]):
            hits = [c for c in hits if c not in mapping.values() and c not in views]
            if len(hits) == 1:
                mapping[v] = hits[0]
                break
    no_cam = [v for v in views if v not in mapping]
    no_view = [] if allow_unused else [c for c in cameras.names if c not in mapping.values()]
    if no_cam or no_view:
        parts = []
        if no_cam:
            parts.append(f"views without a calibrated camera: {', '.join(no_cam)}")
        if no_view:
            parts.append(f"calibrated cameras without a view: {', '.join(no_view)}")
        raise MissingCameraError(f"{source}: {'; '.join(parts)} (calibrated: {', '.join(cameras.names)})",
                                 fix="give every camera both a video/image folder and a calibration entry with the "
                                     "same name, or choose the cameras with --cameras")
    return mapping


def fit_to_frame(camera: Camera, frame_size: tuple[int, int], source: str = "frame") -> Camera:
    """The camera of an actual frame of ``frame_size`` (W, H), when it differs from the calibrated size:

    - equal: unchanged;
    - the same picture cropped by up to 16 px at the right/bottom (video codecs pad or crop to a multiple of 16, as
      Pose2Sim's demo cam01/cam02: 1080 wide videos, 1088 wide calibration): K unchanged, the size of the frame;
    - uniformly scaled (e.g. 2x binning, a downscaled video): K scaled;
    - otherwise :class:`CalibrationError`.
    """
    W, H = (int(v) for v in frame_size)
    if (W, H) == camera.size:
        return camera
    cw, ch = camera.size
    if 0 <= cw - W <= 16 and 0 <= ch - H <= 16:
        return Camera(camera.name, camera.K, camera.R, camera.t, camera.dist, (W, H))
    sx, sy = W / cw, H / ch
    if abs(sx - sy) * max(cw, ch) <= 1.0:
        return camera.scaled(sx, (W, H))
    raise CalibrationError(f"{source}: {W}x{H} frames, but camera {camera.name!r} is calibrated for {cw}x{ch}",
                           fix="use the frames the calibration was made for (or a uniformly rescaled copy)")
