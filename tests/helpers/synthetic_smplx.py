"""A synthetic SMPL-X model file with the real array layout, so the SMPL-X path runs without the licensed files.

``write_synthetic_smplx(folder)`` writes ``SMPLX_<GENDER>.pkl`` (or ``.npz``) that ``smplx.create`` loads with
DINAR's settings. Arrays and shapes are those of the real files:

====================  =======================  ==============================================================
key                   shape                    content here
====================  =======================  ==============================================================
v_template            (10475, 3)               a human-proportioned body, ~1.74 m, y up, facing +z, x = left
f                     (20908, 3)               valid triangles (10 closed parts, one quad hole at the mouth)
J_regressor           (55, 10475)              joints regress *exactly* to the skeleton below
weights               (10475, 55)              skinning by distance to the bones (rows sum to 1)
kintree_table         (2, 55)                  the real SMPL-X parents
shapedirs             (10475, 3, 20 or 400)    10 shape (height, girth, legs, arms, smooth) + 10 expression
posedirs              (10475, 3, 486)          small pose correctives, local to each joint's skinned region
hands_components{l,r} (45, 45)                 orthonormal; component 0 curls all fingers
hands_mean{l,r}       (45,)                    a relaxed, slightly curled hand
lmk_faces_idx         (51,)                    face landmarks (iBUG-68 points 17..67) on the head
lmk_bary_coords       (51, 3)
dynamic_lmk_faces_idx (79, 17)                 contour (iBUG 0..16), one set per head-yaw bin (-39..39 deg)
dynamic_lmk_bary_coords (79, 17, 3)
====================  =======================  ==============================================================

The mesh is ten closed swept tubes (trunk+neck, head, arms with mitten hands, thumbs, legs, feet); the vertices
smplx reads by index (nose, eyes, ears, toes, heels, fingertips: ``smplx.vertex_ids``) are renumbered to sit at
those places, so every smplx output point (144 with the face contour) is anatomically meaningful.

Why not SMPL-X's real connectivity (``v_inds[uv_faces]`` from DINAR's UV assets)? Without the real vertex positions
that connectivity cannot be given a body shape: triangles would span across the body and a rendered silhouette
would be meaningless. The generated topology has the real counts, and renders and skins like a body.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

NUM_VERTS = 10475
NUM_FACES = 20908
NUM_JOINTS = 55

PARENTS = np.array([
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
])


def _skeleton() -> np.ndarray:
    """(55, 3) rest joints in metres (y up, x = the body's left, z = forward), SMPL-X order."""
    j = np.zeros((NUM_JOINTS, 3))
    half = {  # left-side joints; right side mirrored in x
        1: (0.09, -0.08, 0.0), 4: (0.10, -0.48, 0.01), 7: (0.11, -0.88, -0.03), 10: (0.12, -0.94, 0.09),
        13: (0.07, 0.42, 0.0), 16: (0.17, 0.44, -0.01), 18: (0.43, 0.44, -0.02), 20: (0.68, 0.44, -0.01),
        23: (0.032, 0.675, 0.075),
    }
    for left, pos in half.items():
        right = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21, 23: 24}[left]
        j[left] = pos
        j[right] = (-pos[0], pos[1], pos[2])
    j[0] = (0.0, 0.0, 0.0)
    j[3] = (0.0, 0.10, -0.01)
    j[6] = (0.0, 0.24, 0.0)
    j[9] = (0.0, 0.30, 0.01)
    j[12] = (0.0, 0.50, -0.01)
    j[15] = (0.0, 0.60, 0.0)
    j[22] = (0.0, 0.635, 0.01)
    for side, wrist, base in ((1.0, 20, 25), (-1.0, 21, 40)):
        for k, (name, xs, z) in enumerate(_FINGERS):  # index, middle, pinky, ring in SMPL-X order
            for step in range(3):
                j[base + 3 * k + step] = (side * xs[step], 0.44, z)
        for step in range(3):
            x, y, z = _THUMB[step]
            j[base + 12 + step] = (side * x, y, z)
    return j


