"""Which part of the body every texel of Anny's UV layout shows: the canvas the synthetic clothes are painted on.

Three sources, all shipped with Anny:

- the UV body-part segmentation in ``anny/data/segmentation/`` (``body_parts_segmentation.png`` + ``.yaml``): head,
  hands, feet, eyes, mouth; everything else is one ``body`` chart, so
- the skinning weights (interpolated to every texel) split the body into torso, arms, legs, neck by dominant bone
  group, and
- the rest-pose geometry of the average body (3D point and normal of every texel, canonical frame: y up, facing +z,
  x = the body's left) places boundaries: the waist, the sleeve and trouser lengths (as fractions along the
  shoulder->wrist and hip->ankle segments), the front (normal z > 0) and the back, the hairline, the eyes and
  the mouth.

Everything here is computed once per layout and texture size (:func:`texel_parts`, cached).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dinar_core.errors import MissingModelError
from dinar_core.render.shading import vertex_normals
from dinar_core.texture.layout import UVLayout, texel_map, texel_points

SEGMENTS = ("body", "head", "hand", "foot", "eye_back", "eye_front", "eye_cavity", "mouth_cavity", "tongue")
"""Anny's UV segmentation labels, sides merged (index = the value in :attr:`TexelParts.segment`)."""

GROUPS = ("torso", "arm", "hand", "leg", "foot", "neck", "head")
"""Dominant bone groups (index = the value in :attr:`TexelParts.group`)."""


def _bone_group(name: str) -> str:
    for prefix, group in (("upperarm", "arm"), ("lowerarm", "arm"), ("wrist", "hand"), ("finger", "hand"),
                          ("metacarpal", "hand"), ("upperleg", "leg"), ("lowerleg", "leg"), ("foot", "foot"),
                          ("toe", "foot"), ("neck", "neck"), ("head", "head"), ("eye", "head")):
        if name.startswith(prefix):
            return group
    return "torso"  # root, pelvis, spine, clavicle, shoulder01


@dataclass(frozen=True)
class Landmarks:
    """Rest-pose landmarks of the average body (canonical frame, metres). Each (3,) float32, sides as (2, 3)
    (left, right); ``eyes`` are the keypoint regressor's, ``eyeballs`` the eye bones' heads (eyeball centres)."""

    shoulders: np.ndarray
    wrists: np.ndarray
    hips: np.ndarray
    ankles: np.ndarray
    neck: np.ndarray
    chest: np.ndarray
    waist: np.ndarray
    eyes: np.ndarray
    eyeballs: np.ndarray
    nose: np.ndarray
    head_top: float


@dataclass(frozen=True)
class TexelParts:
    """Per-texel body parts of a ``T x T`` texture (numpy; row-major texels, v down as the project's textures).

    inside: (T, T) bool, texels covered by a UV chart.
    segment: (T, T) int8 index into ``SEGMENTS`` (-1 outside).
    group: (T, T) int8 index into ``GROUPS`` (-1 outside).
    side: (T, T) int8, +1 the body's left, -1 its right, 0 centre/outside (from the rest point's x).
    point: (T, T, 3) float32 rest-pose point of the average body (canonical frame; 0 outside).
    normal: (T, T, 3) float32 unit rest-pose normal (0 outside).
    arm_t: (T, T) float32, position along shoulder (0) -> wrist (1) of the texel's side (for arm texels).
    leg_t: (T, T) float32, position along hip (0) -> ankle (1).
    landmarks: :class:`Landmarks`.
    """

    inside: np.ndarray
    segment: np.ndarray
    group: np.ndarray
    side: np.ndarray
    point: np.ndarray
    normal: np.ndarray
    arm_t: np.ndarray
    leg_t: np.ndarray
    landmarks: Landmarks

    @property
    def size(self) -> int:
        return int(self.inside.shape[0])

    def seg(self, name: str) -> np.ndarray:
        return self.segment == SEGMENTS.index(name)

    def grp(self, name: str) -> np.ndarray:
        return self.group == GROUPS.index(name)


def segmentation_files() -> tuple[Path, Path]:
    """Anny's shipped UV segmentation (png, yaml). MissingModelError when the installed anny lacks them."""
    import anny.paths

    root = Path(anny.paths.get_anny_root_dir()) / "data" / "segmentation"
    png, yml = root / "body_parts_segmentation.png", root / "body_parts_segmentation.yaml"
    if not png.is_file() or not yml.is_file():
        raise MissingModelError(f"Anny's UV body-part segmentation is missing ({png})",
                                fix="reinstall the anny wheel (it ships data/segmentation/)")
    return png, yml


