"""Pipeline configuration: one typed dataclass per stage, composed into `PipelineConfig`.

Defaults live here, in code. A YAML file (``configs/*.yaml``) only overrides fields; an unknown key or a value of
the wrong type is an error that names the key, so a typo never silently falls back to a default
(`tasks.config_overrides`). Every command resolves its config with `resolve_config`: the defaults or a person's
saved config, then ``--config``, then ``--set``. The resolved config is saved as ``config.yaml`` in every person
workspace.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import yaml

from dinar_core.avatar.config import NeuralAvatarConfig
from dinar_core.fitting.config import FitConfig
from dinar_core.texture.config import ClassicAvatarConfig
from dinar_core.training.config import TrainConfig
# (ConfigError, override and parse_dotlist are also imported from here by the stages, flows and tests)
from tasks.config_overrides import ConfigError, Override, apply_overrides, override, parse_dotlist, read_yaml


@dataclass
class IngestConfig:
    """Decoding of the user's photos into ``rgb/<frame>.png``."""

    max_side: int = 2048
    """Longer image side after ingest; larger photos are downscaled (area filter)."""
    min_side: int = 64
    """Images whose shorter side is below this are rejected (too small to find a body in)."""
    max_pixels: int = 178_956_970
    """Decompression-bomb limit on width*height, checked from the header before any pixel is decoded."""
    max_file_bytes: int = 200_000_000
    """Photos larger than this on disk are refused before a byte is decoded (raise it for uncompressed scans)."""
    decode_memory: int = 768 * 2**20
    """Bytes one decode may use: the pixel buffer the header implies must fit (checked before decoding), and the
    isolated OpenCV decoder runs under this address-space limit (RLIMIT_AS, on top of its own code)."""
    decode_timeout: float = 30.0
    """Seconds the isolated OpenCV decoder (formats Pillow lacks, e.g. Radiance HDR) may take before it is
    killed; its crash or timeout is a named error for that photo only."""


@dataclass
class SegmentConfig:
    """Person mask ``segm/<frame>.png`` (0/255 in all three channels, as DINAR reads it)."""

    backend: Literal["mediapipe", "rembg", "precomputed"] = "mediapipe"
    mediapipe_model: Literal["pose", "selfie"] = "pose"
    """`pose`: the segmentation of mediapipe's pose model (the detected person only); `selfie`: selfie
    segmentation (every person in view, the main one is kept by connected components)."""
    threshold: float = 0.5
    """Probability above which a pixel is foreground."""
    rembg_model: Optional[str] = None
    """Path to a local U2-Net style ONNX file for the `rembg` backend (or set U2NET_HOME)."""
    masks_dir: Optional[str] = None
    """Folder with the user's masks for the `precomputed` backend: `<frame>.png` binary, Graphonomy label
    (0 = background) or Graphonomy colour maps (black = background)."""
    min_person_fraction: float = 0.01
    """A mask covering less than this fraction of the image means no person was found."""
    second_person_fraction: float = 0.25
    """A second connected region at least this fraction of the largest one counts as another person."""
    device: str = "cpu"
    """Where the `rembg` ONNX model runs ('cpu' or 'cuda'); mediapipe always runs on the CPU."""


@dataclass
class KeypointsConfig:
    """OpenPose-format keypoints ``openpose/<frame>_keypoints.json`` (BODY_25, hands, face)."""

    backend: Literal["mediapipe", "openpose", "onnx"] = "mediapipe"
    min_detection_confidence: float = 0.5
    openpose_dir: Optional[str] = None
    """Folder of existing `<frame>_keypoints.json` files for the `openpose` import backend."""
    onnx_model: Optional[str] = None
    """Local RTMPose-style ONNX model for the `onnx` backend (COCO-17 or COCO-WholeBody-133 outputs)."""
    crop_margin: float = 0.15
    """The pose model sees the main person's mask box enlarged by this fraction of its size."""
    min_keypoint_confidence: float = 0.05
    """Joints below this confidence are written as missing (0, 0, 0), as OpenPose does."""
    torso_confidence: float = 0.3
    """A torso is found when two of the shoulders and hips (one a shoulder) are above this confidence."""
    device: str = "cpu"
    """Where the `onnx` backend runs ('cpu' or 'cuda'); mediapipe always runs on the CPU."""


@dataclass
class BodyConfig:
    """Which parametric body the fit and the avatar use."""

    model: Literal["auto", "smplx", "anny"] = "auto"
    """`auto`: SMPL-X when its model files are configured (smplx_models or $DINAR_SMPLX_MODELS), else Anny (open,
    shipped in its wheel). DINAR's neural avatar needs SMPL-X."""
    smplx_models: Optional[str] = None
    """Folder with the licensed SMPLX_NEUTRAL/MALE/FEMALE .pkl or .npz files (from https://smpl-x.is.tue.mpg.de)."""
    gender: Literal["neutral", "male", "female"] = "neutral"
    uv_assets: Optional[str] = None
    """DINAR's `smplx_data/` folder (uv.npy, uv_faces.npy, v_inds.npy): the SMPL-X UV layout."""
    anny_cache: Optional[str] = None
    """Where Anny keeps its built model data (default: $ANNY_CACHE_DIR or the dinar state folder)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the body model and the fit run (`auto`: CUDA when available)."""


