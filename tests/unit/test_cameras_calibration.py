"""dinar_core.cameras.calibration: the Qualisys reader on Pose2Sim's demo calibration (shipped under
data/multiview/pose2sim_demo/calibration/), its agreement with a Pose2Sim-format TOML derived independently from the
same XML, the TOML writer/reader, camera matching, frame-size fitting and the named errors for bad files."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from dinar_core.cameras.calibration import (
    find_calibration,
    fit_to_frame,
    match_cameras,
    read_calibration,
    read_qca,
    read_toml,
    write_toml,
)
from dinar_core.errors import CalibrationError, MissingCameraError, NotARotationError

QCA = Path(__file__).resolve().parents[2] / "data" / "multiview" / "pose2sim_demo" / "calibration" / "Calib.qca.txt"


def pose2sim_toml_from_qca(qca_text: str) -> str:
    """The TOML that Pose2Sim's converter (calibration.py: read_qca + calib_qca_fun + toml_write) makes of a
    .qca.txt, following its steps one by one (binning 1), written independently of the reader under test."""
    root = ET.fromstring(qca_text)
    out = []
    for cam in root.findall("cameras/camera"):
        fov, intr, tr = cam.find("fov_video"), cam.find("intrinsic"), cam.find("transform")
        g = lambda el, k: float(el.get(k))  # noqa: E731
        w, h = g(fov, "right") - g(fov, "left") + 1, g(fov, "bottom") - g(fov, "top") + 1
        dist = [g(intr, k) / 64 for k in ("radialDistortion1", "radialDistortion2", "tangentalDistortion1",
                                          "tangentalDistortion2")]
        K = [[g(intr, "focalLengthU") / 64, 0.0, g(intr, "centerPointU") / 64 - g(fov, "left")],
             [0.0, g(intr, "focalLengthV") / 64, g(intr, "centerPointV") / 64 - g(fov, "top")], [0.0, 0.0, 1.0]]
        T = np.array([g(tr, k) for k in "xyz"]) / 1000
        R_q = np.array([g(tr, f"r{i}{j}") for i in (1, 2, 3) for j in (1, 2, 3)]).reshape(3, 3).T  # by column
        r = R_q.T                                    # world_to_camera_persp
        t = -r @ T
        a = np.pi                                    # rotate_cam(ang_x=pi)
        r_ax = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        r, t = r_ax @ r, r_ax @ t
        rvec = cv2.Rodrigues(r)[0].ravel()
        name = cam.get("serial")
        out += [f"[{name}]", f'name = "{name}"', f"size = [ {w}, {h}]",
                f"matrix = [ [ {K[0][0]}, 0.0, {K[0][2]}], [ 0.0, {K[1][1]}, {K[1][2]}], [ 0.0, 0.0, 1.0]]",
                f"distortions = [ {dist[0]}, {dist[1]}, {dist[2]}, {dist[3]}]",
                f"rotation = [ {rvec[0]}, {rvec[1]}, {rvec[2]}]", f"translation = [ {t[0]}, {t[1]}, {t[2]}]",
                "fisheye = false", ""]
    return "\n".join(out + ["[metadata]", "adjusted = false", "error = 0.0", ""])


def assert_same_cameras(a, b, atol=1e-9):
    assert a.names == b.names
    for name in a.names:
        for attr in ("K", "R", "t", "dist"):
            np.testing.assert_allclose(getattr(a[name], attr), getattr(b[name], attr), atol=atol, err_msg=name)
        assert a[name].size == b[name].size


def test_qca_reader_on_the_pose2sim_demo():
    cams = read_qca(QCA)
    assert cams.names == ["cam01", "cam02", "cam03", "cam04"] and cams.up == (0.0, 0.0, 1.0)
    root = ET.parse(QCA).getroot()
    world_origin = np.zeros(3)
    for tag in root.findall("cameras/camera"):
        cam = cams[tag.get("serial")]
        intr, tr = tag.find("intrinsic"), tag.find("transform")
        assert cam.size == (1088, 1920)
        assert cam.K[0, 0] == pytest.approx(float(intr.get("focalLengthU")) / 64)
        assert cam.K[0, 2] == pytest.approx(float(intr.get("centerPointU")) / 64 + 0.5)  # + 0.5: pixel centres
        # the camera sits where Qualisys says (mm -> m) ...
        np.testing.assert_allclose(cam.centre, [float(tr.get(k)) / 1000 for k in "xyz"], atol=1e-9)
        # ... about 1.7-2.1 m above the floor, upright (image down = world down) and looking down at the origin,
        # which is inside its image
        assert 1.5 < cam.centre[2] < 2.3
        assert cam.R[1] @ np.array(cams.up) < -0.8
        x, y = cam.project(world_origin)[0]
        assert 0 < x < cam.width and 0 < y < cam.height, (cam.name, x, y)


def test_qca_and_pose2sim_toml_agree(tmp_path):
    toml = tmp_path / "Calib_converted.toml"
    toml.write_text(pose2sim_toml_from_qca(QCA.read_text()))
    assert_same_cameras(read_qca(QCA), read_toml(toml))
    assert_same_cameras(read_calibration(QCA), read_calibration(toml))


def test_toml_writer_round_trip(tmp_path):
    cams = read_qca(QCA)
    path = write_toml(tmp_path / "Calib.toml", cams)
    assert_same_cameras(cams, read_toml(path), atol=1e-12)
    assert find_calibration(tmp_path) == path


def test_match_cameras_names_what_is_missing():
    cams = read_qca(QCA)
    assert match_cameras(cams, ["cam02", "cam01", "cam03", "cam04"]) == {f"cam0{i}": f"cam0{i}" for i in (2, 1, 3, 4)}
    with pytest.raises(MissingCameraError, match="calibrated cameras without a view: cam04"):
        match_cameras(cams, ["cam01", "cam02", "cam03"], "Calib.qca.txt")
    with pytest.raises(MissingCameraError, match="views without a calibrated camera: cam05") as info:
        match_cameras(cams, ["cam01", "cam02", "cam03", "cam04", "cam05"], "Calib.qca.txt")
    assert "Calib.qca.txt" in str(info.value)
    assert match_cameras(cams, ["cam03"], allow_unused=True) == {"cam03": "cam03"}


def test_match_cameras_by_containment(tmp_path):
    """Pose2Sim's own calibration names cameras after their intrinsics folders (int_cam01_img)."""
    text = re.sub(r'serial="(cam0\d)"', r'serial="int_\1_img"', QCA.read_text())
    (tmp_path / "Calib.qca.txt").write_text(text)
    cams = read_qca(tmp_path / "Calib.qca.txt")
    assert match_cameras(cams, ["cam01", "cam02", "cam03", "cam04"])["cam03"] == "int_cam03_img"
    plain = read_qca(QCA)
    assert match_cameras(plain, ["cam01_img", "cam02_img", "cam03_img", "cam04"])["cam02_img"] == "cam02"
    with pytest.raises(MissingCameraError, match="cam1"):  # ambiguous: cam1 is in every name
        match_cameras(plain, ["cam1", "cam02", "cam03", "cam04"], allow_unused=True)