def face_segments(layout: UVLayout) -> np.ndarray:
    """(F,) int8 index into ``SEGMENTS`` of every layout face, read at the face's UV centre (as Anny's own
    ``face_segmentation`` does)."""
    import yaml
    from PIL import Image

    png, yml = segmentation_files()
    image = np.asarray(Image.open(png).convert("RGB"))  # (S, S, 3), rows follow v down (our UV convention)
    colours = yaml.safe_load(yml.read_text())["colors"]
    uv = layout.uv.detach().cpu().numpy()
    centre = uv[layout.uv_faces.detach().cpu().numpy()].mean(1)  # (F, 2)
    h, w = image.shape[:2]
    col = np.clip(np.round(centre[:, 0] * w).astype(np.int64), 0, w - 1)
    row = np.clip(np.round(centre[:, 1] * h).astype(np.int64), 0, h - 1)
    face_rgb = image[row, col].astype(np.int64)  # (F, 3)
    out = np.zeros(len(centre), np.int8)  # default: body
    for label, rgb in colours.items():
        name = label.split(".")[0]
        if name in SEGMENTS:
            out[(face_rgb == np.asarray(rgb)[None]).all(1)] = SEGMENTS.index(name)
    return out


def _along(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    d = end - start
    return ((points - start) @ d) / float(d @ d)


def compute_parts(body, texture_size: int) -> TexelParts:
    """The :class:`TexelParts` of ``body`` (an ``AnnyBody``) for a ``texture_size`` texture."""
    layout = body.uv_layout
    if layout is None:
        raise MissingModelError("the body model has no UV layout", fix="use the Anny body (its UVs ship with it)")
    T = int(texture_size)
    tmap = texel_map(layout, T)
    faces = layout.vertex_index[layout.uv_faces]  # (F, 3) body faces in layout order
    with torch.no_grad():
        rest = body.rest_vertices[None]  # (1, V, 3)
        normals = vertex_normals(rest, faces)
        pts, nrm = texel_points(rest, layout, tmap, normals)  # (1, N, 3) each
        corner = faces[tmap.face_flat()]  # (N, 3)
        bary = tmap.bary_flat()  # (N, 3)
        weights = (body.skinning_weights[corner] * bary[:, :, None]).sum(1)  # (N, J)
        names = body.joint_names
        group_of_bone = torch.tensor([GROUPS.index(_bone_group(n)) for n in names])
        group_w = torch.zeros(len(weights), len(GROUPS)).index_add_(1, group_of_bone, weights)  # (N, G)
        group = group_w.argmax(1).numpy().astype(np.int8)
    flat = tmap.flat.cpu().numpy()
    face = tmap.face_flat().cpu().numpy()

    def grid(values: np.ndarray, fill, dtype) -> np.ndarray:
        out = np.full((T * T,) + values.shape[1:], fill, dtype)
        out[flat] = values
        return out.reshape((T, T) + values.shape[1:])

    point = pts[0].cpu().numpy().astype(np.float32)
    lm = landmarks(body)
    side = np.where(point[:, 0] > 0.01, 1, np.where(point[:, 0] < -0.01, -1, 0)).astype(np.int8)
    left = point[:, 0] >= 0
    arm_t = np.where(left, _along(point, lm.shoulders[0], lm.wrists[0]), _along(point, lm.shoulders[1], lm.wrists[1]))
    leg_t = np.where(left, _along(point, lm.hips[0], lm.ankles[0]), _along(point, lm.hips[1], lm.ankles[1]))
    return TexelParts(
        inside=tmap.inside.cpu().numpy().copy(),
        segment=grid(face_segments(layout)[face], -1, np.int8),
        group=grid(group, -1, np.int8),
        side=grid(side, 0, np.int8),
        point=grid(point, 0.0, np.float32),
        normal=grid(nrm[0].cpu().numpy().astype(np.float32), 0.0, np.float32),
        arm_t=grid(arm_t.astype(np.float32), 0.0, np.float32),
        leg_t=grid(leg_t.astype(np.float32), 0.0, np.float32),
        landmarks=lm,
    )


def landmarks(body) -> Landmarks:
    """Rest-pose landmarks of the average Anny body (canonical frame)."""
    from dinar_core.body.anny_model import AnnyParams

    names = body.joint_names
    j = body.rest_joints.cpu().numpy()

    def at(name: str) -> np.ndarray:
        return j[names.index(name)].astype(np.float32)

    with torch.no_grad():
        out = body(AnnyParams.zeros(1, body.num_joints, body.device))
        kp = body.keypoints(out).part("body").points[0].cpu().numpy()
    from dinar_core.keypoints.layout import BODY_25_NAMES as BODY25_NAMES

    k = {n: kp[i].astype(np.float32) for i, n in enumerate(BODY25_NAMES)}
    return Landmarks(
        shoulders=np.stack([at("upperarm01.L"), at("upperarm01.R")]),
        wrists=np.stack([at("wrist.L"), at("wrist.R")]),
        hips=np.stack([at("upperleg01.L"), at("upperleg01.R")]),
        ankles=np.stack([at("foot.L"), at("foot.R")]),
        neck=at("neck01"), chest=at("spine02"), waist=at("spine04"),
        eyes=np.stack([k["LEye"], k["REye"]]), eyeballs=np.stack([at("eye.L"), at("eye.R")]), nose=k["Nose"],
        head_top=float(body.rest_vertices[:, 1].max()),
    )


_CACHE: dict[tuple[int, int], TexelParts] = {}


def texel_parts(body, texture_size: int) -> TexelParts:
    """:func:`compute_parts`, cached per body object and size (the body parts never change)."""
    key = (id(body), int(texture_size))
    if key not in _CACHE:
        _CACHE[key] = compute_parts(body, texture_size)
    return _CACHE[key]
