"""The body fit with the Anny backend (slow: building Anny takes ~80 s the first time, then ~2 s from its cache)."""

from __future__ import annotations

import pytest
import torch

from dinar_core.fitting import FitConfig, fit_body
from tests.helpers.fitting_scenes import assert_recovers_ground_truth, make_scene, natural_pose, place

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def anny():
    from dinar_core.body.anny_model import AnnyBody
    from dinar_core.fitting.adapters import AnnyFitBody

    return AnnyFitBody(AnnyBody())


def test_anny_adapter_poses_only_its_bones(anny):
    from dinar_core.fitting.variables import FitVariables

    v = FitVariables.rest(anny.spec, 1)
    v.body_pose = torch.randn(v.body_pose.shape, generator=torch.Generator().manual_seed(0)) * 0.2
    params = anny.to_params(v)
    moved = params.pose[0].abs().sum(-1) > 0
    assert int(moved.sum()) == len(anny.bone_index)
    assert bool(moved[anny.bone_index].all())


def test_anny_fit_recovers_synthetic_ground_truth(anny):
    """Both backends pass the same check: 2 frames, mean 3D joint error (Procrustes) under 5 cm, reprojection under
    1% of the body height, mask IoU over 0.9."""
    size = (512, 384)
    v = natural_pose(anny, 2, seed=0, scale=0.06, yaw_deg=8.0)
    g = torch.Generator().manual_seed(1)
    v.betas = (0.5 + 0.15 * torch.randn(v.betas.shape, generator=g)).clamp(0.05, 0.95)  # phenotypes in [0, 1]
    v = place(anny, v, size)
    scenes = make_scene(anny, v, size, seed=1)
    fit = fit_body(anny, [s.keypoints for s in scenes], [s.mask for s in scenes], [size] * 2,
                   FitConfig(share_shape=False))  # two different bodies
    assert_recovers_ground_truth(fit, scenes)
    assert fit.params.phenotype.min() >= -0.05 and fit.params.phenotype.max() <= 1.05
