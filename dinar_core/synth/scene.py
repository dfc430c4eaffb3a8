"""Synthetic people with full ground truth: an Anny body of sampled shape and pose, a clothing-like texture, and
K calibrated cameras on a ring around it.

World frame (metres): z up, the ground is z = 0, the person stands at the origin facing -y (x = the body's left);
this is Anny's own frame, so ``AnnyParams.global_orient`` = (rotation canonical -> world) x (the body's yaw), and
``AnnyBody.forward`` of the saved parameters gives world coordinates directly.

Cameras (``dinar_core.cameras.multiview.Camera``: ``x_cam = R @ x_world + t``, x right, y down, z forward as OpenCV;
pixel (i, j) centred at (j + 0.5, i + 0.5), the project's convention, so K's principal point is the image centre
(W / 2, H / 2) and the rasterizer takes K as it is): camera k sits at azimuth 360 k / K degrees (plus a small jitter) counter-clockwise seen from above, starting in
front of the person (k = 0 frontal, then towards the body's left side), at chest height, 3-4 m away, looking at
the middle of the body, with a focal length that makes the body fill ``fill`` of the image height.

Lighting (baked into the views and the ground-truth renders, not into the texture): Lambert + ambient from the
body's world normals, ``rgb = texture x min(1, ambient + diffuse x max(0, n . l))`` with a light fixed in the world
(in front, above and slightly to the body's left), so the back is lit by the ambient term only.

Randomness: one NumPy generator per person and aspect, seeded by ``(seed, person index, aspect)``, so a person
does not change when the number of persons or views does, and the same seed gives the same bytes (on the same
machine and thread count: float reductions may differ elsewhere).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from dinar_core.body.anny_model import PHENOTYPES, AnnyParams
from dinar_core.keypoints.layout import BODY_25_NAMES as BODY25_NAMES
from dinar_core.cameras.multiview import Camera, look_at
from dinar_core.motion import anny_skeleton, walk
from dinar_core.motion.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from dinar_core.render.rasterizer import interpolate
from dinar_core.render.shading import vertex_normals
from dinar_core.synth.appearance import Appearance, PaintedTexture, paint_texture, sample_appearance
from dinar_core.synth.parts import texel_parts
from dinar_core.texture.render import render_textured

GENERATOR = "dinar synth 0.1"
PoseKind = Literal["standing", "walking", "arms_out"]
# aspects of a person, each with its own random stream
_SHAPE, _POSE, _LOOK, _TEXTURE, _CAMERAS, _BACKGROUND = range(6)


@dataclass(frozen=True)
class SynthConfig:
    """How synthetic people are made.

    image_size: (H, W) of every view. texture_size: side of the ground-truth UV texture.
    distance: range of the camera ring's radius, metres. fill: fraction of the image height the body fills.
    camera_height: camera height as a fraction of the body height (chest height). azimuth_jitter_deg,
    distance_jitter_m, height_jitter_m, target_jitter_m: per-view jitter of the ring positions and look-at point.
    ambient, diffuse, light_direction: the lighting (direction towards the light, world frame).
    noisy_background: probability of a noisy (gradient + blotches + grain) rather than a plain background.
    sensor_noise: standard deviation (0-255 levels) of the Gaussian noise added to the views (not the renders).
    """

    image_size: tuple[int, int] = (512, 512)
    texture_size: int = 512
    distance: tuple[float, float] = (3.0, 4.0)
    fill: float = 0.7
    camera_height: float = 0.72
    azimuth_jitter_deg: float = 4.0
    distance_jitter_m: float = 0.1
    height_jitter_m: float = 0.05
    target_jitter_m: float = 0.03
    ambient: float = 0.7
    diffuse: float = 0.35
    light_direction: tuple[float, float, float] = (0.25, -0.55, 0.8)
    noisy_background: float = 0.5
    sensor_noise: float = 2.0

    def __post_init__(self) -> None:
        h, w = self.image_size
        if min(h, w) < 32:
            raise ValueError(f"image_size must be at least 32 x 32, got {self.image_size}")
        if not 64 <= self.texture_size <= 4096:
            raise ValueError(f"texture_size must be in [64, 4096], got {self.texture_size}")
        if not 0.1 < self.fill <= 1.0:
            raise ValueError(f"fill must be in (0.1, 1], got {self.fill}")

    @property
    def lighting(self) -> "Lighting":
        return Lighting(self.ambient, self.diffuse, self.light_direction)


@dataclass(frozen=True)
class Lighting:
    """Lambert + ambient: ``min(1, ambient + diffuse max(0, n . l))``; direction: towards the light (world)."""

    ambient: float
    diffuse: float
    direction: tuple[float, float, float]

    def shade(self, normals: torch.Tensor) -> torch.Tensor:
        """normals: (B, 3, H, W) world unit normals -> (B, 1, H, W) shading factor."""
        d = torch.tensor(self.direction, dtype=normals.dtype, device=normals.device)
        d = d / d.norm()
        lam = (normals * d.view(1, 3, 1, 1)).sum(1, keepdim=True).clamp_min(0.0)
        return (self.ambient + self.diffuse * lam).clamp_max(1.0)

    def to_dict(self) -> dict:
        return {"model": "lambert+ambient", "ambient": self.ambient, "diffuse": self.diffuse,
                "direction": list(self.direction)}


def ring_cameras(rng: np.random.Generator, num_views: int, height_m: float, config: SynthConfig) -> list[Camera]:
    """``num_views`` cameras named cam01.. on a ring around the person (module docstring)."""
    if num_views < 1:
        raise ValueError(f"num_views must be >= 1, got {num_views}")
    H, W = config.image_size
    radius = rng.uniform(*config.distance)
    focal = config.fill * H * radius / height_m
    K = np.array([[focal, 0.0, W / 2], [0.0, focal, H / 2], [0.0, 0.0, 1.0]])  # principal point: image centre
    cams = []
    for k in range(num_views):
        az = math.radians(360.0 * k / num_views + rng.uniform(-1, 1) * config.azimuth_jitter_deg)
        r = radius + rng.uniform(-1, 1) * config.distance_jitter_m
        h = config.camera_height * height_m + rng.uniform(-1, 1) * config.height_jitter_m
        centre = np.array([r * math.sin(az), -r * math.cos(az), h])
        target = np.array([0.0, 0.0, 0.5 * height_m]) + rng.uniform(-1, 1, 3) * config.target_jitter_m
        R, t = look_at(centre, target)
        cams.append(Camera(f"cam{k + 1:02d}", K.copy(), R, t, np.zeros(5), (W, H)))
    return cams


def sample_phenotype(rng: np.random.Generator) -> dict[str, float]:
    """Adult phenotypes across sex, age, height, weight (Anny's parameters in [0, 1]; gender 0 male, 1 female;
    age 2/3 = young adult, 1 = old)."""
    female = rng.random() < 0.5
    return {
        "gender": float(rng.uniform(0.75, 1.0) if female else rng.uniform(0.0, 0.25)),
        "age": float(rng.uniform(0.6, 0.92)),
        "muscle": float(rng.uniform(0.3, 0.75)),
        "weight": float(rng.uniform(0.2, 0.8)),
        "height": float(rng.uniform(0.2, 0.6) if female else rng.uniform(0.15, 0.55)),
        "proportions": float(rng.uniform(0.3, 0.7)),
    }


@dataclass(frozen=True)
class PoseSpec:
    """kind; arm_lowering (rad below the horizontal); stride (0 = standing); phase (walk frame index of 33 at
    30 fps, one cycle); yaw (rad, the body turned about the vertical, + = its left side backwards)."""

    kind: PoseKind
    arm_lowering: float
    stride: float
    phase: int
    yaw: float

    def to_dict(self) -> dict:
        return {"kind": self.kind, "arm_lowering": self.arm_lowering, "stride": self.stride, "phase": self.phase,
                "yaw": self.yaw}


def sample_pose(rng: np.random.Generator, weight: float) -> PoseSpec:
    """Standing, mid-walk or arms slightly out; heavier bodies keep their arms a little further from the hips so
    the arms never sink into them."""
    kind = ("standing", "walking", "arms_out")[int(rng.choice(3, p=[0.4, 0.35, 0.25]))]
    clearance = 0.35 * max(0.0, weight - 0.45)
    if kind == "arms_out":
        lowering = rng.uniform(0.7, 0.95) - clearance
    else:
        lowering = rng.uniform(1.1, 1.25) - clearance
    stride = float(rng.uniform(0.5, 0.9)) if kind == "walking" else 0.0
    phase = int(rng.integers(33)) if kind == "walking" else 0
    return PoseSpec(kind, float(lowering), stride, phase, float(rng.uniform(-0.2, 0.2)))


CANONICAL_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Canonical (y up, facing +z) -> world (z up, facing -y): the inverse of ``ANNY_TO_CANONICAL``."""


