"""Hair volume (issue 11 part 2): the scalp shell's thickness is measured from the person mask around the head."""

from __future__ import annotations

import numpy as np
import pytest

from dinar_core.body.parts import Part, body_parts
from dinar_core.render.camera import make_K
from dinar_core.texture.hair_volume import camera_silhouette, measure_hair_volume, offset_shell, scalp_weights

SIZE = (640, 480)


@pytest.fixture(scope="module")
def scene():
    from dinar_core.body.anny_model import AnnyBody

    body = AnnyBody()
    rest = body.rest_vertices.float()
    faces = body.faces
    parts = body_parts(body)
    w = scalp_weights(rest, parts)
    # The rest pose stood in front of DINAR-like camera: y down in the image, 2.6 m away, seen from the front.
    v = rest.clone()
    v[:, 1] = -(v[:, 1] - 0.5 * (v[:, 1].max() + v[:, 1].min()))
    v[:, 2] = 2.6 - v[:, 2]
    v[:, 0] = -v[:, 0]
    return v[None], make_K(*SIZE, focal=900.0), faces, w, parts, rest


def test_scalp_weights_cover_the_crown_not_the_face_or_the_body(scene):
    _, _, faces, w, parts, rest = scene
    head = parts == int(Part.HEAD)
    assert float(w[~head].abs().max()) == 0.0
    y = rest[:, 1]
    crown = head & (y > y[head].max() - 0.02)
    assert float(w[crown].min()) > 0.9
    # The face: head vertices facing forward at mid-head height (nose, cheeks, mouth).
    h = (y - y[head].min()) / (y[head].max() - y[head].min())
    front = head & (rest[:, 2] > rest[head, 2].max() - 0.03) & (h > 0.45) & (h < 0.75)
    assert int(front.sum()) > 5 and float(w[front].max()) < 0.2


def test_shell_moves_only_the_scalp_outward(scene):
    v, _, faces, w, _, _ = scene
    out = offset_shell(v, faces, w, 0.03)
    moved = (out - v).norm(dim=-1)[0]
    assert float(moved.max()) == pytest.approx(0.03, rel=1e-3)
    assert float(moved[w == 0].max()) == 0.0
    assert offset_shell(v, faces, w, 0.0) is v


@pytest.mark.parametrize("true_t", [0.0, 0.025, 0.05])
def test_thickness_is_recovered_from_the_mask(scene, true_t):
    v, K, faces, w, _, _ = scene
    mask = camera_silhouette(offset_shell(v, faces, w, true_t), K, faces, SIZE)
    vol = measure_hair_volume(v, K, faces, mask, w)
    assert abs(vol.thickness_m - true_t) <= 0.0051, (vol.thickness_m, vol.ious)
    if true_t > 0:
        assert vol.head_iou[1] > vol.head_iou[0] + 0.02  # the shell explains the mask around the head better
    else:
        assert vol.head_iou[1] == vol.head_iou[0]


def test_no_head_in_view_measures_nothing(scene):
    v, K, faces, w, _, _ = scene
    away = v.clone()
    away[..., 0] += 100.0  # far off the image
    vol = measure_hair_volume(away, K, faces, np.zeros(SIZE, bool), w)
    assert vol.thickness_m == 0.0 and np.isnan(vol.head_iou[0])
    assert vol.to_dict() == {"thickness_m": 0.0, "head_iou": [None, None]}  # valid JSON, no NaN
