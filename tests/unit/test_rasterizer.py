"""Rasterizer: DINAR's pixel convention, culling, depth test, perspective-correct interpolation, backend agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dinar_core.render import (Fragments, RasterizerConfig, apply_K, interpolate, make_K, project, rasterize,
                               rasterize_camera, render_uv, uv_map)
from dinar_core.render.pytorch3d_raster import rasterize_pytorch3d
from dinar_core.render.torch_raster import rasterize_torch

CPU_BACKENDS = ["torch", "numba"]
ALL_BACKENDS = ["torch", "numba", "pytorch3d"]


def homogeneous(xy: list[list[float]], z: list[float]) -> torch.Tensor:
    """Pixel positions (V, 2) and depths (V,) -> (1, V, 3) homogeneous pixel coordinates (x z, y z, z)."""
    xy_t = torch.tensor(xy, dtype=torch.float64)
    z_t = torch.tensor(z, dtype=torch.float64)
    return torch.cat([xy_t * z_t[:, None], z_t[:, None]], dim=-1)[None].float()


def sphere(n_lon: int, n_lat: int, radius: float, centre: tuple[float, float, float]):
    """Closed lat-long sphere in camera space, faces wound so their normals point outward."""
    theta = np.pi * np.arange(1, n_lat + 1) / (n_lat + 1)
    phi = 2 * np.pi * np.arange(n_lon) / n_lon
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]]) * radius + np.asarray(centre)
    idx = 1 + np.arange(n_lat * n_lon).reshape(n_lat, n_lon)
    nxt = np.roll(idx, -1, axis=1)
    faces = np.concatenate([np.stack([np.zeros(n_lon, int), nxt[0], idx[0]], -1),
                            np.stack([np.full(n_lon, len(verts) - 1), idx[-1], nxt[-1]], -1),
                            np.stack([idx[:-1], nxt[:-1], nxt[1:]], -1).reshape(-1, 3),
                            np.stack([idx[:-1], nxt[1:], idx[1:]], -1).reshape(-1, 3)])
    tri = verts[faces]
    inward = (np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]) * (tri.mean(1) - centre)).sum(-1) < 0
    faces[inward] = faces[inward][:, ::-1]
    return torch.from_numpy(verts).float(), torch.from_numpy(faces.copy()).long()


def centres_inside(tri_xy: np.ndarray, H: int, W: int) -> tuple[np.ndarray, float]:
    """Independent check: which pixel centres (j + 0.5, i + 0.5) lie in the 2D triangle (any winding), by the
    sign of the three edge cross products, in float64; also the smallest |edge distance| of any centre."""
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    signs, margin = [], np.inf
    for k in range(3):
        a, b = tri_xy[k], tri_xy[(k + 1) % 3]
        cross = (b[0] - a[0]) * (ii - a[1]) - (b[1] - a[1]) * (jj - a[0])
        signs.append(np.sign(cross))
        margin = min(margin, np.abs(cross).min() / np.hypot(*(b - a)))
    s = np.stack(signs)
    return (s > 0).all(0) | (s < 0).all(0), margin


# A front-facing triangle: counter-clockwise on the screen (x right, y down): top-left, bottom-left, top-right.
FRONT_XY = [[3.3, 2.2], [5.1, 20.7], [33.6, 4.1]]


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_single_triangle_covers_exactly_the_pixel_centres_inside(backend):
    H, W = 24, 40
    verts = homogeneous(FRONT_XY, [2.0, 3.0, 5.0])
    expected, margin = centres_inside(np.array(FRONT_XY), H, W)
    assert margin > 1e-3  # no centre sits on an edge, so the expected set is unambiguous
    frags = rasterize(verts, torch.tensor([[0, 1, 2]]), (H, W), backend=backend)
    got = frags.pix_to_face[0].numpy()
    assert expected.sum() > 100
    np.testing.assert_array_equal(got >= 0, expected)
    np.testing.assert_array_equal(frags.mask[0, 0].numpy(), expected)
    assert set(np.unique(got)) == {-1, 0}
    assert torch.all(frags.zbuf[~frags.mask[:, 0]] == -1)
    assert torch.all(frags.bary[~frags.mask[:, 0]] == 0)


def test_pytorch3d_barycentrics_and_depth_match_ours_non_square():
    """Proves the DINAR-pixel -> PyTorch3D-NDC mapping: PyTorch3D's own perspective-correct barycentrics and
    depths (computed at its pixel centres) equal ours (computed at j + 0.5) on a non-square image."""
    H, W = 24, 40
    verts = homogeneous(FRONT_XY, [2.0, 3.0, 5.0])
    faces = torch.tensor([[0, 1, 2]])
    ours = rasterize(verts, faces, (H, W), backend="torch")
    p3 = rasterize_pytorch3d(verts, faces, (H, W))
    m = ours.mask[:, 0]
    assert torch.equal(p3.pix_to_face >= 0, m)
    torch.testing.assert_close(p3.bary[m], ours.bary[m], atol=1e-5, rtol=0)
    torch.testing.assert_close(p3.zbuf[m], ours.zbuf[m], atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_back_faces_are_culled_unless_asked(backend):
    H, W = 24, 40
    verts = homogeneous(FRONT_XY, [2.0, 3.0, 5.0])
    back = torch.tensor([[0, 2, 1]])  # clockwise on the screen
    assert not rasterize(verts, back, (H, W), backend=backend).mask.any()
    both = rasterize(verts, back, (H, W), RasterizerConfig(backend=backend, cull_backfaces=False))
    front = rasterize(verts, torch.tensor([[0, 1, 2]]), (H, W), backend=backend)
    assert both.mask.sum() > 100 and torch.equal(both.mask, front.mask)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_depth_test_keeps_the_nearest_of_two_overlapping_triangles(backend):
    H, W = 24, 40
    near = homogeneous(FRONT_XY, [2.0, 2.5, 3.0])[0]
    far_xy = [[1.2, 1.4], [2.0, 23.1], [38.7, 2.9]]  # larger, contains the near triangle's centres
    far = homogeneous(far_xy, [4.0, 4.0, 4.0])[0]
    verts = torch.cat([near, far])[None]
    for faces, near_id in ((torch.tensor([[0, 1, 2], [3, 4, 5]]), 0), (torch.tensor([[3, 4, 5], [0, 1, 2]]), 1)):
        frags = rasterize(verts, faces, (H, W), backend=backend)
        in_near, _ = centres_inside(np.array(FRONT_XY), H, W)
        in_far, _ = centres_inside(np.array(far_xy), H, W)
        p2f = frags.pix_to_face[0].numpy()
        assert (p2f[in_near] == near_id).all()
        assert (p2f[in_far & ~in_near] == 1 - near_id).all()
        z = frags.zbuf[0].numpy()
        assert np.all(z[in_near] <= 3.0 + 1e-5) and np.allclose(z[in_far & ~in_near], 4.0, atol=1e-5)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_faces_with_a_vertex_behind_the_camera_are_skipped(backend):
    H, W = 24, 40
    ok = homogeneous(FRONT_XY, [2.0, 3.0, 5.0])
    faces = torch.tensor([[0, 1, 2]])
    for bad_z in (-1.0, 0.0, 5e-6):
        verts = ok.clone()
        verts[0, 2] = torch.tensor([33.6 * bad_z, 4.1 * bad_z, bad_z])  # same screen position if bad_z != 0
        assert not rasterize(verts, faces, (H, W), backend=backend).mask.any(), bad_z
    assert rasterize(ok, faces, (H, W), backend=backend).mask.any()


def tilted_quad(f: float = 40.0, size: int = 32):
    """A quad in camera space whose depth grows with X (z = 2 + 3 X), UV u = X (0..1), v = (Y + 0.4) / 0.8."""
    X0, X1, Y0, Y1 = 0.0, 1.0, -0.4, 0.4
    corners = torch.tensor([[X0, Y0], [X0, Y1], [X1, Y1], [X1, Y0]])
    Z = 2.0 + 3.0 * corners[:, 0]
    verts_cam = torch.stack([corners[:, 0] - 0.3, corners[:, 1], Z], -1)[None]  # shifted to sit in view
    uv = torch.stack([(corners[:, 0] - X0) / (X1 - X0), (corners[:, 1] - Y0) / (Y1 - Y0)], -1)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])  # counter-clockwise on the screen (y down)
    return verts_cam, faces, uv, make_K(size, size, focal=f)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_uv_is_perspective_correct_along_a_scanline(backend):
    f, size = 40.0, 32
    verts_cam, faces, uv, K = tilted_quad(f, size)
    frags = rasterize_camera(verts_cam, K, faces, (size, size), backend=backend)
    uvm = uv_map(frags, faces, uv)
    row = size // 2
    cols = torch.nonzero(frags.mask[0, 0, row]).squeeze(1)
    assert len(cols) > 10
    # Closed form along the row: the ray through pixel u hits X' = (u - cx) z / f on z = 2 + 3 (X' + 0.3).
    u = cols.double() + 0.5
    a = (u - K[0, 2].double()) / f
    Xp = a * (2.0 + 0.9) / (1.0 - 3.0 * a)
    expected_u = (Xp + 0.3) * 2 - 1
    torch.testing.assert_close(uvm[0, 0, row, cols].double(), expected_u, atol=1e-5, rtol=0)
    # The check can fail: interpolating linearly on the screen instead would be off by far more.
    xs = project(verts_cam, K)[0, :, 0].double()
    affine_u = (u - xs[0]) / (xs[2] - xs[0]) * 2 - 1
    assert (affine_u - expected_u).abs().max() > 0.05


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_interpolated_camera_position_reprojects_to_the_pixel_centre(backend):
    """Interpolating the camera-space vertex positions must give the 3D surface point seen through the pixel
    centre: it projects back to (j + 0.5, i + 0.5) and its z equals the depth buffer."""
    verts_cam, faces = sphere(24, 12, 0.5, (0.1, -0.05, 3.0))
    K = make_K(48, 64, focal=60.0)
    frags = rasterize_camera(verts_cam[None], K, faces, (48, 64), backend=backend)
    pts = interpolate(frags, faces, verts_cam).permute(0, 2, 3, 1)[frags.mask[:, 0]].double()  # (N, 3)
    ii, jj = torch.nonzero(frags.mask[0, 0], as_tuple=True)
    assert len(ii) > 300
    Kd = K.double()
    torch.testing.assert_close(pts[:, 0] / pts[:, 2] * Kd[0, 0] + Kd[0, 2], jj.double() + 0.5, atol=1e-3, rtol=0)
    torch.testing.assert_close(pts[:, 1] / pts[:, 2] * Kd[1, 1] + Kd[1, 2], ii.double() + 0.5, atol=1e-3, rtol=0)
    torch.testing.assert_close(pts[:, 2], frags.zbuf[frags.mask[:, 0]].double(), atol=1e-5, rtol=0)


def test_visible_faces_of_a_closed_mesh_face_the_camera():
    verts_cam, faces = sphere(24, 12, 0.5, (0.0, 0.0, 3.0))
    frags = rasterize_camera(verts_cam[None], make_K(48, 48, focal=60.0), faces, (48, 48))
    tri = verts_cam[faces[frags.pix_to_face[frags.pix_to_face >= 0]]]  # (N, 3, 3)
    normal = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    view = tri.mean(1)  # camera at the origin looking along +z
    assert torch.all((normal * view).sum(-1) < 0)


@pytest.mark.parametrize("other", ["numba", "pytorch3d"])
def test_backends_agree_on_a_closed_mesh(other):
    verts_cam, faces = sphere(40, 20, 0.6, (0.05, 0.02, 3.0))  # 1,600 faces
    bump = 1.0 + 0.15 * torch.sin(5 * verts_cam[:, :1]) * torch.cos(4 * verts_cam[:, 1:2])  # not convex everywhere
    verts_cam = (verts_cam - torch.tensor([0.05, 0.02, 3.0])) * bump + torch.tensor([0.05, 0.02, 3.0])
    H, W = 56, 64
    verts = apply_K(verts_cam[None], make_K(H, W, focal=120.0))
    uv = torch.rand(verts_cam.shape[0], 2, generator=torch.Generator().manual_seed(0))
    ref = rasterize(verts, faces, (H, W), backend="torch")
    got = rasterize(verts, faces, (H, W), backend=other)
    covered = ref.mask | got.mask
    assert covered.sum() > 1000
    same = (ref.pix_to_face == got.pix_to_face)[covered[:, 0]]
    assert same.float().mean() >= 0.995
    uv_ref, uv_got = uv_map(ref, faces, uv), uv_map(got, faces, uv)
    both = (ref.pix_to_face == got.pix_to_face)[:, None].expand_as(uv_ref)
    assert (uv_ref - uv_got)[both].abs().max() < 1e-4


def test_uv_map_background_and_range():
    verts_cam, faces, uv, K = tilted_quad()
    frags = rasterize_camera(verts_cam, K, faces, (32, 32))
    uvm = uv_map(frags, faces, uv)
    assert uvm.shape == (1, 2, 32, 32) and uvm.dtype == torch.float32
    bg = ~frags.mask.expand_as(uvm)
    assert bg.any() and torch.all(uvm[bg] == -10.0)
    assert torch.all(uvm[~bg] >= -1) and torch.all(uvm[~bg] <= 1)


def test_gradients_reach_the_vertex_positions():
    verts_cam, faces, uv, K = tilted_quad()
    verts = apply_K(verts_cam, K).requires_grad_(True)
    frags = rasterize(verts, faces, (32, 32), backend="torch")
    loss = (uv_map(frags, faces, uv).clamp_min(-1) ** 2).sum() + frags.zbuf.sum()
    loss.backward()
    assert torch.isfinite(verts.grad).all() and verts.grad.abs().sum() > 0
    # Also through a backend that has no autograd of its own.
    verts.grad = None
    interpolate(rasterize(verts, faces, (32, 32), backend="numba"), faces, uv).sum().backward()
    assert verts.grad.abs().sum() > 0


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_batch_chunking_and_camera_helper_are_consistent(backend):
    verts_cam, faces = sphere(24, 12, 0.5, (0.0, 0.0, 3.0))
    other = verts_cam * torch.tensor([1.3, 0.8, 1.0]) + torch.tensor([0.2, 0.1, 0.5])
    batch = torch.stack([verts_cam, other])
    K = make_K(40, 48, focal=55.0)
    frags = rasterize_camera(batch, K, faces, (40, 48), backend=backend)
    assert not torch.equal(frags.pix_to_face[0], frags.pix_to_face[1])
    for b in range(2):
        single = rasterize(apply_K(batch[b:b + 1], K), faces, (40, 48), backend=backend)
        assert torch.equal(single.pix_to_face[0], frags.pix_to_face[b])
        torch.testing.assert_close(single.bary[0], frags.bary[b])
    if backend == "torch":
        tiny_chunks = rasterize_torch(apply_K(batch, K), faces, (40, 48), RasterizerConfig(max_pairs_per_chunk=64))
        assert torch.equal(tiny_chunks, frags.pix_to_face)


def test_make_K_and_project_follow_dinar():
    K = make_K(480, 641)
    assert K.tolist() == [[5000.0, 0.0, 320.0], [0.0, 5000.0, 240.0], [0.0, 0.0, 1.0]]
    pts = torch.tensor([[[0.0, 0.0, 10.0], [0.02, -0.01, 20.0]]])
    torch.testing.assert_close(project(pts, K), torch.tensor([[[320.0, 240.0], [325.0, 237.5]]]))


def test_bad_inputs_raise_with_shapes():
    faces = torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match=r"\(B, V, 3\)"):
        rasterize(torch.zeros(3, 3), faces, (8, 8))
    with pytest.raises(ValueError, match="V=3"):
        rasterize(torch.ones(1, 3, 3), torch.tensor([[0, 1, 3]]), (8, 8))
    with pytest.raises(ValueError, match="backend"):
        rasterize(torch.ones(1, 3, 3), faces, (8, 8), backend="opengl")  # type: ignore[arg-type]
    frags = rasterize(torch.ones(1, 3, 3), faces, (8, 8))
    assert isinstance(frags, Fragments) and frags.image_size == (8, 8)
    with pytest.raises(ValueError, match="vertex_attrs"):
        interpolate(frags, faces, torch.zeros(2, 3, 1))


def test_uv_map_with_dinar_assets_inverts_a_known_layout(uv_assets):
    """DINAR's real UV faces on a flat sheet laid out like the UV chart (pixel = 8 + 112 uv at constant depth):
    the rendered UV map must give back uv = (pixel - 8) / 112 wherever the sheet is drawn."""
    uv = torch.from_numpy(np.load(uv_assets / "uv.npy")).float()  # (11438, 2)
    uv_faces = torch.from_numpy(np.load(uv_assets / "uv_faces.npy")).long()  # (20908, 3)
    assert uv.shape == (11438, 2) and uv_faces.shape == (20908, 3)
    size, z = 128, 2.0
    verts = torch.cat([(8.0 + 112.0 * uv) * z, torch.full((uv.shape[0], 1), z)], -1)[None]
    frags = rasterize(verts, uv_faces, (size, size), RasterizerConfig(cull_backfaces=False))
    uvm = uv_map(frags, uv_faces, uv)
    m = frags.mask[0, 0]
    assert m.float().mean() > 0.3
    ii, jj = torch.nonzero(m, as_tuple=True)
    expected = torch.stack([(jj + 0.5 - 8.0) / 112.0, (ii + 0.5 - 8.0) / 112.0]) * 2 - 1  # (2, N)
    torch.testing.assert_close(uvm[0][:, m], expected, atol=1e-4, rtol=0)
    assert torch.all(uvm[0][:, ~m] == -10.0)


def test_render_uv_of_a_body_like_shape_with_dinar_assets(uv_assets):
    """SMPL-X-sized vertices (10,475) mapped to the UV mesh by v_inds, wrapped onto a cylinder (a crude body)
    at DINAR's camera: DINAR's UV map has the right shape, range and background."""
    uv = torch.from_numpy(np.load(uv_assets / "uv.npy")).float()
    uv_faces = torch.from_numpy(np.load(uv_assets / "uv_faces.npy")).long()
    v_inds = torch.from_numpy(np.load(uv_assets / "v_inds.npy")).long()
    assert v_inds.shape == (11438,) and int(v_inds.max()) == 10474
    ang = 2 * math.pi * uv[:, 0]
    on_cylinder = torch.stack([0.3 * torch.sin(ang), 1.7 * (uv[:, 1] - 0.5), 20.0 - 0.3 * torch.cos(ang)], -1)
    verts_cam = torch.zeros(10475, 3).index_copy(0, v_inds, on_cylinder)  # seam copies: one of them wins
    H = W = 96
    K = make_K(H, W, focal=5000.0 * H / 512)
    out = render_uv(apply_K(verts_cam[None], K), uv_faces, uv, (H, W), v_inds=v_inds)
    assert out.uv.shape == (1, 2, H, W) and out.mask.shape == (1, 1, H, W) and out.mask.dtype == torch.float32
    m = out.mask.bool().expand_as(out.uv)
    assert 0.05 < out.mask.mean() < 0.9
    assert torch.all(out.uv[~m] == -10.0)
    assert out.uv[m].min() >= uv.min() * 2 - 1 - 1e-5 and out.uv[m].max() <= uv.max() * 2 - 1 + 1e-5
    same = rasterize(apply_K(verts_cam[v_inds][None], K), uv_faces, (H, W))
    assert torch.equal(same.pix_to_face, out.fragments.pix_to_face)