# x positions of the three joints and the tip of each finger (left hand), and its z (across the palm)
_FINGERS = (
    ("index", (0.780, 0.812, 0.838, 0.862), 0.022),
    ("middle", (0.782, 0.817, 0.845, 0.870), 0.003),
    ("pinky", (0.772, 0.797, 0.815, 0.834), -0.035),
    ("ring", (0.778, 0.810, 0.835, 0.857), -0.016),
)
_THUMB = ((0.71, 0.43, 0.03), (0.735, 0.425, 0.05), (0.76, 0.42, 0.065), (0.785, 0.415, 0.078))
_HEAD_C = np.array([0.0, 0.66, 0.02])
_HEAD_R = np.array([0.075, 0.115, 0.095])


@dataclass
class _Part:
    name: str
    verts: np.ndarray  # (n, 3)
    faces: np.ndarray  # (f, 3) local indices
    joints: tuple[int, ...]  # joints its vertices may be skinned to


def _frames(centres: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-ring tangent and two normal axes for a swept tube along ``centres`` (n, 3)."""
    t = np.gradient(centres, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    e1 = ref[None] - (t @ ref)[:, None] * t
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(t, e1)
    return t, e1, e2


def _tube(centres: np.ndarray, ra: np.ndarray, rb: np.ndarray, m: int, ref, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """A closed tube: n rings of m vertices (ellipses with radii ra along e1, rb along e2) + two poles.

    Returns verts (n*m + 2, 3) and faces (2*n*m, 3), wound so normals point outwards.
    """
    n = len(centres)
    t, e1, e2 = _frames(centres, np.asarray(ref, dtype=float))
    phi = np.linspace(0.0, 2 * np.pi, m, endpoint=False)
    rings = (centres[:, None] + ra[:, None, None] * np.cos(phi)[None, :, None] * e1[:, None]
             + rb[:, None, None] * np.sin(phi)[None, :, None] * e2[:, None])  # (n, m, 3)
    start = centres[0] - t[0] * cap
    end = centres[-1] + t[-1] * cap
    verts = np.concatenate([rings.reshape(-1, 3), start[None], end[None]])
    faces = []
    idx = np.arange(n * m).reshape(n, m)
    for i in range(n - 1):
        a, b = idx[i], idx[i + 1]
        a1, b1 = np.roll(a, -1), np.roll(b, -1)
        faces.append(np.stack([a, a1, b1], 1))
        faces.append(np.stack([a, b1, b], 1))
    s, e = n * m, n * m + 1
    faces.append(np.stack([np.full(m, s), np.roll(idx[0], -1), idx[0]], 1))
    faces.append(np.stack([np.full(m, e), idx[-1], np.roll(idx[-1], -1)], 1))
    faces = np.concatenate(faces)
    if _signed_volume(verts, faces) < 0:
        faces = faces[:, ::-1].copy()
    return verts, faces


def _signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _interp(knots_y, values, ys):
    return np.interp(ys, knots_y, values)


def _trunk(n: int, m: int) -> _Part:
    ky = [-0.14, -0.05, 0.05, 0.12, 0.22, 0.32, 0.40, 0.45, 0.48, 0.52, 0.58]
    kx = [0.12, 0.17, 0.155, 0.14, 0.15, 0.165, 0.17, 0.15, 0.065, 0.055, 0.05]
    kz = [0.085, 0.11, 0.10, 0.095, 0.10, 0.11, 0.10, 0.08, 0.06, 0.055, 0.05]
    kc = [0.0, -0.01, 0.0, 0.0, 0.01, 0.015, 0.0, -0.01, -0.01, 0.0, 0.0]
    ys = np.linspace(ky[0], ky[-1], n)
    centres = np.stack([np.zeros(n), ys, _interp(ky, kc, ys)], 1)
    v, f = _tube(centres, _interp(ky, kx, ys), _interp(ky, kz, ys), m, ref=(1, 0, 0), cap=0.025)
    return _Part("trunk", v, f, (0, 1, 2, 3, 6, 9, 12, 13, 14, 16, 17))


def _head(n: int, m: int) -> _Part:
    theta = np.linspace(0.0, np.pi, n + 2)[1:-1]  # ring latitudes, poles excluded
    ys = _HEAD_C[1] - _HEAD_R[1] * np.cos(theta)
    centres = np.stack([np.zeros(n), ys, np.full(n, _HEAD_C[2])], 1)
    v, f = _tube(centres, _HEAD_R[0] * np.sin(theta), _HEAD_R[2] * np.sin(theta), m, ref=(1, 0, 0),
                 cap=_HEAD_R[1] * (1 - np.cos(theta[0])))
    return _Part("head", v, f, (12, 15, 22))


def _leg(side: float, n: int, m: int) -> _Part:
    knots = np.array([[0.09, -0.02, 0.0], [0.09, -0.08, 0.0], [0.10, -0.48, 0.01], [0.11, -0.88, -0.03],
                      [0.11, -0.905, -0.03]])
    knots[:, 0] *= side
    seg = np.r_[0, np.cumsum(np.linalg.norm(np.diff(knots, axis=0), axis=1))]
    s = np.linspace(0, seg[-1], n)
    centres = np.stack([np.interp(s, seg, knots[:, k]) for k in range(3)], 1)
    r = np.interp(s, [0, 0.06, 0.2, 0.4, 0.47, 0.62, 0.86, seg[-1]], [0.08, 0.085, 0.075, 0.055, 0.05, 0.055, 0.04, 0.035])
    v, f = _tube(centres, r, r * 0.95, m, ref=(1, 0, 0), cap=0.02)
    hip, knee, ankle = (1, 4, 7) if side > 0 else (2, 5, 8)
    return _Part("leg", v, f, (0, hip, knee, ankle))


def _foot(side: float, n: int, m: int) -> _Part:
    zs = np.linspace(-0.08, 0.16, n)
    centres = np.stack([side * np.interp(zs, [-0.08, 0.16], [0.11, 0.125]), np.interp(zs, [-0.08, 0.0, 0.16], [-0.925, -0.92, -0.945]), zs], 1)
    wa = np.interp(zs, [-0.08, 0.0, 0.09, 0.16], [0.03, 0.04, 0.048, 0.035])
    hb = np.interp(zs, [-0.08, 0.0, 0.09, 0.16], [0.04, 0.05, 0.03, 0.02])
    v, f = _tube(centres, wa, hb, m, ref=(1, 0, 0), cap=0.012)
    ankle, foot = (7, 10) if side > 0 else (8, 11)
    return _Part("foot", v, f, (ankle, foot))


def _arm(side: float, n: int, m: int) -> _Part:
    xs = np.linspace(0.12, 0.87, n)
    centres = np.stack([side * xs, np.interp(xs, [0.12, 0.68, 0.87], [0.44, 0.44, 0.44]),
                        np.interp(xs, [0.12, 0.43, 0.68, 0.72, 0.87], [-0.01, -0.02, -0.01, -0.005, -0.005])], 1)
    # ra across the hand (along z), rb the thickness (along y): round arm, flat mitten hand
    ra = np.interp(xs, [0.12, 0.2, 0.43, 0.66, 0.70, 0.76, 0.80, 0.87], [0.055, 0.05, 0.04, 0.03, 0.04, 0.045, 0.042, 0.03])
    rb = np.interp(xs, [0.12, 0.2, 0.43, 0.66, 0.70, 0.76, 0.80, 0.87], [0.055, 0.05, 0.04, 0.028, 0.02, 0.017, 0.013, 0.01])
    v, f = _tube(centres, ra, rb, m, ref=(0, 0, 1), cap=0.008)
    if side > 0:
        joints = (13, 16, 18, 20) + tuple(range(25, 37))
    else:
        joints = (14, 17, 19, 21) + tuple(range(40, 52))
    return _Part("arm", v, f, joints)


def _thumb(side: float, n: int, m: int) -> _Part:
    knots = np.array(_THUMB)
    knots = np.concatenate([[[0.695, 0.432, 0.015]], knots])
    knots[:, 0] *= side
    seg = np.r_[0, np.cumsum(np.linalg.norm(np.diff(knots, axis=0), axis=1))]
    s = np.linspace(0, seg[-1], n)
    centres = np.stack([np.interp(s, seg, knots[:, k]) for k in range(3)], 1)
    r = np.interp(s, [0, seg[-1]], [0.013, 0.009])
    v, f = _tube(centres, r, r, m, ref=(0, 1, 0), cap=0.006)
    joints = (20, 37, 38, 39) if side > 0 else (21, 52, 53, 54)
    return _Part("thumb", v, f, joints)


def _ring_budget() -> tuple[int, int, int, int]:
    """Trunk and head resolutions that make the total exactly 10,475 vertices."""
    fixed = 2 * ((62 * 24 + 2) + (55 * 20 + 2) + (12 * 16 + 2) + (8 * 8 + 2))
    rest = NUM_VERTS - fixed - 4
    for mt in range(40, 49):
        for nt in range(50, 80):
            left = rest - mt * nt
            for mh in range(28, 41):
                if left > 0 and left % mh == 0 and 30 <= left // mh <= 60:
                    return nt, mt, left // mh, mh
    raise AssertionError("no ring budget")


def _build_parts() -> list[_Part]:
    nt, mt, nh, mh = _ring_budget()
    return [_trunk(nt, mt), _head(nh, mh), _leg(1.0, 62, 24), _leg(-1.0, 62, 24), _foot(1.0, 12, 16),
            _foot(-1.0, 12, 16), _arm(1.0, 55, 20), _arm(-1.0, 55, 20), _thumb(1.0, 8, 8), _thumb(-1.0, 8, 8)]


def _bone_end(j: int, joints: np.ndarray) -> np.ndarray:
    """The far end of the bone that joint j rotates (its main child, or a made-up end for leaf joints)."""
    main_child = {0: 3, 3: 6, 6: 9, 9: 12, 12: 15, 13: 16, 14: 17, 20: 28, 21: 43}
    if j in main_child:
        return joints[main_child[j]]
    children = np.nonzero(PARENTS == j)[0]
    if len(children) == 1:
        return joints[children[0]]
    leaf_end = {15: (0.0, 0.77, 0.02), 22: (0.0, 0.565, 0.08), 23: (0.032, 0.675, 0.09), 24: (-0.032, 0.675, 0.09),
                10: (0.125, -0.945, 0.16), 11: (-0.125, -0.945, 0.16)}
    if j in leaf_end:
        return np.array(leaf_end[j])
    # last finger joint: towards the tip
    side = 1.0 if j < 40 else -1.0
    k = (j - 25) % 15
    if k >= 12:
        x, y, z = _THUMB[3]
        return np.array([side * x, y, z])
    finger = k // 3
    return np.array([side * _FINGERS[finger][1][3], 0.44, _FINGERS[finger][2]])


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of points p (n, 3) to segment a-b, and the closest points (n, 3)."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    closest = a + t[:, None] * ab
    return np.linalg.norm(p - closest, axis=1), closest


def _skinning(verts: np.ndarray, part_of: np.ndarray, parts: list[_Part], joints: np.ndarray):
    """(V, 55) weights (softmax of negative squared distance to the part's candidate bones, 4 largest kept) and
    (V, 3) the closest bone-axis point of each vertex (for the girth shape direction)."""
    weights = np.zeros((len(verts), NUM_JOINTS))
    axis = np.zeros((len(verts), 3))
    for i, part in enumerate(parts):
        sel = np.nonzero(part_of == i)[0]
        pv = verts[sel]
        cand = list(part.joints)
        d = np.stack([_segment_distance(pv, joints[j], _bone_end(j, joints))[0] for j in cand], 1)
        sigma = 0.008 if part.name in ("arm", "thumb") else 0.02
        logits = -((d - d.min(1, keepdims=True)) / sigma) ** 2
        order = np.argsort(-logits, axis=1)
        logits[np.arange(len(d))[:, None], order[:, 4:]] = -np.inf
        w = np.exp(logits)
        weights[sel[:, None], np.array(cand)[None]] = w / w.sum(1, keepdims=True)
        nearest = np.argmin(d, 1)
        for c, j in enumerate(cand):
            pick = nearest == c
            axis[sel[pick]] = _segment_distance(pv[pick], joints[j], _bone_end(j, joints))[1]
    return weights, axis


def _regressor(verts: np.ndarray, part_of: np.ndarray, joints: np.ndarray, home: list[int]) -> np.ndarray:
    """(55, V) rows of affine weights (sum 1) over a few surrounding vertices that reproduce each joint exactly.

    For each joint take the two nearest vertices of its home part in each of the 8 octants around it (so the
    joint is inside their hull), then the least-norm correction of uniform weights that hits the joint exactly.
    """
    reg = np.zeros((NUM_JOINTS, len(verts)))
    for j in range(NUM_JOINTS):
        cand = np.nonzero(part_of == home[j])[0]
        rel = verts[cand] - joints[j]
        dist = np.linalg.norm(rel, axis=1)
        octant = (rel[:, 0] > 0) * 1 + (rel[:, 1] > 0) * 2 + (rel[:, 2] > 0) * 4
        picks = []
        for o in range(8):
            sel = np.nonzero(octant == o)[0]
            if len(sel):
                picks += list(cand[sel[np.argsort(dist[sel])[:2]]])
        picks = np.array(picks)
        a = np.concatenate([verts[picks].T, np.ones((1, len(picks)))])  # (4, K)
        w0 = np.full(len(picks), 1.0 / len(picks))
        b = np.concatenate([joints[j], [1.0]])
        w = w0 + a.T @ np.linalg.solve(a @ a.T, b - a @ w0)
        reg[j, picks] = w
    return reg


def _home_parts() -> list[int]:
    """Index (into _build_parts) of the part whose vertices regress each joint."""
    home = [0] * NUM_JOINTS
    for j in (15, 22, 23, 24):
        home[j] = 1
    for j, p in ((4, 2), (7, 2), (5, 3), (8, 3), (10, 4), (11, 5), (16, 6), (18, 6), (20, 6), (17, 7), (19, 7), (21, 7)):
        home[j] = p
    for j in range(25, 37):
        home[j] = 6
    for j in range(37, 40):
        home[j] = 8
    for j in range(40, 52):
        home[j] = 7
    for j in range(52, 55):
        home[j] = 9
    return home


def _face_template() -> np.ndarray:
    """(68, 2) iBUG-68 landmark (x, y) on the face, relative to the head centre (x = the body's left)."""
    pts = np.zeros((68, 2))
    t = np.linspace(np.pi, 2 * np.pi, 17)
    pts[0:17] = np.stack([0.07 * np.cos(t), -0.005 + 0.095 * np.sin(t)], 1)
    pts[17:22] = np.stack([np.linspace(-0.055, -0.012, 5), 0.032 + 0.006 * np.sin(np.linspace(0, np.pi, 5))], 1)
    pts[22:27] = np.stack([np.linspace(0.012, 0.055, 5), 0.032 + 0.006 * np.sin(np.linspace(0, np.pi, 5))], 1)
    pts[27:31] = np.stack([np.zeros(4), np.linspace(0.02, -0.008, 4)], 1)
    pts[31:36] = np.stack([np.linspace(-0.015, 0.015, 5), np.full(5, -0.018)], 1)
    a = np.pi - np.arange(6) * np.pi / 3
    for start, cx in ((36, -0.032), (42, 0.032)):
        pts[start:start + 6] = np.stack([cx + 0.012 * np.cos(a), 0.015 + 0.005 * np.sin(a)], 1)
    a = np.pi - np.arange(12) * np.pi / 6
    pts[48:60] = np.stack([0.025 * np.cos(a), -0.045 + 0.012 * np.sin(a)], 1)
    a = np.pi - np.arange(8) * np.pi / 4
    pts[60:68] = np.stack([0.018 * np.cos(a), -0.045 + 0.005 * np.sin(a)], 1)
    return pts


def _on_head(xy: np.ndarray, yaw_deg: float = 0.0) -> np.ndarray:
    """Points of the face template lifted onto the front of the head ellipsoid, turned by ``yaw_deg`` about y."""
    x = np.clip(xy[:, 0] / _HEAD_R[0], -0.98, 0.98)
    y = np.clip(xy[:, 1] / _HEAD_R[1], -0.98, 0.98)
    z = np.sqrt(np.clip(1 - x**2 - y**2, 0.02, None))
    p = np.stack([x * _HEAD_R[0], y * _HEAD_R[1], z * _HEAD_R[2]], 1)
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    p = p @ np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]]).T
    return p + _HEAD_C


