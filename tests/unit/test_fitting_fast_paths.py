"""Issue 14's faster fit: the partial forward (only the vertices the loss looks at), the frames the limb aim turns
in, the closed-form limb aim, the coarse-to-fine vertex subsets and the nearest-vertex search. Each is checked
against the full computation it replaces."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from dinar_core.fitting import FitConfig
from dinar_core.fitting.init import aim_limbs
from dinar_core.fitting.losses import nearest_points
from dinar_core.fitting.objective import objective
from dinar_core.render.camera import project
from dinar_core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from tests.helpers.fitting_scenes import make_K, make_scene, natural_pose, place
from tests.helpers.synthetic_smplx import synthetic_smplx_dir  # noqa: F401 (fixture)

SIZE = (512, 384)


@pytest.fixture(scope="module")
def anny():
    torch.set_num_threads(1)
    from dinar_core.body.anny_model import AnnyBody
    from dinar_core.fitting.adapters import AnnyFitBody

    return AnnyFitBody(AnnyBody())


@pytest.fixture(scope="module")
def smplx_body(synthetic_smplx_dir):  # noqa: F811
    from dinar_core.body import SMPLXBody
    from dinar_core.fitting.adapters import SMPLXFitBody

    return SMPLXFitBody(SMPLXBody(synthetic_smplx_dir))


@pytest.fixture(params=["anny", "smplx"])
def body(request, anny, smplx_body):
    return anny if request.param == "anny" else smplx_body


def _variables(body, seed: int, batch: int = 2):
    v = natural_pose(body, batch, seed=seed, scale=0.2)
    if body.spec.betas_range is not None:  # Anny's phenotypes live in [0, 1]
        v.betas = torch.rand(v.betas.shape, generator=torch.Generator().manual_seed(seed))
    v.transl = torch.tensor([[0.1, 0.2, 5.0], [-0.1, 0.0, 6.0]])[:batch]
    return v


def test_partial_forward_matches_the_full_one(body):
    v = _variables(body, seed=1)
    ids = torch.randperm(body.faces.max().item() + 1, generator=torch.Generator().manual_seed(0))[:4000].sort().values
    full, part = body.forward(v), body.forward_vertices(v, ids)
    assert part.vertices.shape == (2, 4000, 3)
    torch.testing.assert_close(part.vertices, full.vertices[:, ids], atol=1e-5, rtol=0)
    torch.testing.assert_close(part.joints, full.joints, atol=1e-5, rtol=0)
    # SMPL-X: exact; Anny: the COCO points from the regressor without its weights under 1e-5 (0.1 mm here)
    error = float((part.source_points - full.source_points).norm(dim=-1).max())
    assert error < (1e-4 if body.spec.betas_range is not None else 1e-5), error
    empty = body.forward_vertices(v, ids[:0])
    assert empty.vertices.shape == (2, 0, 3)
    torch.testing.assert_close(empty.joints, full.joints, atol=1e-5, rtol=0)


def test_partial_forward_gives_the_same_loss_and_gradient(body):
    """The objective of the body stage with and without the partial forward: equal within float rounding (and the
    Anny regressor's truncation), so the fit it drives is the same fit."""
    from dinar_core.fitting.fitter import _start
    from dinar_core.fitting.targets import prepare_targets

    v0 = place(body, natural_pose(body, 1, seed=2, scale=0.1), SIZE)
    scene = make_scene(body, v0, SIZE, seed=2)[0]
    values = []
    for partial in (False, True):
        cfg = replace(FitConfig(), partial_forward=partial)
        targets = prepare_targets([scene.keypoints], [scene.mask], [SIZE], body.spec, cfg, torch.device("cpu"))
        v, problem = _start(body, targets, cfg, torch.device("cpu"))
        v.body_pose = v.body_pose + 0.05  # away from the start, so every term has a gradient
        v.body_pose.requires_grad_(True)
        for stage, count in (("camera", None), ("body", 1000), ("body", None)):
            loss = objective(problem, v, stage, 1.0, 1.0, count)
            (grad,) = torch.autograd.grad(loss, v.body_pose)
            values.append((float(loss.detach()), grad))
    for (l0, g0), (l1, g1) in zip(values[:3], values[3:]):
        assert l1 == pytest.approx(l0, rel=1e-4)
        assert float((g1 - g0).norm()) <= 1e-3 * float(g0.norm()) + 1e-6


def test_pose_frames_turn_a_limb_about_its_joint(body):
    """A world rotation D applied through ``pose_frames`` (local' = G^T D G local) turns the limb's far keypoint
    about its joint by exactly D: the identity ``aim_limbs`` relies on, for both rig conventions."""
    v = _variables(body, seed=3)
    D = axis_angle_to_matrix(torch.tensor([[0.3, -0.5, 0.4], [-0.2, 0.1, 0.6]]))
    with torch.no_grad():
        out = body.forward(v)
        kp = body.keypoints(out).points
        G = body.pose_frames(v)
        for pose_j, joint, _, end in body.limb_aims:
            turned = v.select(slice(None))
            turned.body_pose = v.body_pose.clone()
            local = axis_angle_to_matrix(v.body_pose[:, pose_j])
            turned.body_pose[:, pose_j] = matrix_to_axis_angle(G[:, pose_j].transpose(-1, -2) @ D @ G[:, pose_j] @ local)
            moved = body.keypoints(body.forward(turned)).points[:, end]
            pivot = out.joints[:, joint]
            want = pivot + ((kp[:, end] - pivot)[:, None] @ D.transpose(-1, -2))[:, 0]
            assert float((moved - want).norm(dim=-1).max()) < 1e-5, (pose_j, end)


def _image_angles(body, v, target, K) -> dict[int, float]:
    """Degrees between the model's image direction of each aimed limb (joint -> far keypoint) and the detected one
    (near -> far keypoint)."""
    with torch.no_grad():
        out = body.forward(v)
        kp = body.keypoints(out).points
    angles = {}
    for _, joint, near, end in body.limb_aims:
        both = project(torch.stack([out.joints[:, joint], kp[:, end]], 1), K)[0]
        a, b = both[1] - both[0], target[0, end, :2] - target[0, near, :2]
        angles[end] = math.degrees(abs(math.atan2(float(a[0] * b[1] - a[1] * b[0]), float(a @ b))))
    return angles


def test_aim_limbs_turns_each_limb_towards_its_keypoint(body):
    """From the rest pose at the true camera, the aim brings every limb's image direction within 3 degrees of
    the detected one (they start 10+ degrees off; not exactly 0: the model's joint is not its keypoint); a limb
    whose far keypoint is not detected is left alone."""
    truth = place(body, natural_pose(body, 1, seed=4, scale=0.12), SIZE)
    shoulders = [j for j, _, _, end in body.limb_aims if end in (3, 6)]
    truth.body_pose[:, shoulders, :] += torch.tensor([0.0, 0.0, 0.5])  # arms further from the rest pose
    K = make_K(*SIZE, 5000.0)[None]
    with torch.no_grad():
        target = body.keypoints(body.forward(truth)).points
    target = torch.cat([project(target, K), torch.ones_like(target[..., :1])], -1)  # exact detections
    hidden = 11  # the right ankle: not detected
    target[:, hidden] = 0.0
    start = truth.select(slice(None))
    start.body_pose = torch.zeros_like(truth.body_pose) if body.spec.pose_rest is None else \
        body.spec.pose_rest[None].clone()
    before = _image_angles(body, start, target, K)
    shin = next(j for j, _, _, end in body.limb_aims if end == hidden)
    aimed = aim_limbs(body, start.select(slice(None)), target, K)
    after = _image_angles(body, aimed, target, K)
    assert max(a for e, a in before.items() if e != hidden) > 10.0, before
    assert max(a for e, a in after.items() if e != hidden) < 3.0, after
    torch.testing.assert_close(aimed.body_pose[:, shin], start.body_pose[:, shin])


def test_coarse_silhouette_subsets_are_nested_and_the_default_is_unchanged(anny):
    from dinar_core.fitting.fitter import _start
    from dinar_core.fitting.targets import prepare_targets

    v0 = place(anny, natural_pose(anny, 1, seed=5, scale=0.06), SIZE)
    scene = make_scene(anny, v0, SIZE, seed=5)[0]
    cfg = FitConfig()
    targets = prepare_targets([scene.keypoints], [scene.mask], [SIZE], anny.spec, cfg, torch.device("cpu"))
    _, problem = _start(anny, targets, cfg, torch.device("cpu"))
    small, w_small = problem.silhouette_vertices(1000)
    big, w_big = problem.silhouette_vertices(None)
    assert len(small) == 1000 and len(big) == cfg.silhouette_vertices
    assert bool(torch.isin(small, big).all())
    # the default set is the one the fit has always used: the first 4,000 of a permutation seeded by cfg.seed + 1
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    n = anny.forward(v0).vertices.shape[1]
    torch.testing.assert_close(big, torch.randperm(n, generator=gen)[:cfg.silhouette_vertices].sort().values)
    torch.testing.assert_close(w_big, problem.cover_weight[big])
    assert problem.silhouette_vertices(0) == (None, problem.cover_weight)


def test_nearest_points_matches_cdist_argmin():
    g = torch.Generator().manual_seed(0)
    queries = torch.rand(2, 300, 2, generator=g) * 900 + 50
    points = torch.rand(2, 3000, 2, generator=g) * 1000
    want = torch.cdist(queries, points).argmin(-1)
    got = nearest_points(queries, points)
    d_want = torch.gather(torch.cdist(queries, points), 2, want[..., None])
    d_got = torch.gather(torch.cdist(queries, points), 2, got[..., None])
    torch.testing.assert_close(d_got, d_want, atol=1e-3, rtol=0)  # ties may pick another, equally near point
    assert float((got == want).float().mean()) > 0.99


def test_fast_fit_config_is_the_benchmarked_option():
    """configs/fast-fit.yaml sets exactly what bench.fitting measured as its option row (so the README's figure for
    the file is the file's), and only the fit."""
    from pathlib import Path

    from bench.fitting import BEFORE_ISSUE_14, CHANGES
    from tasks.config import PipelineConfig, load_config

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "configs" / "fast-fit.yaml")
    name, settings = CHANGES[-1]
    assert name.startswith("option")
    measured = {**BEFORE_ISSUE_14, **settings}
    for key, value in measured.items():
        assert getattr(cfg.fit, key) == (tuple(value) if isinstance(value, list) else value), key
    assert cfg.fit != FitConfig() and replace(cfg, fit=FitConfig()) == PipelineConfig()
