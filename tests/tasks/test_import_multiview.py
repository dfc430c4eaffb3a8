"""`dinar import pose2sim` on a small fake Pose2Sim project: two short videos made with PyAV (each frame's grey level
encodes its index, a white dot marks a known 3D point) + a calibration written here; the layout, the chosen frames,
the cameras (the 3D point projects onto the dot in every written view) and the named errors."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from dinar_core.cameras.calibration import write_toml
from dinar_core.cameras.multiview import (
    Camera,
    CameraSet,
    list_persons,
    look_at,
    read_cameras,
    read_dataset,
    view_paths,
)
from dinar_core.errors import MissingCameraError, MultiViewDataError
from flows.cli import app
from tasks.import_multiview import import_pose2sim, parse_frames

W, H = 160, 120
N_FRAMES = 6
POINT = np.array([0.4, 0.4, 1.6])  # a world point both cameras see, off their centres


def grey(i: int) -> int:
    return 30 + 35 * i


def fake_cameras() -> CameraSet:
    cams = {}
    for name, centre, dist in (("cam01", (2.0, -1.0, 1.3), (-0.5, 0.1, 0.0, 0.0, 0.0)),
                               ("cam02", (-1.5, -1.8, 1.1), (0.0,) * 5)):
        R, t = look_at(centre, (0.0, 0.0, 1.0))
        K = np.array([[150.0, 0.0, W / 2 + 2], [0.0, 150.0, H / 2 - 3], [0.0, 0.0, 1.0]])
        cams[name] = Camera(name, K, R, t, np.array(dist), (W, H))
    return CameraSet(cams, up=(0.0, 0.0, 1.0))


def write_video(path: Path, cam: Camera) -> None:
    import av

    x, y = cam.project(POINT, distort=True)[0]  # where the point is in the RAW (distorted) frame
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "0"}
        for i in range(N_FRAMES):
            img = np.full((H, W, 3), grey(i), np.uint8)
            cv2.circle(img, (int(round(x - 0.5)), int(round(y - 0.5))), 3, (255, 255, 255), -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "My Session"
    (root / "videos").mkdir(parents=True)
    (root / "calibration").mkdir()
    cams = fake_cameras()
    for cam in cams:
        write_video(root / "videos" / f"{cam.name}.mp4", cam)
    write_toml(root / "calibration" / "Calib_board.toml", cams)
    return root


def dot_centre(rgb: np.ndarray) -> np.ndarray:
    w = (rgb[..., 0].astype(float) > 200).astype(float)
    ii, jj = np.nonzero(w)
    return np.array([jj.mean() + 0.5, ii.mean() + 0.5])


def test_cli_import_writes_the_layout(project, tmp_path):
    out = tmp_path / "DATA"
    res = CliRunner().invoke(app, ["import", "pose2sim", str(project), "--frames", "1,4", "--out", str(out),
                                   "--scale", "0.5", "--licence", "CC0"])
    assert res.exit_code == 0, res.output
    persons = list_persons(out)
    assert [p.name for p in persons] == ["My_Session_f0001", "My_Session_f0004"]
    info = read_dataset(out)
    assert info.kind == "pose2sim" and info.licence == "CC0" and info.extra["frames"] == [1, 4]
    truth = fake_cameras()
    for person, frame in zip(persons, (1, 4)):
        cams = read_cameras(person)
        views = view_paths(person)
        assert list(views) == cams.names == ["cam01", "cam02"]
        for name, path in views.items():
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            cam = cams[name]
            assert (rgb.shape[1], rgb.shape[0]) == cam.size == (W // 2, H // 2)
            np.testing.assert_allclose(cam.K[:2], truth[name].K[:2] / 2)
            np.testing.assert_array_equal(cam.dist, truth[name].dist)  # the original distortion is kept
            np.testing.assert_allclose(cam.R, truth[name].R, atol=1e-12)
            # the right frame (grey level) ...
            assert abs(np.median(rgb) - grey(frame)) <= 3, (person.name, name, np.median(rgb))
            # ... undistorted, with the written K: the 3D point projects onto its dot
            err = np.linalg.norm(cam.project(POINT)[0] - dot_centre(rgb))
            assert err < 0.75, (person.name, name, err)
    # cam01 has a real distortion: the raw dot position (distorted, rescaled) is measurably elsewhere
    raw = truth["cam01"].project(POINT, distort=True)[0] / 2
    assert np.linalg.norm(raw - read_cameras(persons[0])["cam01"].project(POINT)[0]) > 1.0
    # a second import of another frame adds to the dataset
    assert import_pose2sim(project, out, [2], cameras=["cam02"]).warnings == []
    assert read_dataset(out).persons == ["My_Session_f0001", "My_Session_f0002", "My_Session_f0004"]
    assert list(view_paths(out / "My_Session_f0002")) == ["cam02"]


def test_image_folders_and_a_qca_like_toml_name(project, tmp_path):
    """Frames given as one image folder per camera (sorted by name, index = position)."""
    import av

    for video in sorted((project / "videos").glob("*.mp4")):
        folder = project / "videos" / video.stem
        folder.mkdir()
        with av.open(str(video)) as c:
            for i, frame in enumerate(c.decode(video=0)):
                cv2.imwrite(str(folder / f"{video.stem}_{i:06d}.png"), frame.to_ndarray(format="bgr24"))
        video.unlink()
    result = import_pose2sim(project, tmp_path / "D", [3])
    rgb = cv2.imread(str(result.persons[0] / "views" / "cam02.png"))
    assert abs(np.median(rgb) - grey(3)) <= 3 and rgb.shape == (H, W, 3)


def test_missing_camera_is_a_named_error(project, tmp_path):
    (project / "videos" / "cam03.mp4").write_bytes((project / "videos" / "cam01.mp4").read_bytes())
    with pytest.raises(MissingCameraError, match="views without a calibrated camera: cam03"):
        import_pose2sim(project, tmp_path / "D", [1])
    res = CliRunner().invoke(app, ["import", "pose2sim", str(project), "--frames", "1", "--out", str(tmp_path / "D")])
    assert res.exit_code == 1 and "MissingCameraError" in res.output and "cam03" in res.output
    (project / "videos" / "cam03.mp4").unlink()
    (project / "videos" / "cam02.mp4").unlink()
    with pytest.raises(MissingCameraError, match="calibrated cameras without a view: cam02"):
        import_pose2sim(project, tmp_path / "D", [1])
    with pytest.raises(MissingCameraError, match="cam02"):
        import_pose2sim(project, tmp_path / "D", [1], cameras=["cam01", "cam02"])
    assert import_pose2sim(project, tmp_path / "D", [1], cameras=["cam01"]).cameras == ["cam01"]
    assert not (tmp_path / "D" / "dataset.json").read_text().count("cam02")


def test_bad_frames_and_calibration(project, tmp_path):
    with pytest.raises(MultiViewDataError, match=f"has {N_FRAMES} frames, no frame 9"):
        import_pose2sim(project, tmp_path / "D", [2, 9])
    calib = project / "calibration" / "Calib_board.toml"
    calib.write_text(re.sub(r"rotation = \[[^\]]*\]", "rotation = [ 0.1, 0.2]", calib.read_text(), count=1))
    from dinar_core.errors import CalibrationError

    with pytest.raises(CalibrationError, match="Calib_board.toml"):
        import_pose2sim(project, tmp_path / "D", [1])
    assert not (tmp_path / "D").exists()
    # a calibration made for 8 px wider frames (a codec crop): K kept, the frames' size written, a warning
    cams = fake_cameras()
    write_toml(calib, CameraSet({n: Camera(n, c.K, c.R, c.t, c.dist, (W + 8, H)) for n, c in cams.cameras.items()}))
    result = import_pose2sim(project, tmp_path / "E", [1])
    assert read_cameras(result.persons[0])["cam01"].size == (W, H) and "168x120" in result.warnings[0]


def test_parse_frames():
    assert parse_frames("10,40") == [10, 40]
    assert parse_frames("0-90:30, 5") == [0, 5, 30, 60, 90]
    for bad in ("", "a", "5-2", "-3"):
        with pytest.raises(MultiViewDataError):
            parse_frames(bad)