def test_fit_to_frame():
    cam = read_qca(QCA)["cam01"]
    assert fit_to_frame(cam, (1088, 1920)) is cam
    cropped = fit_to_frame(cam, (1080, 1920))  # the demo's cam01 video: codec crop at the right edge
    assert cropped.size == (1080, 1920) and np.array_equal(cropped.K, cam.K)
    half = fit_to_frame(cam, (544, 960))
    np.testing.assert_allclose(half.K[:2], cam.K[:2] / 2)
    with pytest.raises(CalibrationError, match="1000x1000 frames"):
        fit_to_frame(cam, (1000, 1000), source="cam01.mp4")


def _edit(text: str, camera: str, key: str, value: str) -> str:
    head, rest = text.split(f'serial="{camera}"', 1)
    rest = re.sub(rf'{key}="[^"]*"', f'{key}="{value}"', rest, count=1)
    return head + f'serial="{camera}"' + rest


@pytest.mark.parametrize("edit, error, match", [
    (lambda t: t[: len(t) // 2], CalibrationError, "not valid XML"),
    (lambda t: _edit(t, "cam03", "r11", "0.9"), NotARotationError, "cam03"),
    (lambda t: _edit(t, "cam02", "r33", str(-0.3125717476340885)), NotARotationError, "det"),
    (lambda t: _edit(t, "cam02", "focalLengthU", "abc"), CalibrationError, "focalLengthU='abc'"),
    (lambda t: _edit(t, "cam02", "x", "nan"), CalibrationError, "not finite"),
    (lambda t: re.sub(r'focalLengthV="[^"]*"', "", t, count=1), CalibrationError, "no 'focalLengthV'"),
    (lambda t: t.replace('serial="cam04"', 'serial="../cam04"'), CalibrationError, "file-system safe"),
    (lambda t: t.replace("<cameras>", "<cams>").replace("</cameras>", "</cams>"), CalibrationError, "no <cameras>"),
    (lambda t: t.replace("<?xml version='1.0' encoding='ASCII'?>",
                         '<?xml version="1.0"?><!DOCTYPE c [<!ENTITY a "aaaa">]>'), CalibrationError, "DOCTYPE"),
])
def test_bad_qca_files_are_named_errors(tmp_path, edit, error, match):
    bad = tmp_path / "Calib.qca.txt"
    bad.write_text(edit(QCA.read_text()))
    with pytest.raises(error, match=match) as info:
        read_qca(bad)
    assert str(bad) in str(info.value) and info.value.fix


@pytest.mark.parametrize("text, match", [
    ("[cam01\nname = 1", "not a readable TOML"),
    ('[cam01]\nname = "cam01"\nsize = [10, 10]\nmatrix = [[1, 0, 5], [0, 1, 5], [0, 0, 1]]\n', "lacks rotation"),
    ('[cam01]\nsize = [10, 10]\nmatrix = [[1, 0, 5], [0, "a", 5], [0, 0, 1]]\nrotation = [0, 0, 0]\n'
     'translation = [0, 0, 1]\n', "not a number"),
    ('[cam01]\nsize = [10, 10]\nmatrix = [[1, 0, 5], [0, 1, 5], [0, 0, 1]]\n'
     'rotation = [[1, 0, 0], [0, 2, 0], [0, 0, 1]]\ntranslation = [0, 0, 1]\n', "not a rotation"),
    ("[metadata]\nadjusted = false\n", "no camera table"),
])
def test_bad_toml_files_are_named_errors(tmp_path, text, match):
    bad = tmp_path / "Calib.toml"
    bad.write_text(text)
    with pytest.raises(CalibrationError, match=match) as info:
        read_toml(bad)
    assert str(bad) in str(info.value)


def test_find_calibration(tmp_path):
    with pytest.raises(CalibrationError, match="no Calib"):
        find_calibration(tmp_path)
    (tmp_path / "a.qca.txt").write_text("x")
    (tmp_path / "b.qca.txt").write_text("x")
    with pytest.raises(CalibrationError, match="several"):
        find_calibration(tmp_path)
    with pytest.raises(CalibrationError, match="does not exist"):
        read_calibration(tmp_path / "nope.toml")