def pose_params(body, phenotype: dict[str, float], pose: PoseSpec) -> AnnyParams:
    """AnnyParams (batch 1) for the pose, standing on z = 0 with its root above the origin (world frame)."""
    sk = anny_skeleton(body.joint_names, body.frame.cpu().numpy(), body.rest_joints.cpu().numpy())
    motion = walk(num_frames=33, fps=30.0, cycle_seconds=1.1, stride=pose.stride, arm_lowering=pose.arm_lowering,
                  skeleton=sk)
    body_pose = motion.body_pose[pose.phase].reshape(-1, 3)
    yaw = float(motion.global_orient[pose.phase, 1]) + pose.yaw
    G = CANONICAL_TO_WORLD @ axis_angle_to_matrix(np.array([0.0, yaw, 0.0]))
    orient = matrix_to_axis_angle(G)
    device = body.device
    params = AnnyParams(
        phenotype=torch.tensor([[phenotype[n] for n in PHENOTYPES]], dtype=torch.float32, device=device),
        pose=torch.tensor(body_pose[None], dtype=torch.float32, device=device),
        global_orient=torch.tensor(orient[None], dtype=torch.float32, device=device),
        transl=torch.zeros(1, 3, device=device))
    with torch.no_grad():
        out = body(params)
    root = out.joints[0, 0]
    lowest = out.vertices[0, :, 2].min()
    params.transl = torch.stack([-root[0], -root[1], -lowest])[None].to(torch.float32)
    return params


