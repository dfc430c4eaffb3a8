"""Small numpy rotation helpers for motion data: axis-angle <-> unit quaternion <-> matrix, and slerp.

Quaternions are scalar-last ``(x, y, z, w)``, as glTF and scipy store them. Everything works on any leading shape
``(..., 3)`` / ``(..., 4)`` / ``(..., 3, 3)`` and computes in float64 (motion arrays are small; float32 round-off
would show in long slerp chains), returning float64.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def axis_angle_to_quat(aa: np.ndarray) -> np.ndarray:
    """aa: (..., 3) axis * angle (radians). Returns (..., 4) unit quaternions (x, y, z, w) with w >= 0."""
    aa = np.asarray(aa, dtype=np.float64)
    if aa.shape[-1] != 3:
        raise ValueError(f"axis-angle must be (..., 3), got {aa.shape}")
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)  # (..., 1)
    half = 0.5 * angle
    # sin(a/2)/a -> 1/2 for a -> 0 (Taylor), avoiding 0/0 for the identity
    small = angle < 1e-8
    scale = np.where(small, 0.5 - angle**2 / 48.0, np.sin(half) / np.where(small, 1.0, angle))
    quat = np.concatenate([aa * scale, np.cos(half)], axis=-1)  # (..., 4)
    return canonical_quat(quat)


def quat_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """quat: (..., 4) (x, y, z, w), need not be unit. Returns (..., 3) axis * angle with angle in [0, pi]."""
    quat = np.asarray(quat, dtype=np.float64)
    if quat.shape[-1] != 4:
        raise ValueError(f"quaternions must be (..., 4), got {quat.shape}")
    quat = canonical_quat(quat / np.maximum(np.linalg.norm(quat, axis=-1, keepdims=True), _EPS))
    xyz, w = quat[..., :3], quat[..., 3:]
    sin_half = np.linalg.norm(xyz, axis=-1, keepdims=True)  # (..., 1)
    angle = 2.0 * np.arctan2(sin_half, w)  # atan2 is accurate near 0 and near pi, unlike acos(w)
    small = sin_half < 1e-8
    scale = np.where(small, 2.0, angle / np.where(small, 1.0, sin_half))
    return xyz * scale


def canonical_quat(quat: np.ndarray) -> np.ndarray:
    """(..., 4) -> the same rotations with w >= 0 (q and -q are the same rotation)."""
    return np.where(quat[..., 3:] < 0, -quat, quat)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of (..., 4) (x, y, z, w) quaternions (the rotation b first, then a)."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz], axis=-1)


def quat_slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical linear interpolation along the shorter arc.

    q0, q1: (..., 4) unit quaternions; t: broadcastable to (...,) in [0, 1]. Returns (..., 4) unit quaternions.
    """
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]  # (..., 1)
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # shorter arc
    dot = np.clip(np.abs(dot), -1.0, 1.0)
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6  # nearly equal: lerp is exact to first order and avoids 0/0
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / np.where(near, 1.0, sin_theta))
    w1 = np.where(near, t, np.sin(t * theta) / np.where(near, 1.0, sin_theta))
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices (Rodrigues via the quaternion)."""
    return quat_to_matrix(axis_angle_to_quat(aa))


def quat_to_matrix(quat: np.ndarray) -> np.ndarray:
    """(..., 4) unit (x, y, z, w) -> (..., 3, 3)."""
    x, y, z, w = np.moveaxis(np.asarray(quat, dtype=np.float64), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def matrix_to_quat(mat: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit (x, y, z, w), w >= 0 (Shepperd's method: the largest of the
    four candidate denominators is used, so it is stable for every rotation)."""
    m = np.asarray(mat, dtype=np.float64)
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"matrices must be (..., 3, 3), got {m.shape}")
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    cand = np.stack([1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22, 1 + m00 + m11 + m22], -1)
    best = np.argmax(cand, axis=-1)  # (...,)
    r = 0.5 * np.sqrt(np.maximum(np.take_along_axis(cand, best[..., None], -1)[..., 0], _EPS))  # (...,)
    s = 0.25 / r
    q = np.empty(m.shape[:-2] + (4,))
    options = [
        (r, (m[..., 0, 1] + m[..., 1, 0]) * s, (m[..., 0, 2] + m[..., 2, 0]) * s, (m[..., 2, 1] - m[..., 1, 2]) * s),
        ((m[..., 0, 1] + m[..., 1, 0]) * s, r, (m[..., 1, 2] + m[..., 2, 1]) * s, (m[..., 0, 2] - m[..., 2, 0]) * s),
        ((m[..., 0, 2] + m[..., 2, 0]) * s, (m[..., 1, 2] + m[..., 2, 1]) * s, r, (m[..., 1, 0] - m[..., 0, 1]) * s),
        ((m[..., 2, 1] - m[..., 1, 2]) * s, (m[..., 0, 2] - m[..., 2, 0]) * s, (m[..., 1, 0] - m[..., 0, 1]) * s, r),
    ]
    for k, comps in enumerate(options):
        sel = best == k
        for c in range(4):
            q[..., c] = np.where(sel, comps[c], q[..., c]) if k else np.where(sel, comps[c], 0.0)
    return canonical_quat(q / np.linalg.norm(q, axis=-1, keepdims=True))


def matrix_to_axis_angle(mat: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 3)."""
    return quat_to_axis_angle(matrix_to_quat(mat))


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3, 3) the smallest rotation taking the direction of `a` (..., 3) to that of `b` (..., 3) (Rodrigues;
    directions almost opposite are taken as 1e-6 short of it)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    v, c = np.cross(a, b), np.clip((a * b).sum(-1), -0.999999, None)
    K = np.zeros(v.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    return np.eye(3) + K + K @ K / (1.0 + c)[..., None, None]
