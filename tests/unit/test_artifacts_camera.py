"""The SMPL-X fit's camera beside DINAR's pickle (``smplx/<frame>_camera.json``): written, read back, DINAR's
camera when absent, a named error when it does not fit the photo; `dinar infer` moves it with DINAR's crop."""

import numpy as np
import pytest
import torch

from dinar_core.errors import DatasetError
from dinar_core.render.camera import make_K
from tasks.artifacts import camera_path, fit_files, read_camera, write_camera
from tasks.neural_inference import _camera
from tasks.workspace import Workspace


def test_camera_round_trip_and_dinar_fallback(tmp_path):
    ws = Workspace(tmp_path)
    ws.smplx_dir.mkdir()
    assert torch.equal(read_camera(ws, "f", (256, 192)), make_K(256, 192))  # no file: DINAR's 5000 px
    K = make_K(256, 192, 2000.0)
    write_camera(ws, "f", K, (256, 192))
    assert torch.allclose(read_camera(ws, "f", (256, 192)), K)
    assert float(read_camera(ws, "f", (256, 192))[0, 0]) == 2000.0


def test_fit_files_key_the_camera(tmp_path):
    ws = Workspace(tmp_path)
    for d in (ws.rgb_dir, ws.smplx_dir):
        d.mkdir()
    (ws.rgb_dir / "f.png").write_bytes(b"")
    ws.smplx("f").write_bytes(b"pkl")
    assert fit_files(ws, "smplx") == [ws.smplx("f")]
    write_camera(ws, "f", make_K(8, 8, 100.0), (8, 8))
    assert fit_files(ws, "smplx") == [ws.smplx("f"), camera_path(ws, "f")]


@pytest.mark.parametrize("text", ["{", '{"K": [[1, 0], [0, 1]], "image_size": [256, 192]}',
                                  '{"K": [[0, 0, 1], [0, 5, 1], [0, 0, 1]], "image_size": [256, 192]}',
                                  '{"K": [[5, 0, 1], [0, 5, 1], [0, 0, 1]], "image_size": [100, 192]}',
                                  '{"image_size": [256, 192]}', '[1]'])
def test_a_bad_camera_file_is_a_named_error(tmp_path, text):
    ws = Workspace(tmp_path)
    ws.smplx_dir.mkdir()
    camera_path(ws, "f").write_text(text)
    with pytest.raises(DatasetError, match=r"smplx/f_camera\.json") as info:
        read_camera(ws, "f", (256, 192))
    assert "fit stage" in str(info.value)


def test_infer_uses_the_fit_camera_and_moves_it_with_the_crop(tmp_path):
    ws = Workspace(tmp_path)
    ws.smplx_dir.mkdir()
    ltrb = np.array([10, 20, 110, 220])
    assert torch.equal(_camera(ws, "f", (256, 192), None, 5000.0), make_K(256, 192))
    assert torch.equal(_camera(ws, "f", (256, 192), ltrb, 5000.0), make_K(200, 100))  # DINAR: K of the crop
    write_camera(ws, "f", make_K(256, 192, 2000.0), (256, 192))
    K = _camera(ws, "f", (256, 192), None, 5000.0)
    assert torch.allclose(K, make_K(256, 192, 2000.0))
    K = _camera(ws, "f", (256, 192), ltrb, 5000.0)
    assert torch.allclose(K[:2, 2], torch.tensor([96.0 - 10, 128.0 - 20])) and float(K[0, 0]) == 2000.0