def rest_height(body, phenotype: dict[str, float]) -> float:
    """Standing height (metres) of the phenotype: the vertical extent of its rest pose."""
    params = AnnyParams.zeros(1, body.num_joints, body.device)
    params.phenotype = torch.tensor([[phenotype[n] for n in PHENOTYPES]], dtype=torch.float32, device=body.device)
    with torch.no_grad():
        v = body(params).vertices[0]
    return float(v[:, 1].max() - v[:, 1].min())


@dataclass
class ViewRender:
    """rgb: (H, W, 3) float32 [0, 1], lit, black outside the body; mask: (H, W) bool."""

    rgb: np.ndarray
    mask: np.ndarray

    def rgba8(self) -> np.ndarray:
        """(H, W, 4) uint8, alpha 255 on the body."""
        rgb = np.round(np.clip(self.rgb, 0, 1) * 255.0).astype(np.uint8)
        return np.concatenate([rgb, (self.mask * 255).astype(np.uint8)[..., None]], -1)


def render_view(verts_world: torch.Tensor, body, texture: np.ndarray, camera: Camera, lighting: Lighting | None
                ) -> ViewRender:
    """The lit textured body seen by ``camera``. verts_world: (V, 3); texture: (T, T, 3) uint8."""
    layout = body.uv_layout
    faces = layout.vertex_index[layout.uv_faces]
    dtype = verts_world.dtype
    R = torch.as_tensor(camera.R, dtype=dtype)
    t = torch.as_tensor(camera.t, dtype=dtype)
    verts_cam = (verts_world @ R.T + t)[None]  # (1, V, 3)
    W, H = camera.size
    r = render_textured(verts_cam, torch.as_tensor(camera.K, dtype=dtype), faces, layout, texture,
                        (H, W), background="transparent")
    rgb = r.rgba[:, :3]  # (1, 3, H, W), 0 outside
    if lighting is not None:
        normals = interpolate(r.fragments, faces, vertex_normals(verts_world[None], faces)[0])  # (1, 3, H, W)
        normals = normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-8)
        rgb = rgb * lighting.shade(normals)
    return ViewRender(rgb[0].permute(1, 2, 0).cpu().numpy(), r.fragments.mask[0, 0].cpu().numpy())