@dataclass
class FitCheckConfig:
    """What `dinar fit-check` (and a warning in the manifest) calls a poor fit."""

    max_reprojection_error_rel: float = 0.03
    """Mean BODY_25 reprojection error as a fraction of the body's height in the image."""
    min_mask_iou: float = 0.8
    max_penetration_mm: float = 15.0
    """Deepest interpenetration (a hand in the thigh, an arm in the torso, a foot in the other leg), millimetres."""
    max_limit_violation_deg: float = 10.0
    """Largest excess of a joint angle beyond the anatomical limit table, degrees."""


@dataclass
class AvatarConfig:
    """Stage `avatar`: the textured avatar from the photo(s) and the fit."""

    mode: Literal["classic", "neural"] = "classic"
    """`classic`: the photo unwrapped into the body's UV texture, completed by symmetry, front/back transfer and a
    fill (no network, any body). `neural`: DINAR's neural texture + diffusion inpainting + finetuning (SMPL-X body and
    DINAR's checkpoint needed; the `neural` section sizes it), written in DINAR's layout under ``avatar/neural/``;
    `render` then takes its video, `export` writes no GLB for it."""
    classic: ClassicAvatarConfig = field(default_factory=ClassicAvatarConfig)
    """Texture size (``classic.texture_size``, default 256 as DINAR) and the unwrap / inpainting weights. The SMPL-X
    UV layout is read from ``body.uv_assets`` (or ``classic.uv_assets`` when that is unset)."""
    checkpoint: Optional[str] = None
    """`neural` mode: DINAR's ``ddpm-epoch=24.ckpt`` (link in DINAR's README, github SamsungLabs/DINAR)."""


@dataclass
class RenderConfig:
    """Stage `render`: the avatar animated and rendered to ``renders/video.mp4`` plus front/back/side views."""

    image_size: list[int] = field(default_factory=lambda: [512, 512])
    """(H, W) of the video."""
    view_size: Optional[list[int]] = None
    """(H, W) of the front/back/side views; None: the photo's size (after ingest), so a view shows the avatar at
    the detail the photo had."""
    fps: float = 30.0
    """Frames per second of the video."""
    seconds: float = 6.0
    """Length of a built-in motion (the turntable turns once in it: 2 s spun too fast to look at); a motion file
    plays for its own length (resampled to `fps`)."""
    motion: str = "turntable"
    """'turntable' | 'walk' | 'wave' | 'rest', or a path to DINAR's animation pickle (.pkl/.pickle, SMPL-X) or an
    AMASS .npz (SMPL-X / SMPL+H / SMPL layout, z up)."""
    background: list[int] = field(default_factory=lambda: [255, 255, 255])
    """RGB 0..255 behind the avatar."""
    fill: float = 0.85
    """The framing camera fits the whole motion's bounding box into this fraction of the image."""
    keep_on_ground: bool = True
    """Shift every frame vertically so the lowest vertex touches the ground (no floating or sinking feet)."""
    shading: Literal["lit", "unlit"] = "lit"
    """`lit`: a simple light (Lambert + ambient from a fixed direction) gives the avatar its shape; `unlit`: the
    texture as it is."""
    supersample: int = 1
    """Anti-aliasing of the video: render at this integer factor and average down (2 costs ~4x per frame). The
    front/back/side views are always rendered at least 2x."""


@dataclass
class ExportConfig:
    """Stage `export`: ``avatar/avatar.glb`` (rest-pose mesh, texture, skeleton, skinning weights)."""

    glb: bool = True
    animation: bool = True
    """Add the clips (``clips``) as named glTF animations (both bodies); false: the rest-pose mesh and skeleton."""
    clips: list[str] = field(default_factory=lambda: ["walk", "wave", "idle", "turntable"])
    """The clips, each a built-in motion or a motion file (DINAR .pkl, AMASS .npz) named by its stem, each
    ``render.seconds`` long at ``render.fps`` (a file: its own length). Empty: the render motion alone."""
    validate: bool = True
    """Run Khronos' glTF validator when installed (``dinar_core.export.gltf_validator``); errors fail the stage."""
    rig: Literal["default", "game_engine", "mixamo", "cmu_mb"] = "default"
    """The GLB's skeleton for the Anny body (``dinar_core.body.anny_rigs``): Anny's own 104 bones (`default`), or
    one of the standard rigs Anny ships with their skinning weights and joint names: `game_engine` (53 bones,
    Unreal names, A-pose bind), `mixamo` (52, ``mixamorig:`` names, T-pose bind), `cmu_mb` (31, CMU MotionBuilder
    names, T-pose bind). The clips are retargeted onto it. SMPL-X GLBs keep SMPL-X's 55 joints."""


