"""The Anny avatar's GLB carries its animation, and a viewer's glTF skinning of it reproduces Anny's own posed mesh.

Anny skins from a bind pose that is not its all-zero pose and its bones have their own orientations; the GLB holds
the bind mesh, the bind frames as inverse bind matrices, nodes in the zero pose and each keyframe's local bone
rotations. Here the file is skinned from its own contents (``skin_from_file``: the glTF equations) and compared
with ``AnnyBody.forward`` for the same motion frames. The difference left is glTF's four weights per vertex (Anny
uses up to 9): reported, and bounded.
"""

import numpy as np
import pytest

from dinar_core.body import AnnyBody
from dinar_core.export.gltf_validator import find_validator, validate_gltf
from tasks.bodies import LoadedBody
from tests.helpers.anny_glb import anny_walk_glb
from tests.helpers.gltf import skin_from_file


@pytest.fixture(scope="module")
def anny():
    return LoadedBody("anny", AnnyBody(), None)


def test_anny_glb_animation_skins_like_the_model(anny, tmp_path):
    walk = anny_walk_glb(anny, tmp_path / "anny.glb")
    body, path, expected, zero, vi = anny.model, walk.path, walk.expected, walk.zero, walk.vi
    T = expected.shape[0]
    height = float(np.ptp(zero[:, 1]))
    errors = [np.abs(skin_from_file(path, None) - zero).max()]
    errors += [np.abs(skin_from_file(path, t) - expected[t]).max() for t in (0, T // 2, T - 1)]
    mean = np.mean([np.linalg.norm(skin_from_file(path, t) - expected[t], axis=1).mean() for t in (0, T // 2)])
    print(f"Anny GLB vs model: max vertex error {max(errors) * 1000:.2f} mm (zero pose {errors[0] * 1000:.2f} mm), "
          f"mean {mean * 1000:.3f} mm, body height {height:.2f} m")
    dense = body.skinning_weights.numpy()[vi].astype(np.float64)
    exact = max(np.abs(skin_from_file(path, t, dense) - expected[t]).max() for t in (0, T // 2, T - 1))
    print(f"  with all of Anny's weights instead of the file's four: {exact * 1000:.4f} mm")
    assert exact < 1e-4  # the skeleton, bind frames and animation are exact: only the weight limit differs
    assert np.ptp(expected[:, :, 0], axis=0).max() > 0.05  # the walk moves the body (not a trivial check)
    assert max(errors) < 0.01 and mean < 0.0005, (errors, mean)  # four weights per vertex: < 1 cm, mean < 0.5 mm
    if find_validator() is not None:
        report = validate_gltf(path)
        assert report.errors == 0, report.summary("error")
