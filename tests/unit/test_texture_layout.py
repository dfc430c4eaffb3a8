"""Texture space: loading DINAR's SMPL-X UV layout, the layout of a body model, texel rasterization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dinar_core.errors import MissingModelError
from dinar_core.texture import ClassicAvatarConfig, layout_from_body, load_smplx_uv_layout, texel_map, texel_points
from tests.helpers.texture_meshes import ellipsoid_body


def test_missing_uv_assets_name_the_files_and_the_fix(tmp_path):
    np.save(tmp_path / "uv.npy", np.zeros((4, 2)))
    with pytest.raises(MissingModelError) as err:
        load_smplx_uv_layout(tmp_path)
    msg = str(err.value)
    assert "uv_faces.npy" in msg and "v_inds.npy" in msg and "smplx_data" in msg
    with pytest.raises(MissingModelError, match="uv_assets"):
        load_smplx_uv_layout(None)


def test_layout_from_body_without_uvs_is_a_missing_model_error():
    class NoUV:
        uv_layout = None

    with pytest.raises(MissingModelError, match="no UV layout"):
        layout_from_body(NoUV())
    _, layout = ellipsoid_body(8, 8)

    class WithUV:
        uv_layout = layout

    assert layout_from_body(WithUV()) is layout


def test_real_layout_loads_and_texels_cover_the_uv_area(uv_assets):
    layout = load_smplx_uv_layout(uv_assets)
    assert layout.uv.shape == (11438, 2) and layout.uv_faces.shape == (20908, 3)
    assert layout.vertex_index.shape == (11438,) and int(layout.vertex_index.max()) == 10474
    tm = texel_map(layout, 128)
    uv = layout.uv.double()[layout.uv_faces]
    area = 0.5 * ((uv[:, 1, 0] - uv[:, 0, 0]) * (uv[:, 2, 1] - uv[:, 0, 1])
                  - (uv[:, 1, 1] - uv[:, 0, 1]) * (uv[:, 2, 0] - uv[:, 0, 0])).abs().sum()
    assert abs(tm.inside.float().mean().item() - float(area)) < 0.03
    assert len(torch.unique(tm.chart[tm.inside])) == 12  # SMPL-X's 12 UV islands
    assert texel_map(layout, 128) is tm  # cached


def test_texel_points_lie_on_the_surface():
    rest, layout = ellipsoid_body(32, 48)
    tm = texel_map(layout, 96)
    pts, nrm = texel_points(rest[None], layout, tm, rest[None] / rest.norm(dim=1, keepdim=True)[None])
    a, b, c = 0.2, 0.85, 0.13
    r = (pts[0] / torch.tensor([a, b, c])).norm(dim=1)
    assert r.max() <= 1.0 + 1e-4 and r.min() > 0.97  # chords of the ellipsoid: on or just inside it
    assert nrm.shape == pts.shape and torch.allclose(nrm.norm(dim=-1), torch.ones(1), atol=1e-4)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="texture_size"):
        ClassicAvatarConfig(texture_size=4).validate()
    with pytest.raises(ValueError, match="fill_method"):
        ClassicAvatarConfig(fill_method="magic").validate()