def background(rng: np.random.Generator, size: tuple[int, int], noisy: bool) -> np.ndarray:
    """(H, W, 3) float32 [0, 1]: a plain muted colour, or a vertical gradient with soft blotches and grain."""
    H, W = size
    a = rng.uniform(0.25, 0.9, 3)
    if not noisy:
        return np.broadcast_to(a.astype(np.float32), (H, W, 3)).copy()
    b = rng.uniform(0.2, 0.9, 3)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    g = (yy / max(H - 1, 1))[..., None]
    img = a * (1 - g) + b * g
    for _ in range(6):
        fx, fy = rng.uniform(0.5, 4.0, 2) / np.array([W, H])
        phase = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(0.02, 0.06, 3)
        img = img + amp * np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)[..., None]
    img = img + rng.normal(0, 0.02, (H, W, 3))
    return np.clip(img, 0, 1).astype(np.float32)


@dataclass
class SynthPerson:
    """One synthetic person and its ground truth.

    params: AnnyParams (batch 1, world frame); phenotype: Anny's 6 values by name; pose: PoseSpec;
    look: Appearance; painted: texture (T, T, 3) uint8 + prints/back masks; cameras: K Camera;
    views: K (H, W, 3) uint8 photos; renders: K ViewRender (no background/noise); joints: (25, 3) float32 world
    BODY_25 keypoints (``joint_names``); height_m: rest-pose standing height; lighting; backgrounds: K kinds.
    """

    index: int
    seed: int
    params: AnnyParams
    phenotype: dict[str, float]
    pose: PoseSpec
    look: Appearance
    painted: PaintedTexture
    cameras: list[Camera]
    views: list[np.ndarray]
    renders: list[ViewRender]
    joints: np.ndarray
    height_m: float
    lighting: Lighting
    backgrounds: list[str] = field(default_factory=list)
    joint_names: tuple[str, ...] = BODY25_NAMES


def _rng(seed: int, index: int, aspect: int, sub: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index), int(aspect), int(sub)])


def generate_person(body, seed: int, index: int, num_views: int, config: SynthConfig | None = None) -> SynthPerson:
    """Person ``index`` of the corpus of ``seed`` (``body``: an ``AnnyBody``):

    1. phenotype (shape), 2. pose on the ground at the origin, 3. look and texture, 4. the camera ring,
    5. per view: the lit render, a background, sensor noise.
    """
    config = config or SynthConfig()
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got {seed}, {index}")
    phenotype = sample_phenotype(_rng(seed, index, _SHAPE))  # 1.
    pose = sample_pose(_rng(seed, index, _POSE), phenotype["weight"])  # 2.
    params = pose_params(body, phenotype, pose)
    with torch.no_grad():
        out = body(params)
        joints = body.keypoints(out).part("body").points[0].cpu().numpy().astype(np.float32)
    verts = out.vertices[0]
    height = rest_height(body, phenotype)
    look = sample_appearance(_rng(seed, index, _LOOK))  # 3.
    painted = paint_texture(texel_parts(body, config.texture_size), look, _rng(seed, index, _TEXTURE))
    cameras = ring_cameras(_rng(seed, index, _CAMERAS), num_views, height, config)  # 4.
    lighting = config.lighting
    views, renders, kinds = [], [], []
    for k, cam in enumerate(cameras):  # 5.
        r = render_view(verts, body, painted.texture, cam, lighting)
        rng = _rng(seed, index, _BACKGROUND, k)
        noisy = bool(rng.random() < config.noisy_background)
        bg = background(rng, config.image_size, noisy)
        alpha = r.mask[..., None].astype(np.float32)
        img = r.rgb * alpha + bg * (1 - alpha)
        img = img * 255.0 + rng.normal(0.0, config.sensor_noise, img.shape)
        views.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
        renders.append(r)
        kinds.append("noisy" if noisy else "plain")
    return SynthPerson(index, seed, params, phenotype, pose, look, painted, cameras, views, renders, joints, height,
                       lighting, kinds)
