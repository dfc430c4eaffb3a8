"""dinar_core.cameras.multiview: the Camera dataclass (projection against OpenCV, centre, direction, resizing),
cameras.json / dataset.json round trips and their named errors, and image undistortion on a synthetic dot grid."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dinar_core.cameras.multiview import (
    Camera,
    CameraSet,
    DatasetInfo,
    list_persons,
    look_at,
    read_cameras,
    read_dataset,
    view_paths,
    write_cameras,
    write_dataset,
)
from dinar_core.errors import CalibrationError, MissingCameraError, MultiViewDataError, NotARotationError


def make_camera(name="cam01", centre=(3.0, -1.0, 1.5), dist=(0.0,) * 5, size=(640, 480), f=600.0):
    R, t = look_at(centre, (0.0, 0.0, 1.0))
    K = np.array([[f, 0.0, size[0] / 2 + 3.0], [0.0, f * 1.01, size[1] / 2 - 5.0], [0.0, 0.0, 1.0]])
    return Camera(name, K, R, t, np.asarray(dist, float), size)


def test_project_matches_opencv_with_and_without_distortion():
    cam = make_camera(dist=(-0.2, 0.05, 0.001, -0.002, 0.01))
    pts = np.random.default_rng(0).uniform(-0.5, 0.5, (50, 3)) + [0.0, 0.0, 1.0]
    rvec = cv2.Rodrigues(cam.R)[0]
    for distort in (False, True):
        ref, _ = cv2.projectPoints(pts, rvec, cam.t, cam.K_opencv, cam.dist if distort else np.zeros(5))
        # OpenCV's pixels have centres at integers, ours at +0.5
        np.testing.assert_allclose(cam.project(pts, distort=distort), ref[:, 0] + 0.5, atol=1e-6)
    assert np.isnan(cam.project(cam.centre - 2 * cam.direction)).all()  # behind the camera


def test_undistort_points_inverts_the_distortion():
    cam = make_camera(dist=(-0.3, 0.08, 0.002, -0.001, 0.0))
    pts = np.random.default_rng(1).uniform(-1.2, 1.2, (40, 3)) + [0.0, 0.0, 1.0]  # out to the image corners
    raw = cam.project(pts, distort=True)
    assert np.abs(raw - cam.project(pts)).max() > 5
    np.testing.assert_allclose(cam.undistort_points(raw), cam.project(pts), atol=1e-4)


def test_centre_direction_and_projection_matrix():
    cam = make_camera(centre=(3.0, -1.0, 1.5))
    np.testing.assert_allclose(cam.centre, [3.0, -1.0, 1.5], atol=1e-12)
    to_target = np.array([0.0, 0.0, 1.0]) - cam.centre
    np.testing.assert_allclose(cam.direction, to_target / np.linalg.norm(to_target), atol=1e-12)
    assert cam.R[1] @ [0.0, 0.0, 1.0] < 0 and abs(cam.R[0] @ [0.0, 0.0, 1.0]) < 1e-12  # upright: image down = down
    # the target projects onto the principal point; P agrees with project()
    np.testing.assert_allclose(cam.project([0.0, 0.0, 1.0])[0], cam.K[:2, 2], atol=1e-9)
    X = np.array([0.2, 0.1, 1.3, 1.0])
    x = cam.P @ X
    np.testing.assert_allclose(x[:2] / x[2], cam.project(X[:3])[0], atol=1e-9)


def test_resize_keeps_points_on_the_same_image_content():
    """An image resized from W x H to W' x H' maps continuous pixel coordinates by (W'/W, H'/H): K follows."""
    cam = make_camera(size=(640, 480))
    small = cam.resized((320, 240))
    pts = np.array([[0.1, -0.2, 1.2], [-0.3, 0.3, 0.8]])
    np.testing.assert_allclose(small.project(pts), cam.project(pts) * 0.5, atol=1e-9)
    assert small.size == (320, 240) and cam.scaled(0.5).size == (320, 240)
    np.testing.assert_allclose(cam.scaled(0.5).K, small.K)


def test_cameras_json_round_trip(tmp_path):
    cams = CameraSet({"cam01": make_camera("cam01", dist=(-0.1, 0.01, 0.0, 0.0, 0.0)),
                      "side_2": make_camera("side_2", centre=(0.0, 3.0, 1.2), size=(300, 500))}, up=(0, 0, 1))
    path = write_cameras(tmp_path / "p", cams)
    doc = json.loads(path.read_text())
    assert doc["units"] == "m" and "x_cam = R @ x_world + t" in doc["convention"] and doc["up"] == [0, 0, 1]
    assert doc["cameras"]["side_2"]["size"] == [300, 500] and len(doc["cameras"]["cam01"]["dist"]) == 5
    back = read_cameras(tmp_path / "p")
    assert back.names == ["cam01", "side_2"] and back.up == (0.0, 0.0, 1.0)
    for name in cams.names:
        for attr in ("K", "R", "t", "dist"):
            np.testing.assert_array_equal(getattr(back[name], attr), getattr(cams[name], attr))
        assert back[name].size == cams[name].size
    with pytest.raises(MissingCameraError, match="cam09"):
        back["cam09"]


def _doc(**change):
    cam = make_camera().to_json()
    cam.update(change)
    return {"units": "m", "cameras": {"cam01": cam}}


@pytest.mark.parametrize("doc, error, match", [
    (_doc(R=[[1, 0, 0], [0, 1, 0], [0, 0.2, 1]]), NotARotationError, "not a rotation"),
    (_doc(R=[[1, 0, 0], [0, 1, 0], [0, 0, -1]]), NotARotationError, "det = -1"),
    (_doc(K=[[600, 0, 320], [0, "x", 240], [0, 0, 1]]), CalibrationError, "not a number"),
    (_doc(K=[[-600, 0, 320], [0, 600, 240], [0, 0, 1]]), CalibrationError, "fx, fy > 0"),
    (_doc(t=[0, 1]), CalibrationError, "t must be 3"),
    (_doc(size=[0, 480]), CalibrationError, "size"),
    ({"units": "mm", "cameras": _doc()["cameras"]}, CalibrationError, "units"),
    ({"cameras": {}}, CalibrationError, "at least one camera"),
    ({"cameras": {"../x": make_camera().to_json()}}, CalibrationError, "file-system safe"),
])
def test_cameras_json_bad_values_are_named_errors(tmp_path, doc, error, match):
    (tmp_path / "cameras.json").write_text(json.dumps(doc))
    with pytest.raises(error, match=match) as info:
        read_cameras(tmp_path)
    assert "cameras.json" in str(info.value)


def test_cameras_json_truncated_is_a_calibration_error(tmp_path):
    write_cameras(tmp_path, CameraSet({"cam01": make_camera()}))
    text = (tmp_path / "cameras.json").read_text()
    (tmp_path / "cameras.json").write_text(text[: len(text) // 2])
    with pytest.raises(CalibrationError, match="not valid JSON"):
        read_cameras(tmp_path)


def test_dataset_layout(tmp_path):
    for p in ("a_f0001", "a_f0002"):
        write_cameras(tmp_path / p, CameraSet({"cam01": make_camera()}))
        (tmp_path / p / "views").mkdir()
        cv2.imwrite(str(tmp_path / p / "views" / "cam01.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "not_a_person").mkdir()
    assert [p.name for p in list_persons(tmp_path)] == ["a_f0001", "a_f0002"]  # no dataset.json: by cameras.json
    write_dataset(tmp_path, DatasetInfo("pose2sim", "src", "BSD-3-Clause", ["a_f0002"], {"frames": [2]}))
    info = read_dataset(tmp_path)
    assert info.persons == ["a_f0002"] and info.extra == {"frames": [2]} and info.kind == "pose2sim"
    assert [p.name for p in list_persons(tmp_path)] == ["a_f0002"]
    assert list(view_paths(tmp_path / "a_f0002")) == ["cam01"]
    write_dataset(tmp_path, DatasetInfo("pose2sim", "src", "x", ["a_f0002", "gone"]))
    with pytest.raises(MultiViewDataError, match="gone"):
        list_persons(tmp_path)
    with pytest.raises(MultiViewDataError, match="no person folder"):
        list_persons(tmp_path / "not_a_person")


# -- undistortion on a synthetic grid --------------------------------------------------------------------------------
DOT_SIGMA = 1.6


def _dot_grid(size, spacing=40, margin=40):
    W, H = size
    xs = np.arange(margin, W - margin + 1, spacing, dtype=float) + 0.25
    ys = np.arange(margin, H - margin + 1, spacing, dtype=float) - 0.35
    return np.array([(x, y) for y in ys for x in xs])  # (N, 2) dot centres, project pixel convention


def _render_dots(coords, dots):
    """Image value at continuous pixel coords (..., 2): a sum of Gaussian dots, 0..255."""
    img = np.zeros(coords.shape[:-1])
    for d in dots:
        img += np.exp(-((coords - d) ** 2).sum(-1) / (2 * DOT_SIGMA ** 2))
    return np.clip(img * 255, 0, 255)


def _centroids(img, dots, r=5):
    out = []
    for d in dots:
        j0, i0 = int(d[0]), int(d[1])
        patch = img[i0 - r:i0 + r + 1, j0 - r:j0 + r + 1].astype(float)
        jj, ii = np.meshgrid(np.arange(j0 - r, j0 + r + 1) + 0.5, np.arange(i0 - r, i0 + r + 1) + 0.5)
        w = np.clip(patch - 10, 0, None)
        out.append([(w * jj).sum() / w.sum(), (w * ii).sum() / w.sum()])
    return np.array(out)


def test_undistort_image_puts_a_distorted_grid_back_within_half_a_pixel():
    """A grid of dots at known (undistorted) positions, rendered analytically through a strong barrel distortion
    (each raw pixel shows the ideal image at its undistorted position), then `undistort_image`: every dot's
    centroid is back at its known position within 0.5 px; on the raw frame the dots are far off."""
    size = (480, 360)
    cam = Camera("cam01", [[300.0, 0.0, 245.0], [0.0, 305.0, 176.0], [0.0, 0.0, 1.0]], np.eye(3), [0, 0, 1],
                 [-0.25, 0.06, 0.002, -0.001, 0.0], size)
    dots = _dot_grid(size)
    jj, ii = np.meshgrid(np.arange(size[0]) + 0.5, np.arange(size[1]) + 0.5)
    raw_px = np.stack([jj, ii], -1).reshape(-1, 2)
    # undistorted position of each raw pixel (OpenCV convention inside cv2, hence the -0.5 / +0.5)
    und = cv2.undistortPointsIter((raw_px - 0.5)[:, None], cam.K_opencv, cam.dist, None, cam.K_opencv,
                                  (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12))[:, 0] + 0.5
    raw = _render_dots(und.reshape(size[1], size[0], 2), dots).astype(np.uint8)
    raw = np.repeat(raw[..., None], 3, -1)

    fixed = cam.undistort_image(raw)
    assert fixed.shape == raw.shape
    err = np.linalg.norm(_centroids(fixed[..., 0], dots) - dots, axis=1)
    assert err.max() < 0.5, f"undistorted dots off by up to {err.max():.3f} px"
    # the generator is right (the dots sit at their distorted positions in the raw frame), and the distortion is
    # strong (those positions are far from the undistorted ones)
    xn = (dots - cam.K[:2, 2]) / np.diag(cam.K)[:2]
    raw_dots = cam.project(np.c_[xn, np.zeros(len(dots))], distort=True)
    assert np.linalg.norm(_centroids(raw[..., 0], raw_dots) - raw_dots, axis=1).max() < 0.5
    assert np.linalg.norm(raw_dots - dots, axis=1).max() > 10, "the synthetic distortion is too weak to test"
    # a row of dots lies on a straight line again (largest deviation from the fitted line)
    row = dots[:, 1] == dots[0, 1]
    c = _centroids(fixed[..., 0], dots[row])
    line = np.polyfit(c[:, 0], c[:, 1], 1)
    assert np.abs(np.polyval(line, c[:, 0]) - c[:, 1]).max() < 0.5


def test_undistort_image_rejects_frames_of_another_size():
    cam = make_camera(dist=(-0.1, 0, 0, 0, 0), size=(64, 48))
    with pytest.raises(CalibrationError, match="64x48"):
        cam.undistort_image(np.zeros((40, 64, 3), np.uint8))
    np.testing.assert_array_equal(make_camera(size=(64, 48)).undistort_image(np.full((48, 64, 3), 7, np.uint8)), 7)