def _embed(points: np.ndarray, verts: np.ndarray, faces: np.ndarray, face_ids: np.ndarray):
    """Nearest face (among face_ids) to each point and the clamped barycentric coordinates of its projection."""
    tri = verts[faces[face_ids]]  # (F, 3, 3)
    centroids = tri.mean(1)
    out_f, out_b = [], []
    for p in points:
        k = int(np.argmin(np.linalg.norm(centroids - p, axis=1)))
        a, b, c = tri[k]
        m = np.stack([b - a, c - a], 1)
        uv, *_ = np.linalg.lstsq(m, p - a, rcond=None)
        bary = np.clip(np.array([1 - uv.sum(), uv[0], uv[1]]), 0.0, None)
        out_f.append(face_ids[k])
        out_b.append(bary / bary.sum())
    return np.array(out_f, dtype=np.int64), np.array(out_b)


def _named_vertex_targets() -> dict[str, tuple[int, tuple[float, float, float]]]:
    """smplx's vertex ids -> (part index, where that vertex should be)."""
    front = _HEAD_C[2] + _HEAD_R[2]
    t: dict[str, tuple[int, tuple[float, float, float]]] = {
        "nose": (1, (0.0, 0.648, front + 0.02)),
        "reye": (1, (-0.032, 0.675, front)), "leye": (1, (0.032, 0.675, front)),
        "rear": (1, (-0.08, 0.665, 0.01)), "lear": (1, (0.08, 0.665, 0.01)),
        "LBigToe": (4, (0.105, -0.95, 0.18)), "LSmallToe": (4, (0.15, -0.95, 0.16)), "LHeel": (4, (0.11, -0.97, -0.09)),
        "RBigToe": (5, (-0.105, -0.95, 0.18)), "RSmallToe": (5, (-0.15, -0.95, 0.16)), "RHeel": (5, (-0.11, -0.97, -0.09)),
    }
    for side, prefix, arm, thumb in ((1.0, "l", 6, 8), (-1.0, "r", 7, 9)):
        x, y, z = _THUMB[3]
        t[prefix + "thumb"] = (thumb, (side * (x + 0.01), y, z + 0.005))
        for name, xs, zf in _FINGERS:
            t[prefix + name] = (arm, (side * (xs[3] + 0.02), 0.44, zf))
    return t


