"""The report plays each person's video inline and shows its GLB in 3D (`<model-viewer>`, copied beside the report
with each GLB as a script, so it works opened from the disk), loaded by headless Chromium where it is installed:
the viewer reports the model loaded with its animation, and a screenshot shows it."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from tasks.report import VIEWER_FILE, viewer_source, write_report
from tasks.workspace import REPORT_ASSETS, Workspace
from tests.helpers.browser import chromium, needs_chromium, wait_for

needs_viewer = pytest.mark.skipif(viewer_source() is None,
                                  reason="the 3D viewer is not installed: `make setup` (npm, tools/model-viewer)")


def _avatar(runs, name: str) -> Workspace:
    from dinar_core.export.glb import GLBAnimation, SkinnedMesh, write_glb
    from tests.unit.test_export_glb import _texture, cylinder

    ws = Workspace(runs / name)
    ws.root.mkdir(parents=True)
    ws.write_manifest(ws.read_manifest())
    ws.avatar_dir.mkdir()
    v, f, w, p, rest, uv = cylinder()
    rot = np.zeros((5, 3, 3))
    rot[:, 1, 2] = np.linspace(0, np.pi / 2, 5)
    write_glb(ws.avatar_dir / "avatar.glb", SkinnedMesh(v, f, w, p, rest, ("hip", "knee", "ankle"), uv=uv,
                                                        texture=_texture()), GLBAnimation(rot, 24.0, name="bend"))
    ws.renders_dir.mkdir()
    (ws.renders_dir / "video.mp4").write_bytes(b"mp4")
    return ws


@needs_viewer
def test_report_has_the_video_inline_and_a_3d_viewer_beside_it(tmp_path):
    runs = tmp_path / "runs"
    ws = _avatar(runs, "alice")
    page = write_report(runs).read_text()
    assert '<video src="alice/renders/video.mp4" controls' in page
    assert f'<script src="{REPORT_ASSETS}/{VIEWER_FILE}"></script>' in page
    assert 'data-person="alice" data-glb="report_assets/alice.glb.js"' in page
    assert (runs / REPORT_ASSETS / VIEWER_FILE).read_bytes() == viewer_source().read_bytes()
    script = (runs / REPORT_ASSETS / "alice.glb.js").read_text()
    data = re.search(r'base64,([A-Za-z0-9+/=]+)"', script).group(1)
    assert base64.b64decode(data) == (ws.avatar_dir / "avatar.glb").read_bytes()


def test_without_the_viewer_the_report_says_how_to_install_it(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    _avatar(runs, "bob")
    monkeypatch.setenv("DINAR_MODEL_VIEWER", str(tmp_path / "none.js"))
    page = write_report(runs).read_text()
    assert "<model-viewer" not in page and "No 3D viewer: `make setup`" in page
    assert not (runs / REPORT_ASSETS).exists()


@needs_viewer
@pytest.mark.clients
@needs_chromium
def test_chromium_loads_the_glb_in_the_reports_viewer(tmp_path):
    runs = tmp_path / "runs"
    _avatar(runs, "alice")
    report = write_report(runs)
    with chromium() as driver:
        driver.get(report.as_uri())
        state = wait_for(driver, "const v = document.querySelector('model-viewer.viewer3d');"
                                 "return v && (v.dataset.loaded || v.dataset.error) ? "
                                 "[v.dataset.loaded, v.dataset.animations, v.dataset.error] : null;")
        assert state == ["1", "bend", None], state
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 5000