@dataclass
class EvalConfig:
    """`dinar eval`: the multi-view protocol (``docs/evaluation.md``). Not part of any stage's cache key: the
    evaluation keys its own results."""

    source: str = "auto"
    """The view the avatar is made from: a camera name, or `auto` (the most frontal: ground truth on synthetic data,
    else the view whose keypoints show the widest shoulders and hips facing the camera)."""
    methods: list[str] = field(default_factory=lambda: ["flat", "mirror", "copy", "classic", "classic-gtfit",
                                                        "neural"])
    """Compared side by side: `flat` (the front's mean colour), `mirror` (symmetry only), `copy` (the classic
    completion before issue 11: front pixels copied through the body to the back), `classic` (the avatar stage's
    texture), `classic-gtfit` (classic on the ground-truth body: texture error apart from fit error),
    `neural` (needs avatar.checkpoint)."""
    lpips_weights: Optional[str] = None
    """Local LPIPS-VGG state dict (``torch.save(lpips.LPIPS(net='vgg').state_dict(), path)``); LPIPS is skipped,
    with a note in the summary, when unset."""


@dataclass
class RuntimeConfig:
    """How a run uses the machine and the runs folder (not part of any stage's cache key)."""

    threads: int | Literal["auto"] = "auto"
    """Threads of torch/OpenMP/BLAS per process: `auto` = this process's CPUs shared between the run's workers,
    reduced to what other running work leaves free (`tasks.threads`), chosen when each stage starts; or a number."""
    lock_timeout: float = 5.0
    """Seconds a run waits for another run on the same runs folder to release ``RUNS/.dinar.lock`` before it
    refuses with `RunsBusyError`."""


@dataclass
class PipelineConfig:
    """Everything a run needs, section by section. A stage's cache key hashes only its own sections."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    keypoints: KeypointsConfig = field(default_factory=KeypointsConfig)
    body: BodyConfig = field(default_factory=BodyConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    fit_check: FitCheckConfig = field(default_factory=FitCheckConfig)
    neural: NeuralAvatarConfig = field(default_factory=NeuralAvatarConfig)
    """DINAR's neural avatar (sizes, DDIM, finetuning); `configs/neural.yaml` spells out the official sizes."""
    avatar: AvatarConfig = field(default_factory=AvatarConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    """`dinar train` (the networks' sizes are ``neural``'s)."""
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


def _apply_file(cfg: PipelineConfig, path: str | os.PathLike) -> PipelineConfig:
    try:
        return override(cfg, read_yaml(path))
    except ConfigError as exc:
        raise ConfigError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None


def resolve_config(base: PipelineConfig | dict | str | os.PathLike | None = None,
                   config_file: str | os.PathLike | None = None,
                   overrides: Sequence[Override] = ()) -> PipelineConfig:
    """The one config resolver of every command: `base`, then the YAML `config_file`, then `overrides` in order.

    base: None = the defaults in code; a path = a person's saved ``config.yaml`` (what its run used, itself
    applied on the defaults, so a field added since still gets its default; a person without one, whose first run
    was stopped before it was written, gets the defaults); a dict or a PipelineConfig as is.
    Every problem (unknown key, wrong type, bad YAML, a missing file) is a `ConfigError` naming the key or file.
    """
    if base is None:
        cfg = PipelineConfig()
    elif isinstance(base, PipelineConfig):
        cfg = base
    elif isinstance(base, dict):
        cfg = from_dict(base)
    else:
        cfg = _apply_file(PipelineConfig(), base) if Path(base).exists() else PipelineConfig()
    if config_file is not None:
        cfg = _apply_file(cfg, config_file)
    return apply_overrides(cfg, overrides)


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[Override] | None = None
                ) -> PipelineConfig:
    """Defaults, then the YAML file at `path` (if any), then ``key=value`` overrides (`resolve_config` on the
    defaults)."""
    return resolve_config(None, path, overrides or ())


def to_dict(cfg: Any) -> dict:
    """A plain, YAML-able dict of a config dataclass."""
    return dataclasses.asdict(cfg)


def from_dict(data: dict) -> PipelineConfig:
    """Inverse of `to_dict` (validated like a YAML override)."""
    return override(PipelineConfig(), data)


def dump_yaml(cfg: Any) -> str:
    """The config as YAML text (what each workspace's ``config.yaml`` holds)."""
    return _yaml_text(json.dumps(to_dict(cfg)))


@functools.lru_cache(maxsize=8)
def _yaml_text(as_json: str) -> str:
    # a batch writes the same config into every workspace: dumped once (PyYAML's pure-Python emitter takes ~8 ms,
    # its C one ~2 ms when libyaml is there; both give the same text)
    return yaml.dump(json.loads(as_json), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)