def build_synthetic_smplx(seed: int = 0, num_shape_dirs: Literal[20, 400] = 20,
                          gender: str = "neutral") -> dict[str, np.ndarray]:
    """The arrays of a synthetic SMPL-X model file (see the module docstring), deterministic for ``seed``.

    Built once per argument set per process (~1 s); callers get a new dict of read-only arrays.
    """
    return dict(_build_cached(seed, num_shape_dirs, gender))


@functools.lru_cache(maxsize=4)
def _build_cached(seed: int, num_shape_dirs: int, gender: str) -> dict[str, np.ndarray]:
    arrays = _build(seed, num_shape_dirs, gender)
    for value in arrays.values():
        value.flags.writeable = False
    return arrays


def _build(seed: int, num_shape_dirs: int, gender: str) -> dict[str, np.ndarray]:
    from smplx.vertex_ids import vertex_ids

    rng = np.random.default_rng(seed)
    joints = _skeleton()
    parts = _build_parts()
    verts = np.concatenate([p.verts for p in parts])
    offsets = np.cumsum([0] + [len(p.verts) for p in parts])
    faces = np.concatenate([p.faces + o for p, o in zip(parts, offsets)])
    part_of = np.concatenate([np.full(len(p.verts), i) for i, p in enumerate(parts)])
    assert len(verts) == NUM_VERTS, len(verts)

    # Open the mouth: drop the two triangles of one quad on the front of the head (and hit 20,908 faces exactly).
    head_faces = np.nonzero(part_of[faces[:, 0]] == 1)[0]
    mouth = _on_head(np.array([[0.0, -0.045]]))[0]
    k = head_faces[np.argmin(np.linalg.norm(verts[faces[head_faces]].mean(1) - mouth, axis=1))]
    partner = head_faces[[len(set(faces[k]) & set(faces[h])) == 2 for h in head_faces]][0]
    faces = np.delete(faces, [k, partner], axis=0)
    assert len(faces) == NUM_FACES, len(faces)

    # Renumber vertices so that smplx's named vertex ids sit where their names say.
    targets = _named_vertex_targets()
    wanted = vertex_ids["smplx"]
    new_to_old = -np.ones(NUM_VERTS, dtype=np.int64)
    used = np.zeros(NUM_VERTS, bool)
    for name, (part, pos) in targets.items():
        cand = np.nonzero((part_of == part) & ~used)[0]
        old = cand[np.argmin(np.linalg.norm(verts[cand] - np.array(pos), axis=1))]
        new_to_old[wanted[name]] = old
        used[old] = True
    free_new = np.nonzero(new_to_old < 0)[0]
    new_to_old[free_new] = np.nonzero(~used)[0]
    old_to_new = np.argsort(new_to_old)
    verts, part_of = verts[new_to_old], part_of[new_to_old]
    faces = old_to_new[faces]
    weights, axis = _skinning(verts, part_of, parts, joints)
    j_regressor = _regressor(verts, part_of, joints, _home_parts())

    # Shape space: 10 identity + 10 expression directions (metres per unit coefficient).
    num_dirs = num_shape_dirs
    shapedirs = np.zeros((NUM_VERTS, 3, num_dirs))
    radial = verts - axis
    radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
    shapedirs[:, :, 0] = 0.05 * verts  # overall size
    shapedirs[:, :, 1] = 0.012 * radial  # girth
    legs = np.clip((-0.08 - verts[:, 1]) / 0.9, 0.0, 1.0)
    shapedirs[:, 1, 2] = -0.04 * legs  # leg length
    arms = np.clip((np.abs(verts[:, 0]) - 0.17) / 0.7, 0.0, 1.0)
    shapedirs[:, 0, 3] = 0.03 * arms * np.sign(verts[:, 0])  # arm length
    for k in range(4, 10):  # smooth, small random fields
        freq = rng.normal(size=(3, 3)) * 4.0
        phase = rng.uniform(0, 2 * np.pi, size=3)
        shapedirs[:, :, k] = 0.006 * np.sin(verts @ freq + phase)
    face_mask = (part_of == 1) & (verts[:, 2] > _HEAD_C[2] + 0.03) & (verts[:, 1] < 0.70)
    expr_col = 10 if num_dirs < 400 else 300
    for k in range(10):
        freq = rng.normal(size=(3, 3)) * 30.0
        phase = rng.uniform(0, 2 * np.pi, size=3)
        shapedirs[:, :, expr_col + k] = 0.004 * face_mask[:, None] * np.sin(verts @ freq + phase)

    # Pose correctives: a small fixed direction per pose feature, on the vertices skinned to that joint.
    dirs = rng.normal(size=(486, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    feature_joint = 1 + np.arange(486) // 9
    posedirs = (0.002 * weights[:, feature_joint][:, None, :] * dirs.T[None]).astype(np.float32)  # (V, 3, 486)

    # Hands: 45 = 15 joints x 3 (index, middle, pinky, ring, thumb; 3 each); flexion about z.
    def hand(side: float) -> tuple[np.ndarray, np.ndarray]:
        curl = np.zeros((15, 3))
        curl[:, 2] = -side  # left hand fingers along +x bend towards -y with a negative z rotation
        curl = curl.reshape(-1) / np.linalg.norm(curl)
        basis = np.concatenate([curl[None], rng.normal(size=(44, 45))])
        q, _ = np.linalg.qr(basis.T)
        q = q.T  # rows orthonormal, row 0 = +-curl
        if q[0] @ curl < 0:
            q[0] = -q[0]
        return q, 0.15 * curl * np.sqrt(15)

    comp_l, mean_l = hand(1.0)
    comp_r, mean_r = hand(-1.0)

    # Face landmarks on the head.
    head_face_ids = np.nonzero(part_of[faces[:, 0]] == 1)[0]
    template = _face_template()
    lmk_faces, lmk_bary = _embed(_on_head(template[17:68]), verts, faces, head_face_ids)
    dyn_faces = np.zeros((79, 17), np.int64)
    dyn_bary = np.zeros((79, 17, 3))
    for b in range(79):
        yaw = b if b <= 39 else -(b - 39)
        dyn_faces[b], dyn_bary[b] = _embed(_on_head(template[0:17], -0.5 * yaw), verts, faces,
                                           head_face_ids)

    # Female: a uniformly smaller body (affine regressor rows and barycentric landmarks stay valid).
    scale = 0.95 if gender == "female" else 1.0
    verts, shapedirs, posedirs = verts * scale, shapedirs * scale, posedirs * scale

    kintree = np.stack([PARENTS, np.arange(NUM_JOINTS)]).astype(np.int64)
    kintree[0, 0] = 4294967295  # as in the real files (smplx resets the root's parent to -1)
    return {
        "v_template": verts.astype(np.float32),
        "f": faces.astype(np.int32),
        "J_regressor": j_regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree,
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": posedirs,
        "hands_componentsl": comp_l.astype(np.float32),
        "hands_componentsr": comp_r.astype(np.float32),
        "hands_meanl": mean_l.astype(np.float32),
        "hands_meanr": mean_r.astype(np.float32),
        "lmk_faces_idx": lmk_faces,
        "lmk_bary_coords": lmk_bary.astype(np.float32),
        "dynamic_lmk_faces_idx": dyn_faces,
        "dynamic_lmk_bary_coords": dyn_bary.astype(np.float32),
    }


def synthetic_skeleton(gender: str = "neutral") -> np.ndarray:
    """(55, 3) the rest joints the synthetic model's J_regressor reproduces (mean shape)."""
    return _skeleton() * (0.95 if gender == "female" else 1.0)


def write_synthetic_smplx(folder: str | Path, gender: str = "neutral", seed: int = 0,
                          kind: Literal["pkl", "npz"] = "pkl", num_shape_dirs: Literal[20, 400] = 20) -> Path:
    """Write ``folder/SMPLX_<GENDER>.<kind>`` and return its path.

    ``num_shape_dirs`` 20 mimics the v1.0 files (10 shape + 10 expression; smplx prints a warning and reads the
    expression from columns 10:20), 400 the v1.1 files (expression from columns 300:).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = build_synthetic_smplx(seed=seed, num_shape_dirs=num_shape_dirs, gender=gender)
    path = folder / f"SMPLX_{gender.upper()}.{kind}"
    if kind == "pkl":
        with open(path, "wb") as fh:
            pickle.dump(arrays, fh, protocol=4)
    elif kind == "npz":
        np.savez(path, **arrays)
    else:
        raise ValueError(f"kind must be 'pkl' or 'npz', got {kind!r}")
    return path


try:  # a fixture for the tests that need a model folder (import it into the test module)
    import pytest

    @pytest.fixture(scope="session")
    def synthetic_smplx_dir(tmp_path_factory) -> Path:
        """A folder with a synthetic SMPLX_NEUTRAL.pkl (seed 0)."""
        folder = tmp_path_factory.mktemp("smplx_models")
        write_synthetic_smplx(folder, gender="neutral", seed=0, kind="pkl")
        return folder
except ImportError:  # pragma: no cover - pytest is a test dependency only
    pass
