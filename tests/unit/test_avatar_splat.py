"""DINAR's splatting of photo values into texture space, texture assembly and geometry helpers."""

import numpy as np
import pytest
import torch

from dinar_core.avatar.neural import (PixelTexture, assemble_ntexture, derive_vertex_index, image_to_uint8,
                                      rotate_about_centroid, sample_values_by_uv, vertex_normals)


def _uv_for_texels(texels, T):
    """uv in [-1, 1] that rounds to the given (u, v) texel indices: (u + 1) T / 2 = index."""
    t = torch.tensor(texels, dtype=torch.float32)
    return (t * 2 / T - 1).T.reshape(1, 2, 1, -1)  # (1, 2, 1, N): one row of N pixels


def test_hand_computed_texels():
    T = 8
    uv = _uv_for_texels([(3, 4), (4, 4), (3, 4)], T)  # pixels A, B, C; A and C hit the same texel
    vals = torch.tensor([10.0, 100.0, 40.0]).reshape(1, 1, 1, 3)
    out = sample_values_by_uv(uv, vals, None, T)
    v = out.values[0, 0]
    assert v[4, 3] == 40  # exact texel: the last pixel (C) wins, as numpy's repeated-index assignment
    assert v[4, 4] == 100 and v[4, 5] == 100 and v[4, 2] == 40
    assert v[3, 4] == 70 and v[3, 3] == 70 and v[5, 4] == 70  # 3x3 splat: mean of C (40) and B (100)
    assert v[0, 0] == 0
    assert out.known[0, 0].sum() == 12 and out.known[0, 0, 3:6, 2:6].min() == 1
    assert out.ring[0, 0].sum() == 10 and out.ring[0, 0, 4, 3] == 0 and out.ring[0, 0, 4, 4] == 0


def test_truncation_and_background():
    T = 8
    uv = torch.cat([_uv_for_texels([(2, 2), (3, 2)], T), torch.full((1, 2, 1, 1), -10.0)], dim=3)
    vals = torch.tensor([1.0, 2.0, 250.0]).reshape(1, 1, 1, 3)
    v = sample_values_by_uv(uv, vals, None, T).values[0, 0]
    assert v[1, 2] == 1  # (1 + 2) / 2 = 1.5 truncated like astype(uint8)
    assert (v == 250).sum() == 0  # the background pixel (uv -10) is not sampled


def test_segm_erosion_excludes_edge_pixels():
    T = 16
    H, W = 7, 7
    u = torch.linspace(-0.5, 0.5, W).expand(H, W)
    uv = torch.stack([u, u.T])[None]  # (1, 2, 7, 7)
    vals = torch.full((1, 1, H, W), 200.0)
    segm = torch.zeros(1, 1, H, W)
    segm[..., 1:6, 1:6] = 1  # 5x5 person: erodes to its single centre pixel
    out = sample_values_by_uv(uv, vals, segm, T)
    assert out.known.sum() == 9 and out.ring.sum() == 8


def _reference_numpy(uv, values, T):
    """The algorithm written with numpy's own repeated-index semantics (an independent cross-check)."""
    pos = np.clip(np.around((uv[0].transpose(1, 2, 0) + 1) * T / 2).astype(np.int64), 0, T - 1)
    y, x = np.where(np.any(pos > 0, axis=-1))
    p = np.clip(pos[y, x], 1, T - 2)
    src = values[0].transpose(1, 2, 0)[y, x]  # (N, C)
    grid = np.zeros((T, T, values.shape[1]), np.float32)
    counts = np.zeros((T, T, values.shape[1]), np.float32)
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            grid[p[:, 1] + i, p[:, 0] + j] += src
            counts[p[:, 1] + i, p[:, 0] + j] += 1
    with np.errstate(invalid="ignore"):
        grid = np.where(counts > 0, grid / np.maximum(counts, 1), 0)
    grid[p[:, 1], p[:, 0]] = src
    return np.floor(grid).transpose(2, 0, 1)


def test_matches_numpy_semantics_on_random_maps():
    g = torch.Generator().manual_seed(3)
    T = 16
    uv = torch.rand(1, 2, 12, 12, generator=g) * 2 - 1
    vals = torch.randint(0, 256, (1, 3, 12, 12), generator=g).float()
    ours = sample_values_by_uv(uv, vals, None, T).values[0].numpy()
    np.testing.assert_array_equal(ours, _reference_numpy(uv.numpy(), vals.numpy(), T))


def test_border_clamp_and_quirk():
    T = 8
    uv = _uv_for_texels([(0, 5)], T)  # u on the border
    vals = torch.tensor([9.0]).reshape(1, 1, 1, 1)
    assert sample_values_by_uv(uv, vals, None, T).values[0, 0, 5, 1] == 9  # u clamped to 1, v kept
    quirk = sample_values_by_uv(uv, vals, None, T, border_row_quirk=True).values[0, 0]
    assert quirk[1, 1] == 9 and quirk[5, 1] == 0  # DINAR moves the whole (u, v) pair to (1, 1)


def test_white_overflow_quirk_is_off_by_default():
    x = torch.tensor([-1.0, 0.0, 0.999, 1.0]).reshape(1, 1, 1, 4)
    assert image_to_uint8(x).flatten().tolist() == [0, 128, 255, 255]
    assert image_to_uint8(x, overflow_quirk=True).flatten().tolist() == [0, 128, 255, 0]


def test_assemble_ntexture_layout():
    gen = torch.randn(2, 16, 8, 8)
    px = PixelTexture(rgb=torch.rand(2, 3, 8, 8), known=torch.ones(2, 1, 8, 8), ring=torch.zeros(2, 1, 8, 8),
                      normal_angles=torch.zeros(2, 1, 8, 8))
    tex = assemble_ntexture(gen, px)
    assert tex.shape == (2, 21, 8, 8)
    assert torch.equal(tex[:, -5:-2], px.rgb) and torch.equal(tex[:, -2:-1], px.known) and torch.equal(tex[:, :16], gen)
    with pytest.raises(ValueError):
        assemble_ntexture(gen[:1], px)


def test_derive_vertex_index():
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uv_faces = torch.tensor([[0, 1, 2], [4, 2, 3]])  # UV vertex 4 is a seam copy of mesh vertex 0
    assert derive_vertex_index(uv_faces, faces, 5).tolist() == [0, 1, 2, 3, 0]
    with pytest.raises(ValueError):
        derive_vertex_index(torch.tensor([[0, 1, 2], [0, 2, 3]]), torch.tensor([[0, 1, 2], [1, 2, 3]]), 4)


def test_normals_face_the_camera_and_rotation_keeps_centroid():
    K = torch.tensor([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]])
    # a square facing the camera at depth 5, wound counter-clockwise on the screen (a front face)
    cam = torch.tensor([[[-1.0, -1, 5], [-1, 1, 5], [1, 1, 5], [1, -1, 5]]])
    pix = cam @ K.T
    n = vertex_normals(pix, K, torch.tensor([[0, 1, 2], [0, 2, 3]]))
    assert torch.allclose(n, torch.tensor([0.0, 0, 1]).expand(1, 4, 3), atol=1e-5)
    rot = rotate_about_centroid(pix, K, np.pi / 2) @ torch.linalg.inv(K).T
    assert torch.allclose(rot.mean(1), cam.mean(1), atol=1e-4)
    assert torch.allclose(rot[0, :, 2].max() - rot[0, :, 2].min(), torch.tensor(2.0), atol=1e-4)
